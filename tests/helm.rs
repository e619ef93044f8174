//! Helm charts through the command line: the fixture charts under `fixtures/charts/` are
//! copied to a temporary folder and fixed; the values files must come out as the contract says,
//! the templates and every other file byte-identical, and a second run must change nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::run_in;
use common::{copy_dir, snapshot};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies one fixture chart, runs `fix` on it, and returns (folder, before, after, stderr, code).
struct Fixed {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
    after: BTreeMap<PathBuf, Vec<u8>>,
    stderr: String,
    code: i32,
}

fn fix(chart: &str) -> Fixed {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(chart);
    copy_dir(&fixtures().join(chart), &dir);
    let before = snapshot(&dir);
    let out = run_in(tmp.path(), &["fix", chart]);
    Fixed {
        after: snapshot(&dir),
        before,
        dir,
        _tmp: tmp,
        stderr: text(&out.stderr),
        code: out.status.code().unwrap(),
    }
}

impl Fixed {
    fn changed(&self) -> Vec<String> {
        self.before
            .iter()
            .filter(|(p, b)| self.after.get(*p) != Some(*b))
            .map(|(p, _)| p.display().to_string())
            .collect()
    }

    fn values(&self, name: &str) -> serde_json::Value {
        let v: yaml_serde::Value = yaml_serde::from_slice(&self.after[Path::new(name)]).unwrap();
        serde_json::to_value(v).unwrap()
    }

    fn second_run_changes_nothing(&self) {
        let out = run_in(self.dir.parent().unwrap(), &["fix", "."]);
        assert_eq!(snapshot(&self.dir), self.after, "{}", text(&out.stderr));
    }
}

#[test]
fn current_scaffold_uncomments_matching_hints_and_keeps_the_others() {
    let f = fix("scaffold-current");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(
        f.changed(),
        vec!["values.yaml"],
        "only the values file changes"
    );
    let after = text(&f.after[Path::new("values.yaml")]);
    let expected = "podSecurityContext:
  runAsNonRoot: true
  runAsUser: 1000
  runAsGroup: 1000
  fsGroup: 1000
  seccompProfile:
    type: RuntimeDefault
  # fsGroup: 2000

securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    drop:
    - ALL
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  # runAsUser: 1000
";
    assert!(after.contains(expected), "{after}");
    assert_eq!(
        after.matches("readOnlyRootFilesystem").count(),
        1,
        "no second copy"
    );
    // The test pod of the scaffold takes nothing from values: reported, not invented.
    assert!(
        f.stderr.contains("templates/tests/test-connection.yaml:11: Pod/wget left unchanged: container `wget` has no securityContext; add `securityContext: {{- toYaml .Values.securityContext | nindent 8 }}`"),
        "{}",
        f.stderr
    );
    f.second_run_changes_nothing();
}

#[test]
fn old_scaffold_gets_the_same_values() {
    let f = fix("scaffold-old");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.changed(), vec!["values.yaml"]);
    let v = f.values("values.yaml");
    assert_eq!(
        v["podSecurityContext"],
        serde_json::json!({"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        v["securityContext"],
        serde_json::json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true})
    );
    // The resources hints are not a securityContext: untouched.
    let after = text(&f.after[Path::new("values.yaml")]);
    assert!(after.contains("resources: {}\n  # limits:\n"), "{after}");
    f.second_run_changes_nothing();
}

#[test]
fn bitnami_style_enables_the_contexts_and_follows_the_contract() {
    let f = fix("bitnami-style");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.changed(), vec!["values.yaml"]);
    let v = f.values("values.yaml");
    let pod = &v["podSecurityContext"];
    assert_eq!(pod["enabled"], true);
    assert_eq!(pod["fsGroup"], 1001, "a non-zero id is kept");
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["runAsUser"], 1000);
    let c = &v["containerSecurityContext"];
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["runAsUser"], 1001);
    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let m = &v["metrics"]["containerSecurityContext"];
    assert_eq!(m["enabled"], true);
    assert_eq!(m["runAsUser"], 1000, "0 becomes the baseline uid");
    assert_eq!(m["allowPrivilegeEscalation"], false);
    assert!(
        f.stderr
            .contains("override: overrides the explicit `readOnlyRootFilesystem: false` with `true` (its comment says: \"the web server writes its pid file next to its binary\")"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("`enabled: false` becomes `true`"),
        "{}",
        f.stderr
    );
    f.second_run_changes_nothing();
}

#[test]
fn multi_component_paths_get_their_level_and_override_files_only_their_insecure_values() {
    let f = fix("multi-component");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(
        f.changed(),
        vec![
            "ci/privileged-values.yaml",
            "values-prod.yaml",
            "values.yaml"
        ],
        "values-staging.yaml sets no security context and is left alone"
    );
    let v = f.values("values.yaml");
    let pod_keys = [
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "seccompProfile",
    ];
    for pod in [
        "server.podSecurityContext",
        "worker.podSecurityContext",
        "migrate.podSecurityContext",
    ] {
        let (a, b) = pod.split_once('.').unwrap();
        let keys: Vec<&str> = v[a][b]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{pod}: {keys:?}");
        assert!(
            keys.iter().all(|k| pod_keys.contains(k)),
            "{pod}: only pod fields: {keys:?}"
        );
    }
    assert_eq!(v["server"]["podSecurityContext"]["runAsUser"], 1000);
    let server = &v["server"]["containerSecurityContext"];
    assert_eq!(
        server["capabilities"]["add"],
        serde_json::json!(["NET_BIND_SERVICE"])
    );
    assert_eq!(
        server["capabilities"]["drop"],
        serde_json::json!(["NET_RAW", "ALL"])
    );
    assert!(
        server.get("fsGroup").is_none(),
        "no pod field at container level"
    );
    let worker = &v["worker"]["securityContext"];
    assert_eq!(worker["enabled"], true);
    assert_eq!(worker["runAsNonRoot"], true);
    // The agent's pod spec is written by a helper in templates/_agent.tpl.
    assert_eq!(
        v["agent"]["podSecurityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        v["agent"]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let migrate = &v["migrate"]["securityContext"];
    assert_eq!(migrate["allowPrivilegeEscalation"], false);
    assert_eq!(migrate["readOnlyRootFilesystem"], true);
    // Override files: explicit insecure values corrected, nothing added.
    assert_eq!(
        text(&f.after[Path::new("values-prod.yaml")]),
        "# Production overrides.\nserver:\n  containerSecurityContext:\n    readOnlyRootFilesystem: true   # prod writes a cache to /var/cache\n  podSecurityContext:\n    runAsUser: 1000\nworker:\n  replicas: 6\n"
    );
    assert_eq!(
        text(&f.after[Path::new("ci/privileged-values.yaml")]),
        "migrate:\n  securityContext:\n    allowPrivilegeEscalation: false\n"
    );
    f.second_run_changes_nothing();
}

#[test]
fn a_chart_that_wires_nothing_is_reported_and_not_edited() {
    let f = fix("unwired");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(f.changed().is_empty(), "{:?}", f.changed());
    assert!(
        f.stderr.contains("unwired/templates/deployment.yaml:15: Deployment/app left unchanged: container `app` has no securityContext; add `securityContext: {{- toYaml .Values.securityContext | nindent 12 }}`"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr
            .contains("1 Helm chart whose templates take no securityContext from values"),
        "{}",
        f.stderr
    );
    // `check` does not call it compliant: the template's shortfalls, left to a person.
    let out = run_in(f.dir.parent().unwrap(), &["check", "unwired"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("unwired/templates/deployment.yaml:15:1: Deployment/app container app: readOnlyRootFilesystem is absent (left to a person)"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| !l.contains("render check of Helm charts skipped"))
            .count(),
        8,
        "5 pod and 3 container controls: {stdout}"
    );
}

#[test]
fn a_schema_that_forbids_an_added_key_stops_the_write() {
    let f = fix("schema-forbids");
    assert_eq!(f.code, 2, "{}", f.stderr);
    assert!(f.changed().is_empty(), "{:?}", f.changed());
    assert!(
        f.stderr.contains("schema-forbids/values.yaml:2:1: the hardened values would not validate against values.schema.json (/securityContext: Additional properties are not allowed ('readOnlyRootFilesystem' was unexpected)); not written"),
        "{}",
        f.stderr
    );
}

#[test]
fn check_lists_the_values_shortfalls_and_passes_after_fix() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("multi-component"), &tmp.path().join("c"));
    let out = run_in(tmp.path(), &["check", "--format", "json", "c"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(
            |f| f["file"].as_str().unwrap().ends_with("values-prod.yaml")
                && f["control"] == "readOnlyRootFilesystem"
                && f["current"] == "false"
        ),
        "{findings:#?}"
    );
    assert_eq!(run_in(tmp.path(), &["fix", "c"]).status.code(), Some(0));
    let out = run_in(tmp.path(), &["check", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_broken_values_file_is_an_error_at_its_position_and_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("c");
    copy_dir(&fixtures().join("scaffold-old"), &chart);
    let broken = "podSecurityContext: {}\nsecurityContext: {}\nsecurityContext: {}\n";
    fs::write(chart.join("values.yaml"), broken).unwrap();
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("c/values.yaml:3:1: "), "{stderr}");
    assert!(stderr.contains("duplicate"), "{stderr}");
    assert_eq!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        broken
    );
}

#[test]
fn a_values_file_given_alone_is_handled_with_its_chart() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("multi-component"), &tmp.path().join("c"));
    let out = run_in(tmp.path(), &["diff", "c/values-prod.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(diff.contains("+++ b/c/values-prod.yaml"), "{diff}");
    assert!(
        !diff.contains("b/c/values.yaml"),
        "only the file asked for: {diff}"
    );
    assert!(diff.contains("+    runAsUser: 1000"), "{diff}");
}

/// The old scaffold with other values.yaml/override texts.
fn scaffold_with(values: &str, overrides: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("c");
    copy_dir(&fixtures().join("scaffold-old"), &chart);
    fs::write(chart.join("values.yaml"), values).unwrap();
    for (name, text) in overrides {
        fs::write(chart.join(name), text).unwrap();
    }
    (tmp, chart)
}

const OLD_SCAFFOLD_REST: &str = "replicaCount: 1\nimage:\n  repository: nginx\n  pullPolicy: IfNotPresent\n  tag: \"\"\nservice:\n  type: ClusterIP\n  port: 80\nresources: {}\n";

#[test]
fn a_privileged_container_leaves_its_pod_to_a_person() {
    let values = format!(
        "{OLD_SCAFFOLD_REST}podSecurityContext: {{}}\nsecurityContext:\n  privileged: true\n"
    );
    let (tmp, chart) = scaffold_with(&values, &[]);
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert_eq!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        values
    );
    assert!(stderr.contains("c/values.yaml:11: values/securityContext left unchanged: `securityContext` is privileged: true"), "{stderr}");
    assert!(stderr.contains("c/values.yaml:10: values/podSecurityContext left unchanged: a container of the same template is left alone"), "{stderr}");
}

#[test]
fn an_override_that_nulls_a_context_is_a_risk_and_not_edited() {
    let values = format!("{OLD_SCAFFOLD_REST}podSecurityContext: {{}}\nsecurityContext: {{}}\n");
    let (tmp, chart) = scaffold_with(&values, &[("values-dev.yaml", "securityContext: null\n")]);
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        fs::read_to_string(chart.join("values-dev.yaml")).unwrap(),
        "securityContext: null\n"
    );
    assert_ne!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        values
    );
    assert!(stderr.contains("c/values-dev.yaml:1: values/securityContext: risk: null here deletes the chart's `securityContext`"), "{stderr}");
}

#[test]
fn a_crlf_values_file_gets_crlf_lines_and_the_same_hints() {
    let lf = fix("scaffold-old");
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("c");
    copy_dir(&fixtures().join("scaffold-old"), &chart);
    let original = fs::read_to_string(chart.join("values.yaml")).unwrap();
    fs::write(chart.join("values.yaml"), original.replace('\n', "\r\n")).unwrap();
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let crlf = fs::read_to_string(chart.join("values.yaml")).unwrap();
    let expected = text(&lf.after[Path::new("values.yaml")]).replace('\n', "\r\n");
    assert_eq!(crlf, expected);
}
