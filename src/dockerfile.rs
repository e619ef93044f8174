//! Dockerfiles: who the final stage runs as, and adding `USER` to it without touching any other
//! byte. Knows Dockerfile syntax only (instructions, line continuations, comments).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Who the image built from a Dockerfile runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunsAs {
    /// The final stage has no `USER`: the base image's user, root for most images.
    Unset,
    /// `USER root` or `USER 0` (with or without a group).
    Root,
    /// Some other user.
    User(String),
}

impl RunsAs {
    pub fn is_root(&self) -> bool {
        matches!(self, RunsAs::Unset | RunsAs::Root)
    }
}

/// Who the final stage (after the last `FROM`) runs as. None when there is no `FROM`.
pub fn final_stage_user(text: &str) -> Option<RunsAs> {
    let mut runs_as = None;
    for (instruction, argument) in instructions(text) {
        match instruction.to_ascii_uppercase().as_str() {
            "FROM" => runs_as = Some(RunsAs::Unset),
            "USER" if runs_as.is_some() => runs_as = Some(user(argument.trim())),
            _ => {}
        }
    }
    runs_as
}

fn user(argument: &str) -> RunsAs {
    let name = argument.split(':').next().unwrap_or_default();
    if name == "root" || name == "0" {
        RunsAs::Root
    } else {
        RunsAs::User(argument.to_string())
    }
}

/// The instructions of a Dockerfile: (keyword, rest), with continuation lines joined and
/// comment lines dropped. The escape character is `\` unless a `# escape=` directive says.
fn instructions(text: &str) -> Vec<(String, String)> {
    let escape = escape_char(text);
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if current.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        let continued = line.trim_end().ends_with(escape);
        current.push_str(if continued {
            line.trim_end().strip_suffix(escape).unwrap_or(line)
        } else {
            line
        });
        current.push(' ');
        if !continued {
            let logical = std::mem::take(&mut current);
            let logical = logical.trim();
            if let Some((keyword, rest)) = logical.split_once(char::is_whitespace) {
                out.push((keyword.to_string(), rest.to_string()));
            } else if !logical.is_empty() {
                out.push((logical.to_string(), String::new()));
            }
        }
    }
    out
}

fn escape_char(text: &str) -> char {
    for line in text.lines() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            break;
        };
        if let Some(value) = directive.trim().strip_prefix("escape=") {
            return value.trim().chars().next().unwrap_or('\\');
        }
    }
    '\\'
}

/// The text with `USER <user>` added at the end of the final stage (the end of the file),
/// keeping every byte that was there, the line endings and a missing final newline.
pub fn add_user(text: &str, user: &str) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    if text.is_empty() || text.ends_with('\n') {
        format!("{text}USER {user}{newline}")
    } else {
        format!("{text}{newline}USER {user}")
    }
}

/// Checks an edit made by [`add_user`]: the old text is kept byte for byte and the final
/// stage now runs as `user`.
pub fn verify_added_user(old: &str, new: &str, user: &str) -> Result<(), String> {
    if !new.starts_with(old) {
        return Err("the original text is not kept".into());
    }
    match final_stage_user(new) {
        Some(RunsAs::User(u)) if u == user => Ok(()),
        other => Err(format!("the final stage runs as {other:?} after the edit")),
    }
}

/// The repository's Dockerfiles, found once: by the discovery walk when it walks the whole
/// repository, else by a walk of their own on first use (`scan` asks for them while it walks
/// the paths).
#[derive(Clone, Debug, Default)]
pub struct DockerfileIndex {
    root: Option<PathBuf>,
    found: std::sync::OnceLock<Vec<PathBuf>>,
    beside: FolderCache,
}

impl DockerfileIndex {
    pub fn new(root: PathBuf) -> Self {
        DockerfileIndex {
            root: Some(root),
            ..DockerfileIndex::default()
        }
    }

    pub fn get(&self) -> &[PathBuf] {
        self.found
            .get_or_init(|| self.root.as_deref().map(find_all).unwrap_or_default())
    }

    /// Whether `walked` is the folder this index lists, so that a walk of it finds the same
    /// Dockerfiles ([`find_all`] walks with the same rules).
    pub fn is_rooted_at(&self, walked: &Path) -> bool {
        let root = self.root.as_deref();
        root.is_some_and(|root| std::fs::canonicalize(walked).is_ok_and(|w| w == root))
    }

    /// Takes the Dockerfiles a walk of the index's folder found (see [`Self::is_rooted_at`]),
    /// named as [`find_all`] names them.
    pub fn set_from_walk(&self, walked: &Path, dockerfiles: Vec<PathBuf>) {
        let Some(root) = self.root.as_deref() else {
            return;
        };
        let named = dockerfiles
            .into_iter()
            .filter_map(|path| Some(root.join(path.strip_prefix(walked).ok()?)))
            .collect();
        let _ = self.found.set(named);
    }

    /// The Dockerfile of a service whose manifest is at `manifest`: in the manifest's folder,
    /// or in its parent (the common `service/k8s/*.yaml` + `service/Dockerfile` layout).
    pub fn find_for_manifest(&self, manifest: &Path) -> Option<PathBuf> {
        let folder = manifest.parent()?;
        [Some(folder), folder.parent()]
            .into_iter()
            .flatten()
            .find(|dir| self.beside.holds_dockerfile(dir))
            .map(|dir| dir.join("Dockerfile"))
    }
}

/// Whether a folder holds a `Dockerfile`, asked of the file system once per folder: manifests
/// share folders, and workers looking up the same missing name at once wait for each other in
/// the kernel.
#[derive(Debug, Default)]
struct FolderCache(Mutex<HashMap<PathBuf, bool>>);

impl FolderCache {
    fn holds_dockerfile(&self, dir: &Path) -> bool {
        let known = self.0.lock().ok().and_then(|m| m.get(dir).copied());
        known.unwrap_or_else(|| {
            let holds = dir.join("Dockerfile").is_file();
            if let Ok(mut m) = self.0.lock() {
                m.insert(dir.to_path_buf(), holds);
            }
            holds
        })
    }
}

impl Clone for FolderCache {
    fn clone(&self) -> Self {
        let known = self.0.lock().map(|m| m.clone()).unwrap_or_default();
        FolderCache(Mutex::new(known))
    }
}

/// Every `Dockerfile` under `root` (honouring .gitignore), for matching images by name.
pub fn find_all(root: &Path) -> Vec<PathBuf> {
    let walker = ignore::WalkBuilder::new(root).require_git(false).build();
    walker
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()) && e.file_name() == "Dockerfile")
        .map(|e| e.into_path())
        .collect()
}

/// The Dockerfile whose folder is named like the image (`ghcr.io/acme/billing-api:1.2` matches
/// `.../billing-api/Dockerfile`), when exactly one does.
pub fn find_for_image<'a>(image: &str, dockerfiles: &'a [PathBuf]) -> Option<&'a PathBuf> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let name = last.split(':').next().unwrap_or(last);
    let mut matches = dockerfiles.iter().filter(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .is_some_and(|folder| folder.to_string_lossy() == name)
    });
    let first = matches.next()?;
    matches.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_match_the_folder_of_their_dockerfile() {
        let files = vec![
            PathBuf::from("images/billing-api/Dockerfile"),
            PathBuf::from("images/web/Dockerfile"),
            PathBuf::from("old/web/Dockerfile"),
        ];
        assert_eq!(
            find_for_image("ghcr.io/acme/billing-api:1.2", &files),
            Some(&files[0])
        );
        assert_eq!(
            find_for_image("billing-api@sha256:abc", &files),
            Some(&files[0])
        );
        assert_eq!(find_for_image("nginx:1.27", &files), None);
        assert_eq!(
            find_for_image("acme/web:2", &files),
            None,
            "two candidates: no guess"
        );
    }

    #[test]
    fn the_final_stage_decides() {
        let multi = "FROM golang:1.22 AS build\nUSER 1000\nRUN go build\n\nFROM alpine:3.20\nCOPY --from=build /app /app\n";
        assert_eq!(final_stage_user(multi), Some(RunsAs::Unset));
        assert_eq!(final_stage_user("FROM a\nUSER root\n"), Some(RunsAs::Root));
        assert_eq!(final_stage_user("FROM a\nuser 0:0\n"), Some(RunsAs::Root));
        assert_eq!(
            final_stage_user("FROM a\nUSER app:app\n"),
            Some(RunsAs::User("app:app".into()))
        );
        assert_eq!(final_stage_user("# just a comment\n"), None);
    }

    #[test]
    fn continuations_and_comments_do_not_confuse_it() {
        let text = "FROM a\nRUN echo \\\n  USER 1000\n# USER 1000\nCMD [\"x\"]\n";
        assert_eq!(final_stage_user(text), Some(RunsAs::Unset));
        let backtick = "# escape=`\nFROM a\nRUN echo `\n  USER 1000\n";
        assert_eq!(final_stage_user(backtick), Some(RunsAs::Unset));
    }

    #[test]
    fn adding_a_user_keeps_every_byte_and_the_line_endings() {
        for old in ["FROM a\nCMD x\n", "FROM a\r\nCMD x\r\n", "FROM a\nCMD x"] {
            let new = add_user(old, "1000:1000");
            verify_added_user(old, &new, "1000:1000").unwrap();
            assert_eq!(new.contains("\r\n"), old.contains("\r\n"));
            assert_eq!(new.ends_with('\n'), old.ends_with('\n'));
        }
    }
}
