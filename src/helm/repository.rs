//! Fetching a chart from an HTTP chart repository into a local cache, for the sources that
//! read the Helm values a GitOps release carries (Flux `HelmRelease`, Argo CD `Application`):
//! a repository URL, a chart name and a version or range in; the unpacked chart folder out.
//! It knows nothing of Kubernetes objects or YAML editing.
//!
//! The steps, as Helm takes them: `<repository>/index.yaml` is read; the version is chosen as
//! `helm pull --version` chooses it ([`versions`]); the archive's URL is taken from the entry
//! (relative to the repository, or absolute); the archive must have the SHA-256 the index
//! gives (an entry without a digest is taken as Helm takes it, unverified, and its digest is
//! recorded); it is unpacked safely ([`archive`]) into the cache ([`cache`]). An exact version
//! that is in the cache is answered without the network; a range always asks the index (the
//! highest match may be new), then reuses the cached archive when its digest is the index's.
//! A chart in an OCI registry (`oci://…`) is got through [`crate::registry`] ([`oci`]), with
//! the user's registry credentials; at most [`MAX_PARALLEL_FETCHES`] registry fetches run at
//! once, however many threads ask.

mod archive;
mod cache;
mod download;
pub mod git;
mod index;
mod oci;
mod versions;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use url::Url;

pub use download::Timeouts;
pub use oci::CHART_LAYER;

use cache::{Record, VersionSlot};
use download::{DownloadError, Downloader};
use index::{IndexEntry, Repository};

/// The most an `index.yaml` may weigh (the largest public indexes are tens of MiB).
const MAX_INDEX_BYTES: u64 = 200 * 1024 * 1024;
/// The most a chart archive may weigh (Helm refuses charts that unpack to more than 100 MiB).
const MAX_ARCHIVE_BYTES: u64 = 100 * 1024 * 1024;
/// The most registry fetches at once: the pipeline plans files on every core, and a fleet of
/// releases must not open a connection per release to one registry.
pub const MAX_PARALLEL_FETCHES: usize = 4;

/// A chart as a release names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRef {
    /// The chart repository: `https://charts.example.com/stable` (trailing slashes are fine).
    pub repo_url: String,
    /// The chart's name in the repository's index.
    pub name: String,
    /// An exact version (`1.2.3`, `v1.2.3`) or a Helm range (`1.x`, `~1.2`, `^1.2`,
    /// `>=1.2 <2`, `*`); empty means the highest release, as for Helm.
    pub version: String,
}

impl ChartRef {
    pub fn new(
        repo_url: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
    ) -> ChartRef {
        ChartRef {
            repo_url: repo_url.into(),
            name: name.into(),
            version: version.into(),
        }
    }
}

/// A chart unpacked in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedChart {
    /// The chart's folder (it holds `Chart.yaml`).
    pub dir: PathBuf,
    pub name: String,
    /// The version chosen, as the index spells it.
    pub version: String,
    /// SHA-256 of the archive, lower-case hex.
    pub digest: String,
    /// Where the archive came from (a password in it is masked).
    pub url: String,
    /// Whether the cache answered without downloading the archive.
    pub from_cache: bool,
}

/// Why a chart could not be had. Each message names the URL concerned.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url:?} is not a chart repository URL: {reason}")]
    BadUrl { url: String, reason: String },
    /// An OCI registry's answer (the message names the reference; it never holds a secret).
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("{name:?} is not a chart name: {reason}")]
    BadChartName { name: String, reason: String },
    #[error("chart {name}: {version:?} is not a version or a version range Helm reads: {reason}")]
    BadVersion {
        name: String,
        version: String,
        reason: String,
    },
    #[error("could not download {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {}", status_text(*.status))]
    HttpStatus { url: String, status: u16 },
    #[error("{url} is larger than {} MiB, the most kube-harden downloads", .limit / (1024 * 1024))]
    TooLarge { url: String, limit: u64 },
    #[error("{url} is not a usable chart repository index: {reason}")]
    BadIndex { url: String, reason: String },
    #[error("the chart repository {url} has no chart named {name:?}")]
    ChartNotInIndex { url: String, name: String },
    #[error(
        "the chart repository {url} has no version of {name} that matches {version:?}; \
         it has {}", version_list(.available)
    )]
    NotInIndex {
        url: String,
        name: String,
        version: String,
        /// Every version the index lists for the chart, highest first.
        available: Vec<String>,
    },
    #[error(
        "{url} is not the archive the repository index lists: its SHA-256 is {actual}, the \
         index says {expected}; it was neither used nor cached"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("the chart archive {url} was refused: {reason}")]
    BadArchive { url: String, reason: String },
    #[error(
        "chart {name} {version:?} from {url} is not in the cache and the network is off \
         (cached versions: {})", version_list(.cached)
    )]
    NotCached {
        url: String,
        name: String,
        version: String,
        cached: Vec<String>,
    },
    #[error("the chart cache at {}: {source}", .path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::registry::ReferenceError> for FetchError {
    fn from(error: crate::registry::ReferenceError) -> Self {
        FetchError::Registry(error.into())
    }
}

/// `404 Not Found` for 404.
fn status_text(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// A version list short enough for a message.
fn version_list(versions: &[String]) -> String {
    const SHOWN: usize = 20;
    if versions.is_empty() {
        return "none".into();
    }
    let mut text = versions[..versions.len().min(SHOWN)].join(", ");
    if versions.len() > SHOWN {
        text.push_str(&format!(" and {} more", versions.len() - SHOWN));
    }
    text
}

/// Charts fetched from HTTP chart repositories, kept under one folder.
pub struct ChartCache {
    root: PathBuf,
    offline: bool,
    timeouts: Timeouts,
    /// Built on the first download, so that cache hits start no client.
    downloader: OnceLock<Result<Downloader, String>>,
    /// How OCI registries are asked (the user's credentials, the timeouts).
    registry_settings: crate::registry::Settings,
    /// Built on the first registry request.
    registry: OnceLock<Result<crate::registry::Client, String>>,
    /// Registry fetches running now (at most [`MAX_PARALLEL_FETCHES`]).
    running: (Mutex<usize>, Condvar),
}

/// A running registry fetch; its end lets the next one start.
struct Permit<'a>(&'a (Mutex<usize>, Condvar));

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let (count, ended) = self.0;
        *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        ended.notify_one();
    }
}

impl ChartCache {
    /// A cache under `root` (created when needed), online, with the default timeouts.
    pub fn new(root: PathBuf) -> ChartCache {
        ChartCache {
            root,
            offline: false,
            timeouts: Timeouts::default(),
            downloader: OnceLock::new(),
            registry_settings: crate::registry::Settings {
                credentials: crate::registry::CredentialStore::from_env(),
                ..Default::default()
            },
            registry: OnceLock::new(),
            running: (Mutex::new(0), Condvar::new()),
        }
    }

    /// Registries besides loopback spoken to over plain HTTP (`HOST[:PORT]`).
    pub fn insecure_registries(mut self, registries: Vec<String>) -> ChartCache {
        self.registry_settings.insecure_registries = registries;
        self
    }

    /// Where registry credentials come from (the process environment's places by default).
    pub fn registry_credentials(
        mut self,
        credentials: crate::registry::CredentialStore,
    ) -> ChartCache {
        self.registry_settings.credentials = credentials;
        self
    }

    /// `$XDG_CACHE_HOME/kube-harden/charts`, else `~/.cache/kube-harden/charts`.
    pub fn default_root() -> PathBuf {
        cache_home(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
            .join("kube-harden")
            .join("charts")
    }

    /// Offline, only the cache answers: an exact version that is there, or the highest cached
    /// version that matches a range.
    pub fn offline(mut self, offline: bool) -> ChartCache {
        self.offline = offline;
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> ChartCache {
        self.timeouts = timeouts;
        self.registry_settings.timeouts = timeouts;
        self
    }

    /// Whether only the cache answers (`--offline`).
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A chart archive found in the repository being fixed (a vendored `.tgz`), unpacked into
    /// the cache under its SHA-256 (`local/<digest>/`), with the same refusals as a download.
    pub fn unpack_local(&self, archive: &Path) -> Result<FetchedChart, FetchError> {
        use sha2::{Digest, Sha256};
        let url = archive.display().to_string();
        let bytes = std::fs::read(archive).map_err(|e| FetchError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let digest = format!("{:x}", Sha256::digest(&bytes));
        let slot = self.root.join("local").join(&digest);
        let chart_dir = slot.join("chart");
        if !chart_dir.join("Chart.yaml").is_file() {
            std::fs::create_dir_all(&self.root).map_err(|e| cache::cache_error(&self.root, e))?;
            let fresh = crate::process::scratch_dir_in(&self.root, ".unpacking-")
                .map_err(|e| cache::cache_error(&self.root, e))?;
            archive::unpack(&bytes, &fresh.path().join("chart")).map_err(|reason| {
                FetchError::BadArchive {
                    url: url.clone(),
                    reason,
                }
            })?;
            std::fs::create_dir_all(slot.parent().unwrap_or(&self.root))
                .map_err(|e| cache::cache_error(&slot, e))?;
            // Another run may have put it there meanwhile: then theirs is as good.
            let _ = std::fs::rename(fresh.keep(), &slot);
        }
        let (name, version) = chart_name_and_version(&chart_dir);
        Ok(FetchedChart {
            dir: chart_dir,
            name,
            version,
            digest,
            url,
            from_cache: true,
        })
    }

    /// The chart `chart` names, from the cache or from its repository. Blocking: call it from
    /// a plain thread, not from inside an async runtime.
    pub fn fetch(&self, chart: &ChartRef) -> Result<FetchedChart, FetchError> {
        if chart.repo_url.trim().starts_with("oci://") {
            return oci::fetch(self, chart);
        }
        let repository = Repository::parse(&chart.repo_url)?;
        check_chart_name(&chart.name)?;
        let chart_dir = self.root.join(repository.cache_key()).join(&chart.name);
        if let Some(hit) = cached_exact(&repository, &chart_dir, chart) {
            return Ok(hit);
        }
        if self.offline {
            return cached_match(&repository, &chart_dir, chart);
        }
        let entry = self.choose_entry(&repository, chart)?;
        self.fetch_entry(&repository, &chart_dir, chart, &entry)
    }

    /// The index entry of the version `chart` asks for.
    fn choose_entry(
        &self,
        repository: &Repository,
        chart: &ChartRef,
    ) -> Result<IndexEntry, FetchError> {
        let index_url = repository.index_url();
        let text = self.download(&index_url, MAX_INDEX_BYTES)?;
        let entries = index::entries_of(&text, &chart.name)
            .map_err(|reason| bad_index(&index_url, reason))?
            .ok_or_else(|| FetchError::ChartNotInIndex {
                url: repository.shown(),
                name: chart.name.clone(),
            })?;
        let listed: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
        let chosen = versions::choose(&chart.version, &listed)
            .map_err(|reason| bad_version(chart, reason))?
            .ok_or_else(|| FetchError::NotInIndex {
                url: repository.shown(),
                name: chart.name.clone(),
                version: chart.version.clone(),
                available: versions::sorted_descending(&listed),
            })?;
        Ok(entries
            .iter()
            .find(|e| e.version == chosen)
            .expect("the chosen version is listed")
            .clone())
    }

    /// The entry's chart: the cached copy when its digest is the index's, else downloaded,
    /// verified and unpacked into the cache.
    fn fetch_entry(
        &self,
        repository: &Repository,
        chart_dir: &Path,
        chart: &ChartRef,
        entry: &IndexEntry,
    ) -> Result<FetchedChart, FetchError> {
        let index_url = repository.index_url();
        let folder = version_folder(&entry.version).ok_or_else(|| {
            bad_index(
                &index_url,
                format!("version {:?} cannot name a folder", entry.version),
            )
        })?;
        let expected = index::expected_digest(entry).map_err(|r| bad_index(&index_url, r))?;
        let slot = VersionSlot::new(chart_dir, &chart.name, &folder);
        if let Some(record) = slot.record(&repository.shown()) {
            if expected.as_ref().is_none_or(|d| *d == record.digest) {
                return Ok(fetched(chart, &slot, record, true));
            }
        }
        let url = archive_url(repository, entry)?;
        let shown_url = index::shown(&url).to_string();
        let archive = self.download(&url, MAX_ARCHIVE_BYTES)?;
        let digest = sha256_hex(&archive);
        if let Some(expected) = expected.filter(|e| *e != digest) {
            return Err(FetchError::DigestMismatch {
                url: shown_url,
                expected,
                actual: digest,
            });
        }
        let record = Record {
            repository: repository.shown(),
            version: entry.version.clone(),
            url: shown_url.clone(),
            digest,
        };
        slot.install(&record, |dir| {
            archive::unpack(&archive, dir).map_err(|reason| FetchError::BadArchive {
                url: shown_url.clone(),
                reason,
            })
        })?;
        Ok(fetched(chart, &slot, record, false))
    }

    /// The registry client, built on first use; `shown` names the chart for a setup error.
    fn registry_client(&self, shown: &str) -> Result<&crate::registry::Client, FetchError> {
        self.registry
            .get_or_init(|| oci::new_client(self.registry_settings.clone()))
            .as_ref()
            .map_err(|reason| FetchError::Unreachable {
                url: shown.to_string(),
                reason: reason.clone(),
            })
    }

    /// Waits until fewer than [`MAX_PARALLEL_FETCHES`] registry fetches run.
    fn permit(&self) -> Permit<'_> {
        let (count, ended) = &self.running;
        let mut running = count.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= MAX_PARALLEL_FETCHES {
            running = ended.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        Permit(&self.running)
    }

    fn download(&self, url: &Url, limit: u64) -> Result<Vec<u8>, FetchError> {
        let shown = index::shown(url).to_string();
        let downloader = self
            .downloader
            .get_or_init(|| Downloader::new(self.timeouts))
            .as_ref()
            .map_err(|reason| FetchError::Unreachable {
                url: shown.clone(),
                reason: reason.clone(),
            })?;
        downloader.get(url, limit).map_err(|error| match error {
            DownloadError::Unreachable(reason) => FetchError::Unreachable { url: shown, reason },
            DownloadError::Status(status) => FetchError::HttpStatus {
                url: shown,
                status: status.as_u16(),
            },
            DownloadError::TooLarge => FetchError::TooLarge { url: shown, limit },
        })
    }
}

/// The cache's base folder: `$XDG_CACHE_HOME` when it is absolute (the XDG rule), else
/// `$HOME/.cache`, else the system's temporary folder.
fn cache_home(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    let absolute =
        |dir: Option<std::ffi::OsString>| dir.map(PathBuf::from).filter(|d| d.is_absolute());
    absolute(xdg_cache_home)
        .or_else(|| absolute(home).map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}

/// An exact version already in the cache: no network at all.
fn cached_exact(
    repository: &Repository,
    chart_dir: &Path,
    chart: &ChartRef,
) -> Option<FetchedChart> {
    let version = versions::exact(&chart.version)?;
    let slot = VersionSlot::new(chart_dir, &chart.name, &version.to_string());
    let record = slot.record(&repository.shown())?;
    Some(fetched(chart, &slot, record, true))
}

/// Offline: the highest cached version that `chart` matches.
fn cached_match(
    repository: &Repository,
    chart_dir: &Path,
    chart: &ChartRef,
) -> Result<FetchedChart, FetchError> {
    let cached = cache::cached_versions(chart_dir, &chart.name, &repository.shown());
    let listed: Vec<&str> = cached.iter().map(|(_, r)| r.version.as_str()).collect();
    let chosen = versions::choose(&chart.version, &listed).map_err(|r| bad_version(chart, r))?;
    let Some((folder, record)) = chosen.and_then(|v| cached.iter().find(|(_, r)| r.version == v))
    else {
        return Err(FetchError::NotCached {
            url: repository.shown(),
            name: chart.name.clone(),
            version: chart.version.clone(),
            cached: versions::sorted_descending(&listed),
        });
    };
    let slot = VersionSlot::new(chart_dir, &chart.name, folder);
    Ok(fetched(chart, &slot, record.clone(), true))
}

fn fetched(chart: &ChartRef, slot: &VersionSlot, record: Record, from_cache: bool) -> FetchedChart {
    FetchedChart {
        dir: slot.chart_dir(),
        name: chart.name.clone(),
        version: record.version,
        digest: record.digest,
        url: record.url,
        from_cache,
    }
}

/// A chart name becomes a folder name: letters, digits, `.`, `_`, `-`, not starting with `.`.
fn check_chart_name(name: &str) -> Result<(), FetchError> {
    let bad = |reason: &str| FetchError::BadChartName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if !is_safe_segment(name) {
        return Err(bad(
            "a chart name has only letters, digits, '.', '_' and '-', and does not start with '.'",
        ));
    }
    Ok(())
}

fn is_safe_segment(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}

/// A version's folder in the cache: the version without a `v` (so that `1.2.3` and `v1.2.3`
/// requests find it), or the listed text when it is not a version but a safe name.
fn version_folder(listed: &str) -> Option<String> {
    match versions::parse_version(listed) {
        Some(version) => Some(version.to_string()),
        None => is_safe_segment(listed.trim()).then(|| listed.trim().to_string()),
    }
}

/// The archive URL of an entry: its first `urls` item, as Helm takes it.
fn archive_url(repository: &Repository, entry: &IndexEntry) -> Result<Url, FetchError> {
    let index_url = repository.index_url();
    let listed = entry
        .urls
        .as_ref()
        .and_then(|urls| urls.first())
        .ok_or_else(|| {
            bad_index(
                &index_url,
                format!("version {} lists no archive URL", entry.version),
            )
        })?;
    repository
        .archive_url(listed)
        .map_err(|reason| bad_index(&index_url, reason))
}

fn bad_index(index_url: &Url, reason: String) -> FetchError {
    FetchError::BadIndex {
        url: index::shown(index_url).to_string(),
        reason,
    }
}

fn bad_version(chart: &ChartRef, reason: String) -> FetchError {
    FetchError::BadVersion {
        name: chart.name.clone(),
        version: chart.version.clone(),
        reason,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `name` and `version` of a chart folder's Chart.yaml (empty when unreadable).
fn chart_name_and_version(dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap_or_default();
    let value: yaml_serde::Value = yaml_serde::from_str(&text).unwrap_or_default();
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_f64().map(|f| f.to_string()))
            })
            .unwrap_or_default()
    };
    (field("name"), field("version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_lives_under_xdg_cache_home_else_home() {
        let base = |xdg: Option<&str>, home: Option<&str>| {
            cache_home(xdg.map(Into::into), home.map(Into::into))
        };
        assert_eq!(base(Some("/xdg"), Some("/home/u")), PathBuf::from("/xdg"));
        assert_eq!(base(None, Some("/home/u")), PathBuf::from("/home/u/.cache"));
        // The XDG rule: a relative XDG_CACHE_HOME is ignored.
        assert_eq!(
            base(Some("rel"), Some("/home/u")),
            PathBuf::from("/home/u/.cache")
        );
        assert_eq!(base(None, None), std::env::temp_dir());
    }

    #[test]
    fn chart_names_must_be_folder_names() {
        for good in ["nginx", "ingress-nginx", "my_chart.v2"] {
            assert!(check_chart_name(good).is_ok(), "{good}");
        }
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "x y", "../etc"] {
            assert!(check_chart_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn version_folders_drop_the_v_and_refuse_unsafe_text() {
        assert_eq!(version_folder("v1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(version_folder("1.2").as_deref(), Some("1.2.0"));
        assert_eq!(
            version_folder("1.2.3+build.5").as_deref(),
            Some("1.2.3+build.5")
        );
        assert_eq!(version_folder("nightly").as_deref(), Some("nightly"));
        assert_eq!(version_folder("../../x"), None);
        assert_eq!(version_folder(".."), None);
    }

    #[test]
    fn version_lists_in_messages_are_cut_short() {
        let many: Vec<String> = (0..25).rev().map(|i| format!("1.{i}.0")).collect();
        let text = version_list(&many);
        assert!(text.starts_with("1.24.0, 1.23.0"), "{text}");
        assert!(text.ends_with("1.5.0 and 5 more"), "{text}");
        assert_eq!(version_list(&[]), "none");
    }

    #[test]
    fn the_digest_is_sha256_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_cache_can_be_shared_by_the_parallel_pipeline() {
        fn shareable<T: Send + Sync>() {}
        shareable::<ChartCache>();
        shareable::<FetchError>();
    }

    #[test]
    fn registry_fetches_wait_for_a_permit_beyond_the_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = ChartCache::new(PathBuf::from("/nonexistent"));
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..3 * MAX_PARALLEL_FETCHES {
                scope.spawn(|| {
                    let _permit = cache.permit();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), MAX_PARALLEL_FETCHES);
        assert_eq!(*cache.running.0.lock().unwrap(), 0, "every permit returned");
    }

    #[test]
    fn an_oci_chart_offline_and_not_cached_is_named_without_the_network() {
        let root = tempfile::tempdir().unwrap();
        let cache = ChartCache::new(root.path().join("charts")).offline(true);
        let error = cache
            .fetch(&ChartRef::new("oci://ghcr.io/acme/charts", "demo", "1.0.0"))
            .unwrap_err();
        assert!(matches!(error, FetchError::NotCached { .. }), "{error}");
        assert!(
            error.to_string().contains("oci://ghcr.io/acme/charts/demo"),
            "{error}"
        );
        assert!(cache.registry.get().is_none(), "no client was built");
    }
}
