//! An OCI distribution client: it reads manifests, blobs and tag lists from container
//! registries (`ghcr.io`, Docker Hub, a `docker-registry` on loopback), with the credentials
//! users already have ([`credentials`]). It owns the protocol (references, the `Accept` list,
//! an index followed to a platform, the 401 challenge and token flow, digest checks, size
//! limits); it knows nothing of Helm charts, images' meaning or Kubernetes. `--offline` is the
//! caller's: a [`Client`] always goes to the network.
//!
//! ```no_run
//! use kube_harden::registry::{Client, Reference, Settings};
//! let client = Client::new(Settings::default())?;
//! let reference = Reference::parse("ghcr.io/acme/app:1.2.3")?;
//! let manifest = client.manifest(&reference)?; // an index is followed to linux/amd64
//! let config = client.blob(&reference, &manifest.config, 1024 * 1024)?;
//! let tags = client.tags(&reference)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Loopback registries (127.0.0.0/8, `localhost`, `[::1]`) are spoken to over plain HTTP, as
//! docker does, and so are the [`Settings::insecure_registries`]; every other over HTTPS
//! (rustls with ring and the system's trust store). A token is cached per registry and
//! repository scope for the client's life. A secret is never in an error or a log line.

mod auth;
mod client;
pub mod credentials;
mod manifest;
mod reference;

pub use client::Client;
pub use credentials::{Credential, CredentialStore, Secret};
pub use manifest::{
    Descriptor, Manifest, Platform, ACCEPTED, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
pub use reference::{Reference, ReferenceError, DOCKER_HUB};

/// How a [`Client`] works.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub timeouts: Timeouts,
    /// The platform an index is followed to (`linux/amd64` by default).
    pub platform: Platform,
    /// Registries other than loopback spoken to over plain HTTP: `HOST[:PORT]` (a bare host
    /// matches any port).
    pub insecure_registries: Vec<String>,
    /// Where credentials come from ([`CredentialStore::from_env`] for the user's own;
    /// none by default: anonymous).
    pub credentials: CredentialStore,
}

/// How long to wait for a registry.
pub use crate::http::Timeouts;

/// Why a registry call failed. Each message names the reference (`registry/repo:tag`, or
/// `registry/repo@digest` for a blob) and says why; none holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    BadReference(#[from] ReferenceError),
    #[error("cannot set up the registry client: {reason}")]
    Setup { reason: String },
    #[error("{reference}: the registry cannot be reached: {reason}")]
    Unreachable { reference: String, reason: String },
    #[error("{reference}: access denied (HTTP {status}): {how}")]
    Denied {
        reference: String,
        status: u16,
        /// Which credentials were tried (their source, never the secret) or that none were found.
        how: String,
    },
    #[error("{reference}: {what}")]
    NotFound { reference: String, what: String },
    #[error("{reference}: the registry answered HTTP {status}{detail}")]
    Status {
        reference: String,
        status: u16,
        detail: String,
    },
    #[error("{reference}: larger than {limit} bytes, the most read")]
    TooLarge { reference: String, limit: u64 },
    #[error("{reference}: the content's digest is {actual}, not {expected}; it was not used")]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("{reference}: {reason}")]
    BadMediaType { reference: String, reason: String },
    #[error("{reference}: no manifest for {platform} in the index (it has {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("{reference}: the registry's answer is not usable: {reason}")]
    BadAnswer { reference: String, reason: String },
}

impl RegistryError {
    /// Whether the registry could not be reached at all (a retry later may succeed).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}
