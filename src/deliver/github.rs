//! GitHub delivery: finding, opening and updating pull requests through the REST API, at the
//! pace GitHub asks for.
//!
//! Calls go through `octocrab`'s raw requests, with octocrab's own retry left out: it re-sends a
//! 429 or 5xx at once, POSTs included. Here every write waits at least the write interval after
//! the previous one's answer; a 403/429 waits for `retry-after` (or until `x-ratelimit-reset` when the
//! quota is spent); a 5xx is retried with backoff; a dropped connection is retried for reads
//! only (a write may have landed; the caller looks again instead). Knows nothing of YAML or git.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use octocrab::Octocrab;
use serde::Serialize;
use serde_json::{json, Value};

/// Why an API call failed, for the user (never holds the token).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub String);

type Result<T> = std::result::Result<T, ApiError>;

/// `owner/name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    /// Parses `owner/name`.
    pub fn parse(text: &str) -> Option<RepoName> {
        let (owner, name) = text.trim().split_once('/')?;
        let name = name.trim_end_matches(".git");
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (valid(owner) && valid(name)).then(|| RepoName {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// The repository a GitHub remote URL points at (https, ssh or scp-like forms).
    pub fn from_remote_url(url: &str) -> Option<RepoName> {
        let rest = url
            .strip_prefix("git@")
            .and_then(|r| r.split_once(':').map(|(_, path)| path))
            .or_else(|| {
                url.split_once("://")
                    .and_then(|(_, r)| r.split_once('/'))
                    .map(|(_, p)| p)
            })?;
        let rest = rest.trim_end_matches('/');
        let mut parts = rest.rsplitn(3, '/');
        let name = parts.next()?;
        let owner = parts.next()?;
        RepoName::parse(&format!("{owner}/{name}"))
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The parts of a pull request the tool reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    pub open: bool,
    pub merged: bool,
    pub body: String,
    pub head_sha: String,
}

impl PullRequest {
    fn from_json(v: &Value) -> Option<PullRequest> {
        Some(PullRequest {
            number: v["number"].as_u64()?,
            url: v["html_url"].as_str().unwrap_or_default().to_string(),
            open: v["state"].as_str()? == "open",
            merged: !v["merged_at"].is_null(),
            body: v["body"].as_str().unwrap_or_default().to_string(),
            head_sha: v["head"]["sha"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// What creating a pull request came to.
#[derive(Debug)]
pub enum Created {
    New(PullRequest),
    /// GitHub says one exists already for this head: another run won the race.
    AlreadyExists,
}

/// How fast to go: the gap between writes and the first backoff step.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub write_interval: Duration,
    pub backoff: Duration,
    /// The longest wait for a rate limit before giving up.
    pub max_wait: Duration,
    /// The longest wait for an answer (`--engine-timeout`, at most 60 s); a connection is
    /// waited for at most 10 s.
    pub answer_within: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            write_interval: Duration::from_secs(1),
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(15 * 60),
            answer_within: Duration::from_secs(60),
        }
    }
}

/// A client for one repository.
pub struct GitHub {
    runtime: tokio::runtime::Runtime,
    client: Octocrab,
    repo: RepoName,
    pace: Pace,
    last_write: Option<Instant>,
    pub reads: usize,
    pub writes: usize,
}

const ATTEMPTS: u32 = 4;

impl GitHub {
    /// A client for `repo` at `api_url` (`https://api.github.com`, or
    /// `https://HOST/api/v3` on GitHub Enterprise Server).
    pub fn new(api_url: &str, token: &str, repo: RepoName, pace: Pace) -> Result<GitHub> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ApiError(format!("cannot start the HTTP runtime: {e}")))?;
        let api_url = api_url.trim_end_matches('/').to_string();
        let client = runtime.block_on(async {
            Octocrab::builder()
                .base_uri(api_url.as_str())
                .map_err(|e| ApiError(format!("bad API URL `{api_url}`: {e}")))
                .map(|b| {
                    b.personal_token(token.to_string())
                        .add_header(
                            http::header::HeaderName::from_static("x-github-api-version"),
                            "2022-11-28".into(),
                        )
                        .set_connect_timeout(Some(Duration::from_secs(10).min(pace.answer_within)))
                        .set_read_timeout(Some(pace.answer_within))
                        .build()
                })?
                .map_err(|e| ApiError(format!("cannot build the API client: {e}")))
        })?;
        Ok(GitHub {
            runtime,
            client,
            repo,
            pace,
            last_write: None,
            reads: 0,
            writes: 0,
        })
    }

    /// Every pull request whose head is `branch` in this repository, open or closed.
    pub fn pull_requests_for(&mut self, branch: &str) -> Result<Vec<PullRequest>> {
        let path = format!(
            "/repos/{}/pulls?head={}:{}&state=all&per_page=100",
            self.repo,
            self.repo.owner,
            encode(branch)
        );
        let (_, value) = self.send(http::Method::GET, &path, None)?;
        let list = value.as_array().cloned().unwrap_or_default();
        Ok(list.iter().filter_map(PullRequest::from_json).collect())
    }

    /// Opens a pull request.
    pub fn create(
        &mut self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
        draft: bool,
    ) -> Result<Created> {
        let payload = json!({
            "title": title, "head": head, "base": base, "body": body,
            "draft": draft, "maintainer_can_modify": true,
        });
        let path = format!("/repos/{}/pulls", self.repo);
        match self.send(http::Method::POST, &path, Some(&payload)) {
            Ok((_, v)) => PullRequest::from_json(&v)
                .map(Created::New)
                .ok_or_else(|| ApiError("GitHub answered the create without a number".into())),
            Err(e) if e.0.contains("already exists") => Ok(Created::AlreadyExists),
            Err(e) => Err(e),
        }
    }

    /// Changes the title and body of a pull request, and reopens it when `reopen`.
    pub fn update(
        &mut self,
        number: u64,
        title: &str,
        body: &str,
        reopen: bool,
    ) -> Result<PullRequest> {
        let mut payload = json!({ "title": title, "body": body });
        if reopen {
            payload["state"] = json!("open");
        }
        let path = format!("/repos/{}/pulls/{number}", self.repo);
        let (_, v) = self.send(http::Method::PATCH, &path, Some(&payload))?;
        PullRequest::from_json(&v)
            .ok_or_else(|| ApiError("GitHub answered the update without a number".into()))
    }

    /// Adds labels to a pull request (GitHub creates labels that do not exist yet).
    pub fn add_labels(&mut self, number: u64, labels: &[String]) -> Result<()> {
        let path = format!("/repos/{}/issues/{number}/labels", self.repo);
        self.send(
            http::Method::POST,
            &path,
            Some(&json!({ "labels": labels })),
        )
        .map(|_| ())
    }

    /// Asks people and teams to review a pull request.
    pub fn request_reviewers(
        &mut self,
        number: u64,
        reviewers: &[String],
        teams: &[String],
    ) -> Result<()> {
        let path = format!("/repos/{}/pulls/{number}/requested_reviewers", self.repo);
        let payload = json!({ "reviewers": reviewers, "team_reviewers": teams });
        self.send(http::Method::POST, &path, Some(&payload))
            .map(|_| ())
    }

    /// One request, with the pacing, waiting and retrying described at the top.
    fn send(
        &mut self,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let write = method != http::Method::GET;
        let mut backoff = self.pace.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if write {
                self.wait_for_write_slot();
                self.writes += 1;
            } else {
                self.reads += 1;
            }
            let outcome = self.runtime.block_on(request(
                &self.client,
                method.clone(),
                path.to_string(),
                body,
            ));
            if write {
                // The next write waits a second from this one's answer (not its start), so
                // that two writes reach GitHub at least a second apart however long one took.
                self.last_write = Some(Instant::now());
            }
            let (status, headers, text) = match outcome {
                Ok(answer) => answer,
                Err(e) if !write && attempt < ATTEMPTS => {
                    let _ = e;
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    continue;
                }
                Err(e) => return Err(ApiError(format!("{method} {path}: {e}"))),
            };
            if status.is_success() {
                let value = serde_json::from_str(&text).unwrap_or(Value::Null);
                return Ok((status, value));
            }
            if attempt < ATTEMPTS {
                if let Some(wait) = rate_limit_wait(status, &headers) {
                    if wait > self.pace.max_wait {
                        return Err(ApiError(format!(
                            "{method} {path}: rate limited for {}s, longer than the {}s this run waits; run again later",
                            wait.as_secs(), self.pace.max_wait.as_secs()
                        )));
                    }
                    std::thread::sleep(wait);
                    continue;
                }
                if status.is_server_error() {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    continue;
                }
            }
            return Err(ApiError(format!(
                "{method} {path}: {} {}",
                status.as_u16(),
                error_message(&text)
            )));
        }
    }

    fn wait_for_write_slot(&mut self) {
        if let Some(last) = self.last_write {
            let since = last.elapsed();
            if since < self.pace.write_interval {
                std::thread::sleep(self.pace.write_interval - since);
            }
        }
    }
}

async fn request(
    client: &Octocrab,
    method: http::Method,
    path: String,
    body: Option<&Value>,
) -> std::result::Result<(StatusCode, HeaderMap, String), String> {
    let response = match method {
        http::Method::GET => client._get(path.as_str()).await,
        http::Method::POST => client._post(path.as_str(), body).await,
        http::Method::PATCH => client._patch(path.as_str(), body).await,
        _ => unreachable!("the tool sends GET, POST and PATCH only"),
    }
    .map_err(describe)?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = client.body_to_string(response).await.map_err(describe)?;
    Ok((status, headers, text))
}

/// octocrab's `Display` says little ("Hyper"); its source chain says what happened.
fn describe(e: octocrab::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// How long GitHub asks us to wait, if this is a rate-limit answer.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset")?.trim().parse::<u64>().ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    // A 429 without a hint: wait a minute, as GitHub's guide says.
    (status == StatusCode::TOO_MANY_REQUESTS).then(|| Duration::from_secs(60))
}

/// GitHub's error text: `message`, and the `errors[].message` details (where "already
/// exists" hides).
fn error_message(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return text.chars().take(200).collect();
    };
    let mut message = v["message"].as_str().unwrap_or("").to_string();
    for e in v["errors"].as_array().into_iter().flatten() {
        if let Some(m) = e["message"].as_str() {
            message.push_str(": ");
            message.push_str(m);
        }
    }
    message
}

/// Percent-encodes a branch name for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_comes_from_its_remote_url() {
        let want = RepoName::parse("acme/shop").unwrap();
        for url in [
            "https://github.com/acme/shop.git",
            "https://github.com/acme/shop",
            "git@github.com:acme/shop.git",
            "ssh://git@github.example.com/acme/shop.git",
            "https://x-access-token@github.com/acme/shop/",
        ] {
            assert_eq!(
                RepoName::from_remote_url(url).as_ref(),
                Some(&want),
                "{url}"
            );
        }
        assert_eq!(RepoName::from_remote_url("/srv/git/shop.git"), None);
        assert_eq!(RepoName::parse("no-slash"), None);
    }

    #[test]
    fn rate_limits_are_read_from_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers),
            Some(Duration::from_secs(7))
        );
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &headers), None);
        let mut spent = HeaderMap::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        spent.insert("x-ratelimit-remaining", "0".parse().unwrap());
        spent.insert("x-ratelimit-reset", (now + 30).to_string().parse().unwrap());
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &spent).unwrap();
        assert!((29..=31).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &HeaderMap::new()),
            None,
            "a plain 403 is a permission problem, not a limit"
        );
    }

    #[test]
    fn github_error_details_are_kept() {
        let text = r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:kube-harden/cart."}]}"#;
        assert_eq!(
            error_message(text),
            "Validation Failed: A pull request already exists for acme:kube-harden/cart."
        );
    }
}
