//! CI integration: `check --format sarif` (and `--sarif-file`) over the bundled fleet, and the
//! GitHub Actions runner integration (`GITHUB_ACTIONS=true`: workflow-command annotations, the
//! step summary, the step outputs), each through the real binary with the runner's files in a
//! temporary folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::parse_outputs;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with no trace of a GitHub Actions runner (CI may itself run under one).
fn bin(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kube-harden").unwrap();
    cmd.current_dir(cwd).env("NO_COLOR", "1");
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_REPOSITORY",
        "GITHUB_SERVER_URL",
        "GITHUB_API_URL",
        "GITHUB_SHA",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The binary as a step of a workflow would run it, with its output and summary files.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        Runner {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn output(&self) -> PathBuf {
        self.dir.path().join("output")
    }
    fn summary(&self) -> PathBuf {
        self.dir.path().join("summary.md")
    }
    fn command(&self, cwd: &Path) -> Command {
        let mut cmd = bin(cwd);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", self.output())
            .env("GITHUB_STEP_SUMMARY", self.summary())
            .env("GITHUB_REPOSITORY", "acme/fleet")
            .env("GITHUB_SERVER_URL", "https://github.example.com/")
            .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567");
        cmd
    }
    fn outputs(&self) -> BTreeMap<String, String> {
        parse_outputs(&fs::read_to_string(self.output()).unwrap())
    }
}

fn json_check(cwd: &Path, path: &str) -> Value {
    let out = bin(cwd)
        .args(["check", "--format", "json", path])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The fleet's findings and files that would change, from `check --format json` (so these
/// tests follow the fleet as it grows).
fn fleet_counts() -> (usize, usize) {
    let json = json_check(manifest_dir(), "fixtures/fleet");
    let findings = json["findings"].as_array().unwrap().len();
    let changed = json["summary"]["changed"].as_u64().unwrap() as usize;
    assert!(
        findings > SUMMARY_ROWS && changed > 30,
        "the fleet is large"
    );
    (findings, changed)
}

/// Rows of the findings table in a step summary.
const SUMMARY_ROWS: usize = 300;

fn sarif_of_fleet() -> (Value, std::process::Output) {
    let out = bin(manifest_dir())
        .args(["check", "--format", "sarif", "fixtures/fleet"])
        .output()
        .unwrap();
    let log = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    (log, out)
}

#[test]
fn sarif_of_the_fleet_has_one_rule_per_control_and_one_result_per_finding() {
    let (log, out) = sarif_of_fleet();
    assert_eq!(out.status.code(), Some(1), "findings make check exit 1");
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "kube-harden");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    assert!(driver["informationUri"]
        .as_str()
        .unwrap()
        .starts_with("https://"));

    let rules = driver["rules"].as_array().unwrap();
    let names: Vec<&str> = rules
        .iter()
        .map(|r| r["properties"]["tags"][2].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "runAsNonRoot",
            "runAsUser",
            "runAsGroup",
            "fsGroup",
            "seccompProfile",
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "capabilities.drop",
            "capabilities.add"
        ]
    );
    let mut ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 9, "rule ids are distinct");
    for rule in rules {
        for text in [
            &rule["shortDescription"]["text"],
            &rule["fullDescription"]["text"],
            &rule["help"]["text"],
            &rule["help"]["markdown"],
        ] {
            let text = text.as_str().unwrap();
            assert!(text.len() > 20 && text.ends_with('.'), "{text:?}");
        }
        assert_eq!(rule["defaultConfiguration"]["level"], "error");
        let severity: f64 = rule["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&severity));
    }
    // The help text is the control's reason, as `explain` gives it.
    assert!(rules[0]["help"]["text"]
        .as_str()
        .unwrap()
        .contains("the kubelet refuses to start the container if it would run as root"));

    let base = run["originalUriBaseIds"]["SRCROOT"]["uri"]
        .as_str()
        .unwrap();
    let root = fs::canonicalize(manifest_dir()).unwrap();
    assert_eq!(base, format!("file://{}/", root.display()));

    // Each result is a finding of `check --format json`, in the same order and place.
    let findings = json_check(manifest_dir(), "fixtures/fleet");
    let findings = findings["findings"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), findings.len());
    assert!(results.len() > 300, "the fleet has many findings");
    for (result, finding) in results.iter().zip(findings) {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(result["ruleId"], rules[index]["id"]);
        assert_eq!(
            rules[index]["properties"]["tags"][2], finding["control"],
            "{result}"
        );
        assert_eq!(result["level"], "error");
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert_eq!(location["artifactLocation"]["uriBaseId"], "SRCROOT");
        assert_eq!(uri, finding["file"].as_str().unwrap());
        assert!(uri.starts_with("fixtures/fleet/services/"), "{uri}");
        assert!(root.join(uri).is_file(), "{uri} is a file under the root");
        assert_eq!(location["region"]["startLine"], finding["line"]);
        assert_eq!(location["region"]["startColumn"], finding["col"]);
        let message = result["message"]["text"].as_str().unwrap();
        assert!(message.contains(finding["name"].as_str().unwrap()));
        assert!(message.ends_with('.'));
        assert!(result["partialFingerprints"]["kubeHardenFinding/v1"]
            .as_str()
            .unwrap()
            .starts_with(uri));
    }
    let fingerprints: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| {
            r["partialFingerprints"]["kubeHardenFinding/v1"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(fingerprints.len(), results.len(), "one alert per finding");
    // The pods left to a person (the privileged agent, the log shipper with a hostPath): their
    // results say that kube-harden does not change them.
    let left: Vec<&str> = results
        .iter()
        .zip(findings)
        .filter(|(_, f)| f["fixable"] == false)
        .map(|(r, _)| r["message"]["text"].as_str().unwrap())
        .collect();
    assert!(
        left.iter().all(|m| m.contains("left to a person")),
        "{left:?}"
    );
    for name in ["DaemonSet/log-shipper ", "DaemonSet/node-exporter "] {
        assert!(left.iter().any(|m| m.starts_with(name)), "{name}: {left:?}");
    }
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true);
}

#[test]
fn sarif_file_is_written_beside_the_text_report_and_uris_are_relative_to_the_repository() {
    // A git work tree: URIs are relative to its root, whatever the current folder.
    let repo = tempfile::tempdir().unwrap();
    fs::create_dir(repo.path().join(".git")).unwrap();
    fs::create_dir_all(repo.path().join("k8s/my app")).unwrap();
    fs::write(
        repo.path().join("k8s/my app/web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
    )
    .unwrap();
    fs::write(
        repo.path().join("k8s/broken.yaml"),
        "kind: Pod\napiVersion: v1\nspec: [\n",
    )
    .unwrap();
    let sarif_path = repo.path().join("out.sarif");
    let out = bin(&repo.path().join("k8s"))
        .args(["check", "."])
        .arg("--sarif-file")
        .arg(&sarif_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a broken file makes it 2");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("Pod/web pod: runAsNonRoot is absent"),
        "{stdout}"
    );
    let log: Value = serde_json::from_str(&fs::read_to_string(&sarif_path).unwrap()).unwrap();
    let run = &log["runs"][0];
    let uris: Vec<&str> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(uris.len(), 8, "5 pod controls, 3 container controls");
    assert!(
        uris.iter().all(|u| *u == "k8s/my%20app/web.yaml"),
        "{uris:?}"
    );
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let note = &invocation["toolExecutionNotifications"][0];
    assert_eq!(note["level"], "error");
    assert_eq!(
        note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "k8s/broken.yaml"
    );
}

#[test]
fn outside_actions_nothing_is_annotated_or_written() {
    let runner = Runner::new();
    let out = bin(manifest_dir())
        .args(["check", "fixtures/fleet"])
        .env("GITHUB_OUTPUT", runner.output())
        .env("GITHUB_STEP_SUMMARY", runner.summary())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("::error"));
    assert!(!runner.output().exists());
    assert!(!runner.summary().exists());
}

#[test]
fn check_under_actions_annotates_each_finding_and_writes_summary_and_outputs() {
    let (total, changed) = fleet_counts();
    let runner = Runner::new();
    fs::write(runner.summary(), "## an earlier step\n\n").unwrap();
    fs::write(runner.output(), "earlier=1\n").unwrap();
    let out = runner
        .command(manifest_dir())
        .args(["check", "fixtures/fleet", "--sarif-file"])
        .arg(runner.dir.path().join("kh.sarif"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let annotations: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::error "))
        .collect();
    assert_eq!(annotations.len(), total, "one per finding");
    let notices: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("::notice "))
        .collect();
    assert_eq!(
        notices,
        [format!("::notice title=kube-harden::{total} annotations: GitHub shows the first 10 of a step. The job summary lists every finding, and uploaded SARIF makes each a code scanning alert.")]
    );
    let first = annotations[0];
    assert!(
        first.starts_with(
            "::error file=fixtures/fleet/services/admin-ui/deployment.yaml,line=20,col=7,title=kube-harden%3A runAsNonRoot::"
        ),
        "{first}"
    );
    assert!(first.contains("Deployment/admin-ui pod: runAsNonRoot is absent"));
    assert!(
        annotations
            .iter()
            .all(|a| !a.contains('\r') && a.matches("::").count() == 2),
        "escaped"
    );

    let outputs = runner.outputs();
    assert_eq!(outputs["earlier"], "1", "appended, not replaced");
    assert_eq!(outputs["findings"], total.to_string());
    assert_eq!(outputs["files-changed"], changed.to_string());
    assert_eq!(outputs["errors"], "0");
    assert_eq!(
        outputs["sarif-file"],
        runner.dir.path().join("kh.sarif").display().to_string()
    );
    let files: Vec<String> = serde_json::from_str(&outputs["files"]).unwrap();
    assert_eq!(files.len(), changed);
    assert!(files.contains(&"fixtures/fleet/services/admin-ui/deployment.yaml".to_string()));
    let raw = fs::read_to_string(runner.output()).unwrap();
    assert!(raw.contains("files<<ghadelimiter_"), "JSON uses a heredoc");
    assert!(runner.dir.path().join("kh.sarif").is_file());

    let summary = fs::read_to_string(runner.summary()).unwrap();
    assert!(summary.starts_with("## an earlier step\n\n## kube-harden check\n"));
    assert!(summary.contains(&format!("**{total} findings**")));
    assert!(summary.contains("| file | workload | where | control | current | wanted |"));
    assert!(summary.contains(
        "| [fixtures/fleet/services/admin-ui/deployment.yaml:20](https://github.example.com/acme/fleet/blob/0123456789abcdef0123456789abcdef01234567/fixtures/fleet/services/admin-ui/deployment.yaml#L20) | Deployment/admin-ui | pod | `runAsNonRoot` | absent | true |"
    ), "{}", &summary[..2000.min(summary.len())]);
    let table_rows = summary
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| file"))
        .count();
    assert_eq!(table_rows, SUMMARY_ROWS, "capped, the rest counted");
    assert!(summary.contains(&format!("and {} more", total - SUMMARY_ROWS)));
    assert!(summary.contains("SARIF written to"));
}

#[test]
fn annotations_escape_commas_colons_and_percent_in_file_names() {
    let repo = tempfile::tempdir().unwrap();
    fs::create_dir(repo.path().join(".git")).unwrap();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  securityContext:\n    runAsNonRoot: true\n    runAsUser: 1000\n    runAsGroup: 1000\n    fsGroup: 1000\n    seccompProfile: {type: RuntimeDefault}\n  containers:\n  - name: app\n    image: nginx\n    securityContext:\n      allowPrivilegeEscalation: false\n      readOnlyRootFilesystem: true\n      capabilities: {drop: [ALL]}\n      runAsUser: 0\n";
    fs::write(repo.path().join("a,b:100%.yaml"), pod).unwrap();
    let runner = Runner::new();
    let out = runner
        .command(repo.path())
        .args(["check", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let annotations: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(
        annotations,
        ["::error file=a%2Cb%3A100%25.yaml,line=19,col=18,title=kube-harden%3A runAsUser::Pod/web container app: runAsUser is 0, the baseline sets 1000: a fixed non-zero uid, so runAsNonRoot holds even for images whose USER is root"]
    );
}

#[test]
fn check_with_json_under_actions_keeps_stdout_json_and_annotates_on_stderr() {
    let runner = Runner::new();
    let out = runner
        .command(manifest_dir())
        .args(["check", "--format", "json", "fixtures/fleet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    let total = json["findings"].as_array().unwrap().len();
    assert!(total > 0);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("::error ")).count(),
        total
    );
    assert_eq!(runner.outputs()["findings"], total.to_string());
    assert!(!runner.outputs().contains_key("sarif-file"));
}

#[test]
fn clean_check_under_actions_says_so() {
    let repo = tempfile::tempdir().unwrap();
    fs::write(
        repo.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let runner = Runner::new();
    let out = runner
        .command(repo.path())
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("::error"));
    let outputs = runner.outputs();
    assert_eq!(outputs["findings"], "0");
    assert_eq!(outputs["files-changed"], "0");
    assert_eq!(outputs["files"], "[]");
    let summary = fs::read_to_string(runner.summary()).unwrap();
    assert!(summary.contains("Every workload meets the securityContext baseline."));
}

#[test]
fn diff_under_actions_writes_the_changed_files_and_the_diff_to_the_summary() {
    let repo = tempfile::tempdir().unwrap();
    fs::create_dir(repo.path().join(".git")).unwrap();
    fs::write(
        repo.path().join("web.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx\n",
    )
    .unwrap();
    fs::write(
        repo.path().join("bad.yaml"),
        "apiVersion: v1\nkind: Pod\n\tspec: 1\n",
    )
    .unwrap();
    let runner = Runner::new();
    let out = runner
        .command(repo.path())
        .args(["diff", "--color", "always"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad.yaml fails");
    let outputs = runner.outputs();
    assert_eq!(outputs["files-changed"], "1");
    assert_eq!(outputs["errors"], "1");
    assert_eq!(outputs["findings"], "8");
    let files: Vec<String> = serde_json::from_str(&outputs["files"]).unwrap();
    assert_eq!(files, ["web.yaml"]);
    let summary = fs::read_to_string(runner.summary()).unwrap();
    assert!(summary.starts_with("## kube-harden diff\n"));
    assert!(summary.contains("- web.yaml\n"));
    assert!(
        summary.contains("```diff\n--- a/web.yaml\n+++ b/web.yaml\n"),
        "{summary}"
    );
    assert!(summary.contains("+    runAsNonRoot: true"), "{summary}");
    assert!(!summary.contains('\u{1b}'), "no colour codes in Markdown");
    assert!(summary.contains("### Files that could not be handled\n\n- bad.yaml:3:"));
}

#[test]
fn a_sarif_file_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let out = bin(dir.path())
        .args(["check", ".", "--sarif-file", "no-such-folder/out.sarif"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no-such-folder/out.sarif: SARIF not written:"),
        "{stderr}"
    );
}

#[test]
fn sarif_is_a_check_format_only() {
    let out = bin(manifest_dir())
        .args(["explain", "--format", "sarif", "fixtures/fleet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap refuses the value");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'sarif'"));
}

#[test]
fn sarif_of_the_helm_charts_points_into_values_files() {
    let out = bin(manifest_dir())
        .args(["check", "--format", "sarif", "fixtures/charts"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a chart's schema refuses the change"
    );
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &log["runs"][0];
    let results = run["results"].as_array().unwrap();
    let findings = json_check(manifest_dir(), "fixtures/charts");
    let findings = findings["findings"].as_array().unwrap();
    assert!(!results.is_empty());
    assert_eq!(results.len(), findings.len());
    let mut fingerprints = std::collections::BTreeSet::new();
    for (result, finding) in results.iter().zip(findings) {
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], finding["file"]);
        assert_eq!(location["region"]["startLine"], finding["line"]);
        fingerprints.insert(result["partialFingerprints"]["kubeHardenFinding/v1"].to_string());
    }
    assert_eq!(fingerprints.len(), results.len());
    assert!(results.iter().any(
        |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("values.yaml")
    ));
    let invocation = &run["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    assert!(
        invocation["toolExecutionNotifications"][0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("values.schema.json")
    );
}
