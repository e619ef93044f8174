//! Getting a repository's files over HTTP(S): one blocking client, with a connect timeout and
//! a timeout on each wait for data, so that a repository that is down or stalls fails within
//! seconds; one attempt per file (a retry would only make a down repository slower to report);
//! a size limit per file. TLS is rustls with the ring provider (the one the GitHub client
//! already builds) and the system's trust store, so a company's own CA works as it does for
//! other programs.

use std::io::Read;

use reqwest::blocking::Client;
use url::Url;

pub use crate::http::Timeouts;
use crate::http::{innermost, tls_config};

/// Why a download failed, without the URL (the caller names it).
#[derive(Debug)]
pub(super) enum DownloadError {
    Unreachable(String),
    Status(reqwest::StatusCode),
    TooLarge,
}

pub(super) struct Downloader {
    client: Client,
    timeouts: Timeouts,
}

impl Downloader {
    pub(super) fn new(timeouts: Timeouts) -> Result<Downloader, String> {
        let client = Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(timeouts.connect)
            // The blocking client applies this to the wait for the answer and to each read of
            // the body, not to the whole download: a large index on a slow link still arrives.
            .timeout(timeouts.read)
            .user_agent(concat!("kube-harden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", innermost(&e)))?;
        Ok(Downloader { client, timeouts })
    }

    /// The body at `url`, at most `limit` bytes.
    pub(super) fn get(&self, url: &Url, limit: u64) -> Result<Vec<u8>, DownloadError> {
        let started = std::time::Instant::now();
        let response = self
            .client
            .get(url.clone())
            .send()
            .map_err(|e| DownloadError::Unreachable(self.reason(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status(status));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(DownloadError::TooLarge);
        }
        let mut body = Vec::new();
        let mut reader = response.take(limit + 1);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| DownloadError::Unreachable(self.body_reason(&e)))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
            if started.elapsed() > self.timeouts.whole {
                return Err(DownloadError::Unreachable(format!(
                    "the download did not finish in {} (timed out; --engine-timeout)",
                    crate::process::seconds(self.timeouts.whole)
                )));
            }
        }
        if body.len() as u64 > limit {
            return Err(DownloadError::TooLarge);
        }
        Ok(body)
    }

    fn reason(&self, error: &reqwest::Error) -> String {
        self.timeouts.request_failure(error)
    }

    fn body_reason(&self, error: &std::io::Error) -> String {
        self.timeouts.body_failure(error, "the download")
    }
}
