//! `kube-harden pr` against real parts on loopback: a bare git remote served by `git daemon`
//! (or reached by `file://`) and the stateful fake GitHub of `common/fake_github.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use common::fake_github::{FakeGitHub, Fault, Rule, TOKEN};
use common::git_http::GitHttp;
use common::git_remote::{git, repository_with, Daemon};
use serde_json::Value;

const AUTHOR: &str = "kube-harden <kube-harden@example.com>";

fn fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fleet")
}

/// Runs `kube-harden pr --format json` in `work` against `github`, writes unpaced.
fn pr(work: &Path, github: &FakeGitHub, extra: &[&str]) -> (Output, Value) {
    pr_paced(work, github, extra, "0")
}

fn pr_paced(
    work: &Path,
    github: &FakeGitHub,
    extra: &[&str],
    interval_ms: &str,
) -> (Output, Value) {
    let output = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(work)
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", github.url(false))
        .env("GITHUB_REPOSITORY", github.repo_name())
        .env_remove("NO_COLOR")
        .args([
            "pr",
            "--format",
            "json",
            "--author",
            AUTHOR,
            "--write-interval-ms",
            interval_ms,
        ])
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, json)
}

fn actions(json: &Value) -> Vec<(String, String)> {
    json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn count(json: &Value, action: &str) -> usize {
    actions(json).iter().filter(|(_, a)| a == action).count()
}

fn remote_branches(bare: &Path) -> Vec<String> {
    git(
        bare,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/kube-harden/",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The fleet's services left to a person: a Windows workload, a privileged node agent, and a
/// log shipper that mounts a hostPath.
const LEFT_ALONE: [&str; 3] = ["pricing-engine-win", "node-exporter", "log-shipper"];

/// The hardenable services of the fleet: every folder but those left for a person.
fn hardenable_services() -> usize {
    let folders: Vec<String> = std::fs::read_dir(fleet().join("services"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        LEFT_ALONE.iter().all(|s| folders.iter().any(|f| f == s)),
        "{folders:?}"
    );
    folders.len() - LEFT_ALONE.len()
}

#[test]
fn the_fleet_gets_one_pull_request_per_service_then_a_rerun_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let (work, bare) = repository_with(dir.path(), &fleet(), Some(daemon.url("remote.git")));
    let head_before = git(&work, &["rev-parse", "HEAD"]);
    let github = FakeGitHub::start("acme", "fleet", bare.clone());

    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let services = hardenable_services();
    assert_eq!(services, 37, "the fleet of the brief");
    assert_eq!(count(&json, "create"), services, "{json:#}");
    assert_eq!(json["pushed"], services);
    let prs = github.prs();
    assert_eq!(prs.len(), services);
    assert!(prs
        .iter()
        .all(|p| p.open && p.labels == ["security"] && p.base == "main"));
    assert_eq!(remote_branches(&bare).len(), services);
    assert!(
        prs.iter()
            .all(|p| !LEFT_ALONE.contains(&p.head.trim_start_matches("kube-harden/"))),
        "no pull request for a service left to a person"
    );
    // Each new pull request took at most 3 writes (here 2: create and label).
    assert_eq!(json["api_requests"]["writes"], 2 * services);

    // Each branch is one commit on main that changes only its own service's files.
    for p in &prs {
        let service = p.head.trim_start_matches("kube-harden/");
        let changed = git(&bare, &["diff", "--name-only", "main", &p.head]);
        assert!(!changed.is_empty());
        for path in changed.lines() {
            assert!(
                path.starts_with(&format!("services/{service}/")),
                "{} changes {path}",
                p.head
            );
        }
        assert_eq!(
            git(&bare, &["rev-parse", &format!("{}~1", p.head)]),
            git(&bare, &["rev-parse", "main"])
        );
        assert!(
            p.body.contains("<!-- kube-harden:fingerprint="),
            "{}",
            p.body
        );
        assert!(p.body.contains(&format!(
            "<!-- kube-harden:head={} -->",
            git(&bare, &["rev-parse", &p.head])
        )));
    }
    // The user's checkout is untouched: same HEAD, clean tree and index, no new branch.
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
    assert_eq!(git(&work, &["branch", "--format=%(refname:short)"]), "main");
    assert!(
        git(&work, &["for-each-ref", "refs/kube-harden/"]).is_empty(),
        "scratch refs are removed"
    );
    // The token went over the wire only: not printed, not stored.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    assert!(!stderr(&out).contains(TOKEN));
    assert!(!std::fs::read_to_string(work.join(".git/config"))
        .unwrap()
        .contains(TOKEN));

    github.clear_log();
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "skip-unchanged"), services, "{json:#}");
    assert_eq!(json["pushed"], 0);
    assert_eq!(json["api_requests"]["writes"], 0);
    assert!(github.log().iter().all(|r| !r.is_write()));
    assert_eq!(github.prs().len(), services);
}

#[test]
fn a_commit_on_the_base_that_touches_two_services_updates_exactly_those_two() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = repository_with(dir.path(), &fleet(), None);
    let github = FakeGitHub::start("acme", "fleet", bare.clone());
    let (out, _) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let cart_before = git(&bare, &["rev-parse", "kube-harden/cart"]);

    for file in [
        "services/checkout/manifests.yaml",
        "services/auth/deployment.yaml",
    ] {
        let path = work.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("replicas: 3", "replicas: 4", 1)).unwrap();
    }
    git(&work, &["commit", "-qam", "scale checkout and auth"]);
    git(&work, &["push", "-q", "origin", "main"]);

    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let updated: Vec<String> = actions(&json)
        .into_iter()
        .filter(|(_, a)| a == "update")
        .map(|(s, _)| s)
        .collect();
    assert_eq!(updated, ["auth", "checkout"], "{json:#}");
    assert_eq!(count(&json, "skip-unchanged"), hardenable_services() - 2);
    assert_eq!(json["pushed"], 2);
    assert_eq!(json["api_requests"]["writes"], 2, "one PATCH each");
    // The rebuilt branches sit on the new base; the others did not move.
    let main = git(&bare, &["rev-parse", "main"]);
    assert_eq!(git(&bare, &["rev-parse", "kube-harden/auth~1"]), main);
    assert_eq!(git(&bare, &["rev-parse", "kube-harden/cart"]), cart_before);
}

/// A source folder `dir/src` holding the fleet's deployment of each named service.
fn fleet_services(dir: &Path, names: &[&str]) -> PathBuf {
    let src = dir.join("src");
    for name in names {
        let d = src.join("services").join(name);
        std::fs::create_dir_all(&d).unwrap();
        let from = fleet().join(format!("services/{name}/deployment.yaml"));
        std::fs::copy(from, d.join("deployment.yaml")).unwrap();
    }
    src
}

/// A repository under `dir/repo` made from `src`, with a `file://` remote.
fn repository_of(dir: &Path, src: &Path) -> (PathBuf, PathBuf) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    repository_with(&repo, src, None)
}

/// A small repository: two services under `services/`.
fn two_services(dir: &Path) -> (PathBuf, PathBuf) {
    repository_of(dir, &fleet_services(dir, &["auth", "cart"]))
}

#[test]
fn a_pull_request_closed_by_a_person_is_skipped_until_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare);
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 2);
    let cart = github
        .prs()
        .into_iter()
        .find(|p| p.head == "kube-harden/cart")
        .unwrap();
    github.close(cart.number);

    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        actions(&json),
        [
            ("auth".into(), "skip-unchanged".into()),
            ("cart".into(), "skip-closed".into())
        ]
    );
    assert!(
        stderr(&out).contains("closed without merging"),
        "{}",
        stderr(&out)
    );
    assert_eq!(github.prs().len(), 2, "no new pull request");

    let (out, json) = pr(&work, &github, &["--recreate-closed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 1);
    let open_cart: Vec<_> = github
        .prs()
        .into_iter()
        .filter(|p| p.head == "kube-harden/cart" && p.open)
        .collect();
    assert_eq!(open_cart.len(), 1);
}

#[test]
fn a_branch_with_someone_elses_commit_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, _) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A person adds a commit to the tool's branch.
    git(&work, &["fetch", "-q", "origin", "kube-harden/cart"]);
    git(
        &work,
        &["checkout", "-q", "-b", "fix-by-hand", "FETCH_HEAD"],
    );
    std::fs::write(
        work.join("services/cart/NOTES.md"),
        "read-only fs needs /cache\n",
    )
    .unwrap();
    git(&work, &["add", "services/cart/NOTES.md"]);
    git(&work, &["commit", "-qm", "note"]);
    git(&work, &["push", "-q", "origin", "HEAD:kube-harden/cart"]);
    let by_hand = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "main"]);
    // And the base changes the service, so the tool would want to rebuild the branch.
    let path = work.join("services/cart/deployment.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("replicas: 3", "replicas: 5", 1)).unwrap();
    git(&work, &["commit", "-qam", "scale"]);
    git(&work, &["push", "-q", "origin", "main"]);

    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        actions(&json)[1],
        ("cart".into(), "skip-modified".into()),
        "{json:#}"
    );
    assert!(
        json["services"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("Dev <dev@example.com>"),
        "{json:#}"
    );
    assert_eq!(
        git(&bare, &["rev-parse", "kube-harden/cart"]),
        by_hand,
        "never force-pushed"
    );
}

#[test]
fn a_rate_limit_answer_is_waited_out_and_a_server_error_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare);
    github.inject(Rule {
        method: "POST",
        path: "/pulls".into(),
        skip: 0,
        times: 1,
        fault: Fault::Status(
            403,
            vec![("retry-after".into(), "1".into())],
            serde_json::json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
        ),
    });
    github.inject(Rule {
        method: "GET",
        path: "/pulls".into(),
        skip: 1,
        times: 1,
        fault: Fault::Status(502, vec![], serde_json::json!({"message": "Server Error"})),
    });
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 2, "{json:#}");
    assert_eq!(github.prs().len(), 2, "no duplicate");
    let log = github.log();
    let limited = log.iter().position(|r| r.status == 403).unwrap();
    let retry = &log[limited + 1];
    assert_eq!((retry.method.as_str(), retry.status), ("POST", 201));
    assert!(
        retry.at - log[limited].at >= Duration::from_secs(1),
        "waited for retry-after"
    );
    assert!(log.iter().any(|r| r.status == 502));
}

#[test]
fn a_fault_in_the_middle_of_a_run_then_a_rerun_converges_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = repository_with(dir.path(), &fleet(), None);
    let github = FakeGitHub::start("acme", "fleet", bare.clone());
    // The connection drops on the fourth new pull request before GitHub made it, and on
    // the seventh after GitHub made it (the answer is lost).
    github.inject(Rule {
        method: "POST",
        path: "/repos/acme/fleet/pulls".into(),
        skip: 3,
        times: 1,
        fault: Fault::Drop,
    });
    github.inject(Rule {
        method: "POST",
        path: "/repos/acme/fleet/pulls".into(),
        skip: 5,
        times: 1,
        fault: Fault::DropAfter,
    });
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(2), "a failed service fails the run");
    assert_eq!(count(&json, "failed"), 2, "{json:#}");
    assert!(stderr(&out).contains("failed:"), "{}", stderr(&out));
    let services = hardenable_services();
    assert_eq!(count(&json, "create"), services - 2);
    assert_eq!(github.prs().len(), services - 1);

    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 1, "{json:#}");
    assert_eq!(
        json["pushed"], 0,
        "the branch was pushed before the fault; reused"
    );
    let prs = github.prs();
    assert_eq!(prs.len(), services);
    let mut heads: Vec<&str> = prs.iter().map(|p| p.head.as_str()).collect();
    heads.sort();
    heads.dedup();
    assert_eq!(heads.len(), services, "one pull request per branch");

    let (_, json) = pr(&work, &github, &[]);
    assert_eq!(count(&json, "skip-unchanged"), services, "converged");
}

#[test]
fn a_lost_create_race_updates_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare);
    github.inject(Rule {
        method: "POST",
        path: "/repos/acme/shop/pulls".into(),
        skip: 0,
        times: 1,
        fault: Fault::LostRace,
    });
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        actions(&json),
        [
            ("auth".into(), "update".into()),
            ("cart".into(), "create".into())
        ]
    );
    let prs = github.prs();
    assert_eq!(prs.len(), 2);
    let auth = prs.iter().find(|p| p.head == "kube-harden/auth").unwrap();
    assert!(
        auth.body.contains("<!-- kube-harden:fingerprint="),
        "the winner now carries our body"
    );
}

#[test]
fn a_dry_run_without_a_token_makes_no_api_call_and_pushes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_API_URL", github.url(false))
        .args(["pr", "--dry-run", "--author", AUTHOR])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("create kube-harden/cart"), "{stdout}");
    assert!(
        stdout.contains("+++ b/services/cart/deployment.yaml"),
        "the diff: {stdout}"
    );
    assert!(github.log().is_empty(), "no API call");
    assert!(remote_branches(&bare).is_empty(), "no push");

    let without = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env_remove("GITHUB_TOKEN")
        .args(["pr"])
        .output()
        .unwrap();
    assert_eq!(without.status.code(), Some(2));
    assert!(
        stderr(&without).contains("no token: set GITHUB_TOKEN"),
        "{}",
        stderr(&without)
    );
}

#[test]
fn a_dry_run_goes_on_offline_from_the_last_fetch_and_a_real_run_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    // As after `git clone`: the checkout knows origin's default branch.
    git(&work, &["remote", "set-head", "origin", "main"]);
    // origin can no longer be reached.
    std::fs::rename(&bare, dir.path().join("moved.git")).unwrap();
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    // A dry run without a token (no API call at all); a real run with one.
    let run = |extra: &[&str]| {
        let mut command = Command::cargo_bin("kube-harden").unwrap();
        if extra.contains(&"--dry-run") {
            command.env_remove("GITHUB_TOKEN");
        } else {
            command.env("GITHUB_TOKEN", "t0ken");
        }
        command
            .current_dir(&work)
            .env("GITHUB_API_URL", github.url(false))
            .args(["pr", "--author", AUTHOR])
            .args(extra)
            .output()
            .unwrap()
    };

    let dry = run(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert!(
        stderr(&dry).contains("warning: cannot reach `origin`")
            && stderr(&dry).contains("as this checkout last fetched it"),
        "{}",
        stderr(&dry)
    );
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(stdout.contains("create kube-harden/cart"), "{stdout}");
    assert!(
        stdout.contains("+++ b/services/cart/deployment.yaml"),
        "{stdout}"
    );

    let real = run(&[]);
    assert_eq!(real.status.code(), Some(2), "{}", stderr(&real));
    assert!(
        stderr(&real).contains("kube-harden pr: cannot reach `origin`"),
        "{}",
        stderr(&real)
    );
    assert!(github.log().is_empty(), "no API call");

    // Without a branch name from an earlier clone, the dry run says what is missing.
    git(&work, &["remote", "set-head", "origin", "--delete"]);
    let unnamed = run(&["--dry-run"]);
    assert_eq!(unnamed.status.code(), Some(2));
    assert!(
        stderr(&unnamed).contains("and no earlier fetch to use"),
        "{}",
        stderr(&unnamed)
    );
    assert_eq!(run(&["--dry-run", "--base", "main"]).status.code(), Some(0));
}

#[test]
fn a_dry_run_with_a_token_reads_but_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&work, &github, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 2);
    assert_eq!(
        json["services"][1]["title"],
        "security: harden the securityContext of cart"
    );
    let diff = json["services"][1]["diff"].as_str().unwrap();
    assert!(
        diff.starts_with(
            "--- a/services/cart/deployment.yaml\n+++ b/services/cart/deployment.yaml\n"
        ),
        "{diff}"
    );
    assert_eq!(json["api_requests"]["reads"], 2);
    assert!(github.log().iter().all(|r| !r.is_write()));
    assert!(remote_branches(&bare).is_empty());
}

#[test]
fn reviewers_are_best_effort_and_max_prs_limits_new_pull_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare);
    let (out, json) = pr(
        &work,
        &github,
        &[
            "--max-prs",
            "1",
            "--reviewer",
            "mallory",
            "--draft",
            "--label",
            "security",
            "--label",
            "kube-harden",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a reviewer failure is a warning: {}",
        stderr(&out)
    );
    assert_eq!(
        actions(&json),
        [
            ("auth".into(), "create".into()),
            ("cart".into(), "skip-limit".into())
        ]
    );
    let warning = json["services"][0]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("not a collaborator"), "{warning}");
    let prs = github.prs();
    assert_eq!(prs.len(), 1);
    assert!(prs[0].draft);
    assert_eq!(prs[0].labels, ["security", "kube-harden"]);
    assert_eq!(
        json["api_requests"]["writes"], 3,
        "create, labels, reviewers"
    );
}

#[test]
fn writes_are_paced_and_the_enterprise_api_prefix_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare);
    let output = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env("GITHUB_TOKEN", TOKEN)
        .env_remove("GITHUB_REPOSITORY")
        .args([
            "pr",
            "--repo",
            "acme/shop",
            "--api-url",
            &format!("{}/", github.url(true)),
            "--author",
            AUTHOR,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let log = github.log();
    assert!(
        log.iter()
            .all(|r| r.path.starts_with("/api/v3/repos/acme/shop/")),
        "{log:?}"
    );
    let writes: Vec<_> = log.iter().filter(|r| r.is_write()).collect();
    assert_eq!(writes.len(), 4);
    for pair in writes.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(990),
            "writes at least 1 s apart"
        );
    }
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("kube-harden/cart  create"), "{table}");
}

#[test]
fn the_pull_requests_change_the_base_not_the_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    // Uncommitted work in the checkout must not leak into the pull request.
    let path = work.join("services/cart/deployment.yaml");
    let committed = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        committed.replacen("replicas: 3", "replicas: 9 # local experiment", 1),
    )
    .unwrap();
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 2);
    let pushed = git(
        &bare,
        &["show", "kube-harden/cart:services/cart/deployment.yaml"],
    );
    assert!(pushed.contains("replicas: 3"), "{pushed}");
    assert!(!pushed.contains("local experiment"));
    assert!(pushed.contains("runAsNonRoot: true"));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("local experiment"),
        "the checkout is kept"
    );
}

#[test]
fn a_service_named_in_the_configuration_gets_one_pull_request() {
    let dir = tempfile::tempdir().unwrap();
    let src = fleet_services(dir.path(), &["auth", "cart", "orders"]);
    std::fs::write(
        src.join(".kube-harden.yaml"),
        "services:\n  - name: Identity & Cart\n    paths: [\"services/auth/\", \"services/cart/\"]\n",
    )
    .unwrap();
    let (work, bare) = repository_of(dir.path(), &src);
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        actions(&json),
        [
            ("identity-cart".into(), "create".into()),
            ("orders".into(), "create".into())
        ]
    );
    assert_eq!(json["services"][0]["files"].as_array().unwrap().len(), 2);
    assert_eq!(
        remote_branches(&bare),
        ["kube-harden/identity-cart", "kube-harden/orders"]
    );
}

#[test]
fn a_branch_the_server_refuses_is_reported_and_the_others_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let src = fleet_services(dir.path(), &["auth", "cart"]);
    let daemon = Daemon::start(dir.path());
    let (work, bare) = repository_with(dir.path(), &src, Some(daemon.url("remote.git")));
    // A server-side hook that refuses one branch (git daemon runs it; file:// would not).
    let hook = bare.join("hooks/update");
    std::fs::write(
        &hook,
        "#!/bin/sh\nif [ \"$1\" = refs/heads/kube-harden/cart ]; then echo 'cart is frozen' >&2; exit 1; fi\n",
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        actions(&json),
        [
            ("auth".into(), "create".into()),
            ("cart".into(), "failed".into())
        ]
    );
    let reason = json["services"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("the remote refused the branch"), "{reason}");
    assert_eq!(remote_branches(&bare), ["kube-harden/auth"]);
    assert_eq!(github.prs().len(), 1);
}

#[test]
fn a_shallow_clone_works_like_a_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let (full, bare) = two_services(dir.path());
    // One more commit, so that depth 1 really cuts history.
    std::fs::write(full.join("README.md"), "shop\n").unwrap();
    git(&full, &["add", "README.md"]);
    git(&full, &["commit", "-qm", "readme"]);
    git(&full, &["push", "-q", "origin", "main"]);
    let shallow = dir.path().join("shallow");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &format!("file://{}", bare.display()),
            shallow.to_str().unwrap(),
        ],
    );
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&shallow, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 2, "{json:#}");
    let (out, json) = pr(&shallow, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "skip-unchanged"), 2, "{json:#}");
}

#[test]
fn the_push_lease_leaves_a_branch_that_moved_alone() {
    use kube_harden::deliver::git::{BranchUpdate, Git, Identity, PushOutcome};
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    git(&work, &["push", "-q", "origin", "main:kube-harden/moved"]);
    let main = git(&work, &["rev-parse", "main"]);
    let repo = Git::open(&work, None).unwrap();
    repo.fetch("main", "kube-harden/").unwrap();
    let base = repo.remote_branch("main").unwrap();
    let tree = repo
        .tree_with(base, &[("services/auth/NOTES".into(), b"x\n".to_vec())])
        .unwrap();
    let who = Identity::parse(AUTHOR).unwrap();
    let commit = repo.commit(base, tree, "note", &who).unwrap();
    let stale_guess = git2::Oid::from_str("1111111111111111111111111111111111111111").unwrap();
    let outcomes = repo
        .push(&[
            BranchUpdate {
                branch: "kube-harden/moved".into(),
                new: commit,
                expected: Some(stale_guess),
            },
            BranchUpdate {
                branch: "kube-harden/new".into(),
                new: commit,
                expected: None,
            },
        ])
        .unwrap();
    assert_eq!(
        outcomes["kube-harden/moved"],
        PushOutcome::Stale {
            found: Some(git2::Oid::from_str(&main).unwrap())
        }
    );
    assert_eq!(outcomes["kube-harden/new"], PushOutcome::Pushed);
    assert_eq!(
        git(&bare, &["rev-parse", "kube-harden/moved"]),
        main,
        "not overwritten"
    );
    // With the right expectation the same branch goes.
    let outcomes = repo
        .push(&[BranchUpdate {
            branch: "kube-harden/moved".into(),
            new: commit,
            expected: Some(git2::Oid::from_str(&main).unwrap()),
        }])
        .unwrap();
    assert_eq!(outcomes["kube-harden/moved"], PushOutcome::Pushed);
    assert_eq!(
        git(&bare, &["rev-parse", "kube-harden/moved"]),
        commit.to_string()
    );
}

#[test]
fn over_https_style_auth_the_token_is_offered_only_when_asked_and_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = GitHttp::start(dir.path().to_path_buf(), TOKEN);
    let src = fleet_services(dir.path(), &["cart"]);
    // Set up over file://, then point origin at the password-protected HTTP remote.
    let (work, bare) = repository_with(dir.path(), &src, None);
    let url = server.url("remote.git");
    git(&work, &["remote", "set-url", "origin", &url]);
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json, "create"), 1, "{json:#}");
    assert_eq!(remote_branches(&bare), ["kube-harden/cart"]);
    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen[0].authorization.is_none(),
        "the first request carries no credentials: {seen:?}"
    );
    assert!(seen
        .iter()
        .any(|s| s.path.ends_with("git-receive-pack") && s.authorization.is_some()));
    assert_eq!(
        git(&work, &["remote", "get-url", "origin"]),
        url,
        "the remote URL is not rewritten"
    );
    assert!(!std::fs::read_to_string(work.join(".git/config"))
        .unwrap()
        .contains(TOKEN));

    // A token the remote refuses: a clear error after a bounded number of tries.
    let refused = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env("GITHUB_TOKEN", "not-the-token")
        .env("GITHUB_API_URL", github.url(false))
        .env("GITHUB_REPOSITORY", github.repo_name())
        .args(["pr", "--author", AUTHOR])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("refused the token"),
        "{}",
        stderr(&refused)
    );
    assert!(!stderr(&refused).contains("not-the-token"));
}

#[test]
fn a_helm_chart_is_one_service_and_its_templates_stay_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let src = fleet_services(dir.path(), &["cart"]);
    common::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts/multi-component"),
        &src.join("charts/multi-component"),
    );
    let (work, bare) = repository_of(dir.path(), &src);
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let (out, json) = pr(&work, &github, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        actions(&json),
        [
            ("cart".into(), "create".into()),
            ("multi-component".into(), "create".into())
        ]
    );
    let changed = git(
        &bare,
        &["diff", "--name-only", "main", "kube-harden/multi-component"],
    );
    assert!(
        changed
            .lines()
            .any(|f| f == "charts/multi-component/values.yaml"),
        "{changed}"
    );
    assert!(
        changed
            .lines()
            .all(|f| f.starts_with("charts/multi-component/") && !f.contains("/templates/")),
        "{changed}"
    );
}

#[test]
fn a_repository_template_and_another_token_variable_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let src = fleet_services(dir.path(), &["cart"]);
    let templates = src.join(".github/kube-harden");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("pr-title.txt.j2"),
        "chore(k8s): harden {{ service }}\n",
    )
    .unwrap();
    std::fs::write(
        templates.join("pr-body.md.j2"),
        "Platform team baseline for {{ service }}: {{ workloads | length }} workload(s).\n",
    )
    .unwrap();
    let (work, bare) = repository_of(dir.path(), &src);
    let github = FakeGitHub::start("acme", "shop", bare);
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env_remove("GITHUB_TOKEN")
        .env("KUBE_HARDEN_BOT_TOKEN", TOKEN)
        .env("GITHUB_API_URL", github.url(false))
        .env("GITHUB_REPOSITORY", github.repo_name())
        .args([
            "pr",
            "--token-env",
            "KUBE_HARDEN_BOT_TOKEN",
            "--author",
            AUTHOR,
            "--write-interval-ms",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let prs = github.prs();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].title, "chore(k8s): harden cart");
    assert!(
        prs[0]
            .body
            .starts_with("Platform team baseline for cart: 1 workload(s).\n"),
        "{}",
        prs[0].body
    );
    // The markers are added even though the template leaves them out.
    assert!(
        prs[0].body.contains("<!-- kube-harden:fingerprint="),
        "{}",
        prs[0].body
    );
    assert!(
        prs[0].body.contains("<!-- kube-harden:head="),
        "{}",
        prs[0].body
    );
}

#[test]
fn a_token_github_refuses_stops_the_run_after_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let (work, bare) = two_services(dir.path());
    let github = FakeGitHub::start("acme", "shop", bare.clone());
    let out = Command::cargo_bin("kube-harden")
        .unwrap()
        .current_dir(&work)
        .env("GITHUB_TOKEN", "expired-token")
        .env("GITHUB_API_URL", github.url(false))
        .env("GITHUB_REPOSITORY", github.repo_name())
        .args(["pr", "--format", "json", "--author", AUTHOR])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(count(&json, "failed"), 2, "{json:#}");
    let reason = json["services"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("401 Bad credentials"), "{reason}");
    assert_eq!(github.log().len(), 1, "the first refusal stops the lookups");
    assert!(remote_branches(&bare).is_empty(), "nothing pushed");
    assert!(!stderr(&out).contains("expired-token"));
}
