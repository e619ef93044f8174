//! A stateful fake of the GitHub REST endpoints `kube-harden pr` uses, on loopback: pull
//! requests kept in memory with GitHub's documented JSON shapes and validation (the head branch
//! must exist in the real git remote, one open pull request per head, the 65,536-character
//! body limit, reviewers must be collaborators), rate-limit headers on every answer, and
//! injectable faults (any status with headers, a dropped connection, a lost create race).
//!
//! A plain HTTP/1.1 server on a tokio listener, so that a fault can be anything a network can do.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TOKEN: &str = "ghs_fake-token-for-tests-0123456789";

/// One pull request as the fake keeps it.
#[derive(Clone, Debug)]
pub struct Pr {
    pub number: u64,
    pub open: bool,
    pub merged: bool,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub draft: bool,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One request the fake answered (or dropped).
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub at: Instant,
}

impl Logged {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// What to do instead of the normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status, these headers and this JSON body.
    Status(u16, Vec<(String, String)>, Value),
    /// Read the request, then close the connection without a word.
    Drop,
    /// Do what the request asks, then close the connection without answering.
    DropAfter,
    /// Another run creates the pull request first; this one gets GitHub's 422.
    LostRace,
}

/// A fault for the next `times` requests whose method is `method` and whose path contains
/// `path` (after `skip` such requests have been answered normally).
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path: String,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
}

#[derive(Default)]
pub struct State {
    pub prs: Vec<Pr>,
    pub log: Vec<Logged>,
    pub rules: VecDeque<Rule>,
    pub collaborators: Vec<String>,
    clock: u64,
}

impl State {
    /// The pull request whose number is `number` (as the URL spells it).
    fn pull_mut(&mut self, number: &str) -> Option<&mut Pr> {
        self.prs.iter_mut().find(|p| p.number.to_string() == number)
    }
}

pub struct FakeGitHub {
    pub state: Arc<Mutex<State>>,
    pub port: u16,
    owner: String,
    repo: String,
}

impl FakeGitHub {
    /// Starts the fake for `owner/repo`, whose git remote is the bare repository `remote`.
    pub fn start(owner: &str, repo: &str, remote: PathBuf) -> FakeGitHub {
        let state = Arc::new(Mutex::new(State {
            collaborators: vec!["alice".into(), "bob".into()],
            ..Default::default()
        }));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let server = Server {
            state: state.clone(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            remote,
            port,
        };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let server = Arc::new(server);
                loop {
                    let (socket, _) = listener.accept().await.unwrap();
                    let server = server.clone();
                    tokio::spawn(async move { server.serve(socket).await });
                }
            });
        });
        FakeGitHub {
            state,
            port,
            owner: owner.to_string(),
            repo: repo.to_string(),
        }
    }

    /// The API base URL (with GitHub Enterprise Server's `/api/v3` prefix when `ghes`).
    pub fn url(&self, ghes: bool) -> String {
        let prefix = if ghes { "/api/v3" } else { "" };
        format!("http://127.0.0.1:{}{prefix}", self.port)
    }

    pub fn inject(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push_back(rule);
    }

    pub fn prs(&self) -> Vec<Pr> {
        self.state.lock().unwrap().prs.clone()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// A person closes pull request `number` without merging.
    pub fn close(&self, number: u64) {
        let mut state = self.state.lock().unwrap();
        let pr = state.prs.iter_mut().find(|p| p.number == number).unwrap();
        pr.open = false;
    }

    pub fn repo_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

struct Server {
    state: Arc<Mutex<State>>,
    owner: String,
    repo: String,
    remote: PathBuf,
    port: u16,
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    authorization: Option<String>,
    body: Value,
    received: Instant,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![],
            body,
        }
    }
}

impl Server {
    async fn serve(&self, mut socket: TcpStream) {
        let Some(request) = read_request(&mut socket).await else {
            return;
        };
        let fault = self.take_fault(&request);
        let answer = match fault {
            Some(Fault::Drop) => {
                self.log(&request, 0);
                drop(socket);
                return;
            }
            Some(Fault::DropAfter) => {
                let answer = self.answer(&request);
                self.log(&request, answer.status);
                drop(socket);
                return;
            }
            Some(Fault::Status(status, headers, body)) => Answer {
                status,
                headers,
                body,
            },
            Some(Fault::LostRace) => {
                let mut rival = request.body.clone();
                rival["body"] = json!("opened by another run");
                let _ = self.create(&rival);
                self.answer(&request)
            }
            None => self.answer(&request),
        };
        self.log(&request, answer.status);
        let _ = write_answer(&mut socket, &answer, &self.state).await;
    }

    fn log(&self, request: &Request, status: u16) {
        self.state.lock().unwrap().log.push(Logged {
            method: request.method.clone(),
            path: request.path.clone(),
            status,
            at: request.received,
        });
    }

    fn take_fault(&self, request: &Request) -> Option<Fault> {
        let mut state = self.state.lock().unwrap();
        let index = state
            .rules
            .iter()
            .position(|r| r.method == request.method && request.path.contains(&r.path))?;
        let rule = &mut state.rules[index];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            state.rules.remove(index);
        }
        Some(fault)
    }

    fn answer(&self, request: &Request) -> Answer {
        if request.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
            return Answer::json(
                401,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            );
        }
        let path = request
            .path
            .strip_prefix("/api/v3")
            .unwrap_or(&request.path);
        let repo_prefix = format!("/repos/{}/{}", self.owner, self.repo);
        let Some(rest) = path.strip_prefix(&repo_prefix) else {
            return not_found();
        };
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["pulls"]) => self.list(request),
            ("POST", ["pulls"]) => self.create(&request.body),
            ("PATCH", ["pulls", n]) => self.update(n, &request.body),
            ("POST", ["issues", n, "labels"]) => self.add_labels(n, &request.body),
            ("POST", ["pulls", n, "requested_reviewers"]) => self.request_reviews(n, &request.body),
            _ => not_found(),
        }
    }

    fn list(&self, request: &Request) -> Answer {
        let query = |k: &str| {
            request
                .query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let state_filter = query("state").unwrap_or_else(|| "open".into());
        let head = query("head");
        let state = self.state.lock().unwrap();
        let mut prs: Vec<&Pr> = state
            .prs
            .iter()
            .filter(|p| match state_filter.as_str() {
                "open" => p.open,
                "closed" => !p.open,
                _ => true,
            })
            .filter(|p| {
                head.as_deref()
                    .is_none_or(|h| h == format!("{}:{}", self.owner, p.head))
            })
            .collect();
        prs.sort_by_key(|p| std::cmp::Reverse(p.number));
        let list: Vec<Value> = prs.iter().map(|p| self.pr_json(p)).collect();
        Answer::json(200, Value::Array(list))
    }

    fn create(&self, body: &Value) -> Answer {
        let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        let (head, base, title) = (text("head"), text("base"), text("title"));
        if title.is_empty() || head.is_empty() || base.is_empty() {
            return validation(
                "PullRequest",
                "missing_field",
                "title, head and base are required",
            );
        }
        if self.branch_sha(&head).is_none() {
            return Answer::json(
                422,
                json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}], "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}),
            );
        }
        if text("body").chars().count() > 65_536 {
            return validation(
                "Issue",
                "custom",
                "body is too long (maximum is 65536 characters)",
            );
        }
        let mut state = self.state.lock().unwrap();
        if state.prs.iter().any(|p| p.open && p.head == head) {
            return validation(
                "PullRequest",
                "custom",
                &format!("A pull request already exists for {}:{head}.", self.owner),
            );
        }
        state.clock += 1;
        let now = timestamp(state.clock);
        let pr = Pr {
            number: state.prs.len() as u64 + 1,
            open: true,
            merged: false,
            title,
            body: text("body"),
            head,
            base,
            draft: body["draft"].as_bool().unwrap_or(false),
            labels: vec![],
            reviewers: vec![],
            created_at: now.clone(),
            updated_at: now,
        };
        state.prs.push(pr.clone());
        drop(state);
        Answer::json(201, self.pr_json(&pr))
    }

    fn update(&self, number: &str, body: &Value) -> Answer {
        let mut state = self.state.lock().unwrap();
        state.clock += 1;
        let now = timestamp(state.clock);
        let Some(pr) = state.pull_mut(number) else {
            return not_found();
        };
        if let Some(t) = body["title"].as_str() {
            pr.title = t.into();
        }
        if let Some(b) = body["body"].as_str() {
            if b.chars().count() > 65_536 {
                return validation(
                    "Issue",
                    "custom",
                    "body is too long (maximum is 65536 characters)",
                );
            }
            pr.body = b.into();
        }
        match body["state"].as_str() {
            Some("open") => pr.open = true,
            Some("closed") => pr.open = false,
            _ => {}
        }
        pr.updated_at = now;
        let pr = pr.clone();
        drop(state);
        Answer::json(200, self.pr_json(&pr))
    }

    fn add_labels(&self, number: &str, body: &Value) -> Answer {
        let mut state = self.state.lock().unwrap();
        let Some(pr) = state.pull_mut(number) else {
            return not_found();
        };
        for l in body["labels"].as_array().into_iter().flatten() {
            let l = l.as_str().unwrap_or_default().to_string();
            if !pr.labels.contains(&l) {
                pr.labels.push(l);
            }
        }
        let labels: Vec<Value> = pr.labels.iter().map(|l| label_json(l)).collect();
        Answer::json(200, Value::Array(labels))
    }

    fn request_reviews(&self, number: &str, body: &Value) -> Answer {
        let mut state = self.state.lock().unwrap();
        let collaborators = state.collaborators.clone();
        let Some(pr) = state.pull_mut(number) else {
            return not_found();
        };
        let wanted: Vec<String> = body["reviewers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        if wanted.iter().any(|w| !collaborators.contains(w)) {
            return Answer::json(
                422,
                json!({"message": format!("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the {}/{} repository.", self.owner, self.repo), "documentation_url": "https://docs.github.com/rest/pulls/review-requests#request-reviewers-for-a-pull-request"}),
            );
        }
        pr.reviewers.extend(wanted);
        let pr = pr.clone();
        drop(state);
        Answer::json(201, self.pr_json(&pr))
    }

    /// Where the branch points in the real remote, if it exists.
    fn branch_sha(&self, branch: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&self.remote)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn pr_json(&self, p: &Pr) -> Value {
        let api = format!(
            "http://127.0.0.1:{}/repos/{}/{}",
            self.port, self.owner, self.repo
        );
        let html = format!(
            "http://127.0.0.1:{}/{}/{}",
            self.port, self.owner, self.repo
        );
        let repo = json!({
            "id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": self.repo,
            "full_name": format!("{}/{}", self.owner, self.repo), "private": false,
            "owner": {"login": self.owner, "id": 1, "type": "Organization"},
            "html_url": html, "url": api, "default_branch": "main",
        });
        json!({
            "url": format!("{api}/pulls/{}", p.number),
            "id": 1_000_000 + p.number,
            "node_id": format!("PR_kwDOfake{}", p.number),
            "html_url": format!("{html}/pull/{}", p.number),
            "diff_url": format!("{html}/pull/{}.diff", p.number),
            "issue_url": format!("{api}/issues/{}", p.number),
            "number": p.number,
            "state": if p.open { "open" } else { "closed" },
            "locked": false,
            "title": p.title,
            "user": {"login": "kube-harden[bot]", "id": 41898282, "type": "Bot"},
            "body": p.body,
            "labels": p.labels.iter().map(|l| label_json(l)).collect::<Vec<_>>(),
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "closed_at": if p.open { Value::Null } else { json!(p.updated_at) },
            "merged_at": if p.merged { json!(p.updated_at) } else { Value::Null },
            "draft": p.draft,
            "requested_reviewers": p.reviewers.iter().map(|r| json!({"login": r, "type": "User"})).collect::<Vec<_>>(),
            "head": {"label": format!("{}:{}", self.owner, p.head), "ref": p.head,
                     "sha": self.branch_sha(&p.head).unwrap_or_default(), "repo": repo.clone()},
            "base": {"label": format!("{}:{}", self.owner, p.base), "ref": p.base,
                     "sha": self.branch_sha(&p.base).unwrap_or_default(), "repo": repo},
            "author_association": "NONE",
        })
    }
}

fn label_json(name: &str) -> Value {
    json!({"id": 208045946, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=", "name": name, "color": "ededed", "default": false, "description": null})
}

fn not_found() -> Answer {
    Answer::json(
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
    )
}

fn validation(resource: &str, code: &str, message: &str) -> Answer {
    Answer::json(
        422,
        json!({"message": "Validation Failed", "errors": [{"resource": resource, "code": code, "message": message}], "documentation_url": "https://docs.github.com/rest/pulls/pulls", "status": "422"}),
    )
}

fn timestamp(tick: u64) -> String {
    format!("2026-11-27T10:{:02}:{:02}Z", (tick / 60) % 60, tick % 60)
}

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let received = Instant::now();
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let mut length = 0;
    let mut authorization = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    while buffer.len() < header_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body =
        serde_json::from_slice(&buffer[header_end..header_end + length]).unwrap_or(Value::Null);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        authorization,
        body,
        received,
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn write_answer(
    socket: &mut TcpStream,
    answer: &Answer,
    state: &Mutex<State>,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(&answer.body).unwrap();
    let used = state.lock().unwrap().log.len();
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let reason = match answer.status {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\nx-github-api-version-selected: 2022-11-28\r\nx-ratelimit-limit: 5000\r\nx-ratelimit-used: {used}\r\nx-ratelimit-resource: core\r\n",
        answer.status,
        body.len()
    );
    if !answer
        .headers
        .iter()
        .any(|(k, _)| k == "x-ratelimit-remaining")
    {
        head.push_str(&format!(
            "x-ratelimit-remaining: {}\r\nx-ratelimit-reset: {reset}\r\n",
            5000usize.saturating_sub(used)
        ));
    }
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&body).await?;
    socket.shutdown().await
}
