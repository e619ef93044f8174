//! Delivery: writes verified text to the file system (here), or commits and pushes it
//! ([`git`]) and opens pull requests for it ([`github`]). Knows nothing of YAML.
//!
//! Writes to the file system are atomic and keep permissions.
//! The new text goes to a temporary file in the same folder (flushed to disk with `--fsync`),
//! gets the original's permissions, and replaces the original by rename. The original is
//! re-read first: a file that changed since it was read is not overwritten. The replaced
//! originals stay open until the run ends, and are then released by threads or, for a
//! process about to exit, by a child process ([`FileWriter::finish_in_background`]).
//!
//! Temporary files are hidden (`.kube-harden-<pid>-*.tmp`, never read as YAML). A process that
//! is killed leaves its temporary file behind; the next run removes those of dead processes
//! from every folder it writes to.

pub mod git;
pub mod github;

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the file changed since it was read; not overwritten (run again)")]
    ChangedMeanwhile,
    #[error("the file is read-only; not overwritten (make it writable to let kube-harden fix it)")]
    ReadOnly,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Writes files for one run; shared by the worker threads.
#[derive(Default)]
pub struct FileWriter {
    /// Flush each file to disk before the rename (survives a power cut, costs an fsync per
    /// file); without it the rename is still atomic for every reader and for a killed process.
    pub durable: bool,
    /// Folders already cleared of stale temporary files.
    swept: Mutex<HashSet<PathBuf>>,
    /// The replaced originals, still open (see [`FileWriter::finish`]).
    replaced: Mutex<Vec<fs::File>>,
    /// How many of them may be kept open.
    keep_open: usize,
}

/// At most this many replaced originals are kept open at once, and never more than a quarter
/// of the process's limit of open files (see [`kept_open_limit`]).
const MAX_KEPT_OPEN: usize = 4096;

/// Threads that release the replaced originals at the end: more than the cores, since each
/// mostly waits for the disk (an ext4 mounted with `discard`, as here, trims a freed file's
/// blocks before the close returns).
const RELEASING_THREADS: usize = 8;

/// How many replaced originals may be kept open: on Linux (whose ext4 the waiting is for),
/// [`MAX_KEPT_OPEN`] or a quarter of the soft limit of open files if that is lower; elsewhere
/// none (macOS allows only 256 open files by default).
fn kept_open_limit() -> usize {
    if !cfg!(target_os = "linux") {
        return 0;
    }
    let soft_limit = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        });
    soft_limit.map_or(0, |n| (n / 4).min(MAX_KEPT_OPEN))
}

impl FileWriter {
    /// Call it before the process starts threads: it grows the table of file descriptors for
    /// the originals it may keep open, which is cheaper while there is one thread (see
    /// `reserve_descriptors`).
    pub fn new(durable: bool) -> Self {
        let keep_open = kept_open_limit();
        reserve_descriptors(keep_open + DESCRIPTORS_IN_USE);
        FileWriter {
            durable,
            keep_open,
            ..FileWriter::default()
        }
    }

    /// Releases the replaced originals, in parallel.
    ///
    /// Until now each was held open, so its inode was not freed when the rename replaced it.
    /// On an ext4 without a journal, the inode allocator skips every inode freed in the last
    /// minute, one by one, each time it makes a file: freeing the originals as the run goes
    /// would make each new temporary file scan past all those freed before it. Freeing one can
    /// also wait for the disk (see [`RELEASING_THREADS`]), so they are released by several
    /// threads at once (300 closes: about 29 ms on one thread, 10 ms on eight, on this VM).
    pub fn finish(self) {
        release_in_parallel(self.replaced.into_inner().unwrap_or_default());
    }

    /// [`FileWriter::finish`] for a process about to exit: a child process releases the
    /// replaced originals, so the command does not wait for the disk to free them. Their content
    /// is already replaced; all the child does is close them and exit. It closes everything else
    /// it inherited first (stdout and stderr above all: a reader waiting for the end of the
    /// output must not wait for the child too). Returns the child's process id, or `None` when
    /// they were released here (few files, not Linux, or no child could be made).
    pub fn finish_in_background(self) -> Option<u32> {
        let mut replaced = self.replaced.into_inner().unwrap_or_default();
        if replaced.len() >= BACKGROUND_RELEASE_MIN {
            match release_in_child(replaced) {
                Ok(pid) => return Some(pid),
                Err(given_back) => replaced = given_back,
            }
        }
        release_in_parallel(replaced);
        None
    }

    /// Replaces the file at `path`, whose content was `original`, with `new_text`.
    pub fn write(&self, path: &Path, original: &str, new_text: &str) -> Result<(), WriteError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let first_visit = self
            .swept
            .lock()
            .map(|mut s| s.insert(dir.to_path_buf()))
            .unwrap_or(false);
        if first_visit {
            remove_stale_temporary_files(dir);
        }
        let original = write_atomic(path, original, new_text, self.durable)?;
        if let (Some(file), Ok(mut replaced)) = (original, self.replaced.lock()) {
            if replaced.len() < self.keep_open {
                replaced.push(file);
            }
        }
        Ok(())
    }
}

/// Descriptors a run needs besides the replaced originals it keeps: the standard three, the
/// files each thread has open at a time, the walk's folders.
const DESCRIPTORS_IN_USE: usize = 64;

/// Grows the process's table of file descriptors to hold `count` at once, so that it does not
/// grow while the run holds the replaced originals open.
///
/// Linux grows the table by doubling it, and when several threads share the table each growth
/// waits for an RCU grace period, during which every thread that opens a file waits too: up
/// to 15 ms here, with both cores idle, three times per run (64 to 512 descriptors). Before
/// the first thread starts, the growth does not wait. Asking for a descriptor numbered
/// `count - 1` or above (`F_DUPFD` never replaces an open descriptor, unlike `dup2`) grows the
/// table once; closing it keeps the table at that size.
fn reserve_descriptors(count: usize) {
    #[cfg(not(target_os = "linux"))]
    let _ = count;
    #[cfg(target_os = "linux")]
    if let Ok(lowest) = libc::c_int::try_from(count.saturating_sub(1)) {
        // SAFETY: plain system calls on descriptor 2, which is left as it was; the new
        // descriptor is closed at once.
        unsafe {
            let fd = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, lowest);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
}

/// Fewer replaced originals than this are released in the process itself: a fork costs more.
const BACKGROUND_RELEASE_MIN: usize = 16;

/// Closes `files` on [`RELEASING_THREADS`] threads.
fn release_in_parallel(mut files: Vec<fs::File>) {
    let per_thread = files.len().div_ceil(RELEASING_THREADS).max(16);
    std::thread::scope(|scope| {
        while files.len() > per_thread {
            let batch = files.split_off(files.len() - per_thread);
            scope.spawn(move || drop(batch));
        }
        drop(files);
    });
}

/// Forks a child that closes `files` and exits (see [`FileWriter::finish_in_background`]);
/// gives the files back when there is no child.
#[cfg(target_os = "linux")]
fn release_in_child(files: Vec<fs::File>) -> Result<u32, Vec<fs::File>> {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::c_int> = files.iter().map(|f| f.as_raw_fd()).collect();
    fds.sort_unstable();
    // SAFETY: between fork and _exit the child calls only async-signal-safe functions
    // (close_range, close, _exit) and reads `fds`, which was made before the fork.
    match unsafe { libc::fork() } {
        -1 => Err(files),
        0 => unsafe { close_and_exit(&fds) },
        child => {
            // The child holds its own references: closing ours frees nothing.
            drop(files);
            Ok(child as u32)
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn release_in_child(files: Vec<fs::File>) -> Result<u32, Vec<fs::File>> {
    Err(files)
}

/// The child's whole life: close every descriptor but `fds` (sorted), then `fds`, then exit.
///
/// # Safety
/// Only for a freshly forked child of a multi-threaded process.
#[cfg(target_os = "linux")]
unsafe fn close_and_exit(fds: &[libc::c_int]) -> ! {
    let close_range = |first: u32, last: u32| {
        if first <= last {
            libc::syscall(libc::SYS_close_range, first, last, 0);
        }
    };
    let mut next = 0u32;
    for &fd in fds {
        if fd as u32 > next {
            close_range(next, fd as u32 - 1);
        }
        next = fd as u32 + 1;
    }
    close_range(next, u32::MAX);
    for &fd in fds {
        libc::close(fd);
    }
    libc::_exit(0)
}

const TEMP_PREFIX: &str = ".kube-harden-";

/// Removes `.kube-harden-<pid>-*.tmp` files whose process is gone (Linux: no `/proc/<pid>`).
fn remove_stale_temporary_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_file_pid) else {
            continue;
        };
        if pid != std::process::id()
            && Path::new("/proc/self").exists()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The process id in a temporary file's name, if the name is one of ours.
fn temp_file_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(".tmp")?;
    rest.split('-').next()?.parse().ok()
}

/// Replaces the file at `path`, whose content was `original`, with `new_text` (see
/// [`FileWriter::durable`]); returns the original, still open after the replacement (not on
/// Windows, where a file cannot be renamed over while it is open).
pub fn write_atomic(
    path: &Path,
    original: &str,
    new_text: &str,
    durable: bool,
) -> Result<Option<fs::File>, WriteError> {
    // One open for both checks: the content as it is now, and the permissions to copy.
    let mut current = fs::File::open(path)?;
    let permissions = current.metadata()?.permissions();
    let mut now = Vec::with_capacity(original.len() + 1);
    // Through `take`: `File::read_to_end` would ask the size again (fstat, lseek).
    (&mut current)
        .take(original.len() as u64 + 1)
        .read_to_end(&mut now)?;
    if now != original.as_bytes() {
        return Err(WriteError::ChangedMeanwhile);
    }
    if permissions.readonly() {
        return Err(WriteError::ReadOnly);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(new_text.as_bytes())?;
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.as_file().set_permissions(permissions)?;
    let current = cfg!(unix).then_some(current);
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".kube-harden-4194304-abc.tmp"); // above Linux's pid_max
        let ours = dir
            .path()
            .join(format!(".kube-harden-{}-abc.tmp", std::process::id()));
        let other = dir.path().join(".kube-harden-notes.txt");
        for p in [&dead, &ours, &other] {
            fs::write(p, "x").unwrap();
        }
        let path = dir.path().join("a.yaml");
        fs::write(&path, "a: 1\n").unwrap();
        FileWriter::new(false)
            .write(&path, "a: 1\n", "a: 2\n")
            .unwrap();
        assert!(!dead.exists() && ours.exists() && other.exists());
    }

    #[test]
    fn a_file_changed_after_reading_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        fs::write(&path, "a: 1\n").unwrap();
        fs::write(&path, "a: 2\n").unwrap(); // someone else edits it after we read "a: 1"
        let err = write_atomic(&path, "a: 1\n", "a: 1\nb: 2\n", false).unwrap_err();
        assert!(matches!(err, WriteError::ChangedMeanwhile));
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 2\n");
    }

    #[test]
    fn a_read_only_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        fs::write(&path, "a: 1\n").unwrap();
        let mut perms = fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&path, perms).unwrap();
        assert!(matches!(
            write_atomic(&path, "a: 1\n", "b: 2\n", true),
            Err(WriteError::ReadOnly)
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 1\n");
    }

    #[test]
    fn a_write_replaces_the_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        fs::write(&path, "a: 1\n").unwrap();
        write_atomic(&path, "a: 1\n", "a: 1\nb: 2\n", true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 1\nb: 2\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replaced_originals_stay_open_until_the_run_ends_up_to_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let limit = kept_open_limit();
        if cfg!(target_os = "linux") {
            assert!(limit > 0 && limit <= MAX_KEPT_OPEN, "{limit}");
        }
        let writer = FileWriter {
            keep_open: limit.min(40),
            ..FileWriter::new(false)
        };
        let files = 50;
        for i in 0..files {
            let path = dir.path().join(format!("{i}.yaml"));
            fs::write(&path, "a: 1\n").unwrap();
            writer.write(&path, "a: 1\n", "a: 2\n").unwrap();
            assert_eq!(fs::read_to_string(&path).unwrap(), "a: 2\n");
        }
        let kept = writer.replaced.lock().unwrap().len();
        assert_eq!(kept, writer.keep_open);
        if cfg!(target_os = "linux") {
            // Each kept original is an open, deleted file of this process.
            assert_eq!(open_deleted_files_under(dir.path()), writer.keep_open);
        }
        writer.finish();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), files);
    }

    /// The replaced originals of this process that are open, deleted files under `dir`.
    fn open_deleted_files_under(dir: &Path) -> usize {
        fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
            .filter(|t| t.starts_with(dir) && t.to_string_lossy().ends_with(" (deleted)"))
            .count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_child_process_releases_the_originals_and_exits() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(false);
        for i in 0..BACKGROUND_RELEASE_MIN + 4 {
            let path = dir.path().join(format!("{i}.yaml"));
            fs::write(&path, "a: 1\n").unwrap();
            writer.write(&path, "a: 1\n", "a: 2\n").unwrap();
        }
        assert_eq!(
            open_deleted_files_under(dir.path()),
            BACKGROUND_RELEASE_MIN + 4
        );
        let child = writer.finish_in_background().expect("a child process");
        assert_ne!(child, std::process::id());
        // This process keeps none of them; the child closes its copies and exits cleanly.
        assert_eq!(open_deleted_files_under(dir.path()), 0);
        let mut status = 0;
        let waited = unsafe { libc::waitpid(child as libc::pid_t, &mut status, 0) };
        assert_eq!(waited, child as libc::pid_t);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
        for i in 0..BACKGROUND_RELEASE_MIN + 4 {
            let path = dir.path().join(format!("{i}.yaml"));
            assert_eq!(fs::read_to_string(path).unwrap(), "a: 2\n");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_writer_grows_the_descriptor_table_for_the_originals_it_keeps_up_front() {
        let slots = || {
            let status = fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
            line["FDSize:".len()..].trim().parse::<usize>().unwrap()
        };
        let writer = FileWriter::new(false);
        assert!(writer.keep_open > 0);
        assert!(
            slots() >= writer.keep_open + DESCRIPTORS_IN_USE,
            "{}",
            slots()
        );
    }

    #[test]
    fn a_few_originals_are_released_without_a_child_process() {
        let dir = tempfile::tempdir().unwrap();
        let writer = FileWriter::new(false);
        let path = dir.path().join("a.yaml");
        fs::write(&path, "a: 1\n").unwrap();
        writer.write(&path, "a: 1\n", "a: 2\n").unwrap();
        assert_eq!(writer.finish_in_background(), None);
        if cfg!(target_os = "linux") {
            assert_eq!(open_deleted_files_under(dir.path()), 0);
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "a: 2\n");
    }
}
