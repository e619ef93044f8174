//! OCI registries on loopback for the tests: Debian's `docker-registry` (`serve` with a
//! config and storage in a temporary folder, on 127.0.0.1 and a free port, ready when `/v2/`
//! answers, killed with its process group on drop), optionally behind htpasswd basic auth;
//! helpers that push blobs, manifests and indexes through the distribution API; and a token
//! front: a small HTTP server that demands a Bearer token (`WWW-Authenticate: Bearer …`),
//! issues tokens at `/token` (optionally only for a user and password), and forwards
//! authorized requests to a registry, counting what it was asked; and a counting forwarder
//! ([`CountingProxy`]) that records each request's method and path.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A running `docker-registry serve`.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// Basic credentials the push helpers use (the htpasswd instance's).
    login: Option<(String, String)>,
}

/// A pushed blob.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
}

impl Registry {
    /// A registry without auth.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// A registry that wants `user`/`password` by HTTP Basic (bcrypt htpasswd made here).
    pub fn start_with_htpasswd(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user.to_string(), password.to_string())))
    }

    /// A registry without auth that listens on every interface (0.0.0.0), for a test that
    /// addresses it by another name than loopback's.
    pub fn start_on_all_interfaces() -> Registry {
        Registry::start_listening(None, "0.0.0.0")
    }

    fn start_with(login: Option<(String, String)>) -> Registry {
        Registry::start_listening(login, "127.0.0.1")
    }

    fn start_listening(login: Option<(String, String)>, address: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog: {{ level: warn, accesslog: {{ disabled: true }} }}\n\
             storage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\n\
             http:\n  addr: {address}:{port}\n",
            dir.path().join("storage").display()
        );
        if let Some((user, password)) = &login {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils; scripts/registry-deps.sh installs it)");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(&htpasswd, out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{ realm: kube-harden-tests, path: {} }}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package; scripts/registry-deps.sh installs it)");
        let mut registry = Registry {
            child,
            port,
            dir,
            login,
        };
        registry.wait_ready();
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process group the registry runs in (its pid).
    pub fn group(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://{}/v2/", self.host());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry ended ({status}): {}", self.log());
            }
            // Any answer (200, or 401 with auth) means it serves.
            if http().get(&url).send().is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    fn authorized(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.login {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Uploads `bytes` as a blob of `repository` (monolithic upload).
    pub fn push_blob(&self, repository: &str, bytes: &[u8]) -> Pushed {
        let digest = sha256_digest(bytes);
        let start = self
            .authorized(http().post(format!(
                "http://{}/v2/{repository}/blobs/uploads/",
                self.host()
            )))
            .send()
            .unwrap();
        assert_eq!(
            start.status().as_u16(),
            202,
            "upload start: {}",
            start.text().unwrap_or_default()
        );
        let location = start.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("http://{}{location}", self.host())
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let done = self
            .authorized(http().put(format!("{location}{separator}digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            done.status().as_u16(),
            201,
            "upload: {}",
            done.text().unwrap_or_default()
        );
        Pushed {
            digest,
            size: bytes.len() as u64,
        }
    }

    /// Puts `body` as a manifest of `media_type` under `reference` (a tag or a digest).
    pub fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Pushed {
        let answer = self
            .authorized(http().put(format!(
                "http://{}/v2/{repository}/manifests/{reference}",
                self.host()
            )))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            answer.status().as_u16(),
            201,
            "manifest: {}",
            answer.text().unwrap_or_default()
        );
        Pushed {
            digest: sha256_digest(body),
            size: body.len() as u64,
        }
    }

    /// An image of `config` and `layers` (media type, bytes) tagged `tag`; the manifest's push.
    pub fn push_image(
        &self,
        repository: &str,
        tag: &str,
        config: &[u8],
        layers: &[(&str, &[u8])],
    ) -> Pushed {
        let body = self.image_manifest(repository, OCI_CONFIG, config, layers);
        self.push_manifest(repository, tag, OCI_MANIFEST, body.as_bytes())
    }

    /// Pushes the blobs and returns the OCI manifest's text (not pushed).
    pub fn image_manifest(
        &self,
        repository: &str,
        config_media_type: &str,
        config: &[u8],
        layers: &[(&str, &[u8])],
    ) -> String {
        let config = self.push_blob(repository, config);
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(media_type, bytes)| {
                let pushed = self.push_blob(repository, bytes);
                serde_json::json!({"mediaType": media_type, "digest": pushed.digest, "size": pushed.size})
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_media_type, "digest": config.digest, "size": config.size},
            "layers": layers,
        })
        .to_string()
    }

    /// An OCI index of (manifest, `os/arch`) entries tagged `tag`.
    pub fn push_index(&self, repository: &str, tag: &str, entries: &[(&Pushed, &str)]) -> Pushed {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(pushed, platform)| {
                let (os, architecture) = platform.split_once('/').unwrap();
                serde_json::json!({
                    "mediaType": OCI_MANIFEST, "digest": pushed.digest, "size": pushed.size,
                    "platform": {"os": os, "architecture": architecture},
                })
            })
            .collect();
        let body =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.push_manifest(repository, tag, OCI_INDEX, body.to_string().as_bytes())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SAFETY: a plain system call on the group this test started.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now (the registry takes it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A plain-HTTP client for the helpers: one per test binary (building one loads the
/// system's trust store, a tenth of a second on a busy machine).
pub fn http() -> reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap()
        })
        .clone()
}

/// What the token front saw.
#[derive(Debug, Default, Clone)]
pub struct FrontLog {
    /// `/token` requests, with their Authorization header (if any).
    pub token_requests: Vec<Option<String>>,
    /// The bodies of `POST /token` requests (OAuth2 refresh-token grants).
    pub token_posts: Vec<String>,
    /// Registry requests answered 401 for want of a token.
    pub challenged: usize,
    /// Registry requests forwarded with a valid token.
    pub forwarded: usize,
}

/// A Bearer-token front for a registry on loopback.
pub struct TokenFront {
    port: u16,
    log: Arc<Mutex<FrontLog>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct FrontConfig {
    upstream: String,
    /// `Authorization` a token request must carry (Basic …), if any.
    required_login: Option<String>,
    /// The refresh token a `POST /token` must carry, if one is accepted.
    refresh_token: Option<String>,
    token: String,
    port: u16,
}

impl TokenFront {
    /// A front for `upstream` (`127.0.0.1:PORT`) that grants `token` to any token request, or
    /// only to one with `login` (user, password) when given.
    pub fn start(upstream: &str, login: Option<(&str, &str)>, token: &str) -> TokenFront {
        let login = login.map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes())));
        TokenFront::start_with(upstream, login, None, token)
    }

    /// A front whose token service grants `token` only to an OAuth2 refresh-token grant
    /// (`POST /token`, `grant_type=refresh_token`) that carries `refresh`.
    pub fn start_with_refresh_token(upstream: &str, refresh: &str, token: &str) -> TokenFront {
        let no_get = Some("no GET is granted".to_string());
        TokenFront::start_with(upstream, no_get, Some(refresh.to_string()), token)
    }

    fn start_with(
        upstream: &str,
        required_login: Option<String>,
        refresh_token: Option<String>,
        token: &str,
    ) -> TokenFront {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(FrontLog::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let config = FrontConfig {
            upstream: upstream.to_string(),
            required_login,
            refresh_token,
            token: token.to_string(),
            port,
        };
        let thread = {
            let (log, stopping) = (log.clone(), stopping.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        front_answer(stream, &config, &log);
                    }
                }
            })
        };
        TokenFront {
            port,
            log,
            stopping,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> FrontLog {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TokenFront {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request: `/token` issues, a registry path without the token is challenged, with it
/// forwarded.
fn front_answer(mut stream: TcpStream, config: &FrontConfig, log: &Mutex<FrontLog>) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let Some((method, target, headers)) = read_head(&mut stream) else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let authorization = header("authorization");
    if target.starts_with("/token") && method == "POST" {
        let length = header("content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        let _ = stream.read_exact(&mut body);
        let body = String::from_utf8_lossy(&body).to_string();
        log.lock().unwrap().token_posts.push(body.clone());
        let granted = config.refresh_token.as_ref().is_some_and(|refresh| {
            body.split('&').any(|p| p == "grant_type=refresh_token")
                && body
                    .split('&')
                    .any(|p| p == format!("refresh_token={refresh}"))
        });
        let (status, answer) = match granted {
            true => (
                "200 OK",
                format!("{{\"access_token\":\"{}\"}}", config.token),
            ),
            false => ("401 Unauthorized", "{}".to_string()),
        };
        respond(
            &mut stream,
            status,
            &[("Content-Type", "application/json")],
            answer.as_bytes(),
        );
        return;
    }
    if target.starts_with("/token") {
        log.lock()
            .unwrap()
            .token_requests
            .push(authorization.clone());
        let granted = config.required_login.is_none() || authorization == config.required_login;
        if granted {
            let body = format!("{{\"token\":\"{}\",\"expires_in\":300}}", config.token);
            respond(
                &mut stream,
                "200 OK",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            );
        } else {
            respond(
                &mut stream,
                "401 Unauthorized",
                &[],
                b"{\"details\":\"bad login\"}",
            );
        }
        return;
    }
    if authorization.as_deref() != Some(&format!("Bearer {}", config.token)) {
        log.lock().unwrap().challenged += 1;
        let challenge = format!(
            "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"kube-harden-tests\",scope=\"repository:{}:pull\"",
            config.port,
            repository_of(&target)
        );
        respond(
            &mut stream,
            "401 Unauthorized",
            &[
                ("WWW-Authenticate", &challenge),
                ("Content-Type", "application/json"),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        return;
    }
    log.lock().unwrap().forwarded += 1;
    let mut request = http().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("http://{}{target}", config.upstream),
    );
    if let Some(accept) = header("accept") {
        request = request.header("accept", accept);
    }
    let upstream = request.send().unwrap();
    let status = upstream.status();
    let copied: Vec<(String, String)> = ["content-type", "docker-content-digest", "link"]
        .iter()
        .filter_map(|n| {
            Some((
                n.to_string(),
                upstream.headers().get(*n)?.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let body = upstream.bytes().unwrap();
    let copied: Vec<(&str, &str)> = copied
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    respond(
        &mut stream,
        &format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        &copied,
        &body,
    );
}

/// `/v2/a/b/manifests/x` -> `a/b`.
fn repository_of(target: &str) -> String {
    let path = target.trim_start_matches("/v2/");
    let path = path.split('?').next().unwrap_or_default();
    let cut = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| path.find(m))
        .min()
        .unwrap_or(path.len());
    path[..cut].to_string()
}

/// A request's method, target and headers.
type Head = (String, String, Vec<(String, String)>);

fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some((method, target, headers))
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A `DOCKER_CONFIG` folder whose `config.json` is `json`.
pub fn docker_config(dir: &Path, json: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), json).unwrap();
    dir.to_path_buf()
}

/// A plain forwarder on loopback in front of a registry that records each request's method
/// and path (`HEAD /v2/khtest/good/manifests/1`), to count what a run asks for. Optionally it
/// drops `Docker-Content-Digest` from HEAD answers (a registry that does not send it).
pub struct CountingProxy {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    strip_head_digest: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CountingProxy {
    pub fn start(upstream: &str) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let strip_head_digest = Arc::new(AtomicBool::new(false));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, strip, stopping) =
                (seen.clone(), strip_head_digest.clone(), stopping.clone());
            let upstream = upstream.to_string();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (seen, strip, upstream) = (seen.clone(), strip.clone(), upstream.clone());
                    // One thread a connection: the reader asks up to 8 at once.
                    std::thread::spawn(move || {
                        forward(stream, &upstream, &seen, strip.load(Ordering::SeqCst))
                    });
                }
            })
        };
        CountingProxy {
            port,
            seen,
            strip_head_digest,
            stopping,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests so far, and forgets them.
    pub fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    pub fn strip_head_digest(&self, strip: bool) {
        self.strip_head_digest.store(strip, Ordering::SeqCst);
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How many of `requests` have this method and a path containing `part`.
pub fn count(requests: &[(String, String)], method: &str, part: &str) -> usize {
    requests
        .iter()
        .filter(|(m, p)| m == method && p.contains(part))
        .count()
}

/// Forwards one request (method, target, `Accept`, `Authorization`, body-less) to `upstream`
/// and its answer back, with the headers a registry client reads.
fn forward(
    mut stream: TcpStream,
    upstream: &str,
    seen: &Mutex<Vec<(String, String)>>,
    strip_head_digest: bool,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let Some((method, target, headers)) = read_head(&mut stream) else {
        return;
    };
    seen.lock().unwrap().push((method.clone(), target.clone()));
    let mut request = http().request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("http://{upstream}{target}"),
    );
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("accept") || name.eq_ignore_ascii_case("authorization") {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let Ok(answer) = request.send() else {
        respond(&mut stream, "502 Bad Gateway", &[], b"");
        return;
    };
    let status = answer.status();
    let copied: Vec<(String, String)> = [
        "content-type",
        "docker-content-digest",
        "link",
        "www-authenticate",
    ]
    .iter()
    .filter(|n| !(strip_head_digest && method == "HEAD" && **n == "docker-content-digest"))
    .filter_map(|n| {
        Some((
            n.to_string(),
            answer.headers().get(*n)?.to_str().ok()?.to_string(),
        ))
    })
    .collect();
    // A HEAD's answer has no body (its length is then 0 here, not the GET's).
    let body = answer.bytes().unwrap_or_default();
    let copied: Vec<(&str, &str)> = copied
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let status = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    respond(&mut stream, &status, &copied, &body);
}
