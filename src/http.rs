//! What the two HTTP clients of the tool share (the chart repository's downloads and the OCI
//! registry client): how long to wait, TLS (rustls with the ring provider, the one the GitHub
//! client already builds, and the system's trust store, so that a company's own CA works as it
//! does for other programs), and an error's deepest cause. It knows nothing of what is fetched.

use std::sync::Arc;
use std::time::Duration;

/// How long to wait for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection (TCP and TLS).
    pub connect: Duration,
    /// For an answer to begin, and then for each piece of a body.
    pub read: Duration,
    /// For one whole request with its body (`--engine-timeout`): a server that trickles a byte
    /// now and then is given up too.
    pub whole: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::within(crate::process::DEFAULT_TIMEOUT)
    }
}

impl Timeouts {
    /// The usual waits (10 s to connect, 30 s for data), none longer than `limit`, which bounds
    /// each whole request.
    pub fn within(limit: Duration) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10).min(limit),
            read: Duration::from_secs(30).min(limit),
            whole: limit,
        }
    }
}

impl Timeouts {
    /// What a platform engineer needs from a failed request: a timeout with its length, else
    /// the root cause ("Connection refused", "dns error: ...", a certificate problem).
    pub fn request_failure(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() && error.is_connect() {
            format!(
                "no connection within {} (timed out)",
                crate::process::seconds(self.connect)
            )
        } else if error.is_timeout() {
            format!(
                "no answer within {} (timed out)",
                crate::process::seconds(self.read)
            )
        } else {
            innermost(error)
        }
    }

    /// The same for a body that stopped coming (`what`: "the download", "the answer").
    pub fn body_failure(&self, error: &std::io::Error, what: &str) -> String {
        let timed_out =
            std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
                .filter_map(|e| e.downcast_ref::<reqwest::Error>())
                .any(reqwest::Error::is_timeout);
        if timed_out {
            format!(
                "{what} stalled for {} (timed out)",
                crate::process::seconds(self.read)
            )
        } else {
            format!("{what} broke off: {}", innermost(error))
        }
    }
}

/// rustls with the ring provider and the platform's verifier (the system's trust store).
pub fn tls_config() -> Result<rustls::ClientConfig, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The deepest cause of an error chain: reqwest's own message only says which request failed.
pub fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wait_is_longer_than_the_limit() {
        let t = Timeouts::within(Duration::from_secs(3));
        assert_eq!(
            (t.connect, t.read, t.whole),
            (
                Duration::from_secs(3),
                Duration::from_secs(3),
                Duration::from_secs(3)
            )
        );
        let t = Timeouts::within(Duration::from_secs(120));
        assert_eq!(
            (t.connect, t.read),
            (Duration::from_secs(10), Duration::from_secs(30))
        );
    }
}
