//! Guardrails and opt-outs, one golden case each: every `fixtures/guardrails/*.yaml` is run
//! through `diff` and `explain` (with the flags on its `# args:` line) and both outputs are
//! compared with the insta snapshots in `tests/snapshots/`. A second `fix` changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod common;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/guardrails");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn args_of(text: &str) -> Vec<String> {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("# args:")
        .map(|a| a.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

fn run(command: &str, args: &[String], dir: &Path) -> (i32, String) {
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .arg(command)
        .args(args)
        .arg("case.yaml")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

#[test]
fn guardrail_cases_match_their_golden_output() {
    let cases = cases();
    assert!(cases.len() >= 8, "{} cases", cases.len());
    for case in cases {
        let name = case.file_stem().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(&case).unwrap();
        let args = args_of(&text);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("case.yaml"), &text).unwrap();
        let (diff_code, diff) = run("diff", &args, dir.path());
        let (explain_code, explain) = run("explain", &args, dir.path());
        insta::assert_snapshot!(format!("guardrail_{name}"), format!("$ kube-harden diff {args:?} (exit {diff_code})\n{diff}\n$ kube-harden explain {args:?} (exit {explain_code})\n{explain}"));
        let (fix_code, _) = run("fix", &args, dir.path());
        let (_, again) = run("fix", &args, dir.path());
        if fix_code == 0 {
            assert!(
                again.contains(" 0 changed,"),
                "{name}: a second fix changed something: {again}"
            );
        }
    }
}

#[test]
fn an_unknown_control_in_the_annotation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    kube-harden.io/skip: runAsUsr\nspec:\n  containers:\n  - name: a\n    image: x\n";
    fs::write(dir.path().join("case.yaml"), text).unwrap();
    let (code, out) = run("fix", &[], dir.path());
    assert_eq!(code, 2);
    assert!(
        out.contains("case.yaml:6:26: `kube-harden.io/skip` names an unknown control `runAsUsr`"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("case.yaml")).unwrap(),
        text
    );
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: billing\n  namespace: payments\nspec:\n  containers:\n  - name: app\n    image: x\n  - name: sidecar\n    image: y\n";

/// A repository with a config file, as a user has it (a `.git` folder marks its root).
fn repo_with_config(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::create_dir_all(dir.path().join("apps/legacy")).unwrap();
    fs::write(dir.path().join(".kube-harden.yaml"), config).unwrap();
    fs::write(dir.path().join("apps/billing.yaml"), POD).unwrap();
    fs::write(dir.path().join("apps/legacy/old.yaml"), POD).unwrap();
    dir
}

#[test]
fn the_config_file_sets_the_baseline_switches_exemptions_and_excludes() {
    let dir = repo_with_config(
        "baseline:\n  runAsUser: 10001\ncontrols:\n  fsGroup: false\nexclude:\n  - \"apps/legacy/**\"\nexemptions:\n  - workload: Pod/billing\n    namespace: payments\n    container: sidecar\n    controls: [readOnlyRootFilesystem]\n    reason: \"writes its cache\"\n",
    );
    let out = common::run_in(dir.path(), &["fix", "apps"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("1 excluded by the configuration"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("apps/legacy/old.yaml")).unwrap(),
        POD,
        "excluded"
    );
    let after = fs::read_to_string(dir.path().join("apps/billing.yaml")).unwrap();
    assert!(
        after.contains("runAsUser: 10001\n    runAsGroup: 1000\n    seccompProfile:"),
        "fsGroup is off:\n{after}"
    );
    assert!(after.contains("  - name: sidecar\n    image: y\n    securityContext:\n      allowPrivilegeEscalation: false\n      capabilities:"), "the sidecar is exempt from readOnlyRootFilesystem:\n{after}");
    assert!(stderr.contains("Pod/billing container sidecar: exempted: not applied: readOnlyRootFilesystem (exemption: writes its cache)"), "{stderr}");
    let cli = common::run_in(dir.path(), &["diff", "--uid", "20000", "apps"]);
    assert!(
        cli.stdout.is_empty(),
        "already hardened: the flag only matters where a uid is written"
    );
}

#[test]
fn a_bad_config_file_stops_the_run_with_its_position() {
    let dir = repo_with_config("baseline:\n  runAsUser: 0\n");
    let out = common::run_in(dir.path(), &["fix", "apps"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(".kube-harden.yaml:2:14:"), "{stderr}");
    assert_eq!(
        fs::read_to_string(dir.path().join("apps/billing.yaml")).unwrap(),
        POD,
        "nothing is written"
    );
}

/// A repository with `images/billing-api/Dockerfile` and, in `deploy/`, a pod whose image is
/// `ghcr.io/acme/billing-api:1.2`.
fn repo_with_image_dockerfile(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join(".git")).unwrap();
    fs::create_dir_all(dir.path().join("images/billing-api")).unwrap();
    fs::create_dir_all(dir.path().join("deploy")).unwrap();
    fs::write(dir.path().join("images/billing-api/Dockerfile"), dockerfile).unwrap();
    let pod = POD.replace("image: x", "image: ghcr.io/acme/billing-api:1.2");
    fs::write(dir.path().join("deploy/billing.yaml"), &pod).unwrap();
    dir
}

#[test]
fn a_dockerfile_elsewhere_in_the_repository_is_matched_by_image_name() {
    let dockerfile = "FROM alpine:3.20\nCOPY app /app\n";
    let dir = repo_with_image_dockerfile(dockerfile);
    let out = common::run_in(dir.path(), &["fix", "--fix-dockerfiles", "deploy"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("images/billing-api/Dockerfile runs as root"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("images/billing-api/Dockerfile")).unwrap(),
        format!("{dockerfile}USER 1000:1000\n")
    );
}

/// Walking the repository's root lists its Dockerfiles in the same walk; walking a folder of it
/// lists them in a walk of their own. Both name the image's Dockerfile the same way.
#[test]
fn the_dockerfile_matched_by_image_is_the_same_whether_or_not_the_walk_covers_the_repository() {
    let dir = repo_with_image_dockerfile("FROM alpine:3.20\n");
    let dockerfile_named = |walked: &str| {
        let out = common::run_in(dir.path(), &["diff", walked]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let named = stdout
            .split("the image built from ")
            .nth(1)
            .and_then(|rest| rest.split(" runs as root").next())
            .map(str::to_string);
        named.unwrap_or_else(|| panic!("no Dockerfile note walking {walked}: {stdout}"))
    };
    let whole = dockerfile_named(".");
    assert!(whole.ends_with("images/billing-api/Dockerfile"), "{whole}");
    assert_eq!(whole, dockerfile_named("deploy"));
}

#[test]
fn the_config_turns_the_writable_tmp_off_and_the_flag_turns_it_back_on() {
    let dir = repo_with_config("writableTmp: false\n");
    let off = common::run_in(dir.path(), &["diff", "apps/billing.yaml"]);
    let stdout = String::from_utf8_lossy(&off.stdout);
    assert_eq!(off.status.code(), Some(0));
    assert!(
        stdout.contains("+      readOnlyRootFilesystem: true"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("volume") && !stdout.contains("/tmp"),
        "the config turns it off:\n{stdout}"
    );
    let on = common::run_in(dir.path(), &["diff", "--writable-tmp", "apps/billing.yaml"]);
    let stdout = String::from_utf8_lossy(&on.stdout);
    assert!(
        stdout.contains(
            "+    volumeMounts:\n+    - name: tmp\n+      mountPath: /tmp\n   - name: sidecar\n"
        ) && stdout.contains("+  volumes:\n+  - name: tmp\n+    emptyDir: {}\n"),
        "--writable-tmp wins over the config:\n{stdout}"
    );
    // Without a config it is on, and `--no-writable-tmp` turns it off.
    let dir = repo_with_config("");
    let default = common::run_in(dir.path(), &["diff", "apps/billing.yaml"]);
    assert!(String::from_utf8_lossy(&default.stdout).contains("+    emptyDir: {}\n"));
    let flag = common::run_in(
        dir.path(),
        &["diff", "--no-writable-tmp", "apps/billing.yaml"],
    );
    let stdout = String::from_utf8_lossy(&flag.stdout);
    assert!(stdout.contains("+      readOnlyRootFilesystem: true") && !stdout.contains("emptyDir"));
}

const HOST_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: node-probe\nspec:\n  hostNetwork: true\n  containers:\n  - name: probe\n    image: x\n";

#[test]
fn host_access_pods_are_left_alone_unless_the_config_or_the_flag_opts_in() {
    for (config, args) in [
        ("", &["fix", "apps/probe.yaml"][..]),
        (
            "hardenHostAccessPods: false\n",
            &["fix", "apps/probe.yaml"][..],
        ),
    ] {
        let dir = repo_with_config(config);
        fs::write(dir.path().join("apps/probe.yaml"), HOST_POD).unwrap();
        let out = common::run_in(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("apps/probe.yaml:1: Pod/node-probe left unchanged: uses the node's network (hostNetwork: true): a node agent's access to the host, so a person must decide"), "{stderr}");
        assert_eq!(
            fs::read_to_string(dir.path().join("apps/probe.yaml")).unwrap(),
            HOST_POD
        );
        let check = common::run_in(
            dir.path(),
            &["check", "--format", "json", "apps/probe.yaml"],
        );
        assert_eq!(
            check.status.code(),
            Some(1),
            "its shortfalls are still listed"
        );
        let json: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
        let findings = json["findings"].as_array().unwrap();
        assert!(!findings.is_empty() && findings.iter().all(|f| f["fixable"] == false));
        assert!(json["left_unchanged"][0]
            .as_str()
            .unwrap()
            .contains("(hostNetwork: true)"));
    }
    for (config, args) in [
        (
            "hardenHostAccessPods: true\n",
            &["fix", "apps/probe.yaml"][..],
        ),
        (
            "",
            &["fix", "--harden-host-access-pods", "apps/probe.yaml"][..],
        ),
        (
            "hardenHostAccessPods: false\n",
            &["fix", "--harden-host-access-pods", "apps/probe.yaml"][..],
        ),
    ] {
        let dir = repo_with_config(config);
        fs::write(dir.path().join("apps/probe.yaml"), HOST_POD).unwrap();
        let out = common::run_in(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            !stderr.contains("left unchanged"),
            "{config:?} {args:?}: {stderr}"
        );
        assert!(
            stderr.contains("risk: `hostNetwork: true` shares the node's network"),
            "{stderr}"
        );
        let after = fs::read_to_string(dir.path().join("apps/probe.yaml")).unwrap();
        assert!(
            after.contains("runAsNonRoot: true") && after.contains("mountPath: /tmp"),
            "{config:?} {args:?}:\n{after}"
        );
    }
}

const ADDS_CAPABILITIES: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: vpn\nspec:\n  containers:\n  - name: tunnel\n    image: x\n    securityContext:\n      capabilities:\n        add: [NET_BIND_SERVICE, NET_ADMIN]\n  - name: web\n    image: y\n    securityContext:\n      capabilities:\n        add: [NET_BIND_SERVICE]\n";

/// `capabilities.add` is a control of its own in `check` (text, JSON, SARIF rule KH1009): never
/// fixable, still reported after `fix` (which keeps the list), silenced by the config, an
/// exemption or the annotation; NET_BIND_SERVICE alone is never reported.
#[test]
fn added_capabilities_that_restricted_refuses_are_a_finding_of_their_own() {
    let dir = repo_with_config("");
    fs::write(dir.path().join("apps/vpn.yaml"), ADDS_CAPABILITIES).unwrap();

    let json = common::run_in(dir.path(), &["check", "--format", "json", "apps/vpn.yaml"]);
    assert_eq!(json.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let added: Vec<&serde_json::Value> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["control"] == "capabilities.add")
        .collect();
    assert_eq!(added.len(), 1, "only `tunnel`: {added:?}");
    let f = added[0];
    assert_eq!(f["container"], "tunnel");
    assert_eq!(f["current"], "[NET_BIND_SERVICE, NET_ADMIN]");
    assert_eq!((f["line"].as_u64(), f["col"].as_u64()), (Some(11), Some(9)));
    assert_eq!(f["fixable"], false, "fix keeps the list");
    let risks: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "risk")
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(risks.len(), 1, "{risks:?}");
    assert!(
        risks[0].starts_with("adds NET_ADMIN: Pod Security admission at the `restricted` level admits no added capability but NET_BIND_SERVICE"),
        "{}",
        risks[0]
    );

    let text = common::run_in(dir.path(), &["check", "apps/vpn.yaml"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("apps/vpn.yaml:11:9: Pod/vpn container tunnel: capabilities.add is [NET_BIND_SERVICE, NET_ADMIN] (kept: a person decides)\n"), "{stdout}");
    assert!(
        stdout.contains("apps/vpn.yaml:11: Pod/vpn container tunnel: risk: adds NET_ADMIN:"),
        "{stdout}"
    );

    let sarif = common::run_in(dir.path(), &["check", "--format", "sarif", "apps/vpn.yaml"]);
    let sarif: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let run = &sarif["runs"][0];
    let rule = &run["tool"]["driver"]["rules"][8];
    assert_eq!(rule["id"], "KH1009");
    assert_eq!(rule["name"], "CapabilitiesAdd");
    assert!(rule["help"]["text"]
        .as_str()
        .unwrap()
        .contains("`kube-harden fix` keeps the list as written"));
    let results: Vec<&serde_json::Value> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == "KH1009")
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleIndex"], 8);
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        11
    );
    assert!(results[0]["message"]["text"]
        .as_str()
        .unwrap()
        .contains("'capabilities.add' is [NET_BIND_SERVICE, NET_ADMIN]; Pod Security \"restricted\" admits [NET_BIND_SERVICE]. kube-harden keeps the list as written"));

    // `fix` hardens the pod and keeps the list: `check` still names it, and nothing else.
    let fix = common::run_in(dir.path(), &["fix", "apps/vpn.yaml"]);
    assert_eq!(fix.status.code(), Some(0));
    let after = fs::read_to_string(dir.path().join("apps/vpn.yaml")).unwrap();
    assert!(after.contains("        add: [NET_BIND_SERVICE, NET_ADMIN]\n        drop:\n"));
    let again = common::run_in(dir.path(), &["check", "--format", "json", "apps/vpn.yaml"]);
    assert_eq!(again.status.code(), Some(1));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let controls: Vec<&str> = again["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["control"].as_str().unwrap())
        .collect();
    assert_eq!(controls, ["capabilities.add"]);

    // Turned off in the config, exempted, or skipped by annotation: no finding, no note.
    let annotated = ADDS_CAPABILITIES.replace(
        "  name: vpn\n",
        "  name: vpn\n  annotations:\n    kube-harden.io/skip: capabilitiesAdd\n",
    );
    for (config, manifest) in [
        ("controls:\n  capabilitiesAdd: false\n", ADDS_CAPABILITIES),
        (
            "exemptions:\n  - workload: Pod/vpn\n    container: tunnel\n    controls: [capabilitiesAdd]\n    reason: \"a VPN\"\n",
            ADDS_CAPABILITIES,
        ),
        ("", annotated.as_str()),
    ] {
        let dir = repo_with_config(config);
        fs::write(dir.path().join("apps/vpn.yaml"), manifest).unwrap();
        let out = common::run_in(dir.path(), &["check", "--format", "json", "apps/vpn.yaml"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = json.to_string();
        assert!(
            !text.contains("capabilities.add") && !text.contains("adds NET_ADMIN"),
            "{config:?}: {text}"
        );
        assert!(
            text.contains("capabilities.drop"),
            "the rest is still checked: {text}"
        );
    }
}
