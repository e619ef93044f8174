//! Interrupted writes: `fix` is killed (SIGKILL) at many moments while it rewrites a few
//! thousand files. After every kill each file must hold exactly its old or exactly its new
//! content, and a rerun must finish the job without tripping on anything left behind.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

const FILES: usize = 1500;

fn manifest(i: usize) -> String {
    format!(
        "# service {i}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/svc-{i}:1.{i}\n        ports:\n        - containerPort: 8080\n"
    )
}

fn write_fleet(root: &Path) -> BTreeMap<PathBuf, String> {
    (0..FILES)
        .map(|i| {
            let path = root.join(format!("team-{}/svc-{i}.yaml", i % 20));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, manifest(i)).unwrap();
            (path.strip_prefix(root).unwrap().to_path_buf(), manifest(i))
        })
        .collect()
}

fn fix(root: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::cargo_bin("kube-harden").unwrap();
    cmd.arg("fix")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The content every file must end with: what an uninterrupted run writes.
fn expected_outputs(originals: &BTreeMap<PathBuf, String>) -> BTreeMap<PathBuf, String> {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(dir.path());
    assert!(fix(dir.path()).status().unwrap().success());
    originals
        .keys()
        .map(|rel| {
            (
                rel.clone(),
                fs::read_to_string(dir.path().join(rel)).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_file_is_old_or_new_after_a_kill_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let originals = write_fleet(dir.path());
    let expected = expected_outputs(&originals);
    let mut seen_partial_progress = false;
    // Deterministic spread of kill moments, from "at once" to "late".
    for delay_ms in [0u64, 3, 7, 12, 20, 35, 60, 90, 140, 200] {
        let mut child = fix(dir.path()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let mut new_count = 0;
        for (rel, old) in &originals {
            let now = fs::read_to_string(dir.path().join(rel)).unwrap();
            assert!(
                now == *old || now == expected[rel],
                "{} is neither old nor new after a kill at {delay_ms} ms:\n{now}",
                rel.display()
            );
            new_count += usize::from(now == expected[rel]);
        }
        seen_partial_progress |= new_count > 0 && new_count < FILES;
        if new_count == FILES {
            // Start over, so that later kills again land in the middle of a run.
            write_fleet(dir.path());
        }
    }
    let rerun = fix(dir.path()).stderr(Stdio::piped()).output().unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    for (rel, want) in &expected {
        assert_eq!(
            &fs::read_to_string(dir.path().join(rel)).unwrap(),
            want,
            "{}",
            rel.display()
        );
    }
    let leftovers: Vec<PathBuf> = walk(dir.path())
        .into_iter()
        .filter(|p| !originals.contains_key(p.strip_prefix(dir.path()).unwrap()))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the rerun removes the temporary files of killed runs: {leftovers:?}"
    );
    assert!(
        seen_partial_progress,
        "no kill landed in the middle of a run: the test proved nothing"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
