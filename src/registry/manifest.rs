//! The manifests a registry serves, read as data: an image manifest (OCI or Docker v2
//! schema 2: a config and layers, each a [`Descriptor`]), or an index / manifest list (one
//! manifest per platform), and the choice of a platform's manifest in an index.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The media types asked for, in the `Accept` header of a manifest request.
pub const ACCEPTED: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A pointer to content: its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
}

/// An OS and CPU architecture (`linux/amd64`, `linux/arm64/v8`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.map(str::to_string),
        }
    }

    /// Reads `os/arch[/variant]`.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.trim().split('/');
        let os = parts.next().filter(|s| !s.is_empty())?;
        let architecture = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next().filter(|s| !s.is_empty());
        parts
            .next()
            .is_none()
            .then(|| Platform::new(os, architecture, variant))
    }

    /// Whether an index entry for `other` runs here: same OS and architecture, and the
    /// same variant when this platform names one.
    fn accepts(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && (self.variant.is_none() || self.variant == other.variant)
    }
}

impl Default for Platform {
    /// `linux/amd64`.
    fn default() -> Self {
        Platform::new("linux", "amd64", None)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image or artifact manifest: a config and its layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The digest of the manifest's own bytes (`sha256:…`).
    pub digest: String,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
    pub artifact_type: Option<String>,
    /// The index it was chosen from, when the reference named an index.
    pub index_digest: Option<String>,
}

/// What a manifest request returned, read.
#[derive(Debug)]
pub(super) enum Served {
    Image(Box<Manifest>),
    Index(Vec<Descriptor>),
}

/// Both manifest shapes as JSON; which one is told by its media type or its fields.
#[derive(Deserialize)]
struct Document {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
}

/// Reads a manifest body. `content_type` is the response's; `digest` that of the bytes.
/// The error is the reason, for the caller to name the reference.
pub(super) fn read(bytes: &[u8], content_type: &str, digest: &str) -> Result<Served, String> {
    let document: Document = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not JSON of a known shape: {e}"))?;
    if document.schema_version != 2 {
        return Err(format!(
            "schema version {} (only version 2 manifests are read)",
            document.schema_version
        ));
    }
    let media_type = document
        .media_type
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| media_type_only(content_type).to_string());
    let is_index = match media_type.as_str() {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        // Without a media type (allowed for OCI), the fields tell.
        generic if is_generic(generic) => document.manifests.is_some(),
        other => {
            return Err(format!(
                "the media type {other:?} is not a manifest or an index"
            ))
        }
    };
    if is_index {
        return Ok(Served::Index(document.manifests.unwrap_or_default()));
    }
    let config = document
        .config
        .ok_or_else(|| "the manifest has no config".to_string())?;
    Ok(Served::Image(Box::new(Manifest {
        digest: digest.to_string(),
        media_type: if is_generic(&media_type) {
            OCI_MANIFEST.into()
        } else {
            media_type
        },
        config,
        layers: document.layers.unwrap_or_default(),
        annotations: document.annotations,
        artifact_type: document.artifact_type,
        index_digest: None,
    })))
}

/// A content type that says only "JSON" (an OCI manifest may leave its media type out).
fn is_generic(media_type: &str) -> bool {
    matches!(media_type, "" | "application/json")
}

/// `application/json; charset=utf-8` -> `application/json`.
fn media_type_only(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// The index entry for `platform`, else the platforms the index has (for the message).
pub(super) fn choose<'a>(
    entries: &'a [Descriptor],
    platform: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    entries
        .iter()
        .find(|e| e.platform.as_ref().is_some_and(|p| platform.accepts(p)))
        .ok_or_else(|| {
            entries
                .iter()
                .filter_map(|e| e.platform.as_ref().map(ToString::to_string))
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
      "manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,
         "platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bb","size":1,
         "platform":{"os":"linux","architecture":"amd64"}}]}"#;

    #[test]
    fn an_index_gives_the_platform_asked_for() {
        let Served::Index(entries) = read(INDEX.as_bytes(), "", "sha256:i").unwrap() else {
            panic!("an index")
        };
        assert_eq!(
            choose(&entries, &Platform::default()).unwrap().digest,
            "sha256:bb"
        );
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(choose(&entries, &arm).unwrap().digest, "sha256:aa");
        let missing = choose(&entries, &Platform::parse("windows/amd64").unwrap()).unwrap_err();
        assert_eq!(missing, ["linux/arm64/v8", "linux/amd64"]);
    }

    #[test]
    fn an_image_manifest_without_a_media_type_is_read_by_its_fields() {
        let text = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json",
          "digest":"sha256:cc","size":3},"layers":[{"mediaType":"x","digest":"sha256:dd","size":4}]}"#;
        let Served::Image(m) = read(text.as_bytes(), "application/json", "sha256:m").unwrap()
        else {
            panic!("an image")
        };
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(
            (m.config.digest.as_str(), m.layers[0].size),
            ("sha256:cc", 4)
        );
        assert_eq!(m.digest, "sha256:m");
    }

    #[test]
    fn other_shapes_are_refused_with_the_reason() {
        let v1 = read(br#"{"schemaVersion":1}"#, "", "d").unwrap_err();
        assert!(v1.contains("schema version 1"), "{v1}");
        let odd = read(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#, "", "d").unwrap_err();
        assert!(odd.contains("text/plain"), "{odd}");
        assert!(read(b"<html>", "", "d").is_err());
    }

    #[test]
    fn platforms_read_and_print() {
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(Platform::parse("linux"), None);
        assert_eq!(Platform::parse("a/b/c/d"), None);
    }
}
