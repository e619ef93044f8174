//! Bad inputs: each gets a one-line `path:line:col: reason` error naming the file, exit code 2,
//! is left byte-identical, and never stops the other files from being fixed.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

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
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("./{name}:")))
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
fn files_over_the_size_limit_are_skipped_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!(
        "{GOOD}  labels:\n{}",
        (0..2000)
            .map(|i| format!("    k{i}: v\n"))
            .collect::<String>()
    );
    fs::write(dir.path().join("big.yaml"), &big).unwrap();
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .args(["fix", "--max-file-size", "1000", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 larger than the size limit (1000 bytes)")
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("big.yaml")).unwrap(),
        big
    );
}

#[cfg(unix)]
#[test]
fn read_only_files_are_reported_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.yaml");
    fs::write(&path, GOOD).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .args(["fix", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("./ro.yaml:1:1: not written: the file is read-only"));
    assert_eq!(fs::read_to_string(&path).unwrap(), GOOD);
    let _ = Path::new(".");
}
