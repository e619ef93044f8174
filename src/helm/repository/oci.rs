//! Charts in OCI registries, got as `helm pull oci://…` gets them: the reference is the
//! repository URL joined with the chart's name; the version is a digest, an exact tag (Helm
//! writes a version's `+` as `_` in tags), or a range chosen against the registry's tag list;
//! the manifest's chart layer (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`) is
//! downloaded with its digest checked ([`crate::registry`]) and unpacked safely into the cache
//! under `oci/<registry>/<repository>/<version>/`. The cache answers an exact tag or a digest
//! without the network, and a range's chosen tag when the layer's digest is the cached one.

use std::path::{Path, PathBuf};

use crate::registry::{Client, Reference};

use super::cache::{self, Record, VersionSlot};
use super::{
    archive, bad_version, check_chart_name, fetched, versions, ChartCache, ChartRef, FetchError,
    FetchedChart, MAX_ARCHIVE_BYTES,
};

/// The layer that holds the chart archive.
pub const CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// What a release asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// `sha256:…` (or `tag@sha256:…`): one manifest, for ever.
    Digest(String),
    /// A tag as the registry spells it (`1.2.3`, `1.2.3_build.1`, `latest`).
    Tag(String),
    /// A Helm range (or empty: the highest version), chosen against the tag list.
    Range(String),
}

/// The chart `chart` names in an OCI registry (`chart.repo_url` starts with `oci://`).
pub(super) fn fetch(cache: &ChartCache, chart: &ChartRef) -> Result<FetchedChart, FetchError> {
    check_chart_name(&chart.name)?;
    let repository = Reference::repository(&chart.repo_url)
        .and_then(|r| r.join(&chart.name))
        .map_err(|e| FetchError::BadUrl {
            url: without_user_info(&chart.repo_url),
            reason: e
                .reason
                .replace(&chart.repo_url, &without_user_info(&chart.repo_url)),
        })?;
    let place = Place::new(cache.root(), &repository);
    match wanted(&chart.version).map_err(|reason| bad_version(chart, reason))? {
        Wanted::Digest(digest) => {
            let slot = place.slot(chart, &format!("sha256-{}", hex_of(&digest)));
            if let Some(record) = slot.record(&place.shown) {
                return Ok(fetched(chart, &slot, record, true));
            }
            if cache.offline {
                return Err(place.not_cached(chart));
            }
            let reference = repository.with_digest(&digest)?;
            place.download(cache, chart, &slot, &reference, None)
        }
        Wanted::Tag(tag) => {
            let version = tag.replace('_', "+");
            let folder = super::version_folder(&version).ok_or_else(|| {
                bad_version(chart, format!("the tag {tag:?} cannot name a folder"))
            })?;
            let slot = place.slot(chart, &folder);
            if let Some(record) = slot.record(&place.shown) {
                return Ok(fetched(chart, &slot, record, true));
            }
            if cache.offline {
                return Err(place.not_cached(chart));
            }
            let reference = repository.with_tag(&tag)?;
            place.download(cache, chart, &slot, &reference, Some(version))
        }
        Wanted::Range(range) if cache.offline => place.highest_cached(chart, &range),
        Wanted::Range(range) => {
            let client = cache.registry_client(&place.shown)?;
            let tags = client.tags(&repository)?;
            let versions: Vec<String> = tags.iter().map(|t| t.replace('_', "+")).collect();
            let listed: Vec<&str> = versions.iter().map(String::as_str).collect();
            let chosen = versions::choose(&range, &listed)
                .map_err(|reason| bad_version(chart, reason))?
                .ok_or_else(|| FetchError::NotInIndex {
                    url: place.shown.clone(),
                    name: chart.name.clone(),
                    version: range.clone(),
                    available: versions::sorted_descending(&listed),
                })?
                .to_string();
            let folder = super::version_folder(&chosen).ok_or_else(|| {
                bad_version(chart, format!("the tag {chosen:?} cannot name a folder"))
            })?;
            let slot = place.slot(chart, &folder);
            let reference = repository.with_tag(&chosen.replace('+', "_"))?;
            place.download(cache, chart, &slot, &reference, Some(chosen))
        }
    }
}

/// A digest, an exact version (a tag), a range, or a tag that is no version (`latest`).
fn wanted(version: &str) -> Result<Wanted, String> {
    let version = version.trim();
    if let Some((_, digest)) = version.split_once('@') {
        return Ok(Wanted::Digest(digest.to_string()));
    }
    if version.starts_with("sha256:") {
        return Ok(Wanted::Digest(version.to_string()));
    }
    if versions::exact(version).is_some() {
        let version = version.strip_prefix('=').unwrap_or(version).trim();
        return Ok(Wanted::Tag(version.replace('+', "_")));
    }
    match versions::choose(version, &[]) {
        Ok(_) => Ok(Wanted::Range(version.to_string())),
        Err(_) if is_plain_tag(version) => Ok(Wanted::Tag(version.to_string())),
        Err(reason) => Err(reason),
    }
}

/// `oci://user:secret@host/x` as `oci://***@host/x`: a URL in a message carries no secret.
fn without_user_info(url: &str) -> String {
    let rest = url.trim().strip_prefix("oci://").unwrap_or(url.trim());
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("oci://***@{}", &rest[at + 1..]),
        None => url.trim().to_string(),
    }
}

fn is_plain_tag(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Where a chart repository of a registry lives in the cache, and how it is shown.
struct Place {
    /// `<root>/oci/<registry>/<repository>`.
    dir: PathBuf,
    /// `oci://registry/repository` (the chart's own repository).
    shown: String,
}

impl Place {
    fn new(root: &Path, repository: &Reference) -> Place {
        // `127.0.0.1:5000` and `[::1]:5000` as folder names without `:` or brackets.
        let registry: String = repository
            .registry
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Place {
            dir: root.join("oci").join(registry).join(&repository.repository),
            shown: format!("oci://{}/{}", repository.registry, repository.repository),
        }
    }

    fn slot(&self, chart: &ChartRef, folder: &str) -> VersionSlot {
        VersionSlot::new(&self.dir, &chart.name, folder)
    }

    /// The manifest of `reference`; its chart layer from the cache when the digest is the
    /// cached one, else downloaded, checked and unpacked.
    fn download(
        &self,
        cache: &ChartCache,
        chart: &ChartRef,
        slot: &VersionSlot,
        reference: &Reference,
        version: Option<String>,
    ) -> Result<FetchedChart, FetchError> {
        let client = cache.registry_client(&self.shown)?;
        let _permit = cache.permit();
        let manifest = client.manifest(reference)?;
        let layer = manifest
            .layers
            .iter()
            .find(|l| l.media_type == CHART_LAYER)
            .ok_or_else(|| FetchError::BadArchive {
                url: format!("oci://{reference}"),
                reason: format!(
                    "it is not a Helm chart: its manifest has no layer of media type {CHART_LAYER}"
                ),
            })?;
        let digest = hex_of(&layer.digest).to_string();
        if let Some(record) = slot.record(&self.shown).filter(|r| r.digest == digest) {
            return Ok(fetched(chart, slot, record, true));
        }
        let archive = client.blob(reference, layer, MAX_ARCHIVE_BYTES)?;
        let url = format!("oci://{reference}");
        let version = version
            .or_else(|| {
                manifest
                    .annotations
                    .get("org.opencontainers.image.version")
                    .cloned()
            })
            .unwrap_or_else(|| reference.manifest_key().to_string());
        let record = Record {
            repository: self.shown.clone(),
            version,
            url: url.clone(),
            digest,
        };
        slot.install(&record, |dir| {
            archive::unpack(&archive, dir).map_err(|reason| FetchError::BadArchive {
                url: url.clone(),
                reason,
            })
        })?;
        Ok(fetched(chart, slot, record, false))
    }

    /// Offline: the highest cached version that `range` matches.
    fn highest_cached(&self, chart: &ChartRef, range: &str) -> Result<FetchedChart, FetchError> {
        let cached = cache::cached_versions(&self.dir, &chart.name, &self.shown);
        let listed: Vec<&str> = cached.iter().map(|(_, r)| r.version.as_str()).collect();
        let chosen = versions::choose(range, &listed).map_err(|r| bad_version(chart, r))?;
        let Some((folder, record)) =
            chosen.and_then(|v| cached.iter().find(|(_, r)| r.version == v))
        else {
            return Err(self.not_cached(chart));
        };
        let slot = self.slot(chart, folder);
        Ok(fetched(chart, &slot, record.clone(), true))
    }

    fn not_cached(&self, chart: &ChartRef) -> FetchError {
        let cached = cache::cached_versions(&self.dir, &chart.name, &self.shown);
        let listed: Vec<&str> = cached.iter().map(|(_, r)| r.version.as_str()).collect();
        FetchError::NotCached {
            url: self.shown.clone(),
            name: chart.name.clone(),
            version: chart.version.clone(),
            cached: versions::sorted_descending(&listed),
        }
    }
}

/// Builds the client (once per cache) for [`ChartCache::registry_client`].
pub(super) fn new_client(settings: crate::registry::Settings) -> Result<Client, String> {
    Client::new(settings).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn versions_are_digests_tags_or_ranges() {
        assert_eq!(wanted(D), Ok(Wanted::Digest(D.into())));
        assert_eq!(wanted(&format!("1.0.0@{D}")), Ok(Wanted::Digest(D.into())));
        assert_eq!(wanted("1.2.3"), Ok(Wanted::Tag("1.2.3".into())));
        assert_eq!(
            wanted("1.2.3+build.1"),
            Ok(Wanted::Tag("1.2.3_build.1".into()))
        );
        assert_eq!(wanted("=1.2.3"), Ok(Wanted::Tag("1.2.3".into())));
        assert_eq!(wanted("~1.2"), Ok(Wanted::Range("~1.2".into())));
        assert_eq!(
            wanted(">=1.0.0 <2.0.0"),
            Ok(Wanted::Range(">=1.0.0 <2.0.0".into()))
        );
        assert_eq!(wanted(""), Ok(Wanted::Range("".into())));
        assert_eq!(wanted("latest"), Ok(Wanted::Tag("latest".into())));
        assert!(wanted(">=1.0 <<").is_err());
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let root = tempfile::tempdir().unwrap();
        let cache = ChartCache::new(root.path().to_path_buf());
        let chart = ChartRef::new("oci://user:s3cret@ghcr.io/acme", "web", "1.0.0");
        let error = fetch(&cache, &chart).unwrap_err();
        assert!(matches!(error, FetchError::BadUrl { .. }), "{error}");
        assert!(!format!("{error} {error:?}").contains("s3cret"), "{error}");
    }

    #[test]
    fn registries_become_folder_names() {
        let reference = Reference::repository("oci://127.0.0.1:5000/charts/web").unwrap();
        let place = Place::new(Path::new("/c"), &reference);
        assert_eq!(place.dir, Path::new("/c/oci/127.0.0.1_5000/charts/web"));
        assert_eq!(place.shown, "oci://127.0.0.1:5000/charts/web");
    }
}
