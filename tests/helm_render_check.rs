//! The run-time render check of charts, end to end through Helm's real engine: kube-harden
//! runs `helm template` (here the `helm`-compatible shim on helm-python-sdk, see
//! tests/common/helm.rs) before and after its edits, for values.yaml and each override file.
//! A chart that renders short is reported (text, JSON, SARIF, explain, the pull request body),
//! one that breaks after the edits or changes outside securityContexts is not written, a
//! missing dependency is reported and never fetched, and a vendored subchart is planned and
//! rendered with its parent.

use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::helm::{run_with_helm, template};
use common::{contract_gaps, copy_dir, run_in, snapshot, typed_pod_specs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts")
}

/// A copy of one fixture chart in a temporary folder: (folder, chart path inside it).
fn chart_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join(name);
    copy_dir(&fixtures().join(name), &chart);
    (tmp, chart)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The pods of a rendered stream that fall short of the contract, as messages.
fn rendered_gaps(stream: &str) -> (usize, Vec<String>) {
    let mut pods = 0;
    let mut gaps = Vec::new();
    for document in yaml_serde::Deserializer::from_str(stream) {
        let doc: yaml_serde::Value = serde::Deserialize::deserialize(document).unwrap();
        for spec in typed_pod_specs(&doc).unwrap_or_default() {
            pods += 1;
            gaps.extend(contract_gaps(&spec));
        }
    }
    (pods, gaps)
}

#[test]
fn wired_fixture_charts_pass_the_render_check_and_ship_hardened_pods() {
    for name in [
        "scaffold-old",
        "bitnami-style",
        "multi-component",
        "vendored-dependency",
    ] {
        let (tmp, chart) = chart_copy(name);
        let out = run_with_helm(tmp.path(), &["fix", name]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        for said in ["renders short", "does not render", "render check skipped"] {
            assert!(!stderr.contains(said), "{name}: {stderr}");
        }
        let rendered = template(&chart, None).unwrap();
        let (pods, gaps) = rendered_gaps(&rendered);
        assert!(pods > 0, "{name}: the chart renders pods");
        assert_eq!(gaps, Vec::<String>::new(), "{name}");
        let again = snapshot(&chart);
        let second = run_with_helm(tmp.path(), &["fix", name]);
        assert_eq!(second.status.code(), Some(0), "{name}");
        assert_eq!(
            snapshot(&chart),
            again,
            "{name}: a second fix changes nothing"
        );
    }
}

#[test]
fn a_vendored_subchart_is_hardened_and_checked_in_its_parent_s_render() {
    let (tmp, chart) = chart_copy("vendored-dependency");
    let before = snapshot(&chart);
    let out = run_with_helm(tmp.path(), &["fix", "vendored-dependency"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = snapshot(&chart);
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(p, b)| after.get(*p) != Some(*b))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        changed,
        vec![
            Path::new("charts/cache/values.yaml"),
            Path::new("values.yaml")
        ],
        "the parent's and the subchart's values"
    );
    let cache = text(&after[Path::new("charts/cache/values.yaml")]);
    assert!(
        cache.contains("containerSecurityContext:\n  runAsUser: 999\n"),
        "the subchart's explicit uid is kept: {cache}"
    );
    // The parent's render holds both pods, each meeting the contract.
    let rendered = template(&chart, None).unwrap();
    assert!(rendered.contains("kind: StatefulSet"), "{rendered}");
    assert_eq!(rendered_gaps(&rendered), (2, vec![]));
}

#[test]
fn a_chart_that_renders_short_is_reported_in_every_output() {
    let (tmp, _chart) = chart_copy("renders-short");
    let fix = run_with_helm(tmp.path(), &["fix", "renders-short"]);
    let stderr = text(&fix.stderr);
    assert_eq!(fix.status.code(), Some(0), "{stderr}");
    let note = "renders short of the baseline: `helm template` with values.yaml renders Deployment/release-reports (from templates/deployment.yaml) without readOnlyRootFilesystem in container `reports`; the values feeding them: `.Values.securityContext`";
    assert!(
        stderr.contains(&format!(
            "renders-short/values.yaml:9: values/securityContext: risk: {note}"
        )),
        "the note is on the values line: {stderr}"
    );

    let check = run_with_helm(tmp.path(), &["check", "renders-short"]);
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("values/securityContext container reports: readOnlyRootFilesystem is absent (left to a person)"),
        "{stdout}"
    );

    let json = run_with_helm(tmp.path(), &["check", "--format", "json", "renders-short"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["control"] == "readOnlyRootFilesystem"
                && f["fixable"] == false
                && f["container"] == "reports"),
        "{findings:#?}"
    );
    let notes = json["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n["message"] == note), "{notes:#?}");

    let sarif = run_with_helm(tmp.path(), &["check", "--format", "sarif", "renders-short"]);
    let log: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(
        results.iter().any(|r| {
            let uri = &r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
            uri.as_str().unwrap_or_default().ends_with("values.yaml")
                && r["message"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("readOnlyRootFilesystem")
        }),
        "{results:#?}"
    );

    let explain = run_with_helm(tmp.path(), &["explain", "renders-short"]);
    let explained = text(&explain.stdout) + &text(&explain.stderr);
    assert!(explained.contains(note), "{explained}");
}

#[test]
fn the_pull_request_body_says_what_renders_short() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("renders-short"),
        &fixture.path().join("renders-short"),
    );
    let (work, _bare) = common::git_remote::repository_with(dir.path(), fixture.path(), None);
    let out = run_with_helm(
        &work,
        &["pr", "--dry-run", "--format", "json", "--repo", "acme/shop"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let body = json["services"][0]["body"].as_str().unwrap();
    assert!(
        body.contains("- **risk** (values/securityContext): renders short of the baseline: `helm template` with values.yaml renders Deployment/release-reports"),
        "{body}"
    );
}

#[test]
fn a_chart_that_fails_to_render_after_the_edits_is_not_written() {
    let (tmp, chart) = chart_copy("fails-after");
    let before = snapshot(&chart);
    let out = run_with_helm(tmp.path(), &["fix", "fails-after"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("fails-after/values.yaml:1:1: not written: fails-after renders with values.yaml before the edits and fails after:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("securityContext.readOnlyRootFilesystem needs persistence.enabled"),
        "Helm's own message is passed on: {stderr}"
    );
    assert_eq!(snapshot(&chart), before, "nothing is written");
}

#[test]
fn edits_that_change_the_render_outside_security_contexts_are_not_written() {
    let (tmp, chart) = chart_copy("uid-elsewhere");
    let before = snapshot(&chart);
    let out = run_with_helm(tmp.path(), &["fix", "uid-elsewhere"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not written: in the render of uid-elsewhere with values.yaml, Deployment/release-gallery the edits change the rendered object outside its securityContexts and the writable /tmp"),
        "{stderr}"
    );
    assert_eq!(snapshot(&chart), before, "nothing is written");
}

#[test]
fn a_missing_dependency_is_reported_and_never_fetched() {
    let (tmp, chart) = chart_copy("missing-dependency");
    let out = run_with_helm(tmp.path(), &["fix", "missing-dependency"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("missing-dependency/values.yaml:1: risk: does not render: a dependency in Chart.yaml is not vendored in charts/ (kube-harden never fetches one; run `helm dependency build`): not render-checked;"),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing in charts/ directory: cache"),
        "{stderr}"
    );
    assert!(!chart.join("charts").exists(), "nothing was fetched");
    let values = fs::read_to_string(chart.join("values.yaml")).unwrap();
    assert!(
        values.contains("readOnlyRootFilesystem: true"),
        "the values are still planned from the templates: {values}"
    );
}

#[test]
fn override_files_are_rendered_too() {
    // An override file that the chart renders differently from values.yaml: ci/ switches the
    // container context to one the template drops a field from.
    let (tmp, chart) = chart_copy("renders-short");
    fs::create_dir_all(chart.join("ci")).unwrap();
    fs::write(
        chart.join("ci/hardened-values.yaml"),
        "securityContext:\n  runAsUser: 2000\n",
    )
    .unwrap();
    let out = run_with_helm(tmp.path(), &["check", "--format", "json", "renders-short"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["message"].as_str())
        .filter(|m| m.contains("renders short"))
        .collect();
    assert_eq!(
        notes.len(),
        1,
        "what values.yaml already renders short is not said again for the override: {notes:#?}"
    );
    assert!(notes[0].contains("with values.yaml"), "{notes:#?}");
}

#[test]
fn render_never_skips_the_check_and_always_needs_helm() {
    let (tmp, chart) = chart_copy("fails-after");
    let never = run_in(tmp.path(), &["fix", "--render", "never", "fails-after"]);
    assert_eq!(never.status.code(), Some(0), "{}", text(&never.stderr));
    assert!(
        fs::read_to_string(chart.join("values.yaml"))
            .unwrap()
            .contains("readOnlyRootFilesystem: true"),
        "without the check the static plan is written"
    );

    let (tmp, chart) = chart_copy("scaffold-old");
    let missing = tmp.path().join("no-such-helm");
    let missing = missing.to_str().unwrap();
    let auto = run_in(
        tmp.path(),
        &["check", "--helm-bin", missing, "scaffold-old", "."],
    );
    let stdout = text(&auto.stdout);
    assert_eq!(
        stdout
            .matches("render check of Helm charts skipped")
            .count(),
        1,
        "said once: {stdout}"
    );
    let before = snapshot(&chart);
    let always = run_in(
        tmp.path(),
        &[
            "fix",
            "--render",
            "always",
            "--helm-bin",
            missing,
            "scaffold-old",
        ],
    );
    let stderr = text(&always.stderr);
    assert_eq!(always.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not written: the render check could not run"),
        "{stderr}"
    );
    assert_eq!(snapshot(&chart), before, "nothing is written");
}
