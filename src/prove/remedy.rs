//! The error lines of a hardened container's log, each mapped to the change that most likely
//! lets it start: a write to the read-only root filesystem wants an emptyDir there, a bind that
//! is refused wants a port of 1024 or above, a file the user may not read wants the image's user.

use std::sync::LazyLock;

use regex::Regex;

/// What a log line says to do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Remedy {
    /// Mount an emptyDir at `path` (the folder of the file it wrote).
    EmptyDir { path: String },
    /// The app binds a port below 1024, which a non-root user may not.
    LowPort,
    /// A file of the image is not the new user's: run as the image's user.
    ImageUser { path: Option<String> },
}

impl Remedy {
    /// The remedy as a sentence; `image_user` is the image's USER, if it names one.
    pub fn advice(&self, image_user: &str) -> String {
        match self {
            Remedy::EmptyDir { path } => {
                format!("mount an emptyDir at {path} (the root filesystem is read-only)")
            }
            Remedy::LowPort => "the app binds a port below 1024, which a non-root user may not: \
                 make it listen on 1024 or above (or set the pod sysctl \
                 net.ipv4.ip_unprivileged_port_start=0)"
                .into(),
            Remedy::ImageUser { path } => {
                let what = path
                    .as_deref()
                    .map_or("a file".to_string(), |p| p.to_string());
                let user = image_user.split(':').next().unwrap_or_default();
                if user.is_empty() {
                    format!("{what} is not readable or writable by the new user: make it so in the image")
                } else {
                    format!(
                        "{what} belongs to the image's user: set runAsUser (and runAsGroup, fsGroup) to the uid of USER {user}"
                    )
                }
            }
        }
    }
}

/// One log line that names a cause, and its remedy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ErrorLine {
    pub line: String,
    pub remedy: Remedy,
}

static READ_ONLY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)read-only file system").expect("valid"));
static PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"/[^\s:'"`()\[\]]+"#).expect("valid"));
static BIND_DENIED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bbind\b.*(permission denied|EACCES)|(permission denied|EACCES).*\bbind\b")
        .expect("valid")
});
static PERMISSION_DENIED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)permission denied|EACCES").expect("valid"));

/// Every line of `log` that names a cause, with its remedy, in order (a line counted once).
pub fn error_lines(log: &str) -> Vec<ErrorLine> {
    let mut found: Vec<ErrorLine> = Vec::new();
    for line in log.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(remedy) = remedy_of(line) else {
            continue;
        };
        if !found.iter().any(|e| e.line == line) {
            found.push(ErrorLine {
                line: line.to_string(),
                remedy,
            });
        }
    }
    found
}

fn remedy_of(line: &str) -> Option<Remedy> {
    if let Some(phrase) = READ_ONLY.find(line) {
        // The path the write failed on: the last one before the phrase (`/start.sh: line 1:
        // can't create /var/cache/x: Read-only ...`), else the first after it (Python's).
        let before = PATH.find_iter(&line[..phrase.start()]).last();
        let path = before.or_else(|| PATH.find(&line[phrase.end()..]))?;
        return Some(Remedy::EmptyDir {
            path: folder_of(path.as_str()),
        });
    }
    if BIND_DENIED.is_match(line) {
        return Some(Remedy::LowPort);
    }
    let phrase = PERMISSION_DENIED.find(line)?;
    let before = PATH.find_iter(&line[..phrase.start()]).last();
    let path = before.or_else(|| PATH.find(&line[phrase.end()..]));
    Some(Remedy::ImageUser {
        path: path.map(|p| p.as_str().to_string()),
    })
}

/// The folder that must be writable for a write to `path`: its parent (the file, or the
/// folder being made, cannot be the mount point itself).
fn folder_of(path: &str) -> String {
    let path = path.trim_end_matches('/');
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".into(),
        Some((parent, _)) => parent.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_to_the_read_only_root_wants_an_empty_dir_at_its_folder() {
        let busybox =
            "/start.sh: line 1: can't create /var/cache/app/started: Read-only file system";
        let lines = error_lines(&format!("start\n{busybox}\n"));
        assert_eq!(
            lines,
            [ErrorLine {
                line: busybox.into(),
                remedy: Remedy::EmptyDir {
                    path: "/var/cache/app".into()
                }
            }]
        );
        let nginx = "nginx: [emerg] mkdir() \"/var/cache/nginx/client_temp\" failed (30: Read-only file system)";
        assert!(
            matches!(&remedy_of(nginx), Some(Remedy::EmptyDir { path }) if path == "/var/cache/nginx")
        );
        let python = "OSError: [Errno 30] Read-only file system: '/data/state.db'";
        assert_eq!(
            remedy_of(python),
            Some(Remedy::EmptyDir {
                path: "/data".into()
            })
        );
    }

    #[test]
    fn a_refused_bind_is_the_low_port() {
        assert_eq!(
            remedy_of("httpd: bind: Permission denied"),
            Some(Remedy::LowPort)
        );
        assert_eq!(
            remedy_of("listen tcp :80: bind: permission denied"),
            Some(Remedy::LowPort)
        );
        assert_eq!(
            remedy_of("Error: EACCES: permission denied, bind 0.0.0.0:80"),
            Some(Remedy::LowPort)
        );
    }

    #[test]
    fn a_file_the_user_may_not_read_is_the_image_user() {
        assert_eq!(
            remedy_of("/start.sh: line 1: cat: can't open '/app/config': Permission denied"),
            Some(Remedy::ImageUser {
                path: Some("/app/config".into())
            })
        );
        let advice = Remedy::ImageUser {
            path: Some("/app/config".into()),
        }
        .advice("app");
        assert!(advice.contains("uid of USER app"), "{advice}");
    }

    #[test]
    fn ordinary_lines_name_no_cause() {
        assert!(error_lines("listening on :8080\nGET / 200\n").is_empty());
    }
}
