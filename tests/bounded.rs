//! Nothing waits forever, nothing is fetched unasked, nothing is left running (issue 26).
//!
//! A real loopback server that accepts connections and never answers stands for a firewall
//! that drops packets: it is the remote base of a Kustomize root (which `kubectl kustomize`
//! fetches with `git`), the chart repository of a Flux release, and `origin` for `pr`. With
//! `--engine-timeout 3` each of them costs about the limit and is named with the reason; with
//! `--offline` the server sees no connection at all; an interrupted run leaves no process and
//! no scratch folder behind. Every run is marked with an environment variable its children
//! inherit, so that any process it leaves behind is found in `/proc`.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::processes;

/// Generous: a run with a 3 s limit that takes this long has hung somewhere.
const NO_HANG: Duration = Duration::from_secs(60);
const MARK: &str = "KUBE_HARDEN_TEST_RUN";

/// Accepts every connection and never answers; counts them; stopped on drop.
struct StallServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StallServer {
    fn start() -> StallServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let (count, stop) = (connections.clone(), stopping.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                held.extend(stream.ok());
            }
        });
        StallServer {
            port,
            connections,
            stopping,
            thread: Some(thread),
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for StallServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A copy of `fixtures/bounded` with the server's address in it, a private temporary folder
/// for the run (`TMPDIR`), a chart cache, and the mark of the run.
struct Fleet {
    dir: tempfile::TempDir,
    mark: String,
}

impl Fleet {
    fn new(stall: &StallServer) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounded");
        copy_with(&fixture, &dir.path().join("repo"), &stall.address());
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let mark = format!("{}-{}", std::process::id(), dir.path().display());
        Fleet { dir, mark }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    fn file(&self, relative: &str) -> String {
        std::fs::read_to_string(self.repo().join(relative)).unwrap()
    }

    fn original(&self, relative: &str) -> String {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounded");
        std::fs::read_to_string(fixture.join(relative)).unwrap()
    }

    /// `kube-harden fix --render always` over the copy, with the given flags.
    fn fix(&self, flags: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("kube-harden").unwrap();
        cmd.arg("fix")
            .args(["--render", "always", "--color", "never", "--chart-cache"])
            .arg(self.dir.path().join("cache"))
            .args(flags)
            .arg(self.repo())
            .env("TMPDIR", self.tmp())
            .env(MARK, &self.mark)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The processes of the run still alive after a short grace.
    fn left_running(&self) -> Vec<i32> {
        processes::still_running(
            || processes::with_env(MARK, &self.mark),
            Duration::from_secs(10),
        )
    }

    /// What is left in the run's temporary folder.
    fn left_in_tmp(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }
}

fn copy_with(from: &Path, to: &Path, address: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_with(&entry.path(), &target, address);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, text.replace("@STALL@", address)).unwrap();
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn hardened(text: &str) -> bool {
    text.contains("runAsNonRoot: true") && text.contains("allowPrivilegeEscalation: false")
}

#[test]
fn a_remote_that_never_answers_costs_the_limit_and_is_named() {
    let stall = StallServer::start();
    let fleet = Fleet::new(&stall);
    let started = Instant::now();
    let output = fleet
        .fix(&["--engine-timeout", "3"])
        .output()
        .expect("kube-harden runs");
    let took = started.elapsed();
    eprintln!("fix with --engine-timeout 3 over a stalled remote took {took:?}");
    let err = stderr(&output);
    assert!(took < NO_HANG, "{took:?}\n{err}");
    assert!(
        err.contains("apps/remote/kustomization.yaml: kustomize build did not finish in 3 s (--engine-timeout): not render-checked; nothing written for it"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "could not download http://{}/charts/index.yaml: no answer within 3 s (timed out)",
            stall.address()
        )),
        "{err}"
    );
    assert!(err.contains("HelmRelease/api"), "{err}");
    // Nothing of the root that was not proven is written; the rest is.
    assert_eq!(
        fleet.file("apps/remote/deployment.yaml"),
        fleet.original("apps/remote/deployment.yaml")
    );
    assert!(hardened(&fleet.file("apps/local/deployment.yaml")), "{err}");
    assert!(hardened(&fleet.file("plain/worker.yaml")), "{err}");
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        stall.connections() >= 2,
        "both the build and the download reached the server: {}",
        stall.connections()
    );
    assert_eq!(fleet.left_running(), Vec::<i32>::new(), "{err}");
    assert_eq!(fleet.left_in_tmp(), Vec::<PathBuf>::new());
}

#[test]
fn offline_nothing_is_fetched_and_the_remote_is_named() {
    let stall = StallServer::start();
    let fleet = Fleet::new(&stall);
    let output = fleet
        .fix(&["--offline", "--engine-timeout", "3"])
        .output()
        .expect("kube-harden runs");
    let err = stderr(&output);
    assert_eq!(stall.connections(), 0, "{err}");
    assert!(
        err.contains(&format!(
            "apps/remote/kustomization.yaml is not built with --offline: it reads remote resources (http://{}/org/repo//base?ref=v1 (",
            stall.address()
        )),
        "{err}"
    );
    assert!(
        err.contains("is not in the cache and the network is off"),
        "{err}"
    );
    assert!(hardened(&fleet.file("apps/local/deployment.yaml")), "{err}");
    assert!(hardened(&fleet.file("plain/worker.yaml")), "{err}");
    assert_eq!(fleet.left_running(), Vec::<i32>::new());
    assert_eq!(fleet.left_in_tmp(), Vec::<PathBuf>::new());
}

/// The processes of the run whose command line names `word`.
fn running_with(fleet: &Fleet, word: &str) -> Vec<i32> {
    processes::with_env(MARK, &fleet.mark)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(word))
        })
        .collect()
}

#[test]
fn an_interrupted_render_leaves_no_process_and_no_scratch_folder() {
    let stall = StallServer::start();
    let fleet = Fleet::new(&stall);
    // The default limit (120 s): only the signal ends this run early.
    let mut child = fleet.fix(&[]).spawn().expect("kube-harden runs");
    let deadline = Instant::now() + NO_HANG;
    while running_with(&fleet, "kustomize").is_empty() || stall.connections() == 0 {
        assert!(Instant::now() < deadline, "the build never started");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!fleet.left_in_tmp().is_empty(), "the render copy exists");
    let interrupted = Instant::now();
    // SAFETY: a plain system call on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            interrupted.elapsed() < NO_HANG,
            "SIGINT did not end the run"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("the run ended {:?} after SIGINT", interrupted.elapsed());
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert_eq!(fleet.left_running(), Vec::<i32>::new());
    assert_eq!(fleet.left_in_tmp(), Vec::<PathBuf>::new());
    assert_eq!(
        fleet.file("apps/remote/deployment.yaml"),
        fleet.original("apps/remote/deployment.yaml")
    );
}

/// A checkout whose `origin` is the stalled server (pushed to a bare remote first, so that
/// it has seen `origin/main`).
fn checkout_with_stalled_origin(dir: &Path, stall: &StallServer) -> PathBuf {
    let fixture = dir.join("fixture");
    std::fs::create_dir_all(fixture.join("plain")).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bounded/plain/worker.yaml");
    std::fs::copy(source, fixture.join("plain/worker.yaml")).unwrap();
    let (work, _bare) = common::git_remote::repository_with(dir, &fixture, None);
    let url = format!("git://{}/remote.git", stall.address());
    common::git_remote::git(&work, &["remote", "set-url", "origin", &url]);
    work
}

fn pr_dry_run(work: &Path, flags: &[&str]) -> Output {
    Command::cargo_bin("kube-harden")
        .unwrap()
        .args(["pr", "--dry-run", "--base", "main", "--color", "never"])
        .args(flags)
        .arg(work)
        .env_remove("GITHUB_TOKEN")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("kube-harden runs")
}

#[test]
fn a_pr_dry_run_waits_for_a_stalled_origin_no_longer_than_the_limit() {
    let stall = StallServer::start();
    let dir = tempfile::tempdir().unwrap();
    let work = checkout_with_stalled_origin(dir.path(), &stall);
    let started = Instant::now();
    let output = pr_dry_run(&work, &["--engine-timeout", "3"]);
    let took = started.elapsed();
    eprintln!("pr --dry-run with --engine-timeout 3 and a stalled origin took {took:?}");
    let err = stderr(&output);
    assert!(took < NO_HANG, "{took:?}\n{err}");
    assert!(stall.connections() >= 1, "{err}");
    assert!(
        err.contains("cannot fetch from `origin`") && err.contains("the dry run goes on"),
        "{err}"
    );
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("worker"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn an_offline_pr_dry_run_does_not_reach_origin_and_a_real_one_refuses() {
    let stall = StallServer::start();
    let dir = tempfile::tempdir().unwrap();
    let work = checkout_with_stalled_origin(dir.path(), &stall);
    let output = pr_dry_run(&work, &["--offline"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert_eq!(stall.connections(), 0, "{err}");
    let real = Command::cargo_bin("kube-harden")
        .unwrap()
        .args(["pr", "--offline", "--base", "main"])
        .arg(&work)
        .env("GITHUB_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(real.status.code(), Some(2));
    assert!(stderr(&real).contains("--offline"), "{}", stderr(&real));
    assert_eq!(stall.connections(), 0);
}

#[test]
fn a_git_daemon_goes_with_the_processes_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("served");
    std::fs::create_dir_all(&base).unwrap();
    common::git_remote::git(&base, &["init", "-q", "--bare", "repo.git"]);
    let daemon = common::git_remote::Daemon::start(&base);
    let (group, port) = (daemon.group(), daemon.port);
    // A connection makes the daemon fork a child that serves it.
    common::git_remote::git(dir.path(), &["ls-remote", &daemon.url("repo.git")]);
    assert!(!processes::in_group(group).is_empty());
    drop(daemon);
    assert_eq!(processes::in_group(group), Vec::<i32>::new());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// A `helm` that starts a child and never answers (a plugin or post-renderer stuck on the
/// network looks the same from outside): the chart is named, nothing of it is written, and
/// neither the `helm` nor its child is left running.
#[test]
fn a_helm_render_that_never_ends_costs_the_limit_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("repo/web");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts/scaffold-current");
    copy_with(&fixture, &chart, "");
    let values = std::fs::read_to_string(chart.join("values.yaml")).unwrap();
    let helm = dir.path().join("helm");
    std::fs::write(&helm, "#!/bin/sh\nsleep 600 &\nwait\n").unwrap();
    std::fs::set_permissions(&helm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mark = format!("{}-{}", std::process::id(), dir.path().display());
    let started = Instant::now();
    let output = Command::cargo_bin("kube-harden")
        .unwrap()
        .args([
            "fix",
            "--render",
            "always",
            "--engine-timeout",
            "2",
            "--helm-bin",
        ])
        .arg(&helm)
        .arg(dir.path().join("repo"))
        .env("TMPDIR", &tmp)
        .env(MARK, &mark)
        .output()
        .unwrap();
    let took = started.elapsed();
    eprintln!("fix with a helm that never ends and --engine-timeout 2 took {took:?}");
    let err = stderr(&output);
    assert!(took < NO_HANG, "{took:?}\n{err}");
    assert!(
        err.contains("helm template did not finish in 2 s (stopped; --engine-timeout)")
            && err.contains("nothing written for it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(chart.join("values.yaml")).unwrap(),
        values
    );
    assert_eq!(output.status.code(), Some(2), "{err}");
    let left =
        processes::still_running(|| processes::with_env(MARK, &mark), Duration::from_secs(10));
    assert_eq!(left, Vec::<i32>::new());
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
