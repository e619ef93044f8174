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
    run_with_helm_env(dir, args, &[])
}

/// As [`run_with_helm`], with more environment variables (a `DOCKER_CONFIG`).
pub fn run_with_helm_env(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let shim = shim();
    let mut all = vec!["--render", "always", "--helm-bin", shim.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut command = assert_cmd::Command::cargo_bin("kube-harden").unwrap();
    command
        .args(&all)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("KUBE_HARDEN_HELM_PYTHON", python());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// A post-renderer patch: target kind, target name, the patch.
pub type Patch = (String, String, String);

/// A Flux `HelmRelease`'s name as Flux installs it (`spec.releaseName`, else
/// `[spec.targetNamespace-]metadata.name`) and its post-renderer patches (target kind, target
/// name, patch), read by the tests themselves.
pub fn flux_post_renderers(doc: &yaml_serde::Value) -> (String, Vec<Patch>) {
    let text = |v: &yaml_serde::Value| v.as_str().unwrap_or_default().to_string();
    let name = match (
        doc["spec"]["releaseName"].as_str(),
        doc["spec"]["targetNamespace"].as_str(),
    ) {
        (Some(name), _) => name.to_string(),
        (None, Some(ns)) => format!("{ns}-{}", text(&doc["metadata"]["name"])),
        (None, None) => text(&doc["metadata"]["name"]),
    };
    let patches = doc["spec"]["postRenderers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|r| {
            r["kustomize"]["patches"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .map(|p| {
            (
                text(&p["target"]["kind"]),
                text(&p["target"]["name"]),
                text(&p["patch"]),
            )
        })
        .collect();
    (name, patches)
}

/// `helm template` of `chart` under the release name `name` with `values`, then (when
/// `patches` is Some) through `kubectl kustomize` with those patches, as Flux's post-renderers
/// apply them.
pub fn render_release(
    chart: &Path,
    values: &yaml_serde::Value,
    name: &str,
    patches: Option<&[Patch]>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, yaml_serde::to_string(values).unwrap()).unwrap();
    let out = Command::new(shim())
        .args(["template", name])
        .arg(chart)
        .arg("--values")
        .arg(&file)
        .env("KUBE_HARDEN_HELM_PYTHON", python())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout).unwrap();
    let Some(patches) = patches else {
        return rendered;
    };
    let build = dir.path().join("build");
    std::fs::create_dir(&build).unwrap();
    std::fs::write(build.join("rendered.yaml"), &rendered).unwrap();
    let mut kustomization = "resources: [rendered.yaml]\n".to_string();
    if !patches.is_empty() {
        kustomization.push_str("patches:\n");
    }
    for (i, (kind, target, patch)) in patches.iter().enumerate() {
        std::fs::write(build.join(format!("p{i}.yaml")), patch).unwrap();
        kustomization.push_str(&format!(
            "- path: p{i}.yaml\n  target: {{kind: {kind}, name: {target}}}\n"
        ));
    }
    std::fs::write(build.join("kustomization.yaml"), kustomization).unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(&build)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
