//! The composite action (`action.yml`) run as a runner would run it: each step in order, its
//! `if:` and its `env:` expressions evaluated from the inputs (defaults included), each `run:`
//! written to a file and run with `bash --noprofile --norc -eo pipefail`, `GITHUB_OUTPUT` a fresh
//! file per step whose outputs later steps and the action's outputs read, `GITHUB_STEP_SUMMARY`
//! one file. The binary is "released" as a checksummed archive on a `file://` releases URL, so
//! the download path runs offline; `uses:` steps (the cargo cache) are recorded, not run.
//!
//! Mode `pr` runs twice: with a stand-in binary that records its command line (every flag the
//! action passes, and the token and repository in the environment), and for real against the
//! loopback git remote and the stateful fake GitHub of `common/`, checking the pull requests,
//! the outputs and the step summary.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::fake_github::{FakeGitHub, TOKEN};
use common::git_remote::{git, repository_with, Daemon};
use common::parse_outputs;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn action() -> Value {
    yaml_serde::from_str(&fs::read_to_string(repo().join("action.yml")).unwrap()).unwrap()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn mapping(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Mapping(m) => m.iter().map(|(k, v)| (text(k), v)).collect(),
        Value::Null => vec![],
        other => panic!("not a mapping: {other:?}"),
    }
}

/// What a run of the action left behind.
struct Run {
    /// The step ids (or names) that ran, in order, and how each ended.
    steps: Vec<(String, bool)>,
    /// The `uses:` steps that would have run.
    used: Vec<String>,
    outputs: BTreeMap<String, String>,
    summary: String,
    log: String,
    success: bool,
}

/// A job around the action: a workspace, the runner's folders and variables.
struct Job {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    /// `$GITHUB_WORKSPACE`: the checkout.
    workspace: PathBuf,
}

impl Job {
    fn new() -> Job {
        let dir = tempfile::tempdir().unwrap();
        for d in ["workspace", "temp", "files"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/fleet"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "https://api.github.com"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_ARCH", "X64"),
            ("NO_COLOR", "1"),
        ] {
            env.insert(k.to_string(), v.to_string());
        }
        for k in ["PATH", "HOME"] {
            env.insert(k.to_string(), std::env::var(k).unwrap_or_default());
        }
        let p = |s: &str| dir.path().join(s).display().to_string();
        env.insert("GITHUB_WORKSPACE".into(), p("workspace"));
        env.insert("RUNNER_TEMP".into(), p("temp"));
        env.insert("GITHUB_STEP_SUMMARY".into(), p("files/summary.md"));
        let workspace = dir.path().join("workspace");
        Job {
            dir,
            env,
            workspace,
        }
    }

    fn workspace(&self) -> PathBuf {
        self.workspace.clone()
    }

    /// The checkout is `work`.
    fn set_workspace(&mut self, work: PathBuf) {
        self.env
            .insert("GITHUB_WORKSPACE".into(), work.display().to_string());
        self.workspace = work;
    }

    /// Puts `binary` in a release archive on a `file://` releases URL; returns its SHA-256.
    fn release(&mut self, version: &str, binary: &Path) -> String {
        let releases = self.dir.path().join("releases");
        let folder = releases.join(format!("v{version}"));
        let staging = self.dir.path().join("staging");
        fs::create_dir_all(&folder).unwrap();
        fs::create_dir_all(&staging).unwrap();
        fs::copy(binary, staging.join("kube-harden")).unwrap();
        let archive = folder.join(format!(
            "kube-harden-v{version}-x86_64-unknown-linux-musl.tar.gz"
        ));
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(&staging)
            .arg("kube-harden")
            .status()
            .unwrap();
        assert!(status.success());
        self.env.insert(
            "KUBE_HARDEN_RELEASES_URL".into(),
            format!("file://{}", releases.display()),
        );
        let out = Command::new("sha256sum").arg(&archive).output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    /// The outputs that the step with this id wrote in the last run.
    fn step_outputs(&self, id: &str) -> BTreeMap<String, String> {
        let Value::Sequence(steps) = &action()["runs"]["steps"] else {
            panic!("no steps")
        };
        let index = steps
            .iter()
            .position(|s| s.get("id").map(text).as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no step {id}"));
        let file = self.dir.path().join(format!("files/output-{index}"));
        parse_outputs(&fs::read_to_string(file).unwrap())
    }

    /// Runs the action's steps with these inputs (the others take their defaults).
    fn run(&self, inputs: &[(&str, &str)]) -> Run {
        let action = action();
        let mut input_values = BTreeMap::new();
        for (name, spec) in mapping(&action["inputs"]) {
            let default = spec.get("default").map(text).unwrap_or_default();
            input_values.insert(name, default);
        }
        for (name, value) in inputs {
            assert!(
                input_values.contains_key(*name),
                "action.yml has no input {name}"
            );
            input_values.insert(name.to_string(), value.to_string());
        }
        // Defaults may be expressions (`${{ github.token }}`).
        let ctx = |steps: &BTreeMap<String, BTreeMap<String, String>>,
                   inputs: &BTreeMap<String, String>,
                   expr: &str|
         -> String { self.evaluate(expr, steps, inputs) };
        let empty = BTreeMap::new();
        let resolved: BTreeMap<String, String> = input_values
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, &|e| ctx(&empty, &input_values, e))))
            .collect();

        let mut steps_out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut run = Run {
            steps: vec![],
            used: vec![],
            outputs: BTreeMap::new(),
            summary: String::new(),
            log: String::new(),
            success: true,
        };
        let list = match &action["runs"]["steps"] {
            Value::Sequence(s) => s.clone(),
            other => panic!("steps: {other:?}"),
        };
        assert_eq!(text(&action["runs"]["using"]), "composite");
        for (index, step) in list.iter().enumerate() {
            let id = step
                .get("id")
                .map(text)
                .unwrap_or_else(|| format!("step{index}"));
            if let Some(cond) = step.get("if") {
                if !self.condition(&text(cond), &steps_out, &resolved) {
                    continue;
                }
            }
            if let Some(uses) = step.get("uses") {
                run.used.push(text(uses));
                continue;
            }
            let script = text(&step["run"]);
            let output_file = self.dir.path().join(format!("files/output-{index}"));
            fs::write(&output_file, "").unwrap();
            let mut cmd = Command::new("bash");
            let script_file = self.dir.path().join(format!("files/step-{index}.sh"));
            fs::write(&script_file, &script).unwrap();
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script_file)
                .env_clear()
                .envs(&self.env)
                .env("GITHUB_OUTPUT", &output_file)
                .env("GITHUB_ACTION_PATH", repo());
            for (name, value) in step.get("env").map(mapping).unwrap_or_default() {
                let value = substitute(&text(value), &|e| ctx(&steps_out, &resolved, e));
                cmd.env(name, value);
            }
            let cwd = step
                .get("working-directory")
                .map(|w| substitute(&text(w), &|e| ctx(&steps_out, &resolved, e)))
                .unwrap_or_else(|| ".".into());
            cmd.current_dir(self.workspace().join(cwd));
            let out = cmd.output().unwrap();
            run.log.push_str(&String::from_utf8_lossy(&out.stdout));
            run.log.push_str(&String::from_utf8_lossy(&out.stderr));
            steps_out.insert(
                id.clone(),
                parse_outputs(&fs::read_to_string(&output_file).unwrap()),
            );
            run.steps.push((id, out.status.success()));
            if !out.status.success() {
                run.success = false;
                break;
            }
        }
        if run.success {
            for (name, spec) in mapping(&action["outputs"]) {
                let value = substitute(&text(&spec["value"]), &|e| ctx(&steps_out, &resolved, e));
                run.outputs.insert(name, value);
            }
        }
        run.summary = fs::read_to_string(&self.env["GITHUB_STEP_SUMMARY"]).unwrap_or_default();
        run
    }

    /// The expressions action.yml uses; anything else fails the test, so a new one is noticed.
    fn evaluate(
        &self,
        expr: &str,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
        inputs: &BTreeMap<String, String>,
    ) -> String {
        let parts: Vec<&str> = expr.trim().split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => inputs
                .get(*name)
                .unwrap_or_else(|| panic!("no input {name}"))
                .clone(),
            ["github", "token"] => "ghs_default_job_token".into(),
            ["github", "action_repository"] => "kube-harden/kube-harden".into(),
            ["github", "repository"] => self.env["GITHUB_REPOSITORY"].clone(),
            ["runner", "temp"] => self.env["RUNNER_TEMP"].clone(),
            ["runner", "os"] => self.env["RUNNER_OS"].clone(),
            ["runner", "arch"] => self.env["RUNNER_ARCH"].clone(),
            ["steps", id, "outputs", name] => steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            _ => panic!("expression not understood by the test runner: {expr}"),
        }
    }

    /// `left == 'literal'` or `left != 'literal'`.
    fn condition(
        &self,
        cond: &str,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
        inputs: &BTreeMap<String, String>,
    ) -> bool {
        let cond = cond.trim();
        let cond = cond
            .strip_prefix("${{")
            .and_then(|c| c.strip_suffix("}}"))
            .unwrap_or(cond);
        let (op, equal) = if cond.contains("!=") {
            ("!=", false)
        } else {
            ("==", true)
        };
        let (left, right) = cond.split_once(op).expect("a comparison");
        let literal = right.trim().trim_matches('\'');
        (self.evaluate(left, steps, inputs) == literal) == equal
    }
}

/// Replaces each `${{ expr }}` in `s`.
fn substitute(s: &str, eval: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed expression") + start;
        out.push_str(&eval(&rest[start + 3..end]));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The "released binary": a small launcher of the binary under test, so that packing and
/// unpacking the archive stays quick while check and diff run the real thing.
fn binary(job: &Job) -> PathBuf {
    let path = job.dir.path().join("launcher");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_kube-harden")
        ),
    )
    .unwrap();
    let status = Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    assert!(status.success());
    path
}

/// Two fleet services in the job's workspace (a git work tree).
fn workspace_with_services(job: &Job) {
    let ws = job.workspace();
    fs::create_dir(ws.join(".git")).unwrap();
    for service in ["cart", "orders"] {
        let from = repo().join("fixtures/fleet/services").join(service);
        let to = ws.join("k8s").join(service);
        fs::create_dir_all(&to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
}

#[test]
fn action_yml_passes_inputs_only_through_env_and_every_run_step_has_a_shell() {
    let action = action();
    let steps = match &action["runs"]["steps"] {
        Value::Sequence(s) => s.clone(),
        _ => panic!(),
    };
    let mut env_text = String::new();
    for step in &steps {
        if let Some(run) = step.get("run") {
            let run = text(run);
            assert!(!run.contains("${{"), "an expression inside run: {run}");
            assert_eq!(step.get("shell").map(text).as_deref(), Some("bash"));
        }
        if let Some(uses) = step.get("uses") {
            let uses = text(uses);
            let (_, reference) = uses.split_once('@').unwrap();
            assert!(
                reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                "{uses} is pinned by commit SHA"
            );
        }
        for (_, v) in step.get("env").map(mapping).unwrap_or_default() {
            env_text.push_str(&text(v));
            env_text.push('\n');
        }
    }
    for (name, _) in mapping(&action["inputs"]) {
        assert!(
            env_text.contains(&format!("${{{{ inputs.{name} }}}}")) || name == "working-directory",
            "input {name} reaches no step"
        );
    }
    let outputs: Vec<String> = mapping(&action["outputs"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for name in ["prs", "created", "updated", "skipped", "sarif-file"] {
        assert!(outputs.contains(&name.to_string()), "output {name}");
    }
    assert!(action.get("branding").is_some());
}

#[test]
fn check_mode_downloads_the_release_checks_it_and_writes_sarif_outputs_and_summary() {
    let mut job = Job::new();
    workspace_with_services(&job);
    let sha = job.release("9.8.7", &binary(&job));
    let run = job.run(&[
        ("mode", "check"),
        ("version", "v9.8.7"),
        ("version-sha256", &sha),
        ("paths", "k8s/cart\n  k8s/orders  \n"),
        ("sarif-file", "kube-harden.sarif"),
    ]);
    assert!(
        !run.success,
        "findings fail the step by default\n{}",
        run.log
    );
    assert_eq!(
        run.steps,
        [
            ("plan".to_string(), true),
            ("install".to_string(), true),
            ("run".to_string(), false)
        ],
        "{}",
        run.log
    );
    assert_eq!(
        run.used.len(),
        1,
        "no cargo cache for a release, only the image facts cache"
    );
    let images = job.dir.path().join("temp/kube-harden-images");
    assert!(run.log.contains(&format!(
        "kube-harden check --sarif-file kube-harden.sarif --image-cache {} -- k8s/cart k8s/orders",
        images.display()
    )));
    assert!(run.log.contains("::error file=k8s/cart/"), "{}", run.log);
    assert!(run.summary.contains("## kube-harden check"));
    assert!(job.workspace().join("kube-harden.sarif").is_file());

    let run = job.run(&[
        ("mode", "check"),
        ("version", "9.8.7"),
        ("version-sha256", &sha.to_uppercase()),
        ("paths", "k8s/cart\nk8s/orders"),
        ("sarif-file", "kube-harden.sarif"),
        ("fail-on-findings", "false"),
        ("offline", "true"),
    ]);
    assert!(run.success, "{}", run.log);
    // registry-token defaults to the workflow's token: it goes in the environment, never the log.
    assert!(!run.log.contains("ghs_default_job_token"), "{}", run.log);
    assert!(
        run.log.contains(&format!(
            "kube-harden check --sarif-file kube-harden.sarif --offline --image-cache {} -- k8s/cart k8s/orders",
            images.display()
        )),
        "{}",
        run.log
    );
    let findings: usize = run.outputs["findings"].parse().unwrap();
    assert!(findings > 0);
    assert_eq!(run.outputs["sarif-file"], "kube-harden.sarif");
    assert_eq!(run.outputs["files-changed"], "3");
    assert_eq!(run.outputs["prs"], "", "no pr outputs in check mode");
    let log: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(job.workspace().join("kube-harden.sarif")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        log["runs"][0]["results"].as_array().unwrap().len(),
        findings
    );
    assert_eq!(
        run.summary.matches("## kube-harden check").count(),
        2,
        "appended"
    );
}

#[test]
fn a_release_whose_checksum_does_not_match_is_not_installed() {
    let mut job = Job::new();
    workspace_with_services(&job);
    job.release("1.2.3", &binary(&job));
    let run = job.run(&[
        ("mode", "diff"),
        ("version", "1.2.3"),
        ("version-sha256", &"0".repeat(64)),
    ]);
    assert!(!run.success);
    assert_eq!(run.steps.last().unwrap(), &("install".to_string(), false));
    assert!(
        run.log
            .contains("::error title=kube-harden install::checksum mismatch"),
        "{}",
        run.log
    );

    let run = job.run(&[("mode", "diff"), ("version", "1.2.3")]);
    assert!(!run.success);
    assert!(
        run.log
            .contains("no SHA-256 known for kube-harden-v1.2.3-x86_64-unknown-linux-musl.tar.gz"),
        "{}",
        run.log
    );

    let run = job.run(&[("mode", "diff"), ("version", "latest; rm -rf /")]);
    assert!(!run.success);
    assert!(
        run.log.contains("version must be a release number"),
        "{}",
        run.log
    );
}

#[test]
fn without_a_version_the_action_builds_its_own_source_with_a_cache_keyed_on_cargo_lock() {
    let job = Job::new();
    let output = job.dir.path().join("files/plan");
    let out = Command::new("bash")
        .arg(repo().join("scripts/action-install.sh"))
        .arg("plan")
        .env("GITHUB_ACTION_PATH", repo())
        .env("GITHUB_OUTPUT", &output)
        .env_remove("INPUT_VERSION")
        .output()
        .unwrap();
    assert!(out.status.success());
    let outputs = parse_outputs(&fs::read_to_string(&output).unwrap());
    assert_eq!(outputs["build"], "true");
    let lock = Command::new("sha256sum")
        .arg(repo().join("Cargo.lock"))
        .output()
        .unwrap();
    assert_eq!(
        outputs["lock-hash"],
        String::from_utf8(lock.stdout).unwrap()[..32]
    );
    // The cache step runs only then, keyed on that hash.
    let action = action();
    let Value::Sequence(steps) = &action["runs"]["steps"] else {
        panic!()
    };
    let cache = steps
        .iter()
        .find(|s| {
            s.get("uses")
                .is_some_and(|u| text(u).starts_with("actions/cache@"))
        })
        .unwrap();
    assert_eq!(text(&cache["if"]), "steps.plan.outputs.build == 'true'");
    assert!(text(&cache["with"]["key"]).contains("${{ steps.plan.outputs.lock-hash }}"));
}

#[test]
fn diff_mode_reports_changed_files_and_injection_in_inputs_stays_data() {
    let mut job = Job::new();
    workspace_with_services(&job);
    let sha = job.release("0.1.0", &binary(&job));
    let pwned = job.dir.path().join("pwned");
    let evil = format!(
        "k8s/cart\n$(touch {0})\n`touch {0}`\n\"; touch {0}; \"",
        pwned.display()
    );
    let run = job.run(&[
        ("mode", "diff"),
        ("version", "0.1.0"),
        ("version-sha256", &sha),
        ("paths", &evil),
    ]);
    assert!(!pwned.exists(), "an input was executed");
    assert!(
        !run.success,
        "the odd paths do not exist: exit 2\n{}",
        run.log
    );

    let run = job.run(&[
        ("mode", "diff"),
        ("version", "0.1.0"),
        ("version-sha256", &sha),
        ("paths", "k8s"),
    ]);
    assert!(run.success, "{}", run.log);
    assert_eq!(run.outputs["files-changed"], "3");
    assert!(
        run.log.contains("+++ b/k8s/cart/"),
        "the diff is in the log"
    );
    assert!(run.summary.contains("## kube-harden diff"));
    assert!(run.summary.contains("```diff"));
}

#[test]
fn bad_inputs_fail_with_an_annotation() {
    let mut job = Job::new();
    workspace_with_services(&job);
    let sha = job.release("0.1.0", &binary(&job));
    for (inputs, message) in [
        (
            vec![("mode", "fix")],
            "input mode must be pr, check or diff, not 'fix'",
        ),
        (
            vec![("mode", "pr"), ("draft", "yes")],
            "input draft must be true or false, not 'yes'",
        ),
        (
            vec![("mode", "pr"), ("max-prs", "5; ls")],
            "input max-prs must be a number",
        ),
        (
            vec![("mode", "pr"), ("repository", "acme/x y")],
            "input repository must be owner/name",
        ),
        (
            vec![("mode", "check"), ("offline", "maybe")],
            "input offline must be true or false, not 'maybe'",
        ),
    ] {
        let mut all = vec![("version", "0.1.0"), ("version-sha256", sha.as_str())];
        all.extend(inputs);
        let run = job.run(&all);
        assert!(!run.success);
        assert!(
            run.log
                .contains(&format!("::error title=kube-harden::{message}")),
            "{}",
            run.log
        );
    }
}

/// A stand-in for the `pr` command: records its arguments and token, writes the outputs
/// `kube-harden pr` is to write.
const FAKE_PR: &str = r#"#!/usr/bin/env bash
if [ "$1" = --version ]; then echo "kube-harden 0.0.0-fake"; exit 0; fi
printf '%s\n' "$@" > "$RUNNER_TEMP/argv"
printf '%s' "$GITHUB_TOKEN" > "$RUNNER_TEMP/token"
printf '%s' "$GITHUB_REPOSITORY" > "$RUNNER_TEMP/repository"
{
  echo 'prs<<EOF_PRS'
  echo '[{"service":"cart","number":7,"operation":"created"}]'
  echo 'EOF_PRS'
  echo 'created=1'
  echo 'updated=0'
  echo 'skipped=2'
} >> "$GITHUB_OUTPUT"
echo '{"prs":[]}'
"#;

#[test]
fn pr_mode_passes_every_flag_and_the_token_and_its_outputs_flow_out() {
    let mut job = Job::new();
    let fake = job.dir.path().join("fake-kube-harden");
    fs::write(&fake, FAKE_PR).unwrap();
    let status = Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    assert!(status.success());
    let sha = job.release("0.3.0", &fake);
    fs::create_dir_all(job.workspace().join("apps dir")).unwrap();
    let run = job.run(&[
        ("mode", "pr"),
        ("version", "0.3.0"),
        ("version-sha256", &sha),
        ("token", "ghs_app_installation_token"),
        ("repository", "acme/payments"),
        ("paths", "k8s\napps dir"),
        ("base", "main"),
        ("group-by", "dir"),
        ("labels", "security, kubernetes,,"),
        ("draft", "true"),
        ("max-prs", "5"),
        ("reviewers", "alice, bob"),
        ("team-reviewers", "platform"),
        (
            "author",
            "kube-harden[bot] <1+kube-harden[bot]@users.noreply.github.com>",
        ),
        ("config", ".github/kube-harden.yaml"),
        ("dry-run", "True"),
        ("prove", "true"),
    ]);
    assert!(run.success, "{}", run.log);
    let argv = fs::read_to_string(job.dir.path().join("temp/argv")).unwrap();
    let image_cache = job.dir.path().join("temp/kube-harden-images");
    let image_cache = image_cache.to_str().unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "pr",
            "--format",
            "json",
            "--base",
            "main",
            "--group-by",
            "dir",
            "--label",
            "security",
            "--label",
            "kubernetes",
            "--draft",
            "--max-prs",
            "5",
            "--reviewer",
            "alice",
            "--reviewer",
            "bob",
            "--team-reviewer",
            "platform",
            "--author",
            "kube-harden[bot] <1+kube-harden[bot]@users.noreply.github.com>",
            "--dry-run",
            "--prove",
            "--image-cache",
            image_cache,
            "--config",
            ".github/kube-harden.yaml",
            "--",
            "k8s",
            "apps dir"
        ]
    );
    let token = fs::read_to_string(job.dir.path().join("temp/token")).unwrap();
    assert_eq!(token, "ghs_app_installation_token");
    let repository = fs::read_to_string(job.dir.path().join("temp/repository")).unwrap();
    assert_eq!(repository, "acme/payments", "the matrix job's repository");
    assert!(
        !run.log.contains("ghs_app_installation_token"),
        "the token is not echoed"
    );
    assert_eq!(
        run.outputs["prs"],
        r#"[{"service":"cart","number":7,"operation":"created"}]"#
    );
    assert_eq!(run.outputs["created"], "1");
    assert_eq!(run.outputs["updated"], "0");
    assert_eq!(run.outputs["skipped"], "2");

    // The defaults: the job's token, no optional flags.
    let run = job.run(&[
        ("mode", "pr"),
        ("version", "0.3.0"),
        ("version-sha256", &sha),
    ]);
    assert!(run.success, "{}", run.log);
    let argv = fs::read_to_string(job.dir.path().join("temp/argv")).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "pr",
            "--format",
            "json",
            "--image-cache",
            image_cache,
            "--",
            "."
        ]
    );
    let token = fs::read_to_string(job.dir.path().join("temp/token")).unwrap();
    assert_eq!(token, "ghs_default_job_token");
    let repository = fs::read_to_string(job.dir.path().join("temp/repository")).unwrap();
    assert_eq!(repository, "acme/fleet", "the workflow's own repository");
}

#[test]
fn the_image_facts_cache_is_kept_between_runs_unless_turned_off() {
    let mut job = Job::new();
    job.env.insert("GITHUB_RUN_ID".into(), "4242".into());
    job.env.insert("GITHUB_RUN_ATTEMPT".into(), "2".into());
    let fake = job.dir.path().join("fake-kube-harden");
    fs::write(&fake, FAKE_PR).unwrap();
    let status = Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    assert!(status.success());
    let sha = job.release("0.3.0", &fake);
    let release = [
        ("mode", "pr"),
        ("version", "0.3.0"),
        ("version-sha256", sha.as_str()),
    ];
    let argv = || fs::read_to_string(job.dir.path().join("temp/argv")).unwrap();
    let folder = job.dir.path().join("temp/kube-harden-images");

    // On by default: actions/cache (the only one: a release is not built) keeps the folder
    // kube-harden is given, under a key of its own run, restored by its prefix.
    let run = job.run(&release);
    assert!(run.success, "{}", run.log);
    let cache = "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684";
    assert_eq!(run.used, [cache]);
    let plan = job.step_outputs("plan");
    assert_eq!(plan["image-cache"], "true");
    assert_eq!(plan["image-cache-dir"], folder.to_str().unwrap());
    let suffix = &plan["image-cache-run"];
    let random = suffix
        .strip_prefix("4242-2-")
        .expect("run and attempt first");
    assert!(random.len() == 8 && random.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(argv().contains(&format!("--image-cache\n{}\n", folder.display())));
    let again = job.run(&release);
    assert!(again.success, "{}", again.log);
    assert_ne!(
        job.step_outputs("plan")["image-cache-run"],
        *suffix,
        "each job saves under its own key (a matrix runs many in one run)"
    );
    let action = action();
    let Value::Sequence(steps) = &action["runs"]["steps"] else {
        panic!()
    };
    let step = steps
        .iter()
        .find(|s| text(&s["name"]) == "Cache the image facts")
        .unwrap();
    assert_eq!(text(&step["uses"]), cache);
    assert_eq!(
        text(&step["if"]),
        "steps.plan.outputs.image-cache == 'true'"
    );
    let with = &step["with"];
    assert_eq!(
        text(&with["path"]),
        "${{ steps.plan.outputs.image-cache-dir }}"
    );
    assert_eq!(
        text(&with["key"]),
        "kube-harden-images-${{ runner.os }}-${{ steps.plan.outputs.image-cache-run }}"
    );
    assert_eq!(
        text(&with["restore-keys"]),
        "kube-harden-images-${{ runner.os }}-"
    );

    // Off: no cache step and no folder given (the tool's own default cache).
    let mut off = release.to_vec();
    off.push(("image-cache", "false"));
    let run = job.run(&off);
    assert!(run.success, "{}", run.log);
    assert!(run.used.is_empty(), "{:?}", run.used);
    assert_eq!(job.step_outputs("plan")["image-cache"], "false");
    assert!(!argv().contains("--image-cache"), "{}", argv());

    let mut bad = release.to_vec();
    bad.push(("image-cache", "sometimes"));
    let run = job.run(&bad);
    assert!(!run.success);
    assert!(
        run.log
            .contains("input image-cache must be true or false, not 'sometimes'"),
        "{}",
        run.log
    );
}

#[test]
fn without_a_version_the_action_builds_with_cargo_into_the_cached_target_folder() {
    let mut job = Job::new();
    workspace_with_services(&job);
    let launcher = binary(&job);
    // A stand-in cargo: records its command line and target folder, and "builds" the launcher
    // where cargo would put the binary: `--release` into release/, `--profile NAME` into NAME/
    // (dev into debug/, the default), refusing a custom profile the manifest does not define.
    let bin_dir = job.dir.path().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    fs::write(
        bin_dir.join("cargo"),
        format!(
            r#"#!/bin/sh
printf '%s\n' "$@" > "$RUNNER_TEMP/cargo-args"
printf '%s' "$CARGO_TARGET_DIR" > "$RUNNER_TEMP/cargo-target"
profile=dev manifest=Cargo.toml
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --profile) shift; profile=$1 ;;
        --manifest-path) shift; manifest=$1 ;;
    esac
    shift
done
case "$profile" in
    dev) folder=debug ;;
    release) folder=release ;;
    *)
        grep -qx "\[profile\.$profile\]" "$manifest" ||
            {{ echo "error: profile \`$profile\` is not defined" >&2; exit 101; }}
        folder=$profile
        ;;
esac
mkdir -p "$CARGO_TARGET_DIR/$folder"
cp '{}' "$CARGO_TARGET_DIR/$folder/kube-harden"
"#,
            launcher.display()
        ),
    )
    .unwrap();
    let status = Command::new("chmod")
        .arg("+x")
        .arg(bin_dir.join("cargo"))
        .status()
        .unwrap();
    assert!(status.success());
    let path = format!("{}:{}", bin_dir.display(), job.env["PATH"]);
    job.env.insert("PATH".into(), path);

    let run = job.run(&[
        ("mode", "check"),
        ("paths", "k8s/cart"),
        ("fail-on-findings", "false"),
    ]);
    assert!(run.success, "{}", run.log);
    assert_eq!(
        run.used.len(),
        2,
        "the cargo cache and the image facts cache"
    );
    assert!(run.used.iter().all(|u| u.starts_with("actions/cache@")));
    let args = fs::read_to_string(job.dir.path().join("temp/cargo-args")).unwrap();
    let manifest = repo().join("Cargo.toml").display().to_string();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "build",
            "--profile",
            "dist",
            "--locked",
            "--manifest-path",
            &manifest,
            "--bin",
            "kube-harden"
        ],
        "the shipped binaries' profile (fat LTO), not release"
    );
    // The binary the action runs is the dist build; nothing was built elsewhere.
    let target = fs::read_to_string(job.dir.path().join("temp/cargo-target")).unwrap();
    let built: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(built, ["dist"]);
    assert_eq!(
        job.step_outputs("install")["bin"],
        format!("{target}/dist/kube-harden")
    );
    // The folder cargo built in is the one the cache step saves.
    let action = action();
    let Value::Sequence(steps) = &action["runs"]["steps"] else {
        panic!()
    };
    let cache_paths = text(&steps[1]["with"]["path"]);
    let cached = substitute(&cache_paths, &|e| {
        job.evaluate(e, &BTreeMap::new(), &BTreeMap::new())
    });
    assert!(cached.lines().any(|l| l == target), "{cached} has {target}");
    assert_eq!(run.outputs["files-changed"], "1");
    assert!(run.outputs["findings"].parse::<usize>().unwrap() > 0);
}

#[test]
fn pr_mode_opens_pull_requests_on_a_fake_github_and_reports_them_as_outputs_and_summary() {
    let mut job = Job::new();
    // Two folders of the fleet in a repository whose remote is a bare repository served by
    // `git daemon` on loopback.
    let fixture = job.dir.path().join("fixture");
    for service in ["cart", "orders"] {
        let to = fixture.join("services").join(service);
        fs::create_dir_all(&to).unwrap();
        common::copy_dir(&repo().join("fixtures/fleet/services").join(service), &to);
    }
    let git_dir = job.dir.path().join("git");
    fs::create_dir(&git_dir).unwrap();
    let daemon = Daemon::start(&git_dir);
    let (work, bare) = repository_with(&git_dir, &fixture, Some(daemon.url("remote.git")));
    job.set_workspace(work.clone());
    let github = FakeGitHub::start("acme", "fleet", bare.clone());
    job.env.insert("GITHUB_API_URL".into(), github.url(false));
    let sha = job.release("0.1.0", &binary(&job));
    let inputs = [
        ("mode", "pr"),
        ("version", "0.1.0"),
        ("version-sha256", sha.as_str()),
        ("token", TOKEN),
        ("labels", "security, kubernetes"),
        ("draft", "true"),
    ];

    let run = job.run(&inputs);
    assert!(run.success, "{}", run.log);
    assert_eq!(run.outputs["created"], "3", "{}", run.log);
    assert_eq!(run.outputs["updated"], "0");
    assert_eq!(run.outputs["skipped"], "0");
    assert_eq!(run.outputs["failed"], "0");
    let prs: serde_json::Value = serde_json::from_str(&run.outputs["prs"]).unwrap();
    let prs = prs.as_array().unwrap();
    // orders holds two apps (by label), so it is two services.
    let branches: Vec<&str> = prs.iter().map(|p| p["branch"].as_str().unwrap()).collect();
    assert_eq!(
        branches,
        [
            "kube-harden/cart",
            "kube-harden/orders-orders",
            "kube-harden/orders-orders-debug"
        ]
    );
    for p in prs {
        assert_eq!(p["action"], "create");
        assert!(p["number"].as_u64().is_some(), "{p}");
        assert!(p["branch"].as_str().unwrap().starts_with("kube-harden/"));
    }
    let opened = github.prs();
    assert_eq!(opened.len(), 3);
    for p in &opened {
        assert!(p.open && p.draft, "{p:?}");
        assert_eq!(p.labels, ["security", "kubernetes"]);
        assert_eq!(p.base, "main");
        assert!(git(&bare, &["branch", "--list", &p.head]).contains(&p.head));
    }
    assert!(run.summary.contains("## kube-harden pr"), "{}", run.summary);
    assert!(run
        .summary
        .contains("3 services: 3 created, 0 updated, 0 skipped, 0 failed"));
    assert!(run.summary.contains("| create |"), "{}", run.summary);
    assert!(!run.log.contains(TOKEN), "the token is not printed");

    // A rerun finds nothing new: both are skipped, nothing is written.
    let run = job.run(&inputs);
    assert!(run.success, "{}", run.log);
    assert_eq!(run.outputs["created"], "0");
    assert_eq!(run.outputs["skipped"], "3");
    assert_eq!(github.prs().len(), 3);
}

// The project's own workflows: release.yml must publish what the action's `version` input
// downloads (scripts/action-install.sh's target_triple() and download()).

fn workflow(name: &str) -> Value {
    let path = repo().join(".github/workflows").join(name);
    yaml_serde::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn sequence(v: &Value) -> &Vec<Value> {
    match v {
        Value::Sequence(s) => s,
        other => panic!("not a sequence: {other:?}"),
    }
}

/// The job's step with this name.
fn named_step<'a>(job: &'a Value, name: &str) -> &'a Value {
    sequence(&job["steps"])
        .iter()
        .find(|s| s.get("name").map(text).as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no step named {name}"))
}

/// Runs a step's `run:` as the runner runs a bash step, in `cwd` (or its `working-directory`
/// below it), with only PATH, HOME and `env`.
fn run_step(step: &Value, cwd: &Path, env: &[(&str, String)]) -> std::process::Output {
    let script = tempfile::NamedTempFile::new().unwrap();
    fs::write(script.path(), text(&step["run"])).unwrap();
    let cwd = match step.get("working-directory") {
        Some(w) => cwd.join(text(w)),
        None => cwd.to_path_buf(),
    };
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(script.path())
        .current_dir(cwd)
        .env_clear();
    for k in ["PATH", "HOME"] {
        cmd.env(k, std::env::var(k).unwrap_or_default());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn log(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (RUNNER_OS, RUNNER_ARCH, triple) for each arm of action-install.sh's target_triple().
fn action_install_targets() -> Vec<(String, String, String)> {
    let script = fs::read_to_string(repo().join("scripts/action-install.sh")).unwrap();
    let body = script
        .split_once("target_triple() {\n")
        .expect("target_triple() in action-install.sh")
        .1;
    let body = &body[..body.find("\n}\n").unwrap()];
    body.lines()
        .filter_map(|line| {
            let (patterns, triple) = line.trim().split_once(") echo ")?;
            let (os, arch) = patterns.split(" | ").next()?.split_once('/')?;
            let triple = triple.strip_suffix(" ;;")?;
            Some((os.to_string(), arch.to_string(), triple.to_string()))
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn release_yml_builds_exactly_the_targets_the_action_downloads_and_names_them_as_it_expects() {
    let targets = action_install_targets();
    let triples: Vec<String> = targets.iter().map(|(_, _, t)| t.clone()).collect();
    assert_eq!(
        sorted(triples.clone()),
        [
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-musl",
            "x86_64-apple-darwin",
            "x86_64-unknown-linux-musl"
        ],
        "target_triple() read from action-install.sh"
    );
    let script = fs::read_to_string(repo().join("scripts/action-install.sh")).unwrap();
    // What download() fetches and unpacks, and how it looks up the checksum: the simulation
    // below runs it, these say what it relies on.
    assert!(script.contains(r#"asset="kube-harden-v$version-$triple.tar.gz""#));
    assert!(script.contains(r#"tar -xzf "$dir/$asset" -C "$dir" kube-harden"#));
    assert!(script.contains(r#"awk -v a="$asset" '$2 == a { print $1 }'"#));
    let cargo_toml = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(cargo_toml.contains("\n[profile.dist]\n"));
    assert!(cargo_toml.contains("\nvendored = ["));

    let wf = workflow("release.yml");
    assert_eq!(text(&wf["on"]["push"]["tags"][0]), "v*");
    assert_eq!(sequence(&wf["on"]["push"]["tags"]).len(), 1);
    let listed: Vec<String> = text(&wf["env"]["TARGETS"])
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(sorted(listed), sorted(triples.clone()), "TARGETS");
    let build = &wf["jobs"]["build"];
    let matrix = sequence(&build["strategy"]["matrix"]["include"]);
    let built: Vec<String> = matrix.iter().map(|m| text(&m["target"])).collect();
    assert_eq!(sorted(built), sorted(triples.clone()), "the build matrix");
    for m in matrix {
        let (target, os, cargo) = (text(&m["target"]), text(&m["os"]), text(&m["cargo"]));
        if target.ends_with("-unknown-linux-musl") {
            assert!(os.starts_with("ubuntu-") && cargo == "zigbuild", "{target}");
        } else {
            assert!(os.starts_with("macos-") && cargo == "build", "{target}");
        }
    }
    assert_eq!(text(&build["env"]["TARGET"]), "${{ matrix.target }}");
    assert_eq!(text(&build["env"]["CARGO_COMMAND"]), "${{ matrix.cargo }}");

    let dir = tempfile::tempdir().unwrap();
    let d = |s: &str| dir.path().join(s);

    // The version job: the tag must be Cargo.toml's version.
    let version_step = named_step(
        &wf["jobs"]["version"],
        "Compare the tag with Cargo.toml's version",
    );
    let version = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let output = d("version-output");
    fs::write(&output, "").unwrap();
    let env = |tag: &str| {
        vec![
            ("TAG", tag.to_string()),
            ("GITHUB_OUTPUT", output.display().to_string()),
        ]
    };
    let out = run_step(version_step, repo(), &env("v99.0.0"));
    assert!(!out.status.success());
    assert!(log(&out).contains("is not v"), "{}", log(&out));
    let out = run_step(version_step, repo(), &env(&format!("v{version}")));
    assert!(out.status.success(), "{}", log(&out));
    assert_eq!(
        parse_outputs(&fs::read_to_string(&output).unwrap())["version"],
        version
    );

    // Each build job, with a stand-in cargo that puts its "binary" where cargo would
    // (target/<triple>/<profile>/), then the packing and, on a target that runs on its own
    // runner, the install check.
    let checkout = d("checkout");
    fs::create_dir_all(checkout.join("scripts")).unwrap();
    fs::copy(
        repo().join("scripts/action-install.sh"),
        checkout.join("scripts/action-install.sh"),
    )
    .unwrap();
    let bin_dir = d("bin");
    fs::create_dir(&bin_dir).unwrap();
    fs::write(
        bin_dir.join("cargo"),
        r#"#!/bin/sh
printf '%s\n' "$@" > "$RUNNER_TEMP/cargo-args"
profile=dev target=
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --profile) shift; profile=$1 ;;
        --target) shift; target=$1 ;;
    esac
    shift
done
case "$profile" in dev) folder=debug ;; *) folder=$profile ;; esac
out="target${target:+/$target}/$folder"
mkdir -p "$out"
printf '#!/bin/sh\n# built for %s\necho "kube-harden %s"\n' "$target" "$VERSION" > "$out/kube-harden"
chmod +x "$out/kube-harden"
"#,
    )
    .unwrap();
    assert!(Command::new("chmod")
        .arg("+x")
        .arg(bin_dir.join("cargo"))
        .status()
        .unwrap()
        .success());
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for m in matrix {
        let target = text(&m["target"]);
        let runner_temp = d(&format!("runner-{target}"));
        fs::create_dir(&runner_temp).unwrap();
        let (os, arch, _) = targets.iter().find(|(_, _, t)| *t == target).unwrap();
        let env = vec![
            ("PATH", path.clone()),
            ("TARGET", target.clone()),
            ("CARGO_COMMAND", text(&m["cargo"])),
            ("VERSION", version.clone()),
            ("RUNNER_TEMP", runner_temp.display().to_string()),
            ("RUNNER_OS", os.clone()),
            ("RUNNER_ARCH", arch.clone()),
        ];
        let out = run_step(
            named_step(build, "Build with the dist profile"),
            &checkout,
            &env,
        );
        assert!(out.status.success(), "{}", log(&out));
        let args = fs::read_to_string(runner_temp.join("cargo-args")).unwrap();
        assert_eq!(
            args.lines().collect::<Vec<_>>(),
            [
                text(&m["cargo"]).as_str(),
                "--locked",
                "--profile",
                "dist",
                "--features",
                "vendored",
                "--target",
                &target,
                "--bin",
                "kube-harden"
            ]
        );
        let out = run_step(named_step(build, "Pack the archive"), &checkout, &env);
        assert!(out.status.success(), "{}", log(&out));
        if m["native"] == Value::Bool(true) {
            let step = named_step(build, "Install the archive as the action does");
            assert_eq!(text(&step["if"]), "matrix.native");
            let out = run_step(step, &checkout, &env);
            assert!(out.status.success(), "{}", log(&out));
        }
    }
    assert_eq!(
        matrix
            .iter()
            .filter(|m| m["native"] == Value::Bool(true))
            .count(),
        2,
        "one Linux and one macOS target are installed on their own runners"
    );
    let upload = sequence(&build["steps"])
        .iter()
        .find(|s| {
            s.get("uses")
                .is_some_and(|u| text(u).starts_with("actions/upload-artifact@"))
        })
        .expect("the archives are uploaded");
    assert_eq!(text(&upload["with"]["path"]), "dist/*.tar.gz");

    // The publish job: the artifacts merged into dist/, then SHA256SUMS.
    let publish = &wf["jobs"]["publish"];
    let download = &sequence(&publish["steps"])[0];
    assert!(text(&download["uses"]).starts_with("actions/download-artifact@"));
    assert_eq!(text(&download["with"]["path"]), "dist");
    assert_eq!(download["with"]["merge-multiple"], Value::Bool(true));
    let published = d("publish");
    fs::create_dir_all(published.join("dist")).unwrap();
    for entry in fs::read_dir(checkout.join("dist")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), published.join("dist").join(entry.file_name())).unwrap();
    }
    let out = run_step(
        named_step(publish, "Write SHA256SUMS"),
        &published,
        &[
            ("VERSION", version.clone()),
            ("TARGETS", text(&wf["env"]["TARGETS"])),
        ],
    );
    assert!(out.status.success(), "{}", log(&out));
    let sums = fs::read_to_string(published.join("dist/SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 4, "{sums}");
    for line in sums.lines() {
        let (sha, asset) = line.split_once("  ").expect("sha256sum format");
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
        assert!(triples
            .iter()
            .any(|t| asset == format!("kube-harden-v{version}-{t}.tar.gz")));
    }
    let create = text(&named_step(publish, "Create the release")["run"]);
    assert!(create.contains("gh release create \"$TAG\" --verify-tag"));
    assert!(create.contains("dist/SHA256SUMS"));

    // And the action, whose release-checksums.txt has the new lines appended (as release.yml
    // and that file's header say), downloads and installs the right archive on every runner.
    let action_dir = d("action");
    fs::create_dir_all(action_dir.join("scripts")).unwrap();
    let checksums = fs::read_to_string(repo().join("scripts/release-checksums.txt")).unwrap();
    fs::write(
        action_dir.join("scripts/release-checksums.txt"),
        checksums + &sums,
    )
    .unwrap();
    let releases = d("releases");
    fs::create_dir_all(releases.join(format!("v{version}"))).unwrap();
    for entry in fs::read_dir(published.join("dist")).unwrap() {
        let entry = entry.unwrap();
        let to = releases.join(format!("v{version}")).join(entry.file_name());
        fs::copy(entry.path(), to).unwrap();
    }
    for (os, arch, triple) in &targets {
        let runner_temp = d(&format!("install-{triple}"));
        fs::create_dir(&runner_temp).unwrap();
        let output = runner_temp.join("output");
        let out = Command::new("bash")
            .arg(repo().join("scripts/action-install.sh"))
            .arg("install")
            .env("GITHUB_ACTION_PATH", &action_dir)
            .env("GITHUB_OUTPUT", &output)
            .env("RUNNER_TEMP", &runner_temp)
            .env("RUNNER_OS", os)
            .env("RUNNER_ARCH", arch)
            .env("INPUT_VERSION", &version)
            .env_remove("INPUT_VERSION_SHA256")
            .env(
                "KUBE_HARDEN_RELEASES_URL",
                format!("file://{}", releases.display()),
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{triple}: {}", log(&out));
        let bin = parse_outputs(&fs::read_to_string(&output).unwrap())["bin"].clone();
        let installed = fs::read_to_string(bin).unwrap();
        assert!(
            installed.contains(&format!("# built for {triple}\n")),
            "{triple}: {installed}"
        );
    }
}

#[test]
fn the_project_workflows_pin_actions_keep_tokens_small_and_expressions_out_of_run() {
    for name in ["ci.yml", "release.yml"] {
        let wf = workflow(name);
        let workflow_permissions = mapping(&wf["permissions"]);
        for (job_name, job) in mapping(&wf["jobs"]) {
            assert!(job.get("timeout-minutes").is_some(), "{name} {job_name}");
            let mut permissions = workflow_permissions.clone();
            if let Some(p) = job.get("permissions") {
                permissions = mapping(p);
            }
            for (scope, level) in permissions {
                let writes = text(level) == "write";
                assert!(
                    !writes
                        || (name, job_name.as_str(), scope.as_str())
                            == ("release.yml", "publish", "contents"),
                    "{name} {job_name}: {scope}: write"
                );
            }
            for step in sequence(&job["steps"]) {
                if let Some(run) = step.get("run") {
                    assert!(
                        !text(run).contains("${{"),
                        "{name}: an expression inside run:"
                    );
                }
                if let Some(uses) = step.get("uses") {
                    let uses = text(uses);
                    let (_, reference) = uses.split_once('@').unwrap();
                    assert!(
                        reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                        "{name}: {uses} is pinned by commit SHA"
                    );
                    if uses.starts_with("actions/checkout@") {
                        assert_eq!(step["with"]["persist-credentials"], Value::Bool(false));
                    }
                }
            }
        }
    }
    let ci = workflow("ci.yml");
    assert_eq!(text(&ci["on"]["push"]["branches"][0]), "main");
    assert!(ci["on"].get("pull_request").is_some());
    assert_eq!(text(&ci["permissions"]["contents"]), "read");
    let steps = sequence(&ci["jobs"]["ci"]["steps"]);
    assert!(steps
        .iter()
        .any(|s| s.get("run").is_some_and(|r| text(r) == "bash .ci/run")));
    let kubectl = text(&named_step(&ci["jobs"]["ci"], "Install kubectl")["run"]);
    assert!(kubectl.contains("sha256sum --check"));
    let sha = text(&ci["jobs"]["ci"]["env"]["KUBECTL_SHA256"]);
    assert!(sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()));
    let release = workflow("release.yml");
    assert_eq!(
        mapping(&release["permissions"]).len(),
        0,
        "permissions: {{}}"
    );
}
