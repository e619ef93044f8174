//! Image facts kept on disk: `facts/sha256-<hex>.json` by the platform manifest's digest (what
//! an image is never changes), and `refs/<hex>.json`, the digest a reference and platform last
//! resolved to and the index it was chosen from (so that `--offline` can answer by tag, and a
//! run online only asks whether the tag still serves that digest). The chart cache's rules hold: names
//! are made here from hex digests only (never from registry text), every write goes to a
//! temporary file in the same folder and is renamed into place (a reader never sees half a
//! file), every read is bounded, and an entry that does not read back as what its name says
//! is ignored (the image is read again online).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::images::ImageFacts;
use crate::registry::{Platform, Reference};

/// The most a cache entry may weigh.
const ENTRY_LIMIT: u64 = 1024 * 1024;

/// `$XDG_CACHE_HOME/kube-harden/images`, else `~/.cache/kube-harden/images`: beside the
/// chart cache.
pub fn default_root() -> PathBuf {
    let charts = crate::helm::repository::ChartCache::default_root();
    charts
        .parent()
        .map(|p| p.join("images"))
        .unwrap_or_else(|| charts.join("images"))
}

/// The facts cache under one folder.
pub struct FactsCache {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Resolved {
    reference: String,
    platform: String,
    digest: String,
    /// Absent in entries written before it was kept: such a multi-platform tag is read again
    /// once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index_digest: Option<String>,
}

/// What a reference resolved to on a platform when it was last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// The platform's manifest (the facts' key).
    pub digest: String,
    /// The index it was chosen from, for a multi-platform reference.
    pub index_digest: Option<String>,
}

impl Remembered {
    /// The digest the registry serves for the reference itself, which a HEAD of it names: the
    /// index's for a multi-platform reference, else the manifest's.
    pub fn served(&self) -> &str {
        self.index_digest.as_deref().unwrap_or(&self.digest)
    }
}

impl FactsCache {
    pub fn new(root: PathBuf) -> FactsCache {
        FactsCache { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The facts of the manifest `digest`, if kept.
    pub fn facts(&self, digest: &str) -> Option<ImageFacts> {
        let path = self.root.join("facts").join(digest_file(digest)?);
        let facts: ImageFacts = serde_json::from_slice(&read_bounded(&path)?).ok()?;
        (facts.digest == digest).then_some(facts)
    }

    /// Offline: the facts of the digest `reference` last resolved to on `platform` (or of
    /// its own digest when it names one).
    pub fn offline(&self, reference: &Reference, platform: &Platform) -> Option<ImageFacts> {
        if let Some(facts) = reference.digest.as_deref().and_then(|d| self.facts(d)) {
            return Some(facts);
        }
        self.facts(&self.remembered(reference, platform)?.digest)
    }

    /// What `reference` last resolved to on `platform`, if remembered.
    pub fn remembered(&self, reference: &Reference, platform: &Platform) -> Option<Remembered> {
        let path = self.root.join("refs").join(ref_file(reference, platform));
        let resolved: Resolved = serde_json::from_slice(&read_bounded(&path)?).ok()?;
        let same = resolved.reference == reference.to_string()
            && resolved.platform == platform.to_string();
        same.then_some(Remembered {
            digest: resolved.digest,
            index_digest: resolved.index_digest,
        })
    }

    /// Keeps `facts` (a failure to write is not an error: the next run reads the image again).
    pub fn store(&self, facts: &ImageFacts) {
        let Some(name) = digest_file(&facts.digest) else {
            return;
        };
        if let Ok(json) = serde_json::to_vec_pretty(facts) {
            let _ = write_atomic(&self.root.join("facts"), &name, &json);
        }
    }

    /// Remembers what `reference` resolved to on `platform`.
    pub fn remember(&self, reference: &Reference, platform: &Platform, resolved: &Remembered) {
        let resolved = Resolved {
            reference: reference.to_string(),
            platform: platform.to_string(),
            digest: resolved.digest.clone(),
            index_digest: resolved.index_digest.clone(),
        };
        if let Ok(json) = serde_json::to_vec_pretty(&resolved) {
            let _ = write_atomic(
                &self.root.join("refs"),
                &ref_file(reference, platform),
                &json,
            );
        }
    }
}

/// `sha256-<64 hex>.json` for a `sha256:` digest; None for anything else.
fn digest_file(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    ok.then(|| format!("sha256-{hex}.json"))
}

/// The file of a reference and platform: the SHA-256 of their text.
fn ref_file(reference: &Reference, platform: &Platform) -> String {
    let key = format!("{reference}\n{platform}");
    format!("{:x}.json", Sha256::digest(key.as_bytes()))
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(ENTRY_LIMIT + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= ENTRY_LIMIT).then_some(bytes)
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::images::ImageUser;

    fn facts(digest: &str) -> ImageFacts {
        ImageFacts {
            digest: digest.into(),
            user_text: "101".into(),
            user: ImageUser::Ids { uid: 101, gid: 101 },
            volumes: vec![],
            ports: vec![],
            entrypoint: vec![],
            cmd: vec![],
            root_only_paths: vec![],
        }
    }

    #[test]
    fn facts_are_kept_by_digest_and_found_offline_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FactsCache::new(dir.path().to_path_buf());
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference = Reference::parse("registry.example/team/app:1").unwrap();
        let platform = Platform::default();
        assert!(cache.offline(&reference, &platform).is_none());
        cache.store(&facts(&digest));
        let single = Remembered {
            digest: digest.clone(),
            index_digest: None,
        };
        cache.remember(&reference, &platform, &single);
        assert_eq!(cache.facts(&digest), Some(facts(&digest)));
        assert_eq!(cache.offline(&reference, &platform), Some(facts(&digest)));
        assert_eq!(cache.remembered(&reference, &platform), Some(single));
        let arm = Platform::new("linux", "arm64", None);
        assert!(
            cache.offline(&reference, &arm).is_none(),
            "another platform"
        );
    }

    #[test]
    fn a_multi_platform_reference_is_served_as_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FactsCache::new(dir.path().to_path_buf());
        let (manifest, index) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "c".repeat(64)),
        );
        let reference = Reference::parse("registry.example/team/app:multi").unwrap();
        let platform = Platform::default();
        let resolved = Remembered {
            digest: manifest.clone(),
            index_digest: Some(index.clone()),
        };
        cache.remember(&reference, &platform, &resolved);
        let read = cache.remembered(&reference, &platform).unwrap();
        assert_eq!((read.served(), read.digest.as_str()), (&*index, &*manifest));
        // An entry written before the index was kept reads as a single manifest.
        let old = format!(
            r#"{{"reference":"{reference}","platform":"{platform}","digest":"{manifest}"}}"#
        );
        let file = dir
            .path()
            .join("refs")
            .join(ref_file(&reference, &platform));
        std::fs::write(file, old).unwrap();
        assert_eq!(
            cache.remembered(&reference, &platform).unwrap().served(),
            manifest
        );
    }

    #[test]
    fn only_hex_digests_name_files_and_a_mismatched_entry_is_ignored() {
        assert_eq!(digest_file("sha256:../../etc"), None);
        assert_eq!(digest_file(&format!("sha512:{}", "a".repeat(64))), None);
        let dir = tempfile::tempdir().unwrap();
        let cache = FactsCache::new(dir.path().to_path_buf());
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        cache.store(&facts(&a));
        // An entry renamed to another digest's name does not answer for it.
        std::fs::rename(
            dir.path().join("facts").join(digest_file(&a).unwrap()),
            dir.path().join("facts").join(digest_file(&b).unwrap()),
        )
        .unwrap();
        assert_eq!(cache.facts(&b), None);
    }
}
