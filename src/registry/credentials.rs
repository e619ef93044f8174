//! Registry credentials where users already keep them, read only, never shown: the
//! environment's explicit token (`KUBE_HARDEN_REGISTRY_TOKEN`, for the Action's
//! `GITHUB_TOKEN`), docker's `config.json` (`credHelpers`, `credsStore`, `auths`), Helm's
//! `registry/config.json`, and podman's `auth.json`, asked in that order; the first that knows
//! the registry answers. A secret lives in a [`Secret`], whose `Debug` and `Display` print
//! `***`, so that no message, report or log can carry it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use super::reference::host_without_port;

/// The hosts `KUBE_HARDEN_REGISTRY_TOKEN` is sent to when `KUBE_HARDEN_REGISTRY_HOSTS` is unset.
pub const DEFAULT_TOKEN_HOSTS: &str = "ghcr.io";
/// The user name sent with an explicit token when none is given (GitHub's registry takes any).
const DEFAULT_TOKEN_USER: &str = "kube-harden";
/// The most a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// A secret text: printed as `***` by `Debug` and `Display`; [`Secret::expose`] is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for an `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What a registry is shown to prove who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or personal access token): HTTP Basic, or the token
    /// service's Basic login.
    Basic { username: String, password: Secret },
    /// An OAuth refresh token (`identitytoken`, or a helper's `<token>` user), exchanged at the
    /// token service.
    IdentityToken(Secret),
}

/// A credential and where it was found (a path or a helper name: never the secret), for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub credential: Credential,
    pub source: String,
}

/// Where credentials are looked for. [`CredentialStore::from_env`] fills it from the process
/// environment; tests build it from their own.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    /// `KUBE_HARDEN_REGISTRY_TOKEN` with its user and hosts.
    pub env_token: Option<EnvToken>,
    /// Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
    pub docker_config: Option<PathBuf>,
    /// Helm's `registry/config.json`.
    pub helm_config: Option<PathBuf>,
    /// podman's `auth.json`.
    pub podman_auth: Option<PathBuf>,
    /// The `PATH` that `docker-credential-<helper>` programs are looked for in.
    pub helper_path: Option<OsString>,
}

/// A token handed in through the environment, for some hosts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvToken {
    pub username: String,
    pub token: Secret,
    /// `ghcr.io`, `registry.example.com:5000`.
    pub hosts: Vec<String>,
}

impl CredentialStore {
    /// No credentials at all: every registry is asked anonymously.
    pub fn none() -> CredentialStore {
        CredentialStore::default()
    }

    /// The places of this process's environment.
    pub fn from_env() -> CredentialStore {
        CredentialStore::from_vars(|name| std::env::var_os(name))
    }

    /// The places an environment names (`var` reads one variable).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> CredentialStore {
        let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let home = absolute("HOME");
        let docker_config = absolute("DOCKER_CONFIG")
            .or_else(|| home.as_ref().map(|h| h.join(".docker")))
            .map(|dir| dir.join("config.json"));
        let helm_config = absolute("HELM_REGISTRY_CONFIG").or_else(|| {
            absolute("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config")))
                .map(|dir| dir.join("helm/registry/config.json"))
        });
        let podman_auth = absolute("REGISTRY_AUTH_FILE")
            .or_else(|| absolute("XDG_RUNTIME_DIR").map(|dir| dir.join("containers/auth.json")));
        let text = |name: &str| {
            var(name)
                .and_then(|v| v.into_string().ok())
                .filter(|v| !v.trim().is_empty())
        };
        let env_token = text("KUBE_HARDEN_REGISTRY_TOKEN").map(|token| EnvToken {
            username: text("KUBE_HARDEN_REGISTRY_USER")
                .unwrap_or_else(|| DEFAULT_TOKEN_USER.into()),
            token: Secret::new(token.trim()),
            hosts: host_list(
                &text("KUBE_HARDEN_REGISTRY_HOSTS").unwrap_or_else(|| DEFAULT_TOKEN_HOSTS.into()),
            ),
        });
        CredentialStore {
            env_token,
            docker_config,
            helm_config,
            podman_auth,
            helper_path: var("PATH"),
        }
    }

    /// Where credentials were looked for, for a message: `looked in KUBE_HARDEN_REGISTRY_TOKEN
    /// (for ghcr.io), /home/u/.docker/config.json, ...`.
    pub fn places(&self) -> String {
        let mut places = Vec::new();
        if let Some(token) = &self.env_token {
            places.push(format!(
                "KUBE_HARDEN_REGISTRY_TOKEN (for {})",
                token.hosts.join(", ")
            ));
        }
        for path in [&self.docker_config, &self.helm_config, &self.podman_auth]
            .into_iter()
            .flatten()
        {
            places.push(path.display().to_string());
        }
        if places.is_empty() {
            "no credential places are set".into()
        } else {
            format!("looked in {}", places.join(", "))
        }
    }

    /// The credential for `registry` (`ghcr.io`, `127.0.0.1:5000`, `docker.io`), if any place
    /// has one. A place that cannot be read is passed over (the registry then says whether it
    /// wanted credentials).
    pub fn find(&self, registry: &str) -> Option<Found> {
        if let Some(found) = self.env_token_for(registry) {
            return Some(found);
        }
        let files = [
            (&self.docker_config, true),
            (&self.helm_config, false),
            (&self.podman_auth, false),
        ];
        files.into_iter().find_map(|(path, helpers)| {
            let path = path.as_ref()?;
            let config = read_config(path)?;
            if helpers {
                if let Some(found) = self.helper_answer(&config, registry) {
                    return Some(found);
                }
            }
            let credential = config.auth_for(registry)?;
            Some(Found {
                credential,
                source: path.display().to_string(),
            })
        })
    }

    fn env_token_for(&self, registry: &str) -> Option<Found> {
        let token = self.env_token.as_ref()?;
        let matches = token
            .hosts
            .iter()
            .any(|host| normalize_server(host) == normalize_server(registry));
        matches.then(|| Found {
            credential: Credential::Basic {
                username: token.username.clone(),
                password: token.token.clone(),
            },
            source: "KUBE_HARDEN_REGISTRY_TOKEN".into(),
        })
    }

    /// `credHelpers[registry]`, else `credsStore`: runs `docker-credential-<helper> get`.
    fn helper_answer(&self, config: &ConfigFile, registry: &str) -> Option<Found> {
        let wanted = normalize_server(registry);
        let helper = config
            .cred_helpers
            .iter()
            .find(|(server, _)| normalize_server(server) == wanted)
            .map(|(_, helper)| helper.clone())
            .or_else(|| config.creds_store.clone())
            .filter(|helper| is_helper_name(helper))?;
        let credential = self.run_helper(&helper, &helper_server(registry))?;
        Some(Found {
            credential,
            source: format!("docker-credential-{helper}"),
        })
    }

    fn run_helper(&self, helper: &str, server: &str) -> Option<Credential> {
        let program = find_program(
            &format!("docker-credential-{helper}"),
            self.helper_path.as_deref(),
        )?;
        let mut command = Command::new(program);
        command.arg("get");
        let output =
            crate::process::output_with_input(&mut command, server.as_bytes(), HELPER_TIMEOUT)
                .ok()?;
        if !output.status.success() {
            // "credentials not found in native keychain": the helper knows nothing of it.
            return None;
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).ok()?;
        if answer.secret.is_empty() {
            return None;
        }
        Some(if answer.username == "<token>" {
            Credential::IdentityToken(Secret::new(answer.secret))
        } else {
            Credential::Basic {
                username: answer.username,
                password: Secret::new(answer.secret),
            }
        })
    }
}

/// `ghcr.io, registry.example.com:5000` -> each host.
fn host_list(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect()
}

/// Docker's config file, the parts read here (Helm's and podman's files have the same shape).
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

fn read_config(path: &Path) -> Option<ConfigFile> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl ConfigFile {
    /// The `auths` entry whose key names `registry` (keys may carry a scheme and a path).
    fn auth_for(&self, registry: &str) -> Option<Credential> {
        let wanted = normalize_server(registry);
        let entry = self
            .auths
            .iter()
            .find(|(key, _)| normalize_server(key) == wanted)
            .map(|(_, entry)| entry)?;
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Some(Credential::IdentityToken(Secret::new(token.clone())));
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Some(Credential::Basic {
                username: username.clone(),
                password: Secret::new(password.clone()),
            });
        }
        let decoded = decode_base64(entry.auth.as_deref()?.trim())?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        Some(Credential::Basic {
            username: username.to_string(),
            password: Secret::new(password),
        })
    }
}

/// A config key or registry name as compared: no scheme, no path, Docker Hub's names as one.
fn normalize_server(server: &str) -> String {
    let server = server.trim();
    let server = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = server
        .split('/')
        .next()
        .unwrap_or(server)
        .to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// The server name a credential helper is asked about: docker asks Docker Hub's helpers for
/// `https://index.docker.io/v1/`, other registries by their host.
fn helper_server(registry: &str) -> String {
    if normalize_server(registry) == "docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        registry.to_string()
    }
}

/// A helper name runs a program: no path separators, nothing that is not a plain name.
fn is_helper_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// `program` in the folders of `path`.
fn find_program(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Standard base64 with or without padding (docker's `auth` field).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + produced]);
    }
    Some(out)
}

/// Standard base64 with padding (for `Authorization: Basic`).
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `registry` is spoken to over plain HTTP: loopback, as docker does.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_without_port(registry);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> Credential {
        Credential::Basic {
            username: user.into(),
            password: Secret::new(password),
        }
    }

    fn store_with(dir: &Path, docker: &str) -> CredentialStore {
        std::fs::write(dir.join("config.json"), docker).unwrap();
        CredentialStore {
            docker_config: Some(dir.join("config.json")),
            ..CredentialStore::none()
        }
    }

    #[test]
    fn base64_round_trips() {
        for text in ["", "a", "ab", "abc", "user:p@ss w0rd!", "khlab:s3cret"] {
            let encoded = encode_base64(text.as_bytes());
            assert_eq!(
                decode_base64(&encoded).unwrap(),
                text.as_bytes(),
                "{encoded}"
            );
        }
        assert_eq!(encode_base64(b"khlab:s3cret"), "a2hsYWI6czNjcmV0");
        assert_eq!(decode_base64("a2hsYWI6czNjcmV0").unwrap(), b"khlab:s3cret");
        assert!(decode_base64("a!").is_none());
    }

    #[test]
    fn secrets_never_print() {
        let credential = basic("u", "hunter2");
        assert!(!format!("{credential:?}").contains("hunter2"));
        assert_eq!(Secret::new("hunter2").to_string(), "***");
    }

    #[test]
    fn docker_auths_are_read_by_any_key_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(
            dir.path(),
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnB3"},
                "http://127.0.0.1:5001/v2/": {"username": "khlab", "password": "s3cret"},
                "ghcr.io": {"identitytoken": "refresh"}
            }}"#,
        );
        let found = store.find("docker.io").unwrap();
        assert_eq!(found.credential, basic("hub", "pw"));
        assert!(found.source.ends_with("config.json"));
        assert_eq!(
            store.find("127.0.0.1:5001").unwrap().credential,
            basic("khlab", "s3cret")
        );
        assert_eq!(
            store.find("ghcr.io").unwrap().credential,
            Credential::IdentityToken(Secret::new("refresh"))
        );
        assert_eq!(store.find("quay.io"), None);
    }

    #[test]
    fn the_environment_token_goes_to_its_hosts_only_and_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"ghcr.io":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let vars = |name: &str| -> Option<OsString> {
            match name {
                "KUBE_HARDEN_REGISTRY_TOKEN" => Some("ghs_x".into()),
                "DOCKER_CONFIG" => Some(dir.path().into()),
                _ => None,
            }
        };
        let store = CredentialStore::from_vars(vars);
        let found = store.find("ghcr.io").unwrap();
        assert_eq!(found.credential, basic("kube-harden", "ghs_x"));
        assert_eq!(found.source, "KUBE_HARDEN_REGISTRY_TOKEN");
        assert_eq!(store.find("quay.io"), None);
    }

    #[test]
    fn places_follow_the_environment() {
        let vars = |name: &str| -> Option<OsString> {
            match name {
                "HOME" => Some("/home/u".into()),
                "XDG_RUNTIME_DIR" => Some("/run/user/1".into()),
                _ => None,
            }
        };
        let store = CredentialStore::from_vars(vars);
        assert_eq!(
            store.docker_config.unwrap(),
            Path::new("/home/u/.docker/config.json")
        );
        assert_eq!(
            store.helm_config.unwrap(),
            Path::new("/home/u/.config/helm/registry/config.json")
        );
        assert_eq!(
            store.podman_auth.unwrap(),
            Path::new("/run/user/1/containers/auth.json")
        );
        assert!(store.env_token.is_none());
    }

    #[test]
    fn helm_and_podman_files_are_read_after_docker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("helm.json"),
            r#"{"auths":{"a.io":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("podman.json"),
            r#"{"auths":{"b.io":{"auth":"Yzpk"}}}"#,
        )
        .unwrap();
        let store = CredentialStore {
            docker_config: Some(dir.path().join("missing.json")),
            helm_config: Some(dir.path().join("helm.json")),
            podman_auth: Some(dir.path().join("podman.json")),
            ..CredentialStore::none()
        };
        assert_eq!(store.find("a.io").unwrap().credential, basic("a", "b"));
        assert_eq!(store.find("b.io").unwrap().credential, basic("c", "d"));
    }

    #[test]
    fn helper_names_cannot_be_paths() {
        assert!(is_helper_name("ecr-login"));
        assert!(!is_helper_name("../evil"));
        assert!(!is_helper_name("a/b"));
        assert!(!is_helper_name(""));
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        for local in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["ghcr.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
