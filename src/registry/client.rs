//! The [`Client`]: requests to a registry's `/v2/` API with the `Accept` list, the 401
//! challenge answered once (token or Basic) and remembered per registry and scope, bodies read
//! with a size limit and a whole-request time limit, and every manifest and blob checked
//! against its digest; a HEAD asks which digest a tag serves without reading it.

use crate::http::{innermost, tls_config};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};
use url::Url;

use super::auth::{self, Challenge, TokenAnswer};
use super::credentials::{is_loopback, Credential, Found, Secret};
use super::manifest::{self, Manifest, Platform, Served};
use super::reference::{host_without_port, Reference};
use super::{Descriptor, RegistryError, Settings};

/// The most a manifest may weigh (the distribution spec's registries take 4 MiB).
const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;
/// The most one page of a tag list may weigh.
const TAG_PAGE_LIMIT: u64 = 16 * 1024 * 1024;
/// The most pages of a tag list followed (a registry whose `Link` loops stops here).
const MAX_TAG_PAGES: usize = 1000;
/// The most of an error body read for its error code.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// The most a token answer may weigh.
const TOKEN_LIMIT: u64 = 1024 * 1024;
/// The header a registry names a manifest's digest in.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A registry client for one run: one HTTP connection pool, the credentials found and the
/// tokens granted, shared by every thread that uses it (it is `Send + Sync`). Blocking: call
/// it from plain threads, not from inside an async runtime.
pub struct Client {
    http: reqwest::blocking::Client,
    settings: Settings,
    /// `Authorization` values by (registry, scope), for the run.
    authorizations: Mutex<HashMap<(String, String), Secret>>,
    /// The credential found for each registry (a helper runs once a registry).
    found: Mutex<HashMap<String, Option<Found>>>,
}

/// A successful answer, read.
struct Answer {
    url: Url,
    bytes: Vec<u8>,
    content_type: String,
    digest: Option<String>,
    link: Option<String>,
}

impl Client {
    pub fn new(settings: Settings) -> Result<Client, RegistryError> {
        let setup = |reason: String| RegistryError::Setup { reason };
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls_config().map_err(setup)?)
            .connect_timeout(settings.timeouts.connect)
            // The blocking client applies this to the wait for the answer and to each read of
            // the body; the whole request is bounded in `read_body`.
            .timeout(settings.timeouts.read)
            .user_agent(concat!("kube-harden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| setup(innermost(&e)))?;
        Ok(Client {
            http,
            settings,
            authorizations: Mutex::default(),
            found: Mutex::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The image manifest `reference` names; an index is followed to the settings' platform.
    pub fn manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        self.manifest_for(reference, &self.settings.platform)
    }

    /// The image manifest `reference` names; an index is followed to `platform`.
    pub fn manifest_for(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Manifest, RegistryError> {
        let (index_digest, entries) = match self.served_manifest(reference)? {
            (_, Served::Image(manifest)) => return Ok(*manifest),
            (digest, Served::Index(entries)) => (digest, entries),
        };
        let entry = manifest::choose(&entries, platform).map_err(|available| {
            RegistryError::NoPlatform {
                reference: reference.to_string(),
                platform: platform.to_string(),
                available: if available.is_empty() {
                    "no platforms".into()
                } else {
                    available.join(", ")
                },
            }
        })?;
        let child = reference.with_digest(&entry.digest)?;
        match self.served_manifest(&child)?.1 {
            Served::Image(mut manifest) => {
                manifest.index_digest = Some(index_digest);
                Ok(*manifest)
            }
            Served::Index(_) => Err(RegistryError::BadMediaType {
                reference: child.to_string(),
                reason: "an index lists another index for the platform".into(),
            }),
        }
    }

    /// The digest of the manifest or index `reference` names, as served (`sha256:…`).
    pub fn manifest_digest(&self, reference: &Reference) -> Result<String, RegistryError> {
        let answer = self.get(
            reference,
            &manifest_path(reference),
            &accept_list(),
            MANIFEST_LIMIT,
        )?;
        self.checked_manifest_digest(reference, &answer)
    }

    /// The digest the registry says `reference` serves now (`sha256:…`, from the
    /// `Docker-Content-Digest` header of a HEAD of the manifest, with the same `Accept` list
    /// as a GET, so that the same manifest or index is meant); None when the answer names no
    /// `sha256:` digest. Nothing is read, so nothing is checked: the caller compares it with a
    /// digest it checked before. Docker Hub counts each GET of a manifest against the pull
    /// limit, not a HEAD.
    pub fn manifest_head(&self, reference: &Reference) -> Result<Option<String>, RegistryError> {
        let url = self.url(reference, &manifest_path(reference))?;
        let (response, _) = self.authorized(reference, Method::HEAD, url, &accept_list())?;
        Ok(header_text(&response, DOCKER_CONTENT_DIGEST).filter(|d| d.starts_with("sha256:")))
    }

    /// The blob `descriptor` points to in `reference`'s repository, at most `limit` bytes,
    /// its SHA-256 checked against the descriptor's digest.
    pub fn blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let shown = reference.with_digest(&descriptor.digest)?;
        if descriptor.size > limit {
            return Err(RegistryError::TooLarge {
                reference: shown.to_string(),
                limit,
            });
        }
        let path = format!("blobs/{}", descriptor.digest);
        let answer = self.get(&shown, &path, "*/*", limit)?;
        let actual = sha256_digest(&answer.bytes);
        if actual != descriptor.digest {
            return Err(RegistryError::DigestMismatch {
                reference: shown.to_string(),
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(answer.bytes)
    }

    /// Every tag of `reference`'s repository, in the registry's order, following `Link`
    /// pages.
    pub fn tags(&self, reference: &Reference) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let shown = Reference {
            tag: None,
            digest: None,
            ..reference.clone()
        };
        let mut url = self.url(&shown, "tags/list")?;
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let answer = self.get_url(&shown, url, "application/json", TAG_PAGE_LIMIT)?;
            let page: Page =
                serde_json::from_slice(&answer.bytes).map_err(|e| RegistryError::BadAnswer {
                    reference: shown.to_string(),
                    reason: format!("the tag list is not JSON of the spec's shape: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(next) = answer.link.as_deref().and_then(next_link) else {
                return Ok(tags);
            };
            url = answer
                .url
                .join(next)
                .map_err(|e| RegistryError::BadAnswer {
                    reference: shown.to_string(),
                    reason: format!("the tag list's next page {next:?} is not a URL: {e}"),
                })?;
        }
        Err(RegistryError::BadAnswer {
            reference: shown.to_string(),
            reason: format!("the tag list has more than {MAX_TAG_PAGES} pages"),
        })
    }

    /// The manifest `reference` names, read, with its digest, checked (an index's is its
    /// [`Manifest::index_digest`]: one GET, not a second to ask for it).
    fn served_manifest(&self, reference: &Reference) -> Result<(String, Served), RegistryError> {
        let answer = self.get(
            reference,
            &manifest_path(reference),
            &accept_list(),
            MANIFEST_LIMIT,
        )?;
        let digest = self.checked_manifest_digest(reference, &answer)?;
        let served =
            manifest::read(&answer.bytes, &answer.content_type, &digest).map_err(|reason| {
                RegistryError::BadMediaType {
                    reference: reference.to_string(),
                    reason,
                }
            })?;
        Ok((digest, served))
    }

    /// The SHA-256 of a manifest answer, which must be the digest asked for and the one the
    /// registry says it serves.
    fn checked_manifest_digest(
        &self,
        reference: &Reference,
        answer: &Answer,
    ) -> Result<String, RegistryError> {
        let actual = sha256_digest(&answer.bytes);
        let claimed = reference
            .digest
            .as_ref()
            .or(answer.digest.as_ref().filter(|d| d.starts_with("sha256:")));
        match claimed {
            Some(expected) if *expected != actual => Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                expected: expected.clone(),
                actual,
            }),
            _ => Ok(actual),
        }
    }

    fn url(&self, reference: &Reference, path: &str) -> Result<Url, RegistryError> {
        let scheme = if self.is_plain_http(&reference.registry) {
            "http"
        } else {
            "https"
        };
        let text = format!(
            "{scheme}://{}/v2/{}/{path}",
            reference.api_host(),
            reference.repository
        );
        Url::parse(&text).map_err(|e| RegistryError::BadAnswer {
            reference: reference.to_string(),
            reason: format!("{text:?} is not a URL: {e}"),
        })
    }

    /// Loopback, as docker does, or a registry the settings name.
    fn is_plain_http(&self, registry: &str) -> bool {
        is_loopback(registry)
            || self.settings.insecure_registries.iter().any(|listed| {
                let listed = listed.trim();
                listed == registry
                    || (!listed.contains(':') && listed == host_without_port(registry))
            })
    }

    fn get(
        &self,
        reference: &Reference,
        path: &str,
        accept: &str,
        limit: u64,
    ) -> Result<Answer, RegistryError> {
        let url = self.url(reference, path)?;
        self.get_url(reference, url, accept, limit)
    }

    /// One GET, its body read.
    fn get_url(
        &self,
        reference: &Reference,
        url: Url,
        accept: &str,
        limit: u64,
    ) -> Result<Answer, RegistryError> {
        let (response, started) = self.authorized(reference, Method::GET, url, accept)?;
        self.read_answer(reference, response, limit, started)
    }

    /// One request: with the authorization known for the scope; after a 401, once more with
    /// the one the challenge asks for. A success, with when it was sent (the whole-request
    /// limit counts from there).
    fn authorized(
        &self,
        reference: &Reference,
        method: Method,
        url: Url,
        accept: &str,
    ) -> Result<(Response, Instant), RegistryError> {
        let key = (reference.registry.clone(), pull_scope(reference));
        let mut authorization = lock(&self.authorizations).get(&key).cloned();
        let mut challenged = false;
        loop {
            let started = Instant::now();
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, accept);
            if let Some(value) = &authorization {
                request = with_authorization(request, value);
            }
            let response = self.send(reference, request)?;
            match response.status() {
                StatusCode::UNAUTHORIZED if !challenged => {
                    challenged = true;
                    let value = self.answer_challenge(reference, &response, &key.1)?;
                    lock(&self.authorizations).insert(key.clone(), value.clone());
                    authorization = Some(value);
                }
                status if status.is_success() => return Ok((response, started)),
                status => return Err(self.failure(reference, status, response, started)),
            }
        }
    }

    fn send(
        &self,
        reference: &Reference,
        request: RequestBuilder,
    ) -> Result<Response, RegistryError> {
        request.send().map_err(|e| RegistryError::Unreachable {
            reference: reference.to_string(),
            reason: with_plain_http_hint(self.reason(&e), &reference.registry),
        })
    }

    /// The `Authorization` a 401's challenge asks for, with the registry's credential if any.
    fn answer_challenge(
        &self,
        reference: &Reference,
        response: &Response,
        scope: &str,
    ) -> Result<Secret, RegistryError> {
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_challenge);
        let found = self.credential(&reference.registry);
        match challenge {
            Some(Challenge::Basic) => found
                .as_ref()
                .and_then(|f| auth::basic_header(&f.credential))
                .ok_or_else(|| self.denied(reference, 401)),
            Some(Challenge::Bearer(parameters)) => {
                self.request_token(reference, &parameters, scope, found.as_ref())
            }
            None => Err(self.denied(reference, 401)),
        }
    }

    /// A token from the challenge's realm, for the challenge's scope (else the pull scope).
    fn request_token(
        &self,
        reference: &Reference,
        parameters: &std::collections::BTreeMap<String, String>,
        scope: &str,
        found: Option<&Found>,
    ) -> Result<Secret, RegistryError> {
        let bad = |reason: String| RegistryError::BadAnswer {
            reference: reference.to_string(),
            reason,
        };
        let realm = parameters
            .get("realm")
            .ok_or_else(|| bad("the token challenge names no realm".into()))?;
        let mut url = Url::parse(realm)
            .map_err(|e| bad(format!("the token realm {realm:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad(format!(
                "the token realm {realm:?} is not an HTTP(S) URL"
            )));
        }
        // A secret goes over plain HTTP only where the registry itself is spoken to that way.
        let realm_host = url.host_str().unwrap_or_default().to_string();
        let may_send_secret = url.scheme() == "https" || self.is_plain_http(&realm_host);
        let credential = found.filter(|_| may_send_secret).map(|f| &f.credential);
        let service = parameters.get("service").cloned().unwrap_or_default();
        let scope = parameters.get("scope").map_or(scope, String::as_str);
        let started = Instant::now();
        let request = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("service", &service)
                    .append_pair("scope", scope)
                    .append_pair("client_id", "kube-harden")
                    .append_pair("refresh_token", refresh.expose())
                    .finish();
                self.http
                    .post(url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            other => {
                url.query_pairs_mut()
                    .append_pair("service", &service)
                    .append_pair("scope", scope);
                let request = self.http.get(url);
                match other.and_then(auth::basic_header) {
                    Some(value) => with_authorization(request, &value),
                    None => request,
                }
            }
        };
        let response = self.send(reference, request)?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.denied(reference, status.as_u16()));
        }
        if !status.is_success() {
            return Err(bad(format!(
                "the token service answered HTTP {}",
                status.as_u16()
            )));
        }
        let answer = self.read_answer(reference, response, TOKEN_LIMIT, started)?;
        serde_json::from_slice::<TokenAnswer>(&answer.bytes)
            .ok()
            .and_then(TokenAnswer::into_header)
            .ok_or_else(|| bad("the token service's answer holds no token".into()))
    }

    /// The credential for `registry`, looked up once per client.
    fn credential(&self, registry: &str) -> Option<Found> {
        lock(&self.found)
            .entry(registry.to_string())
            .or_insert_with(|| self.settings.credentials.find(registry))
            .clone()
    }

    fn denied(&self, reference: &Reference, status: u16) -> RegistryError {
        let how = match self.credential(&reference.registry) {
            Some(found) => format!("the credentials from {} were refused", found.source),
            None => format!(
                "no credentials for {} were found ({})",
                reference.registry,
                self.settings.credentials.places()
            ),
        };
        RegistryError::Denied {
            reference: reference.to_string(),
            status,
            how,
        }
    }

    /// The error for an answer that is not a success, with the registry's error code.
    fn failure(
        &self,
        reference: &Reference,
        status: StatusCode,
        response: Response,
        started: Instant,
    ) -> RegistryError {
        let body = self
            .read_answer(reference, response, ERROR_BODY_LIMIT, started)
            .map(|a| a.bytes)
            .unwrap_or_default();
        let code = error_code(&body);
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.denied(reference, status.as_u16())
            }
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                reference: reference.to_string(),
                what: not_found_text(code.as_ref().map(|(c, _)| c.as_str())),
            },
            _ => RegistryError::Status {
                reference: reference.to_string(),
                status: status.as_u16(),
                detail: code
                    .map(|(code, message)| format!(" ({code}: {})", cut(&message, 200)))
                    .unwrap_or_default(),
            },
        }
    }

    /// The body, at most `limit` bytes, within the whole-request limit.
    fn read_answer(
        &self,
        reference: &Reference,
        response: Response,
        limit: u64,
        started: Instant,
    ) -> Result<Answer, RegistryError> {
        let content_type = header_text(&response, CONTENT_TYPE.as_str()).unwrap_or_default();
        let digest = header_text(&response, DOCKER_CONTENT_DIGEST);
        let link = header_text(&response, LINK.as_str());
        let url = response.url().clone();
        let too_large = || RegistryError::TooLarge {
            reference: reference.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut reader = response.take(limit + 1);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| RegistryError::Unreachable {
                    reference: reference.to_string(),
                    reason: self.body_reason(&e),
                })?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            if started.elapsed() > self.settings.timeouts.whole {
                return Err(RegistryError::Unreachable {
                    reference: reference.to_string(),
                    reason: format!(
                        "the answer did not finish in {} (timed out)",
                        crate::process::seconds(self.settings.timeouts.whole)
                    ),
                });
            }
        }
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(Answer {
            url,
            bytes,
            content_type,
            digest,
            link,
        })
    }

    fn reason(&self, error: &reqwest::Error) -> String {
        self.settings.timeouts.request_failure(error)
    }

    fn body_reason(&self, error: &std::io::Error) -> String {
        self.settings.timeouts.body_failure(error, "the answer")
    }
}

/// A header's value, when it is text.
fn header_text(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_string)
}

fn manifest_path(reference: &Reference) -> String {
    format!("manifests/{}", reference.manifest_key())
}

fn accept_list() -> String {
    manifest::ACCEPTED.join(", ")
}

/// `repository:<name>:pull`: every call here only reads.
fn pull_scope(reference: &Reference) -> String {
    format!("repository:{}:pull", reference.repository)
}

fn with_authorization(request: RequestBuilder, value: &Secret) -> RequestBuilder {
    match HeaderValue::from_str(value.expose()) {
        Ok(mut header) => {
            header.set_sensitive(true);
            request.header(AUTHORIZATION, header)
        }
        // A credential that cannot be a header is not sent; the registry then says no.
        Err(_) => request,
    }
}

/// `<…/tags/list?last=x&n=2>; rel="next"` -> the URL of the next page.
fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, parameters) = part.split_once(';')?;
        let is_next = parameters
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then_some(target)
    })
}

/// The first `errors[].code` and `message` of a registry's error body.
fn error_code(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let body: Body = serde_json::from_slice(body).ok()?;
    let first = body.errors.into_iter().next()?;
    Some((first.code, first.message))
}

fn not_found_text(code: Option<&str>) -> String {
    match code {
        Some("MANIFEST_UNKNOWN") => "no such tag or digest in the repository (HTTP 404)".into(),
        Some("NAME_UNKNOWN") => "no such repository in the registry (HTTP 404)".into(),
        Some("BLOB_UNKNOWN") => "no such blob in the repository (HTTP 404)".into(),
        _ => "not found (HTTP 404): no such tag or repository".into(),
    }
}

fn cut(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A TLS handshake answered by plain HTTP (rustls reads its first bytes as a record of an
/// invalid content type): says what the user can do about it.
fn with_plain_http_hint(reason: String, registry: &str) -> String {
    if reason.contains("InvalidContentType") {
        format!("{reason}: it answers HTTPS with plain HTTP; `--insecure-registry {registry}` (or the config's `insecureRegistries`) reads it over HTTP")
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"</a>; rel="prev", </b>; rel="next""#),
            Some("/b")
        );
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
    }

    #[test]
    fn registry_error_codes_are_read() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        let (code, message) = error_code(body).unwrap();
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("MANIFEST_UNKNOWN", "manifest unknown")
        );
        assert!(not_found_text(Some("NAME_UNKNOWN")).contains("no such repository"));
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn a_plain_http_answer_to_https_says_what_to_do() {
        let hinted = with_plain_http_hint(
            "received corrupt message of type InvalidContentType".into(),
            "reg.lan:5000",
        );
        assert!(hinted.ends_with("`--insecure-registry reg.lan:5000` (or the config's `insecureRegistries`) reads it over HTTP"), "{hinted}");
        assert_eq!(
            with_plain_http_hint("connection refused".into(), "reg.lan:5000"),
            "connection refused"
        );
    }

    #[test]
    fn insecure_registries_by_host_or_host_and_port() {
        let client = Client::new(Settings {
            insecure_registries: vec!["reg.lan:5000".into(), "plain.lan".into()],
            ..Settings::default()
        })
        .unwrap();
        assert!(client.is_plain_http("127.0.0.1:5000"));
        assert!(client.is_plain_http("reg.lan:5000"));
        assert!(!client.is_plain_http("reg.lan:5001"));
        assert!(client.is_plain_http("plain.lan:8080"));
        assert!(!client.is_plain_http("ghcr.io"));
        let url = client
            .url(&Reference::parse("nginx:1").unwrap(), "manifests/1")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://registry-1.docker.io/v2/library/nginx/manifests/1"
        );
    }

    #[test]
    fn a_client_is_shared_by_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Client>();
        shareable::<RegistryError>();
    }
}
