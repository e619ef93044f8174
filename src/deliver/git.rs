//! Git delivery: the base commit, one commit per service built from an in-memory index, and one
//! push of many branches with a per-branch lease.
//!
//! The user's working tree, index, HEAD and branches are never touched: commits are written to
//! the object database, pushed from a scratch ref under `refs/kube-harden/`, and the scratch ref
//! is removed again. Knows files as paths and bytes only: nothing of YAML or GitHub.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::{
    Cred, CredentialType, Direction, FetchOptions, IndexEntry, IndexTime, Oid, PushOptions,
    RemoteCallbacks, Repository, Signature,
};

/// The remote the tool pushes to, as the user configured it.
pub const REMOTE: &str = "origin";

/// Bounds libgit2's waits on a remote (to connect, and for each answer), so that a fetch or a
/// push to a server that accepts and never answers fails after `limit` instead of hanging.
/// Process-wide: libgit2 keeps these settings globally.
pub fn limit_network_waits(limit: std::time::Duration) {
    let millis = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: libgit2 reads these settings when it opens a connection; they are set once, on
    // the main thread, before `pr` opens any.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis);
        let _ = git2::opts::set_server_timeout_in_milliseconds(millis);
    }
}

/// Why a git step failed, in words for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GitError(pub String);

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        GitError(e.message().to_string())
    }
}

type Result<T> = std::result::Result<T, GitError>;

/// Who the commits are by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    /// Parses `Name <email>`.
    pub fn parse(text: &str) -> Option<Identity> {
        let (name, rest) = text.split_once('<')?;
        let email = rest.strip_suffix('>')?.trim();
        let name = name.trim();
        (!name.is_empty() && email.contains('@')).then(|| Identity {
            name: name.to_string(),
            email: email.to_string(),
        })
    }
}

/// One branch to push: the commit it should point at, and what the remote must hold now
/// (`None`: the branch must not exist) for the push to go ahead.
#[derive(Clone, Debug)]
pub struct BranchUpdate {
    pub branch: String,
    pub new: Oid,
    pub expected: Option<Oid>,
}

/// What became of one branch in a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed,
    /// The remote branch is not where the lease expected: left alone.
    Stale {
        found: Option<Oid>,
    },
    /// The server refused the ref (hook, protection, permissions).
    Rejected(String),
}

/// A local clone and its `origin`.
pub struct Git {
    repo: Repository,
    token: Option<String>,
}

impl Git {
    /// Opens the repository that holds `path`. `token` is offered to the transport only when it
    /// asks for a user name and password.
    pub fn open(path: &Path, token: Option<String>) -> Result<Git> {
        let repo = Repository::discover(path).map_err(|e| {
            GitError(format!(
                "{}: not inside a git repository ({})",
                path.display(),
                e.message()
            ))
        })?;
        if repo.is_bare() {
            return Err(GitError(format!(
                "{}: a bare repository has no files to harden",
                path.display()
            )));
        }
        repo.find_remote(REMOTE).map_err(|_| {
            GitError(format!(
                "the repository has no remote `{REMOTE}` to push the branches to"
            ))
        })?;
        Ok(Git { repo, token })
    }

    /// The root of the working tree.
    pub fn workdir(&self) -> PathBuf {
        self.repo.workdir().expect("not bare").to_path_buf()
    }

    /// The URL of `origin`, as configured.
    pub fn origin_url(&self) -> Option<String> {
        let remote = self.repo.find_remote(REMOTE).ok()?;
        remote.url().ok().map(str::to_string)
    }

    /// The commit identity: `git config user.name`/`user.email`, if set.
    pub fn configured_identity(&self) -> Option<Identity> {
        let config = self.repo.config().ok()?;
        let name = config.get_string("user.name").ok()?;
        let email = config.get_string("user.email").ok()?;
        Some(Identity { name, email })
    }

    /// The remote's default branch (what its HEAD points at).
    pub fn default_branch(&self) -> Result<String> {
        let mut remote = self.repo.find_remote(REMOTE)?;
        let url = remote.url().unwrap_or("?").to_string();
        let attempts = Cell::new(0);
        let connection = remote
            .connect_auth(Direction::Fetch, Some(self.callbacks(&attempts)), None)
            .map_err(|e| GitError(format!("cannot reach `{REMOTE}` ({url}): {}", e.message())))?;
        let head = connection.default_branch().map_err(|e| {
            GitError(format!(
                "cannot tell the default branch of `{REMOTE}` ({}); pass --base",
                e.message()
            ))
        })?;
        let name = head.as_str().unwrap_or_default();
        name.strip_prefix("refs/heads/")
            .map(str::to_string)
            .ok_or_else(|| GitError(format!("`{REMOTE}` HEAD is `{name}`, not a branch")))
    }

    /// `origin`'s default branch as this checkout last saw it (`refs/remotes/origin/HEAD`, which
    /// `git clone` and `git remote set-head` write), without asking `origin`.
    pub fn last_seen_default_branch(&self) -> Option<String> {
        let head = self
            .repo
            .find_reference(&format!("refs/remotes/{REMOTE}/HEAD"))
            .ok()?;
        let target = head.symbolic_target().ok()??;
        target
            .strip_prefix(&format!("refs/remotes/{REMOTE}/"))
            .map(str::to_string)
    }

    /// Fetches the base branch and every branch under `prefix` into `refs/remotes/origin/`
    /// (pruning the tool's branches that are gone), so the plan sees the remote as it is.
    pub fn fetch(&self, base: &str, prefix: &str) -> Result<()> {
        let mut remote = self.repo.find_remote(REMOTE)?;
        let attempts = Cell::new(0);
        let mut options = FetchOptions::new();
        options.remote_callbacks(self.callbacks(&attempts));
        options.prune(git2::FetchPrune::On);
        let specs = [
            format!("+refs/heads/{base}:refs/remotes/{REMOTE}/{base}"),
            format!("+refs/heads/{prefix}*:refs/remotes/{REMOTE}/{prefix}*"),
        ];
        remote
            .fetch(&specs, Some(&mut options), None)
            .map_err(|e| GitError(format!("cannot fetch from `{REMOTE}`: {}", e.message())))
    }

    /// Where `origin` had `branch` at the last fetch.
    pub fn remote_branch(&self, branch: &str) -> Option<Oid> {
        self.repo
            .refname_to_id(&format!("refs/remotes/{REMOTE}/{branch}"))
            .ok()
    }

    /// The bytes of `path` (relative to the root) in `commit`, if the file is there.
    pub fn file_at(&self, commit: Oid, path: &Path) -> Result<Option<Vec<u8>>> {
        let tree = self.repo.find_commit(commit)?.tree()?;
        match tree.get_path(path) {
            Ok(entry) => {
                let blob = self.repo.find_blob(entry.id())?;
                Ok(Some(blob.content().to_vec()))
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The tree id of `commit`, and its first parent.
    pub fn tree_and_parent(&self, commit: Oid) -> Result<(Oid, Option<Oid>)> {
        let commit = self.repo.find_commit(commit)?;
        Ok((commit.tree_id(), commit.parent_ids().next()))
    }

    /// The tree `base` would have with `files` (path relative to the root, new bytes) in it.
    pub fn tree_with(&self, base: Oid, files: &[(PathBuf, Vec<u8>)]) -> Result<Oid> {
        let base_tree = self.repo.find_commit(base)?.tree()?;
        let mut index = git2::Index::new()?;
        index.read_tree(&base_tree)?;
        for (path, bytes) in files {
            let blob = self.repo.blob(bytes)?;
            let mode = base_tree
                .get_path(path)
                .map(|e| e.filemode() as u32)
                .unwrap_or(0o100644);
            index.add(&index_entry(path, blob, mode, bytes.len()))?;
        }
        Ok(index.write_tree_to(&self.repo)?)
    }

    /// A commit of `tree` on top of `parent`; HEAD and every branch stay where they are.
    pub fn commit(&self, parent: Oid, tree: Oid, message: &str, who: &Identity) -> Result<Oid> {
        let signature = Signature::now(&who.name, &who.email)?;
        let parent = self.repo.find_commit(parent)?;
        let tree = self.repo.find_tree(tree)?;
        Ok(self
            .repo
            .commit(None, &signature, &signature, message, &tree, &[&parent])?)
    }

    /// The authors (`Name <email>`) of commits in `base..head` whose email is not `bot_email`.
    pub fn foreign_authors(&self, base: Oid, head: Oid, bot_email: &str) -> Result<Vec<String>> {
        let mut walk = self.repo.revwalk()?;
        walk.push(head)?;
        walk.hide(base)?;
        let mut foreign = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            for who in [commit.author(), commit.committer()] {
                let email = who.email().unwrap_or_default();
                if !email.eq_ignore_ascii_case(bot_email) {
                    let name = format!("{} <{email}>", who.name().unwrap_or_default());
                    if !foreign.contains(&name) {
                        foreign.push(name);
                    }
                }
            }
        }
        Ok(foreign)
    }

    /// Pushes every update in one push. A branch whose remote head is not the expected one is
    /// not pushed (`Stale`); the server's per-ref refusals come back as `Rejected`.
    pub fn push(&self, updates: &[BranchUpdate]) -> Result<HashMap<String, PushOutcome>> {
        let mut outcomes = HashMap::new();
        if updates.is_empty() {
            return Ok(outcomes);
        }
        let current = self.remote_heads()?;
        let mut ready = Vec::new();
        for u in updates {
            let found = current.get(&u.branch).copied();
            if found == u.expected {
                ready.push(u);
            } else {
                outcomes.insert(u.branch.clone(), PushOutcome::Stale { found });
            }
        }
        if ready.is_empty() {
            return Ok(outcomes);
        }
        let scratch: Vec<String> = ready
            .iter()
            .map(|u| format!("refs/kube-harden/{}", u.branch))
            .collect();
        for (u, name) in ready.iter().zip(&scratch) {
            self.repo
                .reference(name, u.new, true, "kube-harden: scratch ref for push")?;
        }
        let result = self.push_refs(&ready, &scratch, &mut outcomes);
        for name in &scratch {
            if let Ok(mut r) = self.repo.find_reference(name) {
                let _ = r.delete();
            }
        }
        result?;
        for u in &ready {
            if outcomes.get(&u.branch) == Some(&PushOutcome::Pushed) {
                let tracking = format!("refs/remotes/{REMOTE}/{}", u.branch);
                let _ = self
                    .repo
                    .reference(&tracking, u.new, true, "kube-harden: pushed");
            }
        }
        Ok(outcomes)
    }

    fn push_refs(
        &self,
        ready: &[&BranchUpdate],
        scratch: &[String],
        outcomes: &mut HashMap<String, PushOutcome>,
    ) -> Result<()> {
        let expected: HashMap<String, Option<Oid>> = ready
            .iter()
            .map(|u| (format!("refs/heads/{}", u.branch), u.expected))
            .collect();
        let refusals: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::new());
        let attempts = Cell::new(0);
        {
            let mut callbacks = self.callbacks(&attempts);
            // The race guard: the remote moved between the listing and the upload.
            callbacks.push_negotiation(|updates| {
                for u in updates {
                    let name = u.dst_refname().unwrap_or_default();
                    let want = expected.get(name).copied().flatten().unwrap_or(Oid::ZERO_SHA1);
                    if u.src() != want {
                        return Err(git2::Error::from_str(&format!(
                            "{name} moved on the remote during the push; nothing was pushed, run again"
                        )));
                    }
                }
                Ok(())
            });
            callbacks.push_update_reference(|name, status| {
                refusals
                    .borrow_mut()
                    .insert(name.to_string(), status.map(str::to_string));
                Ok(())
            });
            let mut options = PushOptions::new();
            options.remote_callbacks(callbacks);
            let specs: Vec<String> = ready
                .iter()
                .zip(scratch)
                .map(|(u, s)| format!("+{s}:refs/heads/{}", u.branch))
                .collect();
            let mut remote = self.repo.find_remote(REMOTE)?;
            remote
                .push(&specs, Some(&mut options))
                .map_err(|e| GitError(format!("push to `{REMOTE}` failed: {}", e.message())))?;
        }
        let refusals = refusals.into_inner();
        for u in ready {
            let outcome = match refusals.get(&format!("refs/heads/{}", u.branch)) {
                Some(None) => PushOutcome::Pushed,
                Some(Some(message)) => PushOutcome::Rejected(message.clone()),
                None => PushOutcome::Rejected("the server did not report this branch".into()),
            };
            outcomes.insert(u.branch.clone(), outcome);
        }
        Ok(())
    }

    /// The remote's branches right now (one connection, no objects transferred).
    fn remote_heads(&self) -> Result<HashMap<String, Oid>> {
        let mut remote = self.repo.find_remote(REMOTE)?;
        let attempts = Cell::new(0);
        let connection = remote
            .connect_auth(Direction::Push, Some(self.callbacks(&attempts)), None)
            .map_err(|e| GitError(format!("cannot connect to `{REMOTE}`: {}", e.message())))?;
        let heads = connection
            .list()?
            .iter()
            .filter_map(|h| {
                h.name()
                    .strip_prefix("refs/heads/")
                    .map(|b| (b.to_string(), h.oid()))
            })
            .collect();
        Ok(heads)
    }

    /// Credentials only when the transport asks, a bounded number of times (libgit2 asks again
    /// after a refusal, forever if the same answer keeps coming).
    fn callbacks<'a>(&'a self, attempts: &'a Cell<u32>) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(move |url, username, allowed| {
            attempts.set(attempts.get() + 1);
            if attempts.get() > 3 {
                return Err(git2::Error::from_str(&format!(
                    "authentication to {url} failed; check the token's permissions (contents: write)"
                )));
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return match (&self.token, attempts.get()) {
                    (Some(token), 1) => Cred::userpass_plaintext("x-access-token", token),
                    (Some(_), _) => Err(git2::Error::from_str(&format!(
                        "{url} refused the token; check that it may push (contents: write)"
                    ))),
                    (None, _) => {
                        let config = self.repo.config()?;
                        Cred::credential_helper(&config, url, username)
                    }
                };
            }
            if allowed.contains(CredentialType::SSH_KEY) {
                return Cred::ssh_key_from_agent(username.unwrap_or("git"));
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(username.unwrap_or("git"));
            }
            Cred::default()
        });
        callbacks
    }
}

fn index_entry(path: &Path, blob: Oid, mode: u32, size: usize) -> IndexEntry {
    let path = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: size as u32,
        id: blob,
        flags: (path.len().min(0xfff)) as u16,
        flags_extended: 0,
        path: path.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_name_and_email() {
        assert_eq!(
            Identity::parse("Kube Harden <bot@example.com>"),
            Some(Identity {
                name: "Kube Harden".into(),
                email: "bot@example.com".into()
            })
        );
        assert_eq!(Identity::parse("no email"), None);
        assert_eq!(Identity::parse("<a@b>"), None);
    }
}
