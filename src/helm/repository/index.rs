//! A chart repository's addresses and its `index.yaml`: the repository URL as the user wrote
//! it (trailing slashes, `oci://`, credentials kept out of messages), where its index is, the
//! entries the index lists for one chart, and where an entry's archive is.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::FetchError;

/// An HTTP(S) chart repository.
#[derive(Debug, Clone)]
pub(super) struct Repository {
    /// The repository URL without trailing slashes.
    url: Url,
}

impl Repository {
    /// Reads a repository URL; `oci://` and other schemes are refused with their own error.
    pub(super) fn parse(text: &str) -> Result<Repository, FetchError> {
        let text = text.trim();
        let bad = |reason: &str| FetchError::BadUrl {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let mut url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            "oci" => {
                return Err(FetchError::BadUrl {
                    url: shown(&url).to_string(),
                    reason: "an oci:// URL is an OCI registry, not a chart repository".into(),
                })
            }
            _ => {
                return Err(bad(
                    "a chart repository URL starts with https:// or http://",
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it names no host"));
        }
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Ok(Repository { url })
    }

    /// The repository URL as messages and the cache record show it: no password, and no `/`
    /// after a bare host (which the URL type always adds).
    pub(super) fn shown(&self) -> String {
        let text = shown(&self.url).to_string();
        let bare_host = self.url.path() == "/" && self.url.query().is_none();
        match text.strip_suffix('/') {
            Some(trimmed) if bare_host => trimmed.to_string(),
            _ => text,
        }
    }

    /// `<repository>/index.yaml` (a query string, such as a token, is kept).
    pub(super) fn index_url(&self) -> Url {
        let mut index = self.url.clone();
        // A bare host's path is "/" (the URL keeps it), any other has no trailing slash.
        let base = self.url.path().trim_end_matches('/');
        index.set_path(&format!("{base}/index.yaml"));
        index
    }

    /// The repository's folder name in the cache: host, port and path, with every character
    /// that is not safe in a file name replaced, so that two repositories on one host (say
    /// `/stable` and `/incubator`) keep their charts apart.
    pub(super) fn cache_key(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port().map(|p| format!("_{p}")).unwrap_or_default();
        let key = format!("{host}{port}{}", self.url.path());
        key.chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
                _ => '_',
            })
            .collect::<String>()
            .trim_end_matches('_')
            .to_string()
    }

    /// Where an entry's archive is: an absolute URL as it is, a relative one against the
    /// repository (as Helm resolves it). Only http(s) archives are fetched.
    pub(super) fn archive_url(&self, listed: &str) -> Result<Url, String> {
        let url = match Url::parse(listed) {
            Ok(absolute) => absolute,
            Err(url::ParseError::RelativeUrlWithoutBase) => self
                .index_url()
                .join(listed)
                .map_err(|e| format!("archive URL {listed:?}: {e}"))?,
            Err(e) => return Err(format!("archive URL {listed:?}: {e}")),
        };
        match url.scheme() {
            "http" | "https" => Ok(url),
            other => Err(format!(
                "archive URL {} uses {other}://, only http(s) archives are fetched",
                shown(&url)
            )),
        }
    }
}

/// A URL with its password (if any) masked, for messages and records.
pub(super) fn shown(url: &Url) -> Url {
    let mut url = url.clone();
    if url.password().is_some() {
        // Cannot fail: the URL has a password, so it has a host.
        let _ = url.set_password(Some("***"));
    }
    url
}

/// One version of a chart as the index lists it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct IndexEntry {
    #[serde(default)]
    pub(super) version: String,
    #[serde(default)]
    pub(super) urls: Option<Vec<String>>,
    #[serde(default)]
    pub(super) digest: Option<String>,
}

#[derive(Deserialize)]
struct IndexFile {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    entries: Option<BTreeMap<String, Option<Vec<IndexEntry>>>>,
}

/// The entries of chart `name` in an index (None when the index has no such chart); the error
/// says why the text is not a repository index.
pub(super) fn entries_of(index: &[u8], name: &str) -> Result<Option<Vec<IndexEntry>>, String> {
    let file: IndexFile = yaml_serde::from_slice(index).map_err(|e| e.to_string())?;
    // Helm refuses an index without an apiVersion; it is also what tells an index from, say, a
    // login page that answered 200.
    if file.api_version.as_deref().is_none_or(str::is_empty) {
        return Err("it has no apiVersion, so it is not a Helm repository index".into());
    }
    Ok(file
        .entries
        .unwrap_or_default()
        .remove(name)
        .map(Option::unwrap_or_default))
}

/// The SHA-256 an entry's `digest` gives, as 64 lower-case hex digits (Helm writes bare hex;
/// a `sha256:` prefix is tolerated). None when the entry has no digest.
pub(super) fn expected_digest(entry: &IndexEntry) -> Result<Option<String>, String> {
    let Some(text) = entry.digest.as_deref().map(str::trim) else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    let hex = text.strip_prefix("sha256:").unwrap_or(text).to_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "digest {text:?} of version {} is not a SHA-256",
            entry.version
        ));
    }
    Ok(Some(hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(text: &str) -> Repository {
        Repository::parse(text).unwrap()
    }

    #[test]
    fn trailing_slashes_do_not_change_the_index_url() {
        for text in [
            "https://charts.example.com/stable",
            "https://charts.example.com/stable/",
            "https://charts.example.com/stable//",
        ] {
            assert_eq!(
                repo(text).index_url().as_str(),
                "https://charts.example.com/stable/index.yaml"
            );
        }
        assert_eq!(
            repo("https://charts.example.com/").index_url().as_str(),
            "https://charts.example.com/index.yaml"
        );
        assert_eq!(
            repo("https://charts.example.com?token=t")
                .index_url()
                .as_str(),
            "https://charts.example.com/index.yaml?token=t"
        );
    }

    #[test]
    fn archive_urls_resolve_against_the_repository() {
        let r = repo("http://127.0.0.1:8080/stable/");
        assert_eq!(
            r.archive_url("demo-1.0.0.tgz").unwrap().as_str(),
            "http://127.0.0.1:8080/stable/demo-1.0.0.tgz"
        );
        assert_eq!(
            r.archive_url("charts/demo-1.0.0.tgz").unwrap().as_str(),
            "http://127.0.0.1:8080/stable/charts/demo-1.0.0.tgz"
        );
        assert_eq!(
            r.archive_url("/archive/demo-1.0.0.tgz").unwrap().as_str(),
            "http://127.0.0.1:8080/archive/demo-1.0.0.tgz"
        );
        assert_eq!(
            r.archive_url("https://cdn.example.com/demo-1.0.0.tgz")
                .unwrap()
                .as_str(),
            "https://cdn.example.com/demo-1.0.0.tgz"
        );
        assert!(r.archive_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn oci_and_other_schemes_are_refused() {
        assert!(matches!(
            Repository::parse("oci://ghcr.io/acme/charts"),
            Err(FetchError::BadUrl { .. })
        ));
        for bad in [
            "ftp://example.com/charts",
            "charts.example.com",
            "file:///tmp/x",
        ] {
            assert!(
                matches!(Repository::parse(bad), Err(FetchError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn cache_keys_keep_host_port_and_path_apart() {
        assert_eq!(
            repo("https://charts.example.com").cache_key(),
            "charts.example.com"
        );
        assert_eq!(
            repo("https://charts.example.com/stable/").cache_key(),
            "charts.example.com_stable"
        );
        assert_eq!(
            repo("http://127.0.0.1:8080/a/b").cache_key(),
            "127.0.0.1_8080_a_b"
        );
        assert_ne!(
            repo("https://h.example/stable").cache_key(),
            repo("https://h.example/incubator").cache_key()
        );
    }

    #[test]
    fn passwords_are_masked_in_what_is_shown() {
        let r = repo("https://user:s3cret@charts.example.com/x");
        assert_eq!(r.shown(), "https://user:***@charts.example.com/x");
        assert_eq!(
            repo("https://charts.example.com/").shown(),
            "https://charts.example.com"
        );
        let err = Repository::parse("oci://user:s3cret@ghcr.io/x").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn an_index_lists_versions_even_when_they_look_like_numbers() {
        let index = b"apiVersion: v1\nentries:\n  demo:\n  - version: 1.10\n    urls: [demo-1.10.tgz]\n    digest: abc\n  - version: \"2.0.0\"\n  other: null\n";
        let entries = entries_of(index, "demo").unwrap().unwrap();
        let versions: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(versions, ["1.10", "2.0.0"]);
        assert_eq!(entries_of(index, "other").unwrap().unwrap().len(), 0);
        assert!(entries_of(index, "absent").unwrap().is_none());
    }

    #[test]
    fn text_that_is_not_an_index_is_refused() {
        assert!(entries_of(b"<html><body>Sign in</body></html>", "demo").is_err());
        assert!(entries_of(b"entries: {}\n", "demo").is_err());
        assert!(entries_of(b"apiVersion: v1\nentries: [1, 2]\n", "demo").is_err());
        assert!(entries_of(b"apiVersion: v1\n", "demo").unwrap().is_none());
    }

    #[test]
    fn digests_are_read_as_sha256_hex() {
        let entry = |digest: Option<&str>| IndexEntry {
            version: "1.0.0".into(),
            urls: None,
            digest: digest.map(str::to_string),
        };
        let hex = "ab".repeat(32);
        assert_eq!(
            expected_digest(&entry(Some(&hex))).unwrap(),
            Some(hex.clone())
        );
        let prefixed = format!("sha256:{}", hex.to_uppercase());
        assert_eq!(expected_digest(&entry(Some(&prefixed))).unwrap(), Some(hex));
        assert_eq!(expected_digest(&entry(None)).unwrap(), None);
        assert!(expected_digest(&entry(Some("md5:1234"))).is_err());
    }
}
