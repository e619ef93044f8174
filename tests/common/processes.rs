//! What the tests start must be gone when they end: the processes of a process group, or of a
//! run marked with an environment variable, read from `/proc`. A zombie (dead, waiting for its
//! new parent to reap it) does not count as running.

use std::path::Path;
use std::time::{Duration, Instant};

/// The processes that run (not zombies) and for which `select` holds, given their
/// `/proc/<pid>` folder.
fn running(select: impl Fn(&Path) -> bool) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<i32>().ok()?, e.path())))
        .filter(|(_, dir)| {
            stat_fields(dir).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
        })
        .filter(|(_, dir)| select(dir))
        .map(|(pid, _)| pid)
        .collect()
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, ...
fn stat_fields(dir: &Path) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    Some(rest.split(' ').map(str::to_string).collect())
}

/// The running processes of the process group `group`.
pub fn in_group(group: i32) -> Vec<i32> {
    running(|dir| {
        stat_fields(dir).and_then(|f| f.get(2).and_then(|g| g.parse::<i32>().ok())) == Some(group)
    })
}

/// The running processes whose environment holds `name=value` (children inherit it).
pub fn with_env(name: &str, value: &str) -> Vec<i32> {
    let wanted = format!("{name}={value}");
    running(|dir| {
        std::fs::read(dir.join("environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == wanted.as_bytes()))
    })
}

/// What `find` still finds after waiting up to `limit` for it to find nothing.
pub fn still_running(find: impl Fn() -> Vec<i32>, limit: Duration) -> Vec<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let found = find();
        if found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the process group `group` and checks that nothing of it runs any more (a panic
/// names what does, unless the thread is already panicking).
pub fn stop_group(group: i32) {
    // SAFETY: a plain system call; a group that is gone gives ESRCH.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
    let left = still_running(|| in_group(group), Duration::from_secs(10));
    if !left.is_empty() && !std::thread::panicking() {
        panic!("processes of group {group} still run after it was stopped: {left:?}");
    }
}
