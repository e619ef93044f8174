//! Helm's real template engine for the tests: the PyPI package `helm-python-sdk` (Helm's Go
//! engine behind a C ABI; no `helm` binary) in `target/helm-venv`, installed by
//! `scripts/helm-engine.sh` when `KUBE_HARDEN_HELM_PYTHON` does not name a Python that has it,
//! and `tests/helm-shim/helm`, a `helm`-compatible command (the subset of `helm template` that
//! the render check runs) on that engine. A test that needs the engine fails, never skips,
//! when it cannot be had.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Python that has the engine (installed on first use).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let python = match std::env::var_os("KUBE_HARDEN_HELM_PYTHON") {
                Some(python) => PathBuf::from(python),
                None => install_engine(),
            };
            let ok = Command::new(&python)
                .args(["-c", "import helm_python"])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                ok,
                "Helm's template engine (helm-python-sdk) not found at {}: scripts/helm-engine.sh installs it into target/helm-venv, or set KUBE_HARDEN_HELM_PYTHON to a Python that has it",
                python.display()
            );
            python
        })
        .clone()
}

fn install_engine() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/helm-engine.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "installing Helm's template engine failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The `helm`-compatible command for `--helm-bin`; its environment needs [`python`] in
/// `KUBE_HARDEN_HELM_PYTHON`.
pub fn shim() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm-shim/helm")
}

/// `helm template` through the shim: the rendered stream, or the error.
pub fn template(chart: &Path, values: Option<&Path>) -> Result<String, String> {
    let mut cmd = Command::new(shim());
    cmd.args(["template", "release"])
        .arg(chart)
        .env("KUBE_HARDEN_HELM_PYTHON", python());
    if let Some(v) = values {
        cmd.arg("--values").arg(v);
    }
    let out = cmd.output().expect("the helm shim runs");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("UTF-8 render"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs kube-harden in `dir` with the shim as its `helm` and the render check on.
pub fn run_with_helm(dir: &Path, args: &[&str]) -> std::process::Output {
    let shim = shim();
    let mut all = vec!["--render", "always", "--helm-bin", shim.to_str().unwrap()];
    all.extend_from_slice(args);
    assert_cmd::Command::cargo_bin("kube-harden")
        .unwrap()
        .args(&all)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("KUBE_HARDEN_HELM_PYTHON", python())
        .output()
        .unwrap()
}
