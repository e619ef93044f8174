//! GitOps releases whose chart is in another git repository (issue 23 point 3): a Flux
//! `GitRepository` pinned to a tag, an Argo CD `Application` with a git `repoURL`, `path:` and
//! a tag as `targetRevision`, and the releases whose chart cannot be had (a missing tag, an
//! unreachable host, an SSH URL, no chart at the path, a path leading outside the clone).
//!
//! The test builds the chart repository itself: `fixtures/gitops-git/chart-repository/v1`
//! committed and tagged `v1.0.0`, then `main/` committed over it on `main` (its chart runs a
//! container as root, so a release read at `main` would be planned otherwise), served by a
//! real `git daemon` on 127.0.0.1. Each case under `fixtures/gitops-git/` gets the served URL
//! in place of `git://git.kube-harden.test`; `fix` must give `expected/` and `report.txt`, a
//! second `fix` changes nothing, and the test renders every release before and after with
//! Helm's engine from its own checkout of the tag: nothing but securityContexts (and the
//! writable /tmp) changes, and every pod meets the contract. Offline, the warm cache gives
//! the same files; an empty one leaves the release alone with the reason. Over smart HTTP
//! (`git http-backend` behind a password): the token of `pr` goes to the origin's server, a
//! wrong one is a named denial and is never printed, and several releases of one repository
//! and revision cost the requests of one. A server that never answers costs the limit.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::git_http::GitHttp;
use common::git_remote::Daemon;
use common::helm::{run_with_helm, template};
use common::{contract_gaps, copy_dir, snapshot, typed_pod_specs};

const ORIGIN: &str = "https://github.com/acme/fleet.git";
const PLACEHOLDER: &str = "git://git.kube-harden.test";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops-git")
}

/// Runs git in `dir` with no user or system configuration and fixed dates (the commit ids in
/// the reports are then the same on every run).
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "2026-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2026-01-02T03:04:05Z")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The chart repository, served: `charts.git` under the daemon's base folder.
struct Served {
    dir: tempfile::TempDir,
    daemon: Daemon,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let source = fixtures().join("chart-repository");
        copy_dir(&source.join("v1"), &work);
        git(&work, &["init", "-q"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "shop 1.0.0"]);
        git(&work, &["tag", "-a", "v1.0.0", "-m", "shop 1.0.0"]);
        copy_dir(&source.join("main"), &work);
        git(&work, &["commit", "-q", "-a", "-m", "shop 2.0.0-dev"]);
        let base = dir.path().join("base");
        fs::create_dir_all(&base).unwrap();
        git(
            dir.path(),
            &["clone", "-q", "--bare", "work", "base/charts.git"],
        );
        let daemon = Daemon::start(&base);
        Served { dir, daemon }
    }

    /// `git://127.0.0.1:<port>`.
    fn url(&self) -> String {
        self.daemon.url("").trim_end_matches('/').to_string()
    }

    /// The chart repository checked out at `revision`, by the test itself.
    fn checkout(&self, revision: &str) -> tempfile::TempDir {
        let to = tempfile::tempdir().unwrap();
        let bare = self.dir.path().join("base/charts.git");
        git(to.path(), &["clone", "-q", bare.to_str().unwrap(), "tree"]);
        git(&to.path().join("tree"), &["checkout", "-q", revision]);
        to
    }
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 2, "the git chart cases are there");
    cases
}

/// A git repository (origin: the fleet) with the case's input, the served URL filled in.
fn work_tree(case: &Path, served: &Served) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in snapshot(&case.join("input")) {
        let to = dir.path().join(path);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        fs::write(to, text.replace(PLACEHOLDER, &served.url())).unwrap();
    }
    common::init_with_origin(dir.path(), ORIGIN);
    dir
}

fn fix(work: &Path, cache: &Path, extra: &[&str]) -> (String, BTreeMap<PathBuf, Vec<u8>>) {
    let mut args = vec!["fix", "--chart-cache", cache.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("apps");
    let out = run_with_helm(work, &args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (stderr, common::without_git(snapshot(work)))
}

#[test]
fn charts_in_another_git_repository_are_fetched_at_their_tag_and_render_hardened() {
    let served = Served::start();
    let cache = tempfile::tempdir().unwrap();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let work = work_tree(&case, &served);
        let before = common::without_git(snapshot(work.path()));
        let (stderr, after) = fix(work.path(), cache.path(), &[]);
        let report = stderr.replace(&served.url(), PLACEHOLDER);
        if std::env::var_os("KUBE_HARDEN_BLESS").is_some() {
            bless(&case, &before, &after, &report, &served);
        }
        let want = fs::read_to_string(case.join("report.txt")).unwrap();
        assert_eq!(report, want, "{name}: the report");
        let expected = expected_files(&case, &before, &served);
        assert_eq!(after, expected, "{name}: the files");
        let (_, again) = fix(work.path(), cache.path(), &[]);
        assert_eq!(again, after, "{name}: a second fix changes nothing");
        check_renders(&name, &served, &before, &after, &report);

        // Offline, the warm cache answers, with the same edits and the revision named.
        let offline = work_tree(&case, &served);
        let (stderr, files) = fix(offline.path(), cache.path(), &["--offline"]);
        assert_eq!(files, expected, "{name}: offline from the cache");
        assert!(
            stderr.contains("at tag v1.0.0, commit ac053b528592; --offline: the commit refs/tags/v1.0.0 had when it was cached; the remote was not asked)")
                || stderr.contains("at revision v1.0.0, commit ac053b528592; --offline: the commit refs/tags/v1.0.0 had when it was cached; the remote was not asked)"),
            "{name}: {stderr}"
        );
    }
    let cached: Vec<PathBuf> = snapshot(&cache.path().join("_git")).into_keys().collect();
    assert!(
        cached
            .iter()
            .any(|p| p.ends_with("tree/charts/shop/Chart.yaml")),
        "the tag's checkout is cached: {cached:?}"
    );
    assert!(
        !cached
            .iter()
            .any(|p| p.components().any(|c| c.as_os_str() == ".git")),
        "no .git in the cache: {cached:?}"
    );
}

#[test]
fn offline_without_a_cache_leaves_the_release_alone_and_says_why() {
    let served = Served::start();
    let empty = tempfile::tempdir().unwrap();
    let case = fixtures().join("23-flux-git-repository-tag");
    let work = work_tree(&case, &served);
    let before = common::without_git(snapshot(work.path()));
    let (stderr, after) = fix(work.path(), empty.path(), &["--offline"]);
    assert_eq!(after, before, "nothing changed");
    let line = format!(
        "apps/shop.yaml:27: HelmRelease/shop left unchanged: its chart is in another git repository ({}/charts.git, tag v1.0.0, path ./charts/shop) and cannot be had: tag v1.0.0 of {}/charts.git is not in the chart cache and the network is off (--offline); the release is left alone",
        served.url(),
        served.url()
    );
    assert!(stderr.contains(&line), "{stderr}");
}

fn expected_files(
    case: &Path,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    served: &Served,
) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = before.clone();
    if case.join("expected").is_dir() {
        for (path, bytes) in snapshot(&case.join("expected")) {
            let text = String::from_utf8(bytes).unwrap();
            files.insert(path, text.replace(PLACEHOLDER, &served.url()).into_bytes());
        }
    }
    files
}

/// `KUBE_HARDEN_BLESS=1`: writes report.txt and expected/ from this run, to be read in review.
fn bless(
    case: &Path,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    report: &str,
    served: &Served,
) {
    fs::write(case.join("report.txt"), report).unwrap();
    let expected = case.join("expected");
    let _ = fs::remove_dir_all(&expected);
    for (path, bytes) in after {
        if before.get(path) != Some(bytes) {
            let to = expected.join(path);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            let text = String::from_utf8_lossy(bytes).replace(&served.url(), PLACEHOLDER);
            fs::write(to, text).unwrap();
        }
    }
}

/// A release as the test reads it: the chart's revision and path in the chart repository,
/// and its inline values.
struct Release {
    name: String,
    revision: String,
    path: String,
    values: Value,
}

fn docs(stream: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The releases of a manifest whose chart is in the served repository.
fn releases(text: &str, served_url: &str) -> Vec<Release> {
    let all = docs(text);
    let git_repository = |name: &str| {
        all.iter()
            .find(|d| d["kind"] == "GitRepository" && d["metadata"]["name"] == name)
            .cloned()
    };
    let mut out = Vec::new();
    for doc in &all {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match doc["kind"].as_str() {
            Some("HelmRelease") => {
                let spec = &doc["spec"]["chart"]["spec"];
                let source = git_repository(spec["sourceRef"]["name"].as_str().unwrap()).unwrap();
                if source["spec"]["url"].as_str() != Some(&format!("{served_url}/charts.git")) {
                    continue;
                }
                out.push(Release {
                    name,
                    revision: source["spec"]["ref"]["tag"].as_str().unwrap().to_string(),
                    path: spec["chart"].as_str().unwrap().to_string(),
                    values: doc["spec"]["values"].clone(),
                });
            }
            Some("Application") => {
                let source = &doc["spec"]["source"];
                if source["repoURL"].as_str() != Some(&format!("{served_url}/charts.git")) {
                    continue;
                }
                out.push(Release {
                    name,
                    revision: source["targetRevision"].as_str().unwrap().to_string(),
                    path: source["path"].as_str().unwrap().to_string(),
                    values: source["helm"]["valuesObject"].clone(),
                });
            }
            _ => {}
        }
    }
    out
}

/// Renders every release the report does not leave alone, before and after, from the test's
/// own checkout of the revision it names.
fn check_renders(
    name: &str,
    served: &Served,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    report: &str,
) {
    let mut rendered = 0;
    for (path, bytes) in after {
        let old = releases(&String::from_utf8_lossy(&before[path]), &served.url());
        for release in releases(&String::from_utf8_lossy(bytes), &served.url()) {
            let left_alone = report.lines().any(|l| {
                l.contains("left unchanged") && l.contains(&format!("/{} ", release.name))
            });
            if left_alone {
                continue;
            }
            let label = format!("{name}: {}", release.name);
            let was = old.iter().find(|r| r.name == release.name).unwrap();
            let tree = served.checkout(&release.revision);
            let chart = tree.path().join("tree").join(&release.path);
            let render = |values: &Value| {
                let file = tempfile::NamedTempFile::new().unwrap();
                let values = match values {
                    Value::Null => Value::Mapping(Default::default()),
                    other => other.clone(),
                };
                fs::write(file.path(), yaml_serde::to_string(&values).unwrap()).unwrap();
                docs(&template(&chart, Some(file.path())).unwrap())
            };
            let (old_docs, new_docs) = (render(&was.values), render(&release.values));
            common::assert_only_hardened(old_docs, &new_docs, &label);
            let mut pods = 0;
            for doc in &new_docs {
                for spec in typed_pod_specs(doc).unwrap_or_default() {
                    pods += 1;
                    assert_eq!(contract_gaps(&spec), Vec::<String>::new(), "{label}");
                }
            }
            assert!(pods > 0, "{label}: the chart renders pods");
            rendered += 1;
        }
    }
    assert!(rendered > 0, "{name}: a release was rendered");
}

/// `fix` with `GITHUB_TOKEN` set as given (and nothing else from the caller's environment
/// that names a token).
fn fix_with_token(work: &Path, cache: &Path, token: &str) -> (String, BTreeMap<PathBuf, Vec<u8>>) {
    let shim = common::helm::shim();
    let out = assert_cmd::Command::cargo_bin("kube-harden")
        .unwrap()
        .args(["--render", "always", "--helm-bin", shim.to_str().unwrap()])
        .args(["fix", "--chart-cache", cache.to_str().unwrap(), "apps"])
        .current_dir(work)
        .env("NO_COLOR", "1")
        .env("KUBE_HARDEN_HELM_PYTHON", common::helm::python())
        .env("GITHUB_TOKEN", token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (stderr, common::without_git(snapshot(work)))
}

/// The charts served over smart HTTP behind the password `s3cret-token`, and a work tree
/// whose Argo CD release (case 24) takes its chart from there; the fleet's origin is on the
/// same server, so the token is for it.
fn behind_a_password() -> (Served, GitHttp, String, tempfile::TempDir) {
    let served = Served::start();
    let http = GitHttp::start(served.dir.path().join("base"), "s3cret-token");
    let server = format!("http://127.0.0.1:{}", http.port);
    let case = fixtures().join("24-argo-git-tag");
    let input = fs::read_to_string(case.join("input/apps/shop.yaml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    fs::create_dir_all(work.path().join("apps")).unwrap();
    fs::write(
        work.path().join("apps/shop.yaml"),
        input.replace(PLACEHOLDER, &server),
    )
    .unwrap();
    common::init_with_origin(work.path(), &format!("{server}/fleet.git"));
    (served, http, server, work)
}

#[test]
fn a_repository_behind_a_password_gets_the_token_of_pr_on_the_origin_server_only() {
    let (_served, http, server, work) = behind_a_password();
    let case = fixtures().join("24-argo-git-tag");
    let before = common::without_git(snapshot(work.path()));
    let cache = tempfile::tempdir().unwrap();

    let (stderr, files) = fix_with_token(work.path(), cache.path(), "wrong-token");
    assert_eq!(files, before, "a denied chart changes nothing");
    let denied = format!("apps/shop.yaml:13: Application/shop left unchanged: its chart is in another git repository ({server}/charts.git, revision v1.0.0, path charts/shop) and cannot be had: access denied");
    assert!(stderr.contains(&denied), "{stderr}");
    assert!(
        !stderr.contains("wrong-token"),
        "the token is never printed: {stderr}"
    );

    let (stderr, files) = fix_with_token(work.path(), cache.path(), "s3cret-token");
    let expected = fs::read_to_string(case.join("expected/apps/shop.yaml")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&files[Path::new("apps/shop.yaml")]),
        expected.replace(PLACEHOLDER, &server),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "(chart charts/shop in {server}/charts.git at revision v1.0.0, commit ac053b528592)"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-token"), "{stderr}");
    let seen = http.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.authorization.is_some()),
        "the token was offered: {seen:?}"
    );
}

#[test]
fn pr_offers_the_token_of_its_token_env_to_the_chart_s_git_server() {
    let (served, _http, _, work) = behind_a_password();
    // The fleet itself is on the same server, behind the same password.
    let bare = served.dir.path().join("base/fleet.git");
    git(
        served.dir.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    git(work.path(), &["checkout", "-q", "-b", "main"]);
    git(work.path(), &["add", "."]);
    git(
        work.path(),
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "fleet",
        ],
    );
    git(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
    let cache = tempfile::tempdir().unwrap();
    let shim = common::helm::shim();
    let out = assert_cmd::Command::cargo_bin("kube-harden")
        .unwrap()
        .args(["--render", "always", "--helm-bin", shim.to_str().unwrap()])
        .args(["--chart-cache", cache.path().to_str().unwrap()])
        .args([
            "pr",
            "--dry-run",
            "--token-env",
            "FLEET_TOKEN",
            "--repo",
            "acme/fleet",
        ])
        .current_dir(work.path())
        .env("NO_COLOR", "1")
        .env("KUBE_HARDEN_HELM_PYTHON", common::helm::python())
        .env_remove("GITHUB_TOKEN")
        .env("FLEET_TOKEN", "s3cret-token")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!stderr.contains("access denied"), "{stderr}");
    assert!(
        stdout.contains("+++ b/apps/shop.yaml") && stdout.contains("runAsNonRoot: true"),
        "the release's chart was fetched with FLEET_TOKEN: {stdout}\n{stderr}"
    );
    assert!(!stdout.contains("s3cret-token") && !stderr.contains("s3cret-token"));
}

/// A server that accepts connections and never answers; it lets them go when dropped.
struct Stall {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stall {
    fn start() -> Stall {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                held.extend(stream.ok());
            }
        });
        Stall {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_git_server_that_never_answers_costs_the_limit_and_is_named() {
    let stall = Stall::start();
    let work = tempfile::tempdir().unwrap();
    fs::create_dir_all(work.path().join("apps")).unwrap();
    let input =
        fs::read_to_string(fixtures().join("24-argo-git-tag/input/apps/shop.yaml")).unwrap();
    let server = format!("git://127.0.0.1:{}", stall.port);
    fs::write(
        work.path().join("apps/shop.yaml"),
        input.replace(PLACEHOLDER, &server),
    )
    .unwrap();
    common::init_with_origin(work.path(), ORIGIN);
    let before = common::without_git(snapshot(work.path()));
    let cache = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (stderr, files) = fix(work.path(), cache.path(), &["--engine-timeout", "2"]);
    let took = started.elapsed();
    eprintln!("fix with --engine-timeout 2 over a stalled git server took {took:?}");
    assert!(
        took < std::time::Duration::from_secs(60),
        "{took:?}: {stderr}"
    );
    assert_eq!(files, before, "{stderr}");
    let named = format!("Application/shop left unchanged: its chart is in another git repository ({server}/charts.git, revision v1.0.0, path charts/shop) and cannot be had: ");
    assert!(stderr.contains(&named), "{stderr}");
    assert!(
        stderr.contains("no answer within 2 s (timed out; --engine-timeout)"),
        "{stderr}"
    );
}

#[test]
fn several_releases_from_one_repository_and_revision_cost_one_fetch() {
    let served = Served::start();
    let http = GitHttp::start(served.dir.path().join("base"), "t0ken");
    let server = format!("http://127.0.0.1:{}", http.port);
    let input = fs::read_to_string(fixtures().join("24-argo-git-tag/input/apps/shop.yaml"))
        .unwrap()
        .replace(PLACEHOLDER, &server);
    // The requests one run makes with a cold cache, for the releases of `text`.
    let requests = |text: &str| {
        let work = tempfile::tempdir().unwrap();
        fs::create_dir_all(work.path().join("apps")).unwrap();
        fs::write(work.path().join("apps/shop.yaml"), text).unwrap();
        common::init_with_origin(work.path(), &format!("{server}/fleet.git"));
        let cache = tempfile::tempdir().unwrap();
        let before = http.seen.lock().unwrap().len();
        let (stderr, _) = fix_with_token(work.path(), cache.path(), "t0ken");
        assert!(!stderr.contains("left unchanged"), "{stderr}");
        http.seen.lock().unwrap().len() - before
    };
    let one = requests(&input);
    let copy = input.replace("name: shop\n", "name: shop-copy\n");
    let two = requests(&format!("{input}---\n{copy}"));
    assert!(one > 0);
    assert_eq!(
        two, one,
        "the second release is answered by the first one's checkout"
    );
}
