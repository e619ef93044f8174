//! Bad inputs: each gets a one-line `path:line:col: reason` error naming the file, exit code 2,
//! is left byte-identical, and never stops the other files from being fixed.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

mod common;

const GOOD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: good\nspec:\n  containers:\n  - name: a\n    image: x\n";

/// Runs `fix` on a folder holding `name` (with `bytes`) and a good manifest; returns stderr.
fn fix_beside_good(name: &str, bytes: &[u8], want: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join(name);
    fs::write(&bad, bytes).unwrap();
    fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .arg("fix")
        .arg(".")
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    // The error line (`path:line:col: reason`), not a reviewer note (`path:line: ...`), which
    // the file's pods may also get (e.g. the writable /tmp its plan would have added).
    let line = stderr
        .lines()
        .find(|l| {
            l.strip_prefix(&format!("./{name}:")).is_some_and(|rest| {
                let mut parts = rest.splitn(3, ':');
                let number = |p: Option<&str>| {
                    p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                };
                number(parts.next()) && number(parts.next())
            })
        })
        .unwrap_or_else(|| panic!("no error line for {name}: {stderr}"));
    let mut parts = line.splitn(4, ':');
    let (_, l, c) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
    assert!(
        l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok(),
        "{line}"
    );
    assert!(
        line.to_lowercase().contains(want),
        "{name}: `{line}` should mention {want}"
    );
    assert_eq!(
        fs::read(&bad).unwrap(),
        bytes,
        "{name} must be left byte-identical"
    );
    assert!(
        fs::read_to_string(dir.path().join("good.yaml"))
            .unwrap()
            .contains("runAsNonRoot: true"),
        "the good file is still fixed"
    );
    line.to_string()
}

#[test]
fn latin1_is_refused_at_the_bad_byte() {
    let line = fix_beside_good(
        "latin1.yaml",
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: caf\xe9\n",
        "utf-8",
    );
    assert!(line.starts_with("./latin1.yaml:4:12:"), "{line}");
}

#[test]
fn utf16_is_refused() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "apiVersion: v1\nkind: Pod\n".encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    fix_beside_good("utf16.yaml", &bytes, "utf-16");
}

#[test]
fn tab_indentation_is_refused() {
    let line = fix_beside_good(
        "tabs.yaml",
        format!("{GOOD}\tlabels: {{}}\n").as_bytes(),
        "tab",
    );
    assert!(line.starts_with("./tabs.yaml:9:1:"), "{line}");
}

#[test]
fn duplicate_keys_are_refused() {
    let text = GOOD.replace("    image: x\n", "    image: x\n    image: y\n");
    let line = fix_beside_good("dup.yaml", text.as_bytes(), "duplicate key `image`");
    assert!(line.starts_with("./dup.yaml:9:5:"), "{line}");
}

#[test]
fn syntax_errors_are_refused() {
    fix_beside_good(
        "broken.yaml",
        b"apiVersion: v1\nkind: Pod\nspec: [unclosed\n",
        "yaml syntax error",
    );
}

#[test]
fn wrong_types_are_refused_not_guessed() {
    fix_beside_good(
        "none.yaml",
        GOOD.replace(
            "    image: x\n",
            "    image: x\n    securityContext: none\n",
        )
        .as_bytes(),
        "not a mapping",
    );
    fix_beside_good(
        "drop.yaml",
        GOOD.replace(
            "    image: x\n",
            "    image: x\n    securityContext:\n      capabilities:\n        drop: ALL\n",
        )
        .as_bytes(),
        "not a list",
    );
    fix_beside_good(
        "uid.yaml",
        GOOD.replace(
            "    image: x\n",
            "    image: x\n    securityContext:\n      runAsUser: \"0\"\n",
        )
        .as_bytes(),
        "expected an integer",
    );
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let flow = format!("{GOOD}  x: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    fix_beside_good("deep-flow.yaml", flow.as_bytes(), "yaml");
    let block = format!("{GOOD}  x:\n  {}a\n", "- ".repeat(10_000));
    fix_beside_good("deep-block.yaml", block.as_bytes(), "yaml");
}

#[test]
fn a_50_mb_file_is_skipped_by_the_size_limit_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let line = format!("    k: {}\n", "v".repeat(94));
    let big = format!(
        "{GOOD}  labels:\n{}",
        line.repeat(50 * 1024 * 1024 / line.len())
    );
    assert!(big.len() > 50 * 1024 * 1024 - 1024);
    fs::write(dir.path().join("big.yaml"), &big).unwrap();
    fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let out = common::run_in(dir.path(), &["fix", "."]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a skip is not an error: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "./big.yaml: skipped: {} bytes is over the size limit of 10485760 bytes",
            big.len()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 larger than the size limit (10485760 bytes)"),
        "{stderr}"
    );
    assert_eq!(
        fs::metadata(dir.path().join("big.yaml")).unwrap().len(),
        big.len() as u64,
        "left as it was"
    );
    assert!(fs::read_to_string(dir.path().join("good.yaml"))
        .unwrap()
        .contains("runAsNonRoot: true"));
}

/// A large stream's documents without a pod spec are left as text by the engine (only
/// yaml_serde reads them); a syntax error in one is still reported where the engine sees it,
/// and the file is left alone.
#[test]
fn a_syntax_error_in_a_large_streams_document_without_pods_is_reported() {
    let data: String = (0..20_000)
        .map(|i| format!("  key{i}: value-{i}\n"))
        .collect();
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n{data}  broken: [a, b\n---\n{GOOD}"
    );
    assert!(
        text.len() > 256 * 1024,
        "large enough to be parsed in documents"
    );
    let line = fix_beside_good("bundle.yaml", text.as_bytes(), "syntax");
    let reported: usize = line.split(':').nth(1).unwrap().parse().unwrap();
    assert!(
        reported > 20_000,
        "the error is placed in the big document: {line}"
    );
}

#[test]
fn a_100_000_line_file_is_fixed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let config: String = (0..100_000)
        .map(|i| format!("  key{i}: value-{i}\n"))
        .collect();
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n{config}---\n{GOOD}"
    );
    fs::write(dir.path().join("long.yaml"), &text).unwrap();
    let out = common::run_in(dir.path(), &["fix", "."]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = fs::read_to_string(dir.path().join("long.yaml")).unwrap();
    assert!(
        after.starts_with(&text[..text.len() - GOOD.len()]),
        "the ConfigMap document is byte-identical"
    );
    assert!(after.ends_with("        - ALL\n    volumeMounts:\n    - name: tmp\n      mountPath: /tmp\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 1000\n    runAsGroup: 1000\n    fsGroup: 1000\n    seccompProfile:\n      type: RuntimeDefault\n  volumes:\n  - name: tmp\n    emptyDir: {}\n"), "{}", &after[after.len() - 300..]);
}

#[cfg(unix)]
#[test]
fn read_only_files_are_reported_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.yaml");
    fs::write(&path, GOOD).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let out = common::run_in(dir.path(), &["fix", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("./ro.yaml:1:1: not written: the file is read-only"));
    assert_eq!(fs::read_to_string(&path).unwrap(), GOOD);
    let _ = Path::new(".");
}

/// True when the tests run as root, where file modes do not stop reads.
fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// `kube-harden fix .` in `dir`, as an unprivileged user when the tests run as root (so that
/// file modes apply), with the folder opened up for that user.
#[cfg(unix)]
fn fix_unprivileged(dir: &Path) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("kube-harden");
    let mut cmd = if running_as_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.args(["fix", "."])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn unreadable_files_and_unlistable_folders_are_reported_and_the_rest_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    fs::write(&good, GOOD).unwrap();
    fs::set_permissions(&good, fs::Permissions::from_mode(0o666)).unwrap();
    fs::write(dir.path().join("secret.yaml"), GOOD).unwrap();
    fs::set_permissions(
        dir.path().join("secret.yaml"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::create_dir(dir.path().join("locked")).unwrap();
    fs::write(dir.path().join("locked/inner.yaml"), GOOD).unwrap();
    fs::set_permissions(dir.path().join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = fix_unprivileged(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    fs::set_permissions(dir.path().join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("./secret.yaml:1:1: cannot read: Permission denied"),
        "{stderr}"
    );
    assert!(
        stderr
            .to_lowercase()
            .contains("./locked:1:1: cannot list: permission denied"),
        "{stderr}"
    );
    assert!(
        fs::read_to_string(&good)
            .unwrap()
            .contains("runAsNonRoot: true"),
        "the readable file is still fixed"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("locked/inner.yaml")).unwrap(),
        GOOD
    );
}

/// A full disk: the write of the new content fails, the original stays intact, the temporary
/// file is gone. The disk is a 16 KiB tmpfs mounted in a private mount namespace.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_leaves_the_original_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("disk");
    fs::create_dir(&mount).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("kube-harden");
    let header = format!("# {}\n", "x".repeat(3000)).repeat(2);
    let original = format!("{header}{GOOD}");
    let script = r#"set -e
mount -t tmpfs -o size=16k tmpfs "$1"
printf '%s' "$2" > "$1/app.yaml"
cat /dev/zero > "$1/filler" 2>/dev/null || true
set +e
"$3" fix "$1"
echo "exit=$?"
echo "content-intact=$(if printf '%s' "$2" | cmp -s - "$1/app.yaml"; then echo yes; else echo no; fi)"
echo "files=$(ls -A "$1" | tr '\n' ' ')"
"#;
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c", script, "sh"])
        .arg(&mount)
        .arg(&original)
        .arg(&bin)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("exit=2"), "{stdout}{stderr}");
    assert!(stdout.contains("content-intact=yes"), "{stdout}{stderr}");
    assert!(
        stdout.contains("files=app.yaml filler \n"),
        "no temporary file is left: {stdout}"
    );
    assert!(
        stderr.contains("/app.yaml:1:1: not written: No space left on device"),
        "{stderr}"
    );
}
