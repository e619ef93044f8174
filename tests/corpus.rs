//! `fix` over a copy of the plain manifests of the shared corpus (real files from public
//! repositories, outside Helm chart folders), checked by means independent of the engine:
//! - no crash, and every file reported as an error is left byte-identical;
//! - semantics: with every pod and container `securityContext` removed, after == before plus
//!   exactly the writable-/tmp additions (on by default: an emptyDir `tmp`/`kube-harden-tmp`
//!   and its `/tmp` mount in each container that gets a read-only root filesystem; see
//!   `common::with_tmp_additions`), and pods left to a person untouched;
//! - bytes: every line the diff removes is a securityContext line, a `volumes:`/`volumeMounts:`
//!   line the tmp additions extend (an empty or flow list), or the unterminated last line;
//! - typed: hardened workloads deserialise into k8s-openapi types with each field in its place,
//!   and every /tmp mount names an emptyDir of the pod;
//! - a second run changes nothing.
//!
//! The corpus is `../shared/corpus` beside the repository, or `$KUBE_HARDEN_CORPUS`. These
//! tests are marked `#[ignore]` with the reason, so that `cargo test` on a clone with nothing
//! beside it says "ignored" instead of failing or passing in silence; `cargo test --locked --
//! --include-ignored` (what CI runs) runs them, and they fail when the corpus is missing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use similar::{ChangeTag, TextDiff};

mod common;
use common::{strip_security_contexts, with_tmp_additions, TypedOutcome};

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("KUBE_HARDEN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    assert!(
        dir.is_dir(),
        "corpus not found at {} (set KUBE_HARDEN_CORPUS)",
        dir.display()
    );
    dir
}

fn in_chart(path: &Path, root: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(root))
        .any(|d| d.join("Chart.yaml").is_file())
}

/// Copies every .yaml/.yml file outside chart folders; returns relative path -> bytes.
fn copy_plain_manifests(from: &Path, to: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("readable corpus dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) && !in_chart(&path, from)
            {
                let rel = path.strip_prefix(from).unwrap().to_path_buf();
                let bytes = fs::read(&path).expect("readable");
                let dest = to.join(&rel);
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::write(&dest, &bytes).unwrap();
                files.insert(rel, bytes);
            }
        }
    }
    files
}

fn run(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .args(args)
        .arg(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Keys whose lines the tool may add, change or remove (a value replaced in place).
const TOUCHED: &[&str] = &[
    "securityContext",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "seccompProfile",
    "type:",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "capabilities",
    "drop",
    "- ALL",
    // The writable /tmp: an empty or flow `volumes`/`volumeMounts` list is filled or extended.
    "volumes:",
    "volumeMounts:",
];

fn unrelated_removed_lines(before: &str, after: &str) -> Vec<String> {
    let diff = TextDiff::from_lines(before, after);
    let last_unterminated = if before.ends_with('\n') {
        None
    } else {
        before.lines().last()
    };
    diff.iter_all_changes()
        .filter(|c| c.tag() == ChangeTag::Delete)
        .map(|c| c.value().trim_end_matches(['\r', '\n']).to_string())
        .filter(|l| !TOUCHED.iter().any(|t| l.contains(t)) && Some(l.as_str()) != last_unterminated)
        .collect()
}

/// Error lines are `path:line:col: reason`; notes are `path:line: ...` (no column).
fn is_error_line(line: &str, path: &Path) -> bool {
    let Some(rest) = line.strip_prefix(&format!("{}:", path.display())) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let numeric =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric(parts.next()) && numeric(parts.next())
}

/// Runs `fix` in `dir`: exit 0, or 2 for files it refused; no crash, no edit that failed its
/// own verification. Returns the exit code and stderr.
fn fix_cleanly(dir: &Path) -> (i32, String) {
    let (code, stderr) = run(&["fix"], dir);
    assert!(code == 0 || code == 2, "fix exited {code}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("verification failed"),
        "an edit failed its own verification:\n{stderr}"
    );
    (code, stderr)
}

/// The corpus's plain manifests that are UTF-8, by relative path.
fn plain_manifest_texts() -> Vec<(PathBuf, String)> {
    let tmp = tempfile::tempdir().unwrap();
    copy_plain_manifests(&corpus_dir(), tmp.path())
        .into_iter()
        .filter_map(|(path, bytes)| Some((path, String::from_utf8(bytes).ok()?)))
        .collect()
}

/// Large streams are parsed in chunks of documents, in parallel: on every multi-document file
/// of the corpus, cut at every marker, the chunks must give the single pass's tree, and a file
/// the single pass refuses must not be accepted in chunks. Documents left as text (those
/// without a pod spec, in large streams) must keep the single pass's document spans.
#[test]
#[ignore = "needs the shared corpus: ../shared/corpus or KUBE_HARDEN_CORPUS; run with -- --include-ignored"]
fn chunked_parsing_gives_the_single_pass_tree_on_every_corpus_stream() {
    let mut streams = 0;
    for (path, text) in &plain_manifest_texts() {
        let Some((whole, chunked)) = yaml_splice::Tree::parse_both_ways(text, 1) else {
            continue;
        };
        streams += 1;
        match whole {
            Ok(whole) => {
                assert!(chunked.as_ref() == Some(&whole), "{}", path.display());
                // Left as text, the documents keep the spans the single pass gives them.
                let spans: Vec<(usize, usize)> =
                    whole.docs.iter().map(|d| (d.start, d.end)).collect();
                let opaque = yaml_splice::Tree::opaque_document_spans(text);
                assert_eq!(opaque, Some(spans), "{}", path.display());
            }
            Err(_) => assert!(chunked.is_none(), "{}", path.display()),
        }
    }
    assert!(
        streams > 50,
        "only {streams} multi-document files in the corpus"
    );
}

/// Verification reads the original's data from the engine's tree, with yaml_serde's scalar
/// rules, instead of loading it again: on every document of the corpus that both parsers read,
/// the two readings must be equal. (A document the tree leaves to yaml_serde is loaded by it.)
#[test]
#[ignore = "needs the shared corpus: ../shared/corpus or KUBE_HARDEN_CORPUS; run with -- --include-ignored"]
fn the_trees_reading_of_every_corpus_document_is_yaml_serdes() {
    use kube_harden::verify::{from_tree::document_value, load_all};
    let (mut compared, mut left_to_yaml_serde) = (0, 0);
    for (path, text) in &plain_manifest_texts() {
        let Ok(tree) = yaml_splice::Tree::parse(text) else {
            continue;
        };
        for doc in 0..tree.docs.len() {
            let Ok(mut theirs) = load_all(tree.doc_text(doc)) else {
                continue;
            };
            match document_value(&tree, doc) {
                Some(ours) => {
                    assert_eq!(theirs.len(), 1, "{} document {doc}", path.display());
                    assert!(
                        theirs.pop() == Some(ours),
                        "{} document {doc}: the tree reads other data than yaml_serde",
                        path.display()
                    );
                    compared += 1;
                }
                None => left_to_yaml_serde += 1,
            }
        }
    }
    println!("{compared} documents read alike, {left_to_yaml_serde} left to yaml_serde");
    assert!(compared > 1000, "only {compared} documents compared");
    assert!(
        left_to_yaml_serde * 20 < compared,
        "{left_to_yaml_serde} documents left to yaml_serde"
    );
}

#[test]
#[ignore = "needs the shared corpus: ../shared/corpus or KUBE_HARDEN_CORPUS; run with -- --include-ignored"]
fn fix_over_the_corpus_is_lossless_and_exact() {
    let corpus = corpus_dir();
    let work = tempfile::tempdir().unwrap();
    let originals = copy_plain_manifests(&corpus, work.path());
    assert!(
        originals.len() > 600,
        "expected the corpus's plain manifests, found {}",
        originals.len()
    );

    let (code, stderr) = fix_cleanly(work.path());

    let mut changed = 0;
    let mut files_with_tmp = 0;
    let mut typed = TypedOutcome::default();
    let mut problems = Vec::new();
    for (rel, before) in &originals {
        let path = work.path().join(rel);
        let after = fs::read(&path).unwrap();
        let reported = stderr.lines().any(|l| is_error_line(l, &path));
        if reported && &after != before {
            problems.push(format!(
                "{}: reported as an error but modified",
                rel.display()
            ));
        }
        if &after == before {
            continue;
        }
        changed += 1;
        let (b, a) = (
            String::from_utf8(before.clone()).unwrap(),
            String::from_utf8(after).unwrap(),
        );
        let (vb, va) = (
            kube_harden::verify::load_all(&b).unwrap(),
            kube_harden::verify::load_all(&a).unwrap(),
        );
        let expected = strip_security_contexts(with_tmp_additions(vb.clone()));
        if expected != strip_security_contexts(va.clone()) {
            problems.push(format!(
                "{}: data outside securityContext changed (beyond the writable /tmp)",
                rel.display()
            ));
        }
        if with_tmp_additions(vb.clone()) != vb {
            files_with_tmp += 1;
        }
        for line in unrelated_removed_lines(&b, &a) {
            problems.push(format!(
                "{}: unrelated line removed or changed: {line:?}",
                rel.display()
            ));
        }
        for (doc_before, doc_after) in vb.iter().zip(&va) {
            typed.check(rel, doc_before, doc_after, &mut problems);
        }
    }
    let left_alone = stderr.matches(" left unchanged: ").count();
    println!("corpus: {} files, {changed} changed ({files_with_tmp} with a writable /tmp added), {left_alone} pods left unchanged, {} workloads typed, {} documents not typed (no workload type, or untypable before the fix)", originals.len(), typed.checked, typed.untyped);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(changed > 300, "only {changed} files changed");
    assert!(
        typed.checked > 250,
        "only {} workloads were type-checked",
        typed.checked
    );

    let (code2, stderr2) = run(&["fix"], work.path());
    assert_eq!(code2, code, "second run: {stderr2}");
    assert!(
        stderr2.contains(" 0 changed,"),
        "the second run changed files: {stderr2}"
    );
}

/// Every chart folder of the corpus (a folder with `Chart.yaml`), copied whole.
fn copy_charts(from: &Path, to: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("readable corpus dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if in_chart(&path, from) {
                let rel = path.strip_prefix(from).unwrap().to_path_buf();
                let bytes = fs::read(&path).expect("readable");
                let dest = to.join(&rel);
                fs::create_dir_all(dest.parent().unwrap()).unwrap();
                fs::write(&dest, &bytes).unwrap();
                files.insert(rel, bytes);
            }
        }
    }
    files
}

/// The paths (`a.b.c`) where two values trees differ.
fn differing_paths(
    before: &yaml_serde::Value,
    after: &yaml_serde::Value,
    at: &str,
    out: &mut Vec<String>,
) {
    use yaml_serde::Value;
    match (before, after) {
        (Value::Mapping(b), Value::Mapping(a)) => {
            for (k, va) in a {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let path = format!("{at}.{key}");
                match b.get(k) {
                    Some(vb) => differing_paths(vb, va, &path, out),
                    None => out.push(path),
                }
            }
            for (k, _) in b {
                if !a.contains_key(k) {
                    out.push(format!("{at}.{k:?} (removed)"));
                }
            }
        }
        (b, a) if b == a => {}
        (b, a) if writable_tmp_appended(b, a) => {}
        _ => out.push(at.to_string()),
    }
}

/// Whether `after` is the list `before` (or an empty one, for null) with one writable-/tmp item
/// appended: the emptyDir `{name: N, emptyDir: {}}` or its mount `{name: N, mountPath: /tmp}`,
/// N being `tmp` or `kube-harden-tmp` (what `fix` adds to a chart's volume lists).
fn writable_tmp_appended(before: &yaml_serde::Value, after: &yaml_serde::Value) -> bool {
    use yaml_serde::Value;
    let old: &[Value] = match before {
        Value::Sequence(items) => items,
        Value::Null => &[],
        _ => return false,
    };
    let Value::Sequence(new) = after else {
        return false;
    };
    let Some((added, kept)) = new.split_last() else {
        return false;
    };
    let Value::Mapping(item) = added else {
        return false;
    };
    let named = matches!(
        item.get("name").and_then(Value::as_str),
        Some("tmp" | "kube-harden-tmp")
    );
    let empty_dir = item.get("emptyDir") == Some(&Value::Mapping(Default::default()));
    let mount = item.get("mountPath").and_then(Value::as_str) == Some("/tmp");
    kept == old && item.len() == 2 && named && (empty_dir || mount)
}

/// The chart folder of a file (nearest ancestor with Chart.yaml), relative to the corpus copy.
fn chart_of(rel: &Path, root: &Path) -> PathBuf {
    rel.ancestors()
        .skip(1)
        .find(|d| root.join(d).join("Chart.yaml").is_file())
        .unwrap_or(rel)
        .to_path_buf()
}

/// `fix` over every chart of the corpus: templates and every other non-values file unchanged,
/// every change to a values file inside a securityContext mapping or a writable /tmp appended to
/// a volume list, data checked with yaml_serde, and a second run changes nothing. Prints the
/// table of charts patched and reported.
#[test]
#[ignore = "needs the shared corpus: ../shared/corpus or KUBE_HARDEN_CORPUS; run with -- --include-ignored"]
fn fix_over_the_corpus_charts_edits_only_values_inside_security_contexts() {
    let corpus = corpus_dir();
    let work = tempfile::tempdir().unwrap();
    let originals = copy_charts(&corpus, work.path());
    assert!(
        originals.len() > 300,
        "expected the corpus's charts, found {} files",
        originals.len()
    );

    let (code, stderr) = fix_cleanly(work.path());

    let mut problems = Vec::new();
    let mut patched: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let mut manifests_beside_charts = 0;
    for (rel, before) in &originals {
        let path = work.path().join(rel);
        let after = fs::read(&path).unwrap();
        let name = rel.file_name().unwrap().to_str().unwrap();
        let chart = chart_of(rel, work.path());
        let inside = rel.strip_prefix(&chart).unwrap();
        let values_file = (inside.parent() == Some(Path::new("")) && name.starts_with("values"))
            || inside.parent() == Some(Path::new("ci"));
        if &after == before {
            continue;
        }
        if inside.starts_with("templates") || name == "Chart.yaml" {
            problems.push(format!(
                "{}: a template or Chart.yaml, but changed",
                rel.display()
            ));
            continue;
        }
        if !values_file {
            // Anything else in a chart's folder (rendered output committed beside it) is a
            // plain manifest: hardened as one, nothing else changed.
            let load = |bytes: &[u8]| {
                kube_harden::verify::load_all(std::str::from_utf8(bytes).unwrap()).unwrap()
            };
            let (vb, va) = (load(before), load(&after));
            if strip_security_contexts(with_tmp_additions(vb)) != strip_security_contexts(va) {
                problems.push(format!(
                    "{}: a manifest in a chart folder changed beyond its securityContexts and /tmp",
                    rel.display()
                ));
            }
            manifests_beside_charts += 1;
            continue;
        }
        if stderr.lines().any(|l| is_error_line(l, &path)) {
            problems.push(format!(
                "{}: reported as an error but modified",
                rel.display()
            ));
        }
        patched
            .entry(chart)
            .or_default()
            .push(inside.display().to_string());
        let (b, a) = (
            String::from_utf8(before.clone()).unwrap(),
            String::from_utf8(after).unwrap(),
        );
        let (vb, va) = (
            kube_harden::verify::load_all(&b).unwrap(),
            kube_harden::verify::load_all(&a).unwrap(),
        );
        let mut paths = Vec::new();
        for (db, da) in vb.iter().zip(&va) {
            differing_paths(db, da, "", &mut paths);
        }
        for p in paths {
            if !p.to_ascii_lowercase().contains("securitycontext") {
                problems.push(format!(
                    "{}: `{p}` changed outside a securityContext",
                    rel.display()
                ));
            }
        }
        for line in unrelated_removed_lines(&b, &a) {
            // An empty volume list the writable /tmp fills (its data is checked above).
            let volume_list = line.trim_end().ends_with("[]") && line.contains("olume");
            let hint_or_switch = line.trim_start().starts_with('#')
                || line.contains("enabled:")
                || line.trim_end().ends_with("{}")
                || line.trim_end().ends_with('~')
                || volume_list;
            if !hint_or_switch {
                problems.push(format!(
                    "{}: unrelated line removed or changed: {line:?}",
                    rel.display()
                ));
            }
        }
    }

    // The table for the record: charts patched, charts reported, and why.
    let mut charts: Vec<PathBuf> = originals
        .keys()
        .filter(|r| r.file_name().is_some_and(|n| n == "Chart.yaml"))
        .map(|r| r.parent().unwrap().to_path_buf())
        .collect();
    charts.sort();
    println!("| chart | values files patched | reported (template: reason) |");
    println!("|---|---|---|");
    for chart in &charts {
        let prefix = format!("{}/", work.path().join(chart).display());
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for l in stderr.lines().filter(|l| l.starts_with(&prefix)) {
            let rest = &l[prefix.len()..];
            // Nested charts print their own lines.
            if charts.iter().any(|c| {
                c != chart
                    && c.starts_with(chart)
                    && l.starts_with(&format!("{}/", work.path().join(c).display()))
            }) {
                continue;
            }
            let reason = rest
                .split_once(": ")
                .map(|(_, r)| r)
                .unwrap_or(rest)
                .split(" left unchanged: ")
                .last()
                .unwrap_or_default()
                .split("; add")
                .next()
                .unwrap_or_default()
                .replace('`', "")
                .chars()
                .take(90)
                .collect::<String>();
            *reasons.entry(reason).or_default() += 1;
        }
        let files = patched
            .get(chart)
            .map(|f| f.join(", "))
            .unwrap_or_else(|| "-".into());
        let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n}x {r}")).collect();
        println!(
            "| {} | {files} | {} |",
            chart.display(),
            if why.is_empty() {
                "-".into()
            } else {
                why.join("; ")
            }
        );
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(patched.len() >= 8, "only {} charts patched", patched.len());
    println!("plain manifests in chart folders, hardened as manifests: {manifests_beside_charts}");

    let (code2, stderr2) = run(&["fix"], work.path());
    assert_eq!(code2, code, "second run: {stderr2}");
    assert!(
        stderr2.contains(" 0 changed,"),
        "the second run changed files: {stderr2}"
    );
}
