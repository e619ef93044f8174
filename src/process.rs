//! What a run must not leave behind: the external programs it starts (Kustomize, kubectl,
//! Helm) and its scratch folders. Each program runs in a process group of its own with a time
//! limit ([`output`]); past the limit the whole group is killed (a `kubectl kustomize` waiting
//! on a `git fetch` goes with its `git`), and whatever the program leaves running when it ends
//! is killed too. Scratch folders ([`scratch_dir`]) are known here while they exist. Ctrl-C,
//! SIGTERM and SIGHUP ([`stop_children_on_signals`]) kill every running group and remove every
//! scratch folder before the process ends with that signal, and runs the stop hooks
//! ([`on_stop`]) that remove what lives outside the process tree (containers an engine runs).

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The time limit of every external run and fetch unless `--engine-timeout` or
/// `engineTimeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a program gave no output.
#[derive(Debug)]
pub enum RunError {
    /// It could not be started.
    Spawn(std::io::Error),
    /// It ran past the limit and was killed with its process group.
    TimedOut(Duration),
    /// The run is being stopped by a signal: nothing new starts.
    Interrupted,
}

/// `3 s`, `120 s`, `1.5 s`: a limit as messages say it.
pub fn seconds(limit: Duration) -> String {
    let secs = limit.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{secs} s")
    }
}

/// The running groups and scratch folders, and whether a signal is stopping the run.
#[derive(Default)]
struct Live {
    groups: BTreeSet<i32>,
    scratch: BTreeSet<PathBuf>,
    stopping: bool,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    groups: BTreeSet::new(),
    scratch: BTreeSet::new(),
    stopping: false,
});

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long the output of a finished or killed program is waited for: a grandchild that left
/// its group (`setsid`) may hold the pipes open forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// Runs `command` to its end, or kills it with its process group after `limit`. Its stdin is
/// empty; its stdout and stderr are collected.
pub fn output(command: &mut Command, limit: Duration) -> Result<Output, RunError> {
    run(command, None, limit)
}

/// As [`output`], with `input` written to the program's stdin (a credential helper's question).
pub fn output_with_input(
    command: &mut Command,
    input: &[u8],
    limit: Duration,
) -> Result<Output, RunError> {
    run(command, Some(input.to_vec()), limit)
}

fn run(command: &mut Command, input: Option<Vec<u8>>, limit: Duration) -> Result<Output, RunError> {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    command
        .process_group(0)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = {
        // Started under the lock, so that a signal never misses a child that is starting.
        let mut live = live();
        if live.stopping {
            return Err(RunError::Interrupted);
        }
        let child = command.spawn().map_err(RunError::Spawn)?;
        live.groups.insert(group_of(&child));
        child
    };
    let group = group_of(&child);
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), input) {
        // On a thread: a program that does not read must not block the wait below.
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let ended = wait_until(&mut child, Instant::now() + limit);
    // Past the limit the group goes; at the end, whatever the program left running goes too.
    kill_group(group);
    let status = match ended {
        Some(status) => Ok(status),
        None => {
            let _ = child.wait();
            Err(RunError::TimedOut(limit))
        }
    };
    live().groups.remove(&group);
    let status = status?;
    Ok(Output {
        status,
        stdout: stdout.recv_timeout(OUTPUT_GRACE).unwrap_or_default(),
        stderr: stderr.recv_timeout(OUTPUT_GRACE).unwrap_or_default(),
    })
}

fn group_of(child: &Child) -> i32 {
    i32::try_from(child.id()).expect("a process id fits in pid_t")
}

/// The child's exit status, or `None` once `deadline` has passed. Polls: short waits first (a
/// render takes tens of milliseconds), then at most every 25 ms.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

fn kill_group(group: i32) {
    // SAFETY: a plain system call; a group that is gone gives ESRCH, which is fine.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (send, receive) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = send.send(bytes);
        });
    }
    receive
}

/// A temporary folder that a signal removes too (and that removes itself when dropped).
pub struct ScratchDir {
    dir: Option<tempfile::TempDir>,
}

impl ScratchDir {
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    /// Keeps the folder (it has been moved into place, say): neither dropping it nor a signal
    /// removes it any more.
    pub fn keep(mut self) -> PathBuf {
        let dir = self.dir.take().expect("present until dropped");
        let mut live = live();
        live.scratch.remove(dir.path());
        dir.keep()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            drop(dir);
            live().scratch.remove(&path);
        }
    }
}

/// A new scratch folder in the system's temporary folder, named `<prefix>XXXXXX`.
pub fn scratch_dir(prefix: &str) -> std::io::Result<ScratchDir> {
    scratch_dir_in(&std::env::temp_dir(), prefix)
}

/// A new scratch folder in `parent` (a staging folder beside its final place, say).
pub fn scratch_dir_in(parent: &Path, prefix: &str) -> std::io::Result<ScratchDir> {
    let mut live = live();
    if live.stopping {
        return Err(std::io::Error::other("the run is being stopped"));
    }
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
    live.scratch.insert(dir.path().to_path_buf());
    Ok(ScratchDir { dir: Some(dir) })
}

/// Kills every running group, runs the stop hooks and removes every scratch folder; nothing
/// new starts after it.
fn stop_everything() {
    let mut live = live();
    live.stopping = true;
    for &group in &live.groups {
        kill_group(group);
    }
    for (_, hook) in STOP_HOOKS.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        hook();
    }
    for dir in &live.scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Work a signal must do before the process ends, by the number its [`StopHook`] holds.
type Hooks = Vec<(u64, Box<dyn Fn() + Send>)>;
static STOP_HOOKS: Mutex<Hooks> = Mutex::new(Vec::new());
static NEXT_HOOK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `hook` if a signal stops the run while the returned guard lives: for what is not a
/// child process nor a scratch folder (a container an engine's daemon runs). The hook starts
/// its programs itself (the run is stopping: [`output`] starts nothing any more).
pub fn on_stop(hook: Box<dyn Fn() + Send>) -> StopHook {
    let id = NEXT_HOOK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    STOP_HOOKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id, hook));
    StopHook(id)
}

/// Keeps a stop hook registered; dropping it unregisters it.
pub struct StopHook(u64);

impl Drop for StopHook {
    fn drop(&mut self) {
        STOP_HOOKS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// The write end of the pipe the signal handler writes the signal's number to.
static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; the descriptor stays open for the process's life.
    unsafe {
        libc::write(
            SIGNAL_PIPE.load(std::sync::atomic::Ordering::Relaxed),
            (&byte as *const u8).cast(),
            1,
        );
    }
}

/// On SIGINT, SIGTERM or SIGHUP: kills the running programs' groups, removes the scratch
/// folders, then ends the process with that signal (as it would have ended without this). The
/// handler only writes to a pipe; a thread of its own does the work.
pub fn stop_children_on_signals() {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: plain system calls on descriptors this function owns.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return;
        }
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    SIGNAL_PIPE.store(fds[1], std::sync::atomic::Ordering::Relaxed);
    let reader = fds[0];
    let started = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let signal = wait_for_signal(reader);
            stop_everything();
            // SAFETY: restores the default action and sends the signal again, which ends the
            // process with it.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
            std::process::exit(128 + signal);
        });
    if started.is_err() {
        return;
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls write(2).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn wait_for_signal(reader: libc::c_int) -> libc::c_int {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a local.
        let n = unsafe { libc::read(reader, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            return libc::c_int::from(byte);
        }
        if n == 0 {
            // Cannot happen (the write end is never closed); wait forever rather than spin.
            loop {
                std::thread::park();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_ends_gives_its_output() {
        let out = output(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(30),
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    /// Whether a process runs (a zombie, dead but not yet reaped by its new parent, does not).
    #[cfg(target_os = "linux")]
    fn runs(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.to_string()))
            .is_some_and(|rest| !rest.starts_with('Z'))
    }

    // Reads /proc.
    #[cfg(target_os = "linux")]
    #[test]
    fn past_the_limit_the_program_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 600 & echo $! > {0}.tmp; echo $$ >> {0}.tmp; mv {0}.tmp {0}; wait",
            pids.display()
        );
        let started = Instant::now();
        let result = output(
            Command::new("sh").args(["-c", &script]),
            Duration::from_millis(1500),
        );
        assert!(matches!(result, Err(RunError::TimedOut(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(30), "no hang");
        let text = std::fs::read_to_string(&pids).unwrap();
        let pids: Vec<i32> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(pids.len(), 2, "{text}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| runs(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in pids {
            assert!(!runs(pid), "process {pid} still runs");
        }
    }

    // Reads /proc.
    #[cfg(target_os = "linux")]
    #[test]
    fn what_a_program_leaves_running_is_killed_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!(
            "sleep 600 >/dev/null 2>&1 & echo $! > {}",
            pid_file.display()
        );
        let out = output(
            Command::new("sh").args(["-c", &script]),
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(out.status.success());
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!runs(pid), "the left-behind sleep {pid} still runs");
    }

    #[test]
    fn a_scratch_folder_goes_when_dropped() {
        let dir = scratch_dir("kube-harden-test-").unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        assert!(live().scratch.contains(&path));
        drop(dir);
        assert!(!path.exists());
        assert!(!live().scratch.contains(&path));
    }

    #[test]
    fn a_kept_scratch_folder_stays_and_is_no_longer_known() {
        let parent = tempfile::tempdir().unwrap();
        let dir = scratch_dir_in(parent.path(), ".staging-").unwrap();
        let path = dir.keep();
        assert!(path.is_dir() && path.starts_with(parent.path()));
        assert!(!live().scratch.contains(&path));
    }

    #[test]
    fn limits_read_as_seconds() {
        assert_eq!(seconds(Duration::from_secs(120)), "120 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
