//! Real git remotes for the `pr` tests: bare repositories, served by `git daemon` on
//! 127.0.0.1 (started and stopped by the test) or reached by `file://`, and a working clone.

#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs git in `dir` with a fixed identity and no user or system configuration; panics with
/// git's own words when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `git daemon` serving every repository under `base`, push enabled; stopped on drop with
/// everything it started. It runs in a process group of its own: `git daemon` runs
/// `git-daemon` as its child, which forks one process per connection, and stopping only the
/// first left the others listening after the tests ended.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(base: &Path) -> Daemon {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("git")
                .arg("daemon")
                .arg("--reuseaddr")
                .arg("--export-all")
                .arg("--enable=receive-pack")
                .arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .arg(base)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("git daemon starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Daemon { child, port };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            stop(&mut child);
        }
        panic!("git daemon did not start");
    }

    /// The daemon's process group (its own process id).
    pub fn group(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Kills the daemon's process group, reaps the daemon, and checks that nothing of the group
/// still runs.
fn stop(child: &mut Child) {
    let group = i32::try_from(child.id()).unwrap();
    super::processes::stop_group(group);
    let _ = child.wait();
}

/// A bare remote `remote.git` and a working clone `work` holding a copy of `fixture`, with
/// one commit on `main` pushed. `remote_url` says how the clone reaches the remote (`None`:
/// `file://`).
pub fn repository_with(
    dir: &Path,
    fixture: &Path,
    remote_url: Option<String>,
) -> (PathBuf, PathBuf) {
    let bare = dir.join("remote.git");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(
        dir,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&work, &["init", "-q", "-b", "main"]);
    super::copy_dir(fixture, &work);
    git(&work, &["add", "-A", "-f"]);
    git(&work, &["commit", "-q", "-m", "the fleet"]);
    let url = remote_url.unwrap_or_else(|| format!("file://{}", bare.display()));
    git(&work, &["remote", "add", "origin", &url]);
    git(&work, &["push", "-q", "origin", "main"]);
    (work, bare)
}
