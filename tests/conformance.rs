//! The conformance suite: every case under `fixtures/conformance/` is run through the real
//! `kube-harden fix` binary on a temporary copy and compared byte for byte with its golden
//! output (or, for refused files, checked to be reported and left untouched). A second run
//! must change nothing.
//!
//! Every case runs with `--no-writable-tmp` first, then the flags of its optional `args.txt`
//! (the last of two opposite flags wins, so a case could turn it back on). These goldens pin
//! issue 2's contract, which changes securityContexts only, and the lossless engine byte for
//! byte; the writable `/tmp` (on by default since issue 5) adds volumes and is pinned by its own
//! golden cases in `fixtures/guardrails/`. One flag here, rather than an `args.txt` in each of
//! the cases, keeps the goldens readable as the contract and a new case honest by default.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .expect("fixtures/conformance exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    cases
}

/// `--no-writable-tmp` (see the module comment), then the case's own `args.txt`.
fn extra_args(case: &Path) -> Vec<String> {
    let own: Vec<String> = fs::read_to_string(case.join("args.txt"))
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    std::iter::once("--no-writable-tmp".to_string())
        .chain(own)
        .collect()
}

fn run_fix(file: &Path, args: &[String]) -> std::process::Output {
    Command::cargo_bin("kube-harden")
        .expect("binary built")
        .arg("fix")
        .args(args)
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

/// Runs one case; returns a description of what went wrong, if anything.
fn check_case(case: &Path) -> Option<String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let input = fs::read(case.join("input.yaml")).expect("input readable");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input.yaml");
    fs::write(&file, &input).expect("copy input");
    let args = extra_args(case);
    let out = run_fix(&file, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let after = fs::read(&file).expect("output readable");
    if let Ok(expected_error) = fs::read_to_string(case.join("error.txt")) {
        let want = expected_error.trim().to_lowercase();
        let prefix = format!("{}:", file.display());
        if out.status.code() != Some(2) {
            return Some(format!(
                "{name}: expected exit 2, got {:?}; stderr: {stderr}",
                out.status.code()
            ));
        }
        if !stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.to_lowercase().contains(&want))
        {
            return Some(format!(
                "{name}: stderr lacks `path:line:col: ...{want}...`: {stderr}"
            ));
        }
        if after != input {
            return Some(format!("{name}: a refused file was modified"));
        }
        return None;
    }
    let expected = fs::read(case.join("expected.yaml")).expect("expected.yaml or error.txt");
    if out.status.code() != Some(0) {
        return Some(format!(
            "{name}: exit {:?}; stderr: {stderr}",
            out.status.code()
        ));
    }
    if after != expected {
        return Some(format!(
            "{name}: output differs from expected.yaml\n--- got ---\n{}\n--- expected ---\n{}",
            String::from_utf8_lossy(&after),
            String::from_utf8_lossy(&expected)
        ));
    }
    let again = run_fix(&file, &args);
    if fs::read(&file).expect("readable") != expected || again.status.code() != Some(0) {
        return Some(format!("{name}: a second run changed the file or failed"));
    }
    None
}

#[test]
fn conformance_suite() {
    let cases = cases();
    assert!(
        cases.len() >= 40,
        "expected at least 40 conformance cases, found {}",
        cases.len()
    );
    let failures: Vec<String> = cases.iter().filter_map(|c| check_case(c)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
