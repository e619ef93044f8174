//! Charts kept in git repositories (a Flux `GitRepository`, an Argo CD git `repoURL`): a
//! repository URL and a revision in (`spec.ref` or `targetRevision`: tag, branch, commit,
//! full ref, semver range over the tags, `HEAD`); the files of that commit, checked out in the
//! chart cache, out. It knows git, URLs and the cache; nothing of Kubernetes or of charts.
//!
//! The cache: `<root>/_git/<repository>/<commit>/` holds the checkout (`tree/`, without its
//! `.git`) and a record (`.kube-harden.json`); `<root>/_git/<repository>/.revisions/<ref>`
//! holds the commit a named revision last resolved to, for `--offline`. A commit folder is
//! built beside its place and renamed into it, so it appears whole or not at all.
//!
//! The network: a revision pinned to a commit that is cached asks nothing. A tag, branch, ref,
//! range or `HEAD` asks the remote for its refs (as `git ls-remote` does), then fetches only
//! the commit chosen, shallow (depth 1); where the server refuses a shallow fetch or a fetch
//! by commit id, everything is fetched. `--offline`: only the cache answers, a named revision
//! with the commit it resolved to when it was cached (the result says so). libgit2 has no
//! timeout per operation: its process-wide server connect and read timeouts are set, and a
//! transfer still running after the whole limit is cancelled from its progress callback.
//!
//! Credentials: the token `pr` uses, offered only where it is for (the scheme, host and port
//! of this repository's `origin`, and https://github.com), else the user's git credential
//! helpers; a token is never part of a message. SSH URLs are refused
//! with the reason (no agent or key is tried). The same repository and revision is checked
//! out once per run, and at most [`PARALLEL_FETCHES`] fetches run at a time.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, Cred, CredentialType, Direction, ErrorCode, FetchOptions, Oid, RemoteCallbacks,
    Repository,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::download::Timeouts;
use super::versions;

/// At most this many clones at once (each is a network transfer and a checkout on disk).
pub const PARALLEL_FETCHES: usize = 4;

const RECORD: &str = ".kube-harden.json";
const REVISIONS: &str = ".revisions";

/// The revision of a repository a release names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Revision {
    Branch(String),
    Tag(String),
    /// A commit id (full, lower-case hex).
    Commit(String),
    /// A semver range over the tags (Flux `semver`).
    Semver(String),
    /// A full ref name (Flux `name`, `refs/pull/1/head`).
    Ref(String),
    /// Argo CD's `targetRevision`: a tag, else a branch, else a semver range over the tags.
    Named(String),
    /// The remote's default branch.
    Head,
}

impl Revision {
    /// Argo CD's `targetRevision` (empty and `HEAD` mean the default branch).
    pub fn argo(text: &str) -> Revision {
        let text = text.trim();
        match text {
            "" | "HEAD" => Revision::Head,
            id if is_commit_id(id) => Revision::Commit(id.to_ascii_lowercase()),
            full if full.starts_with("refs/") => Revision::Ref(full.to_string()),
            name => Revision::Named(name.to_string()),
        }
    }

    /// A Flux `GitRepository`'s `spec.ref`, by its precedence (commit, then name, semver, tag,
    /// branch); none set means the `master` branch, as for Flux.
    pub fn flux(field: impl Fn(&str) -> Option<String>) -> Revision {
        let set = |key: &str| field(key).filter(|v| !v.trim().is_empty());
        if let Some(commit) = set("commit") {
            return Revision::Commit(commit.trim().to_ascii_lowercase());
        }
        if let Some(name) = set("name") {
            return match name.as_str() {
                "HEAD" => Revision::Head,
                _ => Revision::Ref(name),
            };
        }
        if let Some(range) = set("semver") {
            return Revision::Semver(range);
        }
        if let Some(tag) = set("tag") {
            return Revision::Tag(tag);
        }
        Revision::Branch(set("branch").unwrap_or_else(|| "master".into()))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revision::Branch(b) => write!(f, "branch {b}"),
            Revision::Tag(t) => write!(f, "tag {t}"),
            Revision::Commit(c) => write!(f, "commit {}", short(c)),
            Revision::Semver(r) => write!(f, "semver `{r}`"),
            Revision::Ref(r) => write!(f, "ref {r}"),
            Revision::Named(n) => write!(f, "revision {n}"),
            Revision::Head => write!(f, "HEAD"),
        }
    }
}

/// 40 (SHA-1) or 64 (SHA-256) hexadecimal digits.
fn is_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// The files of one commit, in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// The root of the checkout.
    pub dir: PathBuf,
    pub commit: String,
    /// How the revision resolved: "tag v1.0.0, commit 0123456789ab".
    pub resolved: String,
    /// Whether the cache answered without fetching.
    pub from_cache: bool,
    /// Offline: which cached commit stood in for a named revision.
    pub note: Option<String>,
}

/// The token offered to git servers, and the servers it is for (scheme, host and port). Its
/// `Debug` shows no token.
#[derive(Clone)]
pub struct Credentials {
    token: Option<String>,
    servers: Vec<String>,
    /// Where the token comes from, for messages (`GITHUB_TOKEN`).
    variable: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("servers", &self.servers)
            .finish()
    }
}

impl Default for Credentials {
    fn default() -> Credentials {
        Credentials::new(None, &[])
    }
}

impl Credentials {
    /// `token` for the servers of `urls` (`https://github.com`, an `origin` URL).
    pub fn new(token: Option<String>, urls: &[&str]) -> Credentials {
        Credentials {
            token: token.filter(|t| !t.is_empty()),
            servers: urls.iter().filter_map(|u| server(u)).collect(),
            variable: "GITHUB_TOKEN".into(),
        }
    }

    /// The same, with the token read from `variable` (messages name it).
    pub fn named(mut self, variable: &str) -> Credentials {
        self.variable = variable.to_string();
        self
    }

    /// The token, when `url` is on one of its servers.
    fn token_for(&self, url: &str) -> Option<&str> {
        let server = server(url)?;
        self.servers
            .contains(&server)
            .then_some(self.token.as_deref())
            .flatten()
    }
}

/// `https://host:443`: a URL's scheme, host and port (the default one when none is written).
fn server(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    Some(format!(
        "{}://{host}:{}",
        url.scheme(),
        url.port_or_known_default()?
    ))
}

/// A repository URL kube-harden may fetch from.
#[derive(Clone, Debug)]
struct Remote {
    url: String,
    /// As messages show it (a password masked).
    shown: String,
    /// Its folder in the cache: host, port and path with every other character as `_`.
    key: String,
}

impl Remote {
    fn parse(text: &str) -> Result<Remote, String> {
        let text = text.trim();
        let scp_like =
            !text.contains("://") && text.split_once(':').is_some_and(|(h, _)| !h.contains('/'));
        if text.starts_with("ssh://") || text.starts_with("git+ssh://") || scp_like {
            return Err("it is reached over SSH, and kube-harden fetches charts only over HTTPS, HTTP, git:// or file://".into());
        }
        let url = Url::parse(text).map_err(|e| format!("{text:?} is not a repository URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http" | "git" | "file") {
            return Err(format!(
                "its scheme `{}` is not one kube-harden fetches over (https, http, git, file)",
                url.scheme()
            ));
        }
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        // A host always leads, so the key is never empty nor a dot folder.
        let host = url.host_str().filter(|h| !h.is_empty()).unwrap_or("local");
        let port = url.port().map(|p| format!("_{p}")).unwrap_or_default();
        let path = url.path().trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let key = format!("{host}{port}{path}")
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
                _ => '_',
            })
            .collect::<String>()
            .trim_matches(['_', '.'])
            .to_string();
        Ok(Remote {
            url: text.to_string(),
            shown: shown.to_string(),
            key,
        })
    }
}

/// What a commit folder's record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    repository: String,
    commit: String,
}

type Once = Arc<OnceLock<Result<Checkout, String>>>;

/// Charts' git repositories, checked out under one folder.
pub struct GitCharts {
    root: PathBuf,
    offline: bool,
    timeouts: Timeouts,
    credentials: Credentials,
    /// One checkout per repository and revision per run.
    runs: Mutex<HashMap<(String, Revision), Once>>,
    slots: Slots,
}

impl GitCharts {
    /// Checkouts under `<chart_cache>/_git`, online, with the default timeouts.
    pub fn new(chart_cache: &Path) -> GitCharts {
        GitCharts {
            root: chart_cache.join("_git"),
            offline: false,
            timeouts: Timeouts::default(),
            credentials: Credentials::default(),
            runs: Mutex::new(HashMap::new()),
            slots: Slots::new(PARALLEL_FETCHES),
        }
    }

    pub fn offline(mut self, offline: bool) -> GitCharts {
        self.offline = offline;
        self
    }

    /// Also bounds libgit2's waits on a server, for the whole process (libgit2 keeps one
    /// setting).
    pub fn timeouts(mut self, timeouts: Timeouts) -> GitCharts {
        self.timeouts = timeouts;
        limit_server_waits(timeouts);
        self
    }

    pub fn credentials(mut self, credentials: Credentials) -> GitCharts {
        self.credentials = credentials;
        self
    }

    /// The files of `revision` of the repository at `url`. Blocking; the error says why in
    /// words (and never holds a token).
    pub fn checkout(&self, url: &str, revision: &Revision) -> Result<Checkout, String> {
        let once = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            runs.entry((url.trim().to_string(), revision.clone()))
                .or_default()
                .clone()
        };
        once.get_or_init(|| {
            let _slot = self.slots.take();
            self.checkout_now(url, revision)
        })
        .clone()
    }

    fn checkout_now(&self, url: &str, revision: &Revision) -> Result<Checkout, String> {
        let remote = Remote::parse(url)?;
        let dir = self.root.join(&remote.key);
        if let Revision::Commit(id) = revision {
            if !is_commit_id(id) {
                return Err(format!(
                    "`{id}` is not a full commit id (40 hexadecimal digits), and a commit is fetched by its full id"
                ));
            }
            if let Some(hit) = cached(&dir, &remote, id, revision) {
                return Ok(hit);
            }
        }
        if self.offline {
            return offline(&dir, &remote, revision);
        }
        let session = Session::new(self, &remote);
        let (commit, refname) = match revision {
            Revision::Commit(id) => (id.clone(), None),
            other => {
                let refs = session.list_refs()?;
                let (refname, commit) = resolve(&refs, other)?;
                (commit, Some(refname))
            }
        };
        let found = match cached(&dir, &remote, &commit, revision) {
            Some(hit) => hit,
            None => session.fetch_into(&dir, &commit, refname.as_deref(), revision)?,
        };
        if let Some(refname) = &refname {
            remember(&dir, refname, &commit);
        }
        Ok(found)
    }
}

/// Sets libgit2's connect and read timeouts, once per process, where nothing set them yet
/// (`pr` sets its own for the push, and those stay).
fn limit_server_waits(timeouts: Timeouts) {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        let millis = |d: Duration| libc::c_int::try_from(d.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: libgit2 reads these when it opens a connection; `Once` makes this the only
        // write from here, before the first fetch of the run.
        unsafe {
            use git2::opts;
            if opts::get_server_connect_timeout_in_milliseconds() == Ok(0) {
                let _ = opts::set_server_connect_timeout_in_milliseconds(millis(timeouts.connect));
            }
            if opts::get_server_timeout_in_milliseconds() == Ok(0) {
                let _ = opts::set_server_timeout_in_milliseconds(millis(timeouts.read));
            }
        }
    });
}

/// The cached checkout of `commit`, if whole.
fn cached(dir: &Path, remote: &Remote, commit: &str, revision: &Revision) -> Option<Checkout> {
    let slot = dir.join(commit);
    let text = fs::read(slot.join(RECORD)).ok()?;
    let record: Record = serde_json::from_slice(&text).ok()?;
    let whole = record.commit == commit && record.repository == remote.shown;
    (whole && slot.join("tree").is_dir()).then(|| Checkout {
        dir: slot.join("tree"),
        commit: commit.to_string(),
        resolved: resolved_text(revision, commit),
        from_cache: true,
        note: None,
    })
}

fn resolved_text(revision: &Revision, commit: &str) -> String {
    match revision {
        Revision::Commit(_) => format!("commit {}", short(commit)),
        other => format!("{other}, commit {}", short(commit)),
    }
}

/// Offline: a commit that is cached, or the commit a named revision last resolved to.
fn offline(dir: &Path, remote: &Remote, revision: &Revision) -> Result<Checkout, String> {
    let not_cached = || {
        format!(
            "{revision} of {} is not in the chart cache and the network is off (--offline)",
            remote.shown
        )
    };
    let remembered = remembered(dir);
    let (refname, commit) = match revision {
        Revision::Commit(_) => return Err(not_cached()),
        other => resolve(&remembered, other).map_err(|_| not_cached())?,
    };
    let mut hit = cached(dir, remote, &commit, revision).ok_or_else(not_cached)?;
    hit.note = Some(format!(
        "--offline: the commit {refname} had when it was cached; the remote was not asked"
    ));
    Ok(hit)
}

/// Records that `refname` resolved to `commit` (best effort: the cache works without it,
/// only `--offline` needs it).
fn remember(dir: &Path, refname: &str, commit: &str) {
    let folder = dir.join(REVISIONS);
    if fs::create_dir_all(&folder).is_err() {
        return;
    }
    let Ok(staging) = tempfile::NamedTempFile::new_in(&folder) else {
        return;
    };
    if fs::write(staging.path(), commit).is_ok() {
        let _ = staging.persist(folder.join(encode(refname)));
    }
}

/// The remembered revisions of a repository, as (ref name, commit) pairs.
fn remembered(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(dir.join(REVISIONS)) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = decode(&e.file_name().to_string_lossy())?;
            let commit = fs::read_to_string(e.path()).ok()?.trim().to_string();
            is_commit_id(&commit).then_some((name, commit))
        })
        .collect()
}

/// A ref name as one file name: `%` and `/` escaped.
fn encode(refname: &str) -> String {
    refname.replace('%', "%25").replace('/', "%2F")
}

fn decode(file: &str) -> Option<String> {
    let name = file.replace("%2F", "/").replace("%25", "%");
    (!file.starts_with('.') && (name == "HEAD" || name.starts_with("refs/"))).then_some(name)
}

/// The commit `revision` names among `refs` (ref name and commit; a peeled `^{}` entry gives
/// the commit of an annotated tag), with the ref it was found as.
fn resolve(refs: &[(String, String)], revision: &Revision) -> Result<(String, String), String> {
    let commits: HashMap<&str, &str> = peeled(refs);
    let find = |name: &str| commits.get(name).map(|c| (name.to_string(), c.to_string()));
    let tags: Vec<&str> = refs
        .iter()
        .filter_map(|(name, _)| name.strip_prefix("refs/tags/"))
        .map(|t| t.trim_end_matches("^{}"))
        .collect();
    let by_range = |range: &str| -> Result<Option<(String, String)>, String> {
        let chosen = versions::choose(range, &tags)?;
        Ok(chosen.and_then(|tag| find(&format!("refs/tags/{tag}"))))
    };
    let listed = || {
        let mut tags: Vec<&str> = tags.clone();
        tags.dedup();
        versions::sorted_descending(&tags).join(", ")
    };
    let found = match revision {
        Revision::Branch(b) => find(&format!("refs/heads/{b}")),
        Revision::Tag(t) => find(&format!("refs/tags/{t}")),
        Revision::Ref(r) => find(r),
        Revision::Head => find("HEAD"),
        Revision::Commit(c) => Some((c.clone(), c.clone())),
        Revision::Semver(range) => {
            by_range(range).map_err(|e| format!("its semver range `{range}` does not read: {e}"))?
        }
        Revision::Named(n) => find(&format!("refs/tags/{n}"))
            .or_else(|| find(&format!("refs/heads/{n}")))
            .or_else(|| by_range(n).ok().flatten()),
    };
    found.ok_or_else(|| match revision {
        Revision::Branch(b) => format!("the repository has no branch `{b}`"),
        Revision::Head => "the repository has no HEAD (it is empty)".into(),
        Revision::Ref(r) => format!("the repository has no ref `{r}`"),
        other => format!(
            "the repository has no {} (its tags: {})",
            match other {
                Revision::Named(n) => format!("tag or branch `{n}`"),
                Revision::Semver(r) => format!("tag that matches `{r}`"),
                other => other.to_string(),
            },
            match listed() {
                l if l.is_empty() => "none".into(),
                l => l,
            }
        ),
    })
}

/// Ref name -> commit, an annotated tag's peeled commit in place of the tag object.
fn peeled(refs: &[(String, String)]) -> HashMap<&str, &str> {
    let mut commits = HashMap::new();
    for (name, oid) in refs {
        if let Some(tag) = name.strip_suffix("^{}") {
            commits.insert(tag, oid.as_str());
        } else {
            commits.entry(name.as_str()).or_insert(oid.as_str());
        }
    }
    commits
}

/// One conversation with a remote: its credentials, its time limit.
struct Session<'a> {
    remote: &'a Remote,
    credentials: &'a Credentials,
    timeouts: Timeouts,
    started: Instant,
    timed_out: Cell<bool>,
}

impl<'a> Session<'a> {
    fn new(charts: &'a GitCharts, remote: &'a Remote) -> Session<'a> {
        Session {
            remote,
            credentials: &charts.credentials,
            timeouts: charts.timeouts,
            started: Instant::now(),
            timed_out: Cell::new(false),
        }
    }

    /// The remote's refs (`git ls-remote`).
    fn list_refs(&self) -> Result<Vec<(String, String)>, String> {
        let mut remote =
            git2::Remote::create_detached(self.remote.url.as_str()).map_err(|e| self.why(&e))?;
        let connection = remote
            .connect_auth(Direction::Fetch, Some(self.callbacks()), None)
            .map_err(|e| self.why(&e))?;
        let heads = connection.list().map_err(|e| self.why(&e))?;
        Ok(heads
            .iter()
            .map(|h| (h.name().to_string(), h.oid().to_string()))
            .collect())
    }

    /// Fetches `commit` (by `refname` when it has one), checks it out and moves it into the
    /// cache.
    fn fetch_into(
        &self,
        dir: &Path,
        commit: &str,
        refname: Option<&str>,
        revision: &Revision,
    ) -> Result<Checkout, String> {
        let cache_error = |e: std::io::Error| format!("the chart cache at {}: {e}", dir.display());
        fs::create_dir_all(dir).map_err(cache_error)?;
        // A signal removes it too: an interrupted fetch leaves nothing in the cache.
        let staging = crate::process::scratch_dir_in(dir, ".cloning-").map_err(cache_error)?;
        let tree = staging.path().join("tree");
        self.fetch_and_check_out(&tree, commit, refname)?;
        fs::remove_dir_all(tree.join(".git")).map_err(cache_error)?;
        let record = Record {
            repository: self.remote.shown.clone(),
            commit: commit.to_string(),
        };
        let text = serde_json::to_vec_pretty(&record).expect("a record serialises");
        fs::write(staging.path().join(RECORD), text).map_err(cache_error)?;
        let slot = dir.join(commit);
        if fs::rename(staging.path(), &slot).is_ok() {
            let _ = staging.keep();
        }
        // Else another run put the same commit in place meanwhile: theirs is as good.
        let mut checkout = cached(dir, self.remote, commit, revision).ok_or_else(|| {
            format!(
                "the chart cache at {}: the checkout did not land",
                slot.display()
            )
        })?;
        checkout.from_cache = false;
        Ok(checkout)
    }

    /// A new repository at `tree` with `commit` fetched (by `refname` when it has one:
    /// servers give an advertised ref to anyone, a bare commit id not always) and checked out.
    fn fetch_and_check_out(
        &self,
        tree: &Path,
        commit: &str,
        refname: Option<&str>,
    ) -> Result<(), String> {
        let repo = Repository::init(tree).map_err(|e| self.why(&e))?;
        let oid = Oid::from_str(commit).map_err(|e| self.why(&e))?;
        let wanted = match refname {
            Some(name) if name != "HEAD" && name != commit => name.to_string(),
            _ => commit.to_string(),
        };
        let shallow = self.fetch(&repo, &format!("+{wanted}:refs/kube-harden/wanted"), 1);
        if let Err(error) = shallow {
            if self.timed_out.get() {
                return Err(error);
            }
            // The server refuses a shallow fetch or a fetch by id: everything, then.
            self.fetch(&repo, "+refs/*:refs/kube-harden/all/*", 0)?;
        }
        let found = repo
            .find_commit(oid)
            .map_err(|_| format!("the repository has no commit {}", short(commit)))?;
        let mut options = git2::build::CheckoutBuilder::new();
        options.force();
        repo.checkout_tree(found.as_object(), Some(&mut options))
            .map_err(|e| {
                format!(
                    "the checkout of commit {} failed: {}",
                    short(commit),
                    e.message()
                )
            })
    }

    fn fetch(&self, repo: &Repository, refspec: &str, depth: i32) -> Result<(), String> {
        let mut remote = repo
            .remote_anonymous(&self.remote.url)
            .map_err(|e| self.why(&e))?;
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.callbacks())
            .download_tags(AutotagOption::None)
            .depth(depth);
        remote
            .fetch(&[refspec], Some(&mut options), None)
            .map_err(|e| self.why(&e))
    }

    /// Credentials when asked (a bounded number of times), and the whole-time limit.
    fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut callbacks = RemoteCallbacks::new();
        // Counted per connection: libgit2 asks again after a refusal, forever if the same
        // answer keeps coming.
        let attempts = Cell::new(0);
        callbacks.credentials(move |url, username, allowed| {
            attempts.set(attempts.get() + 1);
            let denied = |why: &str| Err(git2::Error::new(ErrorCode::Auth, git2::ErrorClass::Http, why));
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return denied("the server asks for credentials of a kind kube-harden does not give");
            }
            match (self.credentials.token_for(url), attempts.get()) {
                (Some(token), 1) => Cred::userpass_plaintext("x-access-token", token),
                (Some(_), _) => denied(&format!("the server refused the token ({})", self.credentials.variable)),
                (None, 1) => git2::Config::open_default()
                    .and_then(|config| Cred::credential_helper(&config, url, username))
                    .or_else(|_| denied(&format!("the server asks for credentials, and there are none for it ({} goes only to https://github.com and to the server of this repository's origin; no git credential helper answered)", self.credentials.variable))),
                (None, _) => denied("the server refused the credentials of the git credential helper"),
            }
        });
        let whole = self.timeouts.whole;
        callbacks.transfer_progress(move |_| {
            let late = self.started.elapsed() > whole;
            self.timed_out.set(late);
            !late
        });
        callbacks
    }

    /// A libgit2 error in words, without a URL's password.
    fn why(&self, error: &git2::Error) -> String {
        if self.timed_out.get() {
            return format!(
                "the fetch did not finish in {} (timed out; --engine-timeout)",
                crate::process::seconds(self.timeouts.whole)
            );
        }
        let message = error
            .message()
            .replace(&self.remote.url, &self.remote.shown);
        if message.contains("timed out") {
            return format!(
                "no answer within {} (timed out; --engine-timeout): {message}",
                crate::process::seconds(self.timeouts.read)
            );
        }
        match error.code() {
            ErrorCode::Auth => format!("access denied: {message}"),
            _ => match error.class() {
                git2::ErrorClass::Net | git2::ErrorClass::Os | git2::ErrorClass::Ssl => {
                    format!("unreachable: {message}")
                }
                _ => message,
            },
        }
    }
}

/// A counting semaphore: at most `n` holders at once.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn take(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// `path` (as a manifest writes it, relative) inside the checkout `root`: refused when it
/// leads outside, by `..` or through a symbolic link, or when a link under it points outside.
pub fn path_inside(root: &Path, path: &str) -> Result<PathBuf, String> {
    let outside = || format!("the path `{path}` leads outside the repository: refused");
    let mut inside = PathBuf::new();
    for part in Path::new(path.trim()).components() {
        match part {
            Component::Normal(name) => inside.push(name),
            Component::CurDir => {}
            Component::ParentDir if inside.pop() => {}
            _ => return Err(outside()),
        }
    }
    let joined = root.join(&inside);
    let Ok(real) = joined.canonicalize() else {
        return Ok(joined); // not there: the caller says what is missing
    };
    let real_root = root.canonicalize().map_err(|e| e.to_string())?;
    if !real.starts_with(&real_root) {
        return Err(outside());
    }
    match link_outside(&real, &real_root) {
        Some(link) => Err(format!(
            "the link {} under `{path}` points outside the repository: refused",
            link.strip_prefix(&real_root).unwrap_or(&link).display()
        )),
        None => Ok(joined),
    }
}

/// A symbolic link under `dir` whose target is outside `root` (or missing).
fn link_outside(dir: &Path, root: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_symlink() {
            if !path.canonicalize().is_ok_and(|t| t.starts_with(root)) {
                return Some(path);
            }
        } else if kind.is_dir() {
            if let Some(found) = link_outside(&path, root) {
                return Some(found);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn argo_revisions_are_read_as_argo_reads_them() {
        assert_eq!(Revision::argo(""), Revision::Head);
        assert_eq!(Revision::argo("HEAD"), Revision::Head);
        let id = "0123456789ABCDEF0123456789abcdef01234567";
        assert_eq!(
            Revision::argo(id),
            Revision::Commit(id.to_ascii_lowercase())
        );
        assert_eq!(Revision::argo("v1.2.0"), Revision::Named("v1.2.0".into()));
        assert_eq!(
            Revision::argo("refs/pull/1/head"),
            Revision::Ref("refs/pull/1/head".into())
        );
    }

    #[test]
    fn flux_refs_follow_flux_precedence() {
        fn of(pairs: &[(&str, &str)]) -> Revision {
            Revision::flux(|k| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            })
        }
        assert_eq!(of(&[]), Revision::Branch("master".into()));
        assert_eq!(
            of(&[("branch", "main"), ("tag", "v1")]),
            Revision::Tag("v1".into())
        );
        assert_eq!(
            of(&[("tag", "v1"), ("semver", "1.x")]),
            Revision::Semver("1.x".into())
        );
        let id = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            of(&[("branch", "main"), ("commit", id)]),
            Revision::Commit(id.into())
        );
        assert_eq!(
            of(&[("name", "refs/heads/x"), ("semver", "1.x")]),
            Revision::Ref("refs/heads/x".into())
        );
    }

    #[test]
    fn revisions_resolve_against_the_remote_refs() {
        let listed = refs(&[
            ("HEAD", "c3"),
            ("refs/heads/main", "c3"),
            ("refs/tags/v1.0.0", "t1"),
            ("refs/tags/v1.0.0^{}", "c1"),
            ("refs/tags/v1.1.0", "c2"),
            ("refs/tags/v2.0.0", "c3"),
        ]);
        let commit = |r: Revision| resolve(&listed, &r).map(|(_, c)| c);
        assert_eq!(
            commit(Revision::Tag("v1.0.0".into())).unwrap(),
            "c1",
            "peeled"
        );
        assert_eq!(commit(Revision::Branch("main".into())).unwrap(), "c3");
        assert_eq!(commit(Revision::Head).unwrap(), "c3");
        assert_eq!(commit(Revision::Semver("~1.0".into())).unwrap(), "c1");
        assert_eq!(commit(Revision::Semver("1.x".into())).unwrap(), "c2");
        assert_eq!(commit(Revision::Named("main".into())).unwrap(), "c3");
        assert_eq!(commit(Revision::Named(">=1.1 <2".into())).unwrap(), "c2");
        let missing = commit(Revision::Tag("v9.9.9".into())).unwrap_err();
        assert_eq!(
            missing,
            "the repository has no tag v9.9.9 (its tags: v2.0.0, v1.1.0, v1.0.0)"
        );
        let missing = commit(Revision::Named("v9".into())).unwrap_err();
        assert!(missing.contains("no tag or branch `v9`"), "{missing}");
        assert!(commit(Revision::Branch("dev".into()))
            .unwrap_err()
            .contains("no branch `dev`"));
    }

    #[test]
    fn ssh_and_unknown_schemes_are_refused_and_passwords_masked() {
        for ssh in ["git@github.com:acme/charts.git", "ssh://git@host/x.git"] {
            assert!(Remote::parse(ssh).unwrap_err().contains("SSH"), "{ssh}");
        }
        assert!(Remote::parse("ftp://host/x").unwrap_err().contains("ftp"));
        let remote =
            Remote::parse("https://user:secret@git.example.com:8443/acme/charts.git").unwrap();
        assert!(!remote.shown.contains("secret"), "{}", remote.shown);
        assert_eq!(remote.key, "git.example.com_8443_acme_charts");
        assert_eq!(
            Remote::parse("git://127.0.0.1:9418/charts.git")
                .unwrap()
                .key,
            "127.0.0.1_9418_charts"
        );
        assert_eq!(Remote::parse("file:///").unwrap().key, "local");
        assert_eq!(Remote::parse("file:///..").unwrap().key, "local");
    }

    #[test]
    fn the_token_goes_only_to_its_servers() {
        let credentials = Credentials::new(
            Some("t0ken".into()),
            &["https://GitHub.com", "http://127.0.0.1:8080/acme/fleet.git"],
        );
        assert_eq!(
            credentials.token_for("http://127.0.0.1:8080/acme/charts.git"),
            Some("t0ken")
        );
        assert_eq!(
            credentials.token_for("http://127.0.0.1:8081/acme/charts.git"),
            None
        );
        assert_eq!(
            credentials.token_for("https://github.com/acme/c.git"),
            Some("t0ken")
        );
        assert_eq!(credentials.token_for("http://github.com/acme/c.git"), None);
        assert_eq!(credentials.token_for("https://gitlab.com/acme/c.git"), None);
        assert!(!format!("{credentials:?}").contains("t0ken"));
    }

    #[test]
    fn a_short_commit_id_is_refused_before_any_fetch() {
        let cache = tempfile::tempdir().unwrap();
        let refused = GitCharts::new(cache.path())
            .checkout(
                "git://127.0.0.1:1/charts.git",
                &Revision::Commit("abc1234".into()),
            )
            .unwrap_err();
        assert!(refused.contains("not a full commit id"), "{refused}");
        assert!(!cache.path().join("_git").exists(), "nothing written");
    }

    #[test]
    fn ref_names_survive_as_file_names() {
        for name in ["refs/tags/v1.0.0", "refs/heads/feature/a%b", "HEAD"] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name));
        }
        assert_eq!(decode(".tmpXYZ"), None);
    }

    #[test]
    fn paths_outside_the_checkout_are_refused() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("charts/web/templates")).unwrap();
        assert!(path_inside(root.path(), "./charts/web").is_ok());
        assert!(path_inside(root.path(), "charts/x/../web").is_ok());
        for bad in ["../x", "/etc", "charts/../../x"] {
            assert!(
                path_inside(root.path(), bad)
                    .unwrap_err()
                    .contains("outside"),
                "{bad}"
            );
        }
        std::os::unix::fs::symlink("/etc", root.path().join("charts/web/templates/etc")).unwrap();
        let refused = path_inside(root.path(), "charts/web").unwrap_err();
        assert!(refused.contains("templates/etc"), "{refused}");
        std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
        assert!(path_inside(root.path(), "etc")
            .unwrap_err()
            .contains("outside"));
    }

    /// A repository on disk, made with libgit2: `files` committed on `main`, tagged `tag`.
    fn repository_with(dir: &Path, files: &[(&str, &str)], tag: &str) -> String {
        let repo = Repository::init(dir).unwrap();
        for (path, text) in files {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, text).unwrap();
        }
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("Dev", "dev@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = repo
            .commit(Some("HEAD"), &who, &who, "chart", &tree, &parents)
            .unwrap();
        repo.tag_lightweight(tag, &repo.find_object(id, None).unwrap(), false)
            .unwrap();
        id.to_string()
    }

    #[test]
    fn a_tag_is_fetched_once_then_the_cache_answers_even_offline() {
        let remote_dir = tempfile::tempdir().unwrap();
        let first = repository_with(
            remote_dir.path(),
            &[("charts/web/Chart.yaml", "name: web\n")],
            "v1.0.0",
        );
        repository_with(
            remote_dir.path(),
            &[("charts/web/Chart.yaml", "name: web2\n")],
            "v2.0.0",
        );
        let url = Url::from_directory_path(remote_dir.path())
            .unwrap()
            .to_string();
        let cache = tempfile::tempdir().unwrap();
        let charts = GitCharts::new(cache.path());
        let tag = Revision::Tag("v1.0.0".into());
        let got = charts.checkout(&url, &tag).unwrap();
        assert_eq!(got.commit, first);
        assert!(!got.from_cache);
        assert_eq!(
            fs::read_to_string(got.dir.join("charts/web/Chart.yaml")).unwrap(),
            "name: web\n",
            "the tagged commit's files, not the branch's"
        );
        assert!(!got.dir.join(".git").exists());
        // The same revision again in this run: the first answer (a second fetch would have
        // found the cache and said so).
        assert_eq!(charts.checkout(&url, &tag).unwrap(), got, "once per run");
        // A commit that is no tip: fetched by id, or with everything where the server refuses.
        let elsewhere = tempfile::tempdir().unwrap();
        let pinned = GitCharts::new(elsewhere.path())
            .checkout(&url, &Revision::Commit(first.clone()))
            .unwrap();
        assert_eq!(
            (pinned.commit.as_str(), pinned.from_cache),
            (first.as_str(), false)
        );
        assert!(pinned.dir.join("charts/web/Chart.yaml").is_file());
        // A new run with the remote gone: the commit answers; the tag only offline.
        fs::remove_dir_all(remote_dir.path()).unwrap();
        let again = GitCharts::new(cache.path());
        let by_commit = again
            .checkout(&url, &Revision::Commit(first.clone()))
            .unwrap();
        assert!(by_commit.from_cache);
        let gone = again.checkout(&url, &tag).unwrap_err();
        assert!(
            gone.contains("unreachable"),
            "a tag asks the remote: {gone}"
        );
        let offline = GitCharts::new(cache.path()).offline(true);
        let hit = offline
            .checkout(&url, &Revision::Named("v1.0.0".into()))
            .unwrap();
        assert_eq!(hit.commit, first);
        assert!(hit
            .note
            .unwrap()
            .contains("the commit refs/tags/v1.0.0 had when it was cached"));
        let missing = offline
            .checkout(&url, &Revision::Tag("v2.0.0".into()))
            .unwrap_err();
        assert!(missing.contains("not in the chart cache"), "{missing}");
        assert!(missing.contains("--offline"), "{missing}");
    }
}
