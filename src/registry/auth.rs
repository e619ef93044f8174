//! How a registry wants to be asked: the `WWW-Authenticate` challenge of a 401 answer read
//! (`Bearer realm=…,service=…,scope=…` or `Basic realm=…`), and the token request that
//! answers a Bearer challenge: anonymous, with a user name and password (Basic at the
//! token service), or with a refresh token (OAuth2 `grant_type=refresh_token`, as docker does
//! for an `identitytoken`).

use std::collections::BTreeMap;

use super::credentials::{encode_base64, Credential, Secret};

/// A challenge, with its parameters by lower-case name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    Bearer(BTreeMap<String, String>),
    Basic,
}

/// Reads the first challenge that this client answers. `None` for another scheme or none.
pub(super) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(Challenge::Bearer(parameters(rest))),
        "basic" => Some(Challenge::Basic),
        _ => None,
    }
}

/// `realm="https://a/token",service="reg",scope="repository:x:pull,push"`: values may be
/// quoted and hold commas.
fn parameters(text: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((name, after)) = rest.split_once('=') {
        let name = name
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted_value(quoted)
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        found.insert(name, value);
        rest = next.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    found
}

/// The text up to the closing quote (with `\"` escapes), and what follows it.
fn quoted_value(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => return (value, &text[i + 1..]),
            other => value.push(other),
        }
    }
    (value, "")
}

/// The `Authorization` value of a credential for a Basic challenge.
pub(super) fn basic_header(credential: &Credential) -> Option<Secret> {
    match credential {
        Credential::Basic { username, password } => Some(Secret::new(format!(
            "Basic {}",
            encode_base64(format!("{username}:{}", password.expose()).as_bytes())
        ))),
        Credential::IdentityToken(_) => None,
    }
}

/// The body of a token answer: `token` (Docker) or `access_token` (OAuth2).
#[derive(serde::Deserialize)]
pub(super) struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl TokenAnswer {
    pub(super) fn into_header(self) -> Option<Secret> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some(Secret::new(format!("Bearer {token}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_give_their_parameters() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#;
        let Some(Challenge::Bearer(p)) = parse_challenge(header) else {
            panic!("bearer")
        };
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull,push");
        let Some(Challenge::Bearer(p)) =
            parse_challenge("bearer realm=http://x/t, service=\"a\\\"b\"")
        else {
            panic!("bearer")
        };
        assert_eq!(
            (p["realm"].as_str(), p["service"].as_str()),
            ("http://x/t", "a\"b")
        );
    }

    #[test]
    fn basic_and_other_schemes() {
        assert_eq!(
            parse_challenge(r#"Basic realm="khlab""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn basic_headers_hold_the_encoded_pair() {
        let credential = Credential::Basic {
            username: "khlab".into(),
            password: Secret::new("s3cret"),
        };
        assert_eq!(
            basic_header(&credential).unwrap().expose(),
            "Basic a2hsYWI6czNjcmV0"
        );
        assert_eq!(
            basic_header(&Credential::IdentityToken(Secret::new("r"))),
            None
        );
    }

    #[test]
    fn token_answers_of_both_spellings() {
        let read = |t: &str| {
            serde_json::from_str::<TokenAnswer>(t)
                .unwrap()
                .into_header()
        };
        assert_eq!(read(r#"{"token":"abc"}"#).unwrap().expose(), "Bearer abc");
        assert_eq!(
            read(r#"{"access_token":"xyz","expires_in":300}"#)
                .unwrap()
                .expose(),
            "Bearer xyz"
        );
        assert_eq!(read(r#"{"token":""}"#), None);
    }
}
