//! Image facts: for a container image reference, what its registry says about how it runs.
//! The tag is resolved through an index to the platform's manifest (`linux/amd64` unless
//! configured), the config is read (`User`, `Volumes`, `ExposedPorts`, `Entrypoint`, `Cmd`),
//! a named user is resolved through the `/etc/passwd` and `/etc/group` of the layers (read
//! top-down, only when `USER` is a name), and for a root image the root-only paths of the top
//! layers are listed ([`layers`]). The facts are kept on disk by manifest digest ([`cache`]);
//! `--offline` reads only that cache. Online, a cached image costs one HEAD of its tag (is it
//! still the digest remembered?) and a cached digest-pinned one no request at all. One registry client and one credential store serve the
//! whole run; reads run in parallel, at most [`MAX_PARALLEL`] at once. An image that cannot be
//! read is an answer too (the reason), never a panic or a run's error: the policy decides what
//! it means ([`crate::policy::ImageLookup`]). This module knows nothing of YAML, charts or
//! Kubernetes objects.

pub mod cache;
pub mod layers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use serde::Deserialize;

use crate::policy::images::{ImageFacts, ImageLookup, ImageUser, Looked, Unread};
use crate::registry::{
    Client, CredentialStore, Manifest, Platform, Reference, RegistryError, Settings, Timeouts,
};

/// The most image reads at once (each is a few small requests; a named user's base layer
/// may be tens of MB).
pub const MAX_PARALLEL: usize = 8;
/// The most an image config may weigh.
const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;

/// When image facts are read (`--images`, config key `images`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImagesMode {
    /// Read them; an image that cannot be read is a note.
    #[default]
    Auto,
    /// Read them; an image that cannot be read is an error for its file (not written).
    Always,
    /// Fetch nothing and plan without them.
    Never,
}

/// How images are read.
#[derive(Clone, Debug)]
pub struct ImageSettings {
    pub mode: ImagesMode,
    pub platform: Platform,
    /// Registries other than loopback spoken to over plain HTTP (`HOST[:PORT]`).
    pub insecure_registries: Vec<String>,
    /// Where facts are kept (`--image-cache`, else [`cache::default_root`]).
    pub cache_dir: PathBuf,
    /// Only the cache answers.
    pub offline: bool,
    pub timeouts: Timeouts,
    pub credentials: CredentialStore,
    /// Declared volumes get a risk note instead of an emptyDir (`imageVolumes: note`).
    pub volumes_as_notes: bool,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            mode: ImagesMode::Auto,
            platform: Platform::default(),
            insecure_registries: vec![],
            cache_dir: cache::default_root(),
            offline: false,
            timeouts: Timeouts::default(),
            credentials: CredentialStore::none(),
            volumes_as_notes: false,
        }
    }
}

/// What one run read, for the summary and the measurements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Images whose facts came from the registry.
    pub fetched: usize,
    /// Images whose facts came from the cache.
    pub cached: usize,
    /// Images that could not be read.
    pub failed: usize,
}

/// Reads image facts for one run: one client, a memo by reference (each image is read once
/// however many workloads use it), the disk cache, and a bound on parallel reads.
pub struct ImageReader {
    settings: ImageSettings,
    cache: cache::FactsCache,
    client: OnceLock<Result<Client, String>>,
    memo: Mutex<HashMap<String, Arc<OnceLock<Looked>>>>,
    /// Registries that could not be reached, with the first reason.
    unreachable: Mutex<std::collections::BTreeMap<String, String>>,
    gate: Gate,
    fetched: AtomicUsize,
    cached: AtomicUsize,
    failed: AtomicUsize,
}

impl ImageReader {
    pub fn new(settings: ImageSettings) -> ImageReader {
        ImageReader {
            cache: cache::FactsCache::new(settings.cache_dir.clone()),
            settings,
            client: OnceLock::new(),
            memo: Mutex::default(),
            unreachable: Mutex::default(),
            gate: Gate::new(MAX_PARALLEL),
            fetched: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        }
    }

    /// The lookup the policy plans with: none for `--images never`.
    pub fn lookup(reader: &Arc<ImageReader>) -> ImageLookup {
        if reader.settings.mode == ImagesMode::Never {
            return ImageLookup::default();
        }
        let shared = reader.clone();
        let mut lookup = ImageLookup::new(Arc::new(move |image: &str| shared.facts(image)));
        lookup.required = reader.settings.mode == ImagesMode::Always;
        lookup.volumes_as_notes = reader.settings.volumes_as_notes;
        lookup
    }

    pub fn counts(&self) -> ReadCounts {
        ReadCounts {
            fetched: self.fetched.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// The facts of `image` (the text of an `image:` field), read once per run.
    pub fn facts(&self, image: &str) -> Looked {
        let slot = {
            let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
            memo.entry(image.to_string()).or_default().clone()
        };
        slot.get_or_init(|| {
            let looked = self.read(image);
            if looked.is_err() {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
            looked
        })
        .clone()
    }

    /// Reads the facts of every image in `images` in parallel (bounded), so that planning
    /// finds them ready.
    pub fn prefetch(&self, images: &[String]) {
        use rayon::prelude::*;
        images.par_iter().with_max_len(1).for_each(|image| {
            let _ = self.facts(image);
        });
    }

    fn read(&self, image: &str) -> Looked {
        let reference = Reference::parse(image).map_err(|e| Unread::Failed(e.to_string()))?;
        let platform = &self.settings.platform;
        if self.settings.offline {
            let facts = self.cache.offline(&reference, platform).ok_or_else(|| {
                self.unreachable(
                    &reference,
                    "not in the image cache, and --offline fetches nothing".into(),
                )
            })?;
            return Ok(self.answered_by_cache(facts));
        }
        // A digest names content that never changes: kept facts need no request.
        if reference.digest.is_some() {
            if let Some(facts) = self.cache.offline(&reference, platform) {
                return Ok(self.answered_by_cache(facts));
            }
        }
        if let Some(why) = self.known_unreachable(&reference) {
            return Err(Unread::Unreachable(why));
        }
        let _permit = self.gate.enter();
        let client = self
            .client()
            .map_err(|why| Unread::Failed(why.to_string()))?;
        if let Some(facts) = self.still_served(client, &reference)? {
            return Ok(self.answered_by_cache(facts));
        }
        let manifest = client
            .manifest(&reference)
            .map_err(|e| self.unread(&reference, &e))?;
        let resolved = cache::Remembered {
            digest: manifest.digest.clone(),
            index_digest: manifest.index_digest.clone(),
        };
        if let Some(facts) = self.cache.facts(&manifest.digest) {
            self.cache.remember(&reference, platform, &resolved);
            return Ok(self.answered_by_cache(facts));
        }
        let facts =
            read_facts(client, &reference, &manifest).map_err(|e| self.unread(&reference, &e))?;
        // A cache that cannot be written costs the next run a fetch, nothing more.
        self.cache.store(&facts);
        self.cache.remember(&reference, platform, &resolved);
        self.fetched.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(facts))
    }

    /// The kept facts of `reference` when its registry still serves the digest it resolved to
    /// last time, asked with a HEAD: Docker Hub counts every GET of a manifest (an index's
    /// too) against the runner's anonymous pull limit and no HEAD, and a scheduled run over a
    /// fleet reads every image each time. None (read it with GETs) when nothing is kept or the
    /// HEAD fails, names no digest or another one; an unreachable registry is the answer
    /// itself (the GETs would only wait for it again).
    fn still_served(
        &self,
        client: &Client,
        reference: &Reference,
    ) -> Result<Option<ImageFacts>, Unread> {
        let Some(known) = self.cache.remembered(reference, &self.settings.platform) else {
            return Ok(None);
        };
        let Some(facts) = self.cache.facts(&known.digest) else {
            return Ok(None);
        };
        match client.manifest_head(reference) {
            Ok(served) => Ok((served.as_deref() == Some(known.served())).then_some(facts)),
            Err(e) if e.is_unreachable() => Err(self.unread(reference, &e)),
            Err(_) => Ok(None),
        }
    }

    /// Facts the cache answered with, counted.
    fn answered_by_cache(&self, facts: ImageFacts) -> Arc<ImageFacts> {
        self.cached.fetch_add(1, Ordering::Relaxed);
        Arc::new(facts)
    }

    fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_init(|| {
                Client::new(Settings {
                    timeouts: self.settings.timeouts,
                    platform: self.settings.platform.clone(),
                    insecure_registries: self.settings.insecure_registries.clone(),
                    credentials: self.settings.credentials.clone(),
                })
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ImageReader {
    /// A registry error as the policy sees it; an unreachable registry is remembered, so the
    /// run's other images there are not tried again (one wait, not one per image).
    fn unread(&self, reference: &Reference, error: &RegistryError) -> Unread {
        if let RegistryError::Unreachable { reason, .. } = error {
            // The registry's reason alone: the same whichever of its images was asked first.
            self.unreachable(reference, reason.clone())
        } else {
            Unread::Failed(error.to_string())
        }
    }

    fn unreachable(&self, reference: &Reference, why: String) -> Unread {
        let mut down = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        down.entry(reference.registry.clone())
            .or_insert_with(|| why.clone());
        Unread::Unreachable(why)
    }

    fn known_unreachable(&self, reference: &Reference) -> Option<String> {
        let down = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        down.get(&reference.registry).cloned()
    }

    /// The registries that could not be reached this run, each with the first reason.
    pub fn unreachable_registries(&self) -> Vec<(String, String)> {
        let down = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<(String, String)> =
            down.iter().map(|(r, w)| (r.clone(), w.clone())).collect();
        list.sort();
        list
    }
}

/// Reads the facts of the image `manifest` describes.
pub fn read_facts(
    client: &Client,
    reference: &Reference,
    manifest: &Manifest,
) -> Result<ImageFacts, RegistryError> {
    let bytes = client.blob(reference, &manifest.config, CONFIG_LIMIT)?;
    let config = parse_config(&bytes).map_err(|why| RegistryError::BadAnswer {
        reference: reference.to_string(),
        reason: format!("the image config is not usable: {why}"),
    })?;
    let user = resolve_user(client, reference, manifest, &config.user)?;
    let root_only_paths = match user {
        ImageUser::Root => layers::root_only_paths(client, reference, &manifest.layers)?,
        _ => vec![],
    };
    Ok(ImageFacts {
        digest: manifest.digest.clone(),
        user_text: config.user,
        user,
        volumes: config.volumes,
        ports: config.ports,
        entrypoint: config.entrypoint,
        cmd: config.cmd,
        root_only_paths,
    })
}

/// The fields of an image config that matter here.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub user: String,
    pub volumes: Vec<String>,
    pub ports: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// Reads an image config (OCI or Docker: the same `config` object).
pub fn parse_config(bytes: &[u8]) -> Result<Config, String> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Raw {
        config: Option<Inner>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Inner {
        #[serde(rename = "User")]
        user: Option<String>,
        #[serde(rename = "Volumes")]
        volumes: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(rename = "ExposedPorts")]
        exposed_ports: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(rename = "Entrypoint")]
        entrypoint: Option<Vec<String>>,
        #[serde(rename = "Cmd")]
        cmd: Option<Vec<String>>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let inner = raw.config.unwrap_or_default();
    let keys = |m: Option<serde_json::Map<String, serde_json::Value>>| {
        let mut keys: Vec<String> = m.unwrap_or_default().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    };
    Ok(Config {
        user: inner.user.unwrap_or_default().trim().to_string(),
        volumes: keys(inner.volumes),
        ports: keys(inner.exposed_ports),
        entrypoint: inner.entrypoint.unwrap_or_default(),
        cmd: inner.cmd.unwrap_or_default(),
    })
}

/// `USER` as the kubelet and the runtime read it: empty, `root` or `0` is root; `uid[:gid]`
/// numbers are used as they are; a name is looked up in the layers' `/etc/passwd` (and a
/// group name in `/etc/group`), which are read only then.
fn resolve_user(
    client: &Client,
    reference: &Reference,
    manifest: &Manifest,
    user: &str,
) -> Result<ImageUser, RegistryError> {
    let (name, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let numeric = |t: &str| {
        t.parse::<i64>()
            .ok()
            .filter(|n| (0..=i64::from(i32::MAX)).contains(n))
    };
    if name.is_empty() || name == "root" || numeric(name) == Some(0) {
        return Ok(ImageUser::Root);
    }
    if let Some(uid) = numeric(name) {
        match group.map(numeric) {
            None => return Ok(ImageUser::Ids { uid, gid: uid }),
            Some(Some(gid)) => return Ok(ImageUser::Ids { uid, gid }),
            // A numeric user with a group name: the group file says its number.
            Some(None) => {}
        }
    }
    let files = layers::account_files(client, reference, &manifest.layers)?;
    Ok(layers::resolve(name, group, &files))
}

/// A counting gate: at most `n` holders at once.
struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Permit<'g>(&'g Gate);

impl Gate {
    fn new(n: usize) -> Gate {
        Gate {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn enter(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_gives_user_volumes_ports_and_command() {
        let config = parse_config(
            br#"{"architecture":"amd64","config":{"User":"101:102","Volumes":{"/data":{}},
                "ExposedPorts":{"8080/tcp":{},"80/tcp":{}},"Entrypoint":["/bin/app"],"Cmd":null}}"#,
        )
        .unwrap();
        assert_eq!(config.user, "101:102");
        assert_eq!(config.volumes, vec!["/data"]);
        assert_eq!(config.ports, vec!["80/tcp", "8080/tcp"]);
        assert_eq!(config.entrypoint, vec!["/bin/app"]);
        assert!(config.cmd.is_empty());
        assert_eq!(parse_config(b"{}").unwrap(), Config::default());
        assert!(parse_config(b"not json").is_err());
    }

    #[test]
    fn the_gate_lets_n_in_at_once() {
        let gate = Gate::new(2);
        let a = gate.enter();
        let _b = gate.enter();
        assert_eq!(*gate.free.lock().unwrap(), 0);
        drop(a);
        assert_eq!(*gate.free.lock().unwrap(), 1);
    }
}
