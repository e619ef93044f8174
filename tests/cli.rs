//! The command line as a user meets it: the bundled fleet, exit codes, error lines, colour,
//! discovery rules and file safety. Each test runs the real binary on a temporary copy.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod common;
use common::copy_dir;

fn fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet")
}

fn kube_harden(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::cargo_bin("kube-harden")
        .unwrap()
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn fleet_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fleet(), &dir.path().join("fleet"));
    dir
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n";

#[test]
fn diff_of_the_fleet_matches_the_golden_output() {
    let out = kube_harden(
        &["diff", "fixtures/fleet"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!("fleet_diff_stdout", text(&out.stdout));
    insta::assert_snapshot!("fleet_diff_stderr", text(&out.stderr));
}

#[test]
fn fix_hardens_every_fleet_workload_except_the_three_left_to_a_person() {
    let dir = fleet_copy();
    let out = kube_harden(&["fix", "fleet"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("38 changed"), "{stderr}");
    assert!(
        stderr.contains("node-exporter left unchanged: container `node-exporter` is privileged"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pricing-engine-win left unchanged: Windows pod"),
        "{stderr}"
    );
    assert!(
        stderr.contains("DaemonSet/log-shipper left unchanged: mounts hostPath /var/log: "),
        "{stderr}"
    );
    assert_eq!(stderr.matches(" left unchanged: ").count(), 3, "{stderr}");

    // Outside securityContexts, each file changed by exactly the writable /tmp (independent
    // oracle), and the Java job that writes to /tmp without a mount got one.
    for file in yaml_files(&fleet()) {
        let rel = file.strip_prefix(fleet()).unwrap();
        if rel.ends_with("debug.generated.yaml") {
            continue;
        }
        let load = |t: &str| {
            kube_harden::verify::load_all(t.trim_start_matches('\u{feff}')).unwrap_or_default()
        };
        let before = load(&fs::read_to_string(&file).unwrap());
        let after = load(&fs::read_to_string(dir.path().join("fleet").join(rel)).unwrap());
        assert_eq!(
            common::strip_security_contexts(after),
            common::strip_security_contexts(common::with_tmp_additions(before)),
            "{}",
            rel.display()
        );
    }
    let invoice =
        fs::read_to_string(dir.path().join("fleet/services/invoice-cron/cronjob.yaml")).unwrap();
    assert!(
        invoice.contains("            - name: tmp\n              mountPath: /tmp\n")
            && invoice.contains("          - name: tmp\n            emptyDir: {}\n"),
        "{invoice}"
    );

    let mut typed = 0;
    let mut untyped = Vec::new();
    for file in yaml_files(&dir.path().join("fleet")) {
        if file.ends_with("debug.generated.yaml") {
            continue; // git-ignored: the tool never sees it
        }
        let after = fs::read_to_string(&file).unwrap();
        let docs =
            kube_harden::verify::load_all(after.trim_start_matches('\u{feff}')).unwrap_or_default();
        for doc in &docs {
            let Some(specs) = common::typed_pod_specs(doc) else {
                if !common::pod_specs_mut(&mut doc.clone()).is_empty() {
                    untyped.push(file.strip_prefix(dir.path()).unwrap().display().to_string());
                }
                continue;
            };
            for spec in specs {
                let gaps = common::contract_gaps(&spec);
                let name = file.to_string_lossy();
                let left_alone = name.contains("node-exporter")
                    || name.contains("pricing-engine-win")
                    || name.contains("log-shipper");
                assert_eq!(common::left_alone(&spec), left_alone, "{}", file.display());
                assert!(common::tmp_gaps(&spec).is_empty(), "{}", file.display());
                if name.contains("catalog-import") {
                    // Opted out of one control by its kube-harden.io/skip annotation.
                    assert_eq!(gaps, ["container readOnlyRootFilesystem is not true"]);
                } else {
                    assert_eq!(gaps.is_empty(), !left_alone, "{}: {gaps:?}", file.display());
                }
                typed += 1;
            }
        }
    }
    // `defaultMode: 0400` is an octal to Kubernetes (YAML 1.1) but a string to yaml_serde, so
    // that one workload cannot be typed, before the fix as after it.
    assert_eq!(untyped, vec!["fleet/services/auth/deployment.yaml"]);
    assert_eq!(typed, 40, "every other fleet workload is typed and checked");

    let again = kube_harden(&["fix", "fleet"], dir.path());
    assert!(
        text(&again.stderr).contains(" 0 changed,"),
        "second run: {}",
        text(&again.stderr)
    );
    let check = kube_harden(&["check", "fleet", "--format", "json"], dir.path());
    assert_eq!(
        check.status.code(),
        Some(1),
        "the privileged agent and the hostPath log shipper still fall short"
    );
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let mut names: Vec<&str> = findings
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.dedup();
    assert_eq!(names, ["log-shipper", "node-exporter"], "{findings:?}");
    assert!(
        findings.iter().all(|f| f["fixable"] == false),
        "{findings:?}"
    );
    let left: Vec<&str> = report["left_unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(
        left.iter().any(|l| l.contains("DaemonSet/log-shipper left unchanged: mounts hostPath /var/log: a node agent's access to the host, so a person must decide")),
        "{left:?}"
    );
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn gitignored_files_are_not_seen() {
    let out = kube_harden(
        &["diff", "fixtures/fleet"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(!text(&out.stdout).contains("debug.generated.yaml"));
    assert!(
        fleet()
            .join("services/orders/debug.generated.yaml")
            .is_file(),
        "the ignored file exists"
    );
}

#[test]
fn fix_dry_run_prints_the_diff_and_writes_nothing() {
    let dir = fleet_copy();
    let before: Vec<Vec<u8>> = yaml_files(&dir.path().join("fleet"))
        .iter()
        .map(|f| fs::read(f).unwrap())
        .collect();
    let dry = kube_harden(&["fix", "--dry-run", "fleet"], dir.path());
    let diff = kube_harden(&["diff", "fleet"], dir.path());
    assert_eq!(dry.stdout, diff.stdout);
    assert!(text(&dry.stdout).contains("+      securityContext:"));
    let after: Vec<Vec<u8>> = yaml_files(&dir.path().join("fleet"))
        .iter()
        .map(|f| fs::read(f).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn check_lists_shortfalls_and_exits_1_then_0_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.yaml"), DEPLOYMENT).unwrap();
    let out = kube_harden(&["check", "--format", "json", "."], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(
        findings.len(),
        8,
        "5 pod controls and 3 container controls: {findings:?}"
    );
    let first = &findings[0];
    assert_eq!(first["file"], "./web.yaml");
    assert_eq!(first["kind"], "Deployment");
    assert_eq!(first["name"], "web");
    assert_eq!(first["control"], "runAsNonRoot");
    assert_eq!(first["current"], "absent");
    assert_eq!(findings[5]["container"], "app");

    let text_out = kube_harden(&["check", "."], dir.path());
    assert!(
        text(&text_out.stdout).contains(
            "./web.yaml:9:9: Deployment/web container app: allowPrivilegeEscalation is absent"
        ),
        "{}",
        text(&text_out.stdout)
    );

    assert_eq!(
        kube_harden(&["fix", "."], dir.path()).status.code(),
        Some(0)
    );
    let after = kube_harden(&["check", "."], dir.path());
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stdout));
    assert!(after.stdout.is_empty());
}

#[test]
fn a_broken_file_is_reported_left_alone_and_the_rest_still_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n";
    fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    fs::write(dir.path().join("good.yaml"), DEPLOYMENT).unwrap();
    let out = kube_harden(&["fix", "."], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("./broken.yaml:"))
        .expect("an error line names the file");
    let parts: Vec<&str> = line.splitn(4, ':').collect();
    assert!(
        parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok(),
        "path:line:col: {line}"
    );
    assert!(line.contains("YAML syntax error"), "{line}");
    assert_eq!(
        fs::read_to_string(dir.path().join("broken.yaml")).unwrap(),
        broken
    );
    assert!(fs::read_to_string(dir.path().join("good.yaml"))
        .unwrap()
        .contains("runAsNonRoot: true"));
    assert!(stderr.contains("1 errors"), "{stderr}");
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.yaml"), DEPLOYMENT).unwrap();
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = Command::cargo_bin("kube-harden").unwrap();
        cmd.args(args)
            .current_dir(dir.path())
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        text(&cmd.output().unwrap().stdout)
    };
    assert!(run(&["diff", "--color", "always", "."], false).contains("\u{1b}["));
    assert!(!run(&["diff", "--color", "never", "."], false).contains("\u{1b}["));
    assert!(
        !run(&["diff", "."], false).contains("\u{1b}["),
        "auto: not a terminal"
    );
    assert!(!run(&["diff", "."], true).contains("\u{1b}["));
}

#[test]
fn baseline_ids_come_from_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.yaml"), DEPLOYMENT).unwrap();
    let out = kube_harden(
        &[
            "fix",
            "--uid",
            "10001",
            "--gid",
            "10002",
            "--fs-group",
            "10003",
            ".",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let after = fs::read_to_string(dir.path().join("web.yaml")).unwrap();
    assert!(
        after.contains("runAsUser: 10001\n        runAsGroup: 10002\n        fsGroup: 10003\n"),
        "{after}"
    );
    let zero = kube_harden(&["fix", "--uid", "0", "."], dir.path());
    assert_eq!(
        zero.status.code(),
        Some(2),
        "uid 0 is refused by argument parsing"
    );
}

#[test]
fn unwired_helm_charts_kustomizations_and_templates_are_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart");
    fs::create_dir_all(chart.join("templates")).unwrap();
    fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    )
    .unwrap();
    fs::write(chart.join("values.yaml"), "securityContext: {}\n").unwrap();
    fs::write(chart.join("templates/deployment.yaml"), DEPLOYMENT).unwrap();
    fs::write(
        dir.path().join("kustomization.yaml"),
        "resources: [web.yaml]\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("tpl.yaml"),
        format!("{DEPLOYMENT}        env: {{{{ .Values.env }}}}\n"),
    )
    .unwrap();
    fs::write(dir.path().join("config.yaml"), "log_level: debug\n").unwrap();
    let out = kube_harden(&["fix", "."], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    for reason in [
        "Helm chart template",
        "Helm chart whose templates take no securityContext from values",
        "has no securityContext; add `securityContext: {{- toYaml .Values.securityContext",
        "Helm chart file",
        "kustomization.yaml:1: risk: resource `web.yaml` is not there",
        "Helm template syntax",
        "not a Kubernetes object",
    ] {
        assert!(stderr.contains(reason), "{reason}: {stderr}");
    }
    assert!(stderr.contains(" 0 changed,"), "{stderr}");
    assert_eq!(
        fs::read_to_string(chart.join("templates/deployment.yaml")).unwrap(),
        DEPLOYMENT
    );
    assert_eq!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        "securityContext: {}\n",
        "values the templates ignore are not edited"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_followed_and_permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("outside.yaml");
    fs::write(&target, DEPLOYMENT).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("link.yaml")).unwrap();
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    let own = dir.path().join("own.yaml");
    fs::write(&own, DEPLOYMENT).unwrap();
    fs::set_permissions(&own, fs::Permissions::from_mode(0o640)).unwrap();
    let out = kube_harden(&["fix", "."], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        DEPLOYMENT,
        "the file outside the root is untouched"
    );
    assert!(fs::symlink_metadata(dir.path().join("link.yaml"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&own)
        .unwrap()
        .contains("runAsNonRoot: true"));
    assert_eq!(
        fs::metadata(&own).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("kube-harden"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files are left behind");
}

#[test]
fn fix_dockerfiles_adds_user_to_a_final_stage_that_runs_as_root() {
    let dir = fleet_copy();
    let dockerfile = dir.path().join("fleet/services/invoice-cron/Dockerfile");
    let before = fs::read_to_string(&dockerfile).unwrap();
    let plain = kube_harden(&["fix", "fleet"], dir.path());
    assert!(
        text(&plain.stderr).contains("invoice-cron/Dockerfile runs as root"),
        "{}",
        text(&plain.stderr)
    );
    assert_eq!(
        fs::read_to_string(&dockerfile).unwrap(),
        before,
        "only with --fix-dockerfiles"
    );
    let out = kube_harden(&["fix", "--fix-dockerfiles", "fleet"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr)
        .contains("invoice-cron/Dockerfile: added `USER 1000:1000` to the final stage"));
    assert_eq!(
        fs::read_to_string(&dockerfile).unwrap(),
        format!("{before}USER 1000:1000\n")
    );
    let again = kube_harden(&["fix", "--fix-dockerfiles", "fleet"], dir.path());
    assert!(
        !text(&again.stderr).contains("Dockerfile"),
        "nothing left to say: {}",
        text(&again.stderr)
    );
}

/// The diff is a real patch: `git apply` of `diff`'s output gives exactly what `fix` writes,
/// CRLF file and unterminated last lines included.
#[test]
fn the_diff_applies_with_git_apply_and_equals_fix() {
    let git = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let patched = fleet_copy();
    git(patched.path(), &["init", "-q", "."]);
    let diff = kube_harden(&["diff", "fleet"], patched.path());
    fs::write(patched.path().join("changes.diff"), &diff.stdout).unwrap();
    git(patched.path(), &["apply", "changes.diff"]);
    let fixed = fleet_copy();
    assert_eq!(
        kube_harden(&["fix", "fleet"], fixed.path()).status.code(),
        Some(0)
    );
    let files = yaml_files(&fixed.path().join("fleet"));
    assert!(files.len() > 40);
    for file in files {
        let rel = file.strip_prefix(fixed.path()).unwrap();
        assert_eq!(
            fs::read(patched.path().join(rel)).unwrap(),
            fs::read(&file).unwrap(),
            "{}",
            rel.display()
        );
    }
}
