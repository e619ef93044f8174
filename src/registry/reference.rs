//! What an OCI reference names: a registry host, a repository in it, and a tag or a digest,
//! parsed the way docker and Helm read them (`ghcr.io/org/app:1.2`, `oci://…`, `nginx` for
//! `docker.io/library/nginx:latest`, `localhost:5000/app@sha256:…`).

use std::fmt;

/// The name Docker Hub is shown by; `index.docker.io` and `registry-1.docker.io` are read as it.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's distribution API answers on.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed reference. At least one of `tag` and `digest` is set once parsed with
/// [`Reference::parse`] (a bare name gets `latest`); [`Reference::repository`] leaves both unset
/// for calls about the repository itself (its tag list).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `ghcr.io`, `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    /// `org/app`; Docker Hub's single names get `library/`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

/// Why a text is not a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an OCI reference: {reason}")]
pub struct ReferenceError {
    pub text: String,
    pub reason: String,
}

impl Reference {
    /// Reads `[oci://][registry/]repository[:tag][@digest]`. A first path segment that holds a
    /// `.` or a `:`, or is `localhost`, is the registry (docker's rule); otherwise the
    /// registry is Docker Hub.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let mut reference = Self::parse_name(text, true)?;
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some("latest".into());
        }
        Ok(reference)
    }

    /// Reads `[oci://]registry/repository` with no tag or digest (an OCI chart repository
    /// URL such as `oci://ghcr.io/org/charts`, or a repository whose tags are listed).
    pub fn repository(text: &str) -> Result<Reference, ReferenceError> {
        Self::parse_name(text, false)
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        check_tag(tag).map_err(|reason| error(tag, reason))?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository at `digest` (the tag, if any, is kept for messages).
    pub fn with_digest(&self, digest: &str) -> Result<Reference, ReferenceError> {
        check_digest(digest).map_err(|reason| error(digest, reason))?;
        Ok(Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        })
    }

    /// A repository one level down: `oci://ghcr.io/org/charts` joined with `app`.
    pub fn join(&self, name: &str) -> Result<Reference, ReferenceError> {
        let repository = format!("{}/{}", self.repository, name);
        check_repository(&repository).map_err(|reason| error(name, reason))?;
        Ok(Reference {
            repository,
            tag: None,
            digest: None,
            registry: self.registry.clone(),
        })
    }

    /// What the manifest is asked for by: the digest when there is one, else the tag.
    pub fn manifest_key(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The host (and port) the distribution API answers on.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The registry's host without a port: `127.0.0.1` for `127.0.0.1:5000`, `::1` for `[::1]:5000`.
    pub fn host_name(&self) -> &str {
        host_without_port(&self.registry)
    }

    fn parse_name(text: &str, tagged: bool) -> Result<Reference, ReferenceError> {
        let bad = |reason: &str| error(text, reason.to_string());
        let rest = text.trim();
        let rest = rest.strip_prefix("oci://").unwrap_or(rest);
        if rest.contains("://") {
            return Err(bad("only the oci:// scheme is read"));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((name, digest)) if tagged => {
                check_digest(digest).map_err(|r| error(text, r))?;
                (name, Some(digest.to_string()))
            }
            Some(_) => return Err(bad("a repository takes no digest here")),
            None => (rest, None),
        };
        let (rest, tag) = split_tag(rest);
        if tag.is_some() && !tagged {
            return Err(bad("a repository takes no tag here"));
        }
        if let Some(tag) = tag {
            check_tag(tag).map_err(|r| error(text, r))?;
        }
        let (registry, repository) = split_registry(rest);
        check_repository(&repository).map_err(|r| error(text, r))?;
        Ok(Reference {
            registry,
            repository,
            tag: tag.map(str::to_string),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn error(text: &str, reason: String) -> ReferenceError {
    ReferenceError {
        text: text.to_string(),
        reason,
    }
}

/// `host:port/repo:tag` -> (`host:port/repo`, `tag`): the tag is after the last `:` that
/// follows the last `/`.
fn split_tag(text: &str) -> (&str, Option<&str>) {
    let last_segment = text.rfind('/').map_or(0, |i| i + 1);
    match text[last_segment..].rfind(':') {
        Some(i) => (
            &text[..last_segment + i],
            Some(&text[last_segment + i + 1..]),
        ),
        None => (text, None),
    }
}

/// The registry and the repository, with Docker Hub's defaults.
fn split_registry(name: &str) -> (String, String) {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) if is_registry_host(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    let registry = match first {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        other => other,
    };
    let repository = if registry == DOCKER_HUB && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest.to_string()
    };
    (registry.to_string(), repository)
}

fn is_registry_host(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

/// `host` of `host:port`, `::1` of `[::1]:port`.
pub(crate) fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// The distribution spec's repository name: lower-case components of `[a-z0-9]` joined by
/// `.`, `_`, `__` or `-` runs, separated by `/`.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name is empty".into());
    }
    if repository.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    for component in repository.split('/') {
        let starts_and_ends_alnum = component
            .chars()
            .next()
            .zip(component.chars().last())
            .is_some_and(|(a, z)| is_lower_alnum(a) && is_lower_alnum(z));
        let allowed = component
            .chars()
            .all(|c| is_lower_alnum(c) || matches!(c, '.' | '_' | '-'));
        if !starts_and_ends_alnum || !allowed || component.contains("..") {
            return Err(format!(
                "{component:?} is not a repository name component (lower-case letters and \
                 digits, joined by '.', '_' or '-')"
            ));
        }
    }
    Ok(())
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), String> {
    let first_ok = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(format!(
            "{tag:?} is not a tag (letters, digits, '_', '.', '-', at most 128, not starting \
             with '.' or '-')"
        ))
    }
}

/// A digest this client can verify: `sha256:` and 64 lower-case hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        format!("{digest:?} is not a sha256 digest (only sha256:<64 hex> is verified)")
    })?;
    if hex.len() == 64 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        Ok(())
    } else {
        Err(format!(
            "{digest:?} is not sha256: and 64 lower-case hex digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parsed(text: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(text).unwrap();
        (r.registry, r.repository, r.tag, r.digest)
    }

    #[test]
    fn docker_hub_names_get_library_and_latest() {
        assert_eq!(
            parsed("nginx"),
            (
                "docker.io".into(),
                "library/nginx".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(parsed("bitnami/redis:7").1, "bitnami/redis");
        assert_eq!(parsed("index.docker.io/nginx:1").0, "docker.io");
        assert_eq!(parsed("docker.io/library/nginx:1").1, "library/nginx");
        assert_eq!(
            Reference::parse("nginx").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn registries_tags_digests_and_the_oci_scheme() {
        assert_eq!(
            parsed("oci://ghcr.io/acme/charts/app:1.2.3"),
            (
                "ghcr.io".into(),
                "acme/charts/app".into(),
                Some("1.2.3".into()),
                None
            )
        );
        let (registry, repository, tag, digest) = parsed(&format!("127.0.0.1:5000/app:v1@{D}"));
        assert_eq!(
            (registry.as_str(), repository.as_str()),
            ("127.0.0.1:5000", "app")
        );
        assert_eq!((tag.as_deref(), digest.as_deref()), (Some("v1"), Some(D)));
        let (_, _, tag, digest) = parsed(&format!("localhost/app@{D}"));
        assert_eq!((tag, digest.as_deref()), (None, Some(D)));
        assert_eq!(parsed("[::1]:5000/app").0, "[::1]:5000");
        assert_eq!(
            Reference::parse("[::1]:5000/app").unwrap().host_name(),
            "::1"
        );
        assert_eq!(
            Reference::parse(&format!("localhost:5000/a/b:t@{D}"))
                .unwrap()
                .to_string(),
            format!("localhost:5000/a/b:t@{D}")
        );
    }

    #[test]
    fn repositories_are_joined_and_tagged() {
        let repo = Reference::repository("oci://127.0.0.1:5000/charts").unwrap();
        assert_eq!(repo.tag, None);
        let chart = repo
            .join("shop-api")
            .unwrap()
            .with_tag("1.0.0_build.1")
            .unwrap();
        assert_eq!(
            chart.to_string(),
            "127.0.0.1:5000/charts/shop-api:1.0.0_build.1"
        );
        assert!(repo.join("Bad").is_err());
        assert!(Reference::repository("oci://ghcr.io/a:1").is_err());
    }

    #[test]
    fn bad_references_say_why() {
        for bad in [
            "",
            "ghcr.io/Acme/app",
            "ghcr.io/acme/app:-x",
            "ghcr.io/acme/app@sha256:abc",
            "ghcr.io/acme/app@md5:0123",
            "https://ghcr.io/acme/app",
            "ghcr.io/acme//app",
            "ghcr.io/acme/app:a+b",
        ] {
            let error = Reference::parse(bad).unwrap_err();
            assert!(!error.reason.is_empty(), "{bad:?}");
        }
    }
}
