//! What the policy knows of a container image: its facts as plain values (the user it runs as,
//! its declared volumes and ports, its command line, the root-only paths of a root image), and
//! the lookup the pipeline fills before planning. The policy never reads a registry: it asks
//! the lookup for an image by the text of its `image:` field, and plans with what comes back.
//! The planning rules that use the facts are [`pod_ids`], [`volume_paths`] and [`low_ports`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The facts read from one image's config (and, for a named user, its `/etc/passwd`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// The digest of the platform manifest the facts come from.
    pub digest: String,
    /// `USER` as the config has it (empty when unset).
    pub user_text: String,
    pub user: ImageUser,
    /// `Volumes`, sorted.
    pub volumes: Vec<String>,
    /// `ExposedPorts` (`80/tcp`), sorted.
    pub ports: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// For a root image: paths in its top layers that only root may read (`/app (0700)`).
    pub root_only_paths: Vec<String>,
}

#[cfg(test)]
impl ImageFacts {
    /// Facts with only a user, for tests (`user_text` as the config writes `USER`).
    pub fn of_user(user: ImageUser, user_text: &str) -> ImageFacts {
        ImageFacts {
            digest: "sha256:0".into(),
            user_text: user_text.into(),
            user,
            volumes: vec![],
            ports: vec![],
            entrypoint: vec![],
            cmd: vec![],
            root_only_paths: vec![],
        }
    }
}

/// Who the image runs as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageUser {
    /// No `USER`, `USER root` or `USER 0`.
    Root,
    /// A non-root uid and its group (the `:group` part, the passwd entry's group, else the
    /// uid itself).
    Ids { uid: i64, gid: i64 },
    /// A name the image's `/etc/passwd` does not resolve (or that cannot be read).
    Unresolved { why: String },
}

/// Why an image's facts are not there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unread {
    /// The registry answered, but not with a usable image (denied, not found, a bad answer).
    Failed(String),
    /// The registry cannot be reached (or `--offline` and not cached): the run says so once
    /// per registry instead of once per container.
    Unreachable(String),
}

impl fmt::Display for Unread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unread::Failed(why) | Unread::Unreachable(why) => f.write_str(why),
        }
    }
}

/// What the lookup answers for one image: its facts, or why it could not be read.
pub type Looked = Result<Arc<ImageFacts>, Unread>;

/// The function that finds an image's facts.
pub type FindFacts = dyn Fn(&str) -> Looked + Send + Sync;

/// The image facts the pipeline offers the policy: none (`--images never`, the default of a
/// bare [`super::Rules`]), or a function that reads an image by the text of its `image:`
/// field (cached, so asking twice costs nothing).
#[derive(Clone, Default)]
pub struct ImageLookup {
    find: Option<Arc<FindFacts>>,
    /// `--images always`: an image that cannot be read is an error at its `image:` line
    /// (the file is not written), not a note.
    pub required: bool,
    /// Declared volumes get a risk note instead of an `emptyDir` mount (`imageVolumes: note`).
    pub volumes_as_notes: bool,
}

impl ImageLookup {
    pub fn new(find: Arc<FindFacts>) -> ImageLookup {
        ImageLookup {
            find: Some(find),
            required: false,
            volumes_as_notes: false,
        }
    }

    /// Whether images are looked up at all.
    pub fn is_on(&self) -> bool {
        self.find.is_some()
    }

    /// The facts of `image`, or None when lookups are off.
    pub fn facts(&self, image: &str) -> Option<Looked> {
        self.find.as_ref().map(|find| find(image))
    }
}

impl fmt::Debug for ImageLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageLookup")
            .field("on", &self.is_on())
            .field("required", &self.required)
            .field("volumes_as_notes", &self.volumes_as_notes)
            .finish()
    }
}

/// Two lookups are the same when they are the same function with the same switches.
impl PartialEq for ImageLookup {
    fn eq(&self, other: &Self) -> bool {
        let same_find = match (&self.find, &other.find) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same_find
            && self.required == other.required
            && self.volumes_as_notes == other.volumes_as_notes
    }
}

impl Eq for ImageLookup {}

/// The uid and gid an image's files belong to, when it runs as a non-root user.
pub fn image_ids(facts: &ImageFacts) -> Option<(i64, i64)> {
    match facts.user {
        ImageUser::Ids { uid, gid } => Some((uid, gid)),
        _ => None,
    }
}

/// The pod-level ids from the images of a pod's containers (in order, app containers before
/// init containers): the first image that runs as a non-root user gives them. None when no
/// image does (root images keep the baseline).
pub fn pod_ids<'a>(facts: impl IntoIterator<Item = &'a ImageFacts>) -> Option<(i64, i64)> {
    facts.into_iter().find_map(image_ids)
}

/// The image's volumes that still need a writable mount: not `/tmp` (the writable /tmp
/// covers it), not mounted by the container already.
pub fn volume_paths(facts: &ImageFacts, mounted: &[String]) -> Vec<String> {
    let norm = |p: &str| p.trim_end_matches('/').to_string();
    facts
        .volumes
        .iter()
        .map(|v| norm(v))
        .filter(|v| !v.is_empty() && v != "/tmp")
        .filter(|v| !mounted.iter().any(|m| norm(m) == *v))
        .collect()
}

/// Ports below 1024 the image exposes or its command line names, each with its evidence
/// (`port 80/tcp`, `command line "-p 80"`). `own_command`: the manifest sets `command` or
/// `args`, so the image's command line is not what runs.
pub fn low_ports(facts: &ImageFacts, own_command: bool) -> Vec<(i64, String)> {
    let mut found: Vec<(i64, String)> = Vec::new();
    for port in &facts.ports {
        let number = port.split('/').next().and_then(|n| n.parse::<i64>().ok());
        if let Some(n) = number.filter(|n| super::is_low_port(*n)) {
            found.push((n, format!("exposes {port}")));
        }
    }
    if !own_command {
        let line: Vec<&String> = facts.entrypoint.iter().chain(&facts.cmd).collect();
        for (n, words) in command_line_ports(&line) {
            if !found.iter().any(|(f, _)| *f == n) {
                found.push((n, format!("its command line has `{words}`")));
            }
        }
    }
    found
}

/// Ports named on a command line: `-p 80`, `--port 80`, `--port=80`, `-p80`, `:80` at the end
/// of an address (`0.0.0.0:80`, `:443`), `listen 80`. Only those below 1024 are kept.
fn command_line_ports(words: &[&String]) -> Vec<(i64, String)> {
    let low = |text: &str| text.parse::<i64>().ok().filter(|n| super::is_low_port(*n));
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).map(|w| w.as_str());
        let flag_value = match word.as_str() {
            "-p" | "--port" | "--listen" | "listen" | "-l" => next
                .and_then(low)
                .map(|n| (n, format!("{word} {}", next.unwrap_or_default()))),
            w => w
                .strip_prefix("--port=")
                .or_else(|| w.strip_prefix("--listen="))
                .or_else(|| w.strip_prefix("-p").filter(|r| !r.is_empty()))
                .and_then(|v| low(v.rsplit(':').next().unwrap_or(v)))
                .or_else(|| w.rsplit_once(':').and_then(|(_, p)| low(p)))
                .map(|n| (n, w.to_string())),
        };
        if let Some(f) = flag_value {
            if !found.iter().any(|(n, _): &(i64, String)| *n == f.0) {
                found.push(f);
            }
        }
    }
    found
}

/// The rules of a context that the images give ids (chart values, a release's values): the
/// baseline's runAsUser, runAsGroup and fsGroup become the image user's.
pub fn with_image_ids(rules: &super::Rules, ids: &super::ChosenIds) -> super::Rules {
    let mut rules = rules.clone();
    rules.baseline.uid = ids.uid;
    rules.baseline.gid = ids.gid;
    rules.baseline.fs_group = ids.gid;
    rules
}

/// The note of a values path that gets the image user's ids instead of the baseline's
/// (`before`): it feeds pods that run `ids.image`. A container context has no fsGroup.
pub fn values_ids_note(ids: &super::ChosenIds, before: i64, level: super::Level) -> String {
    let (uid, gid) = (ids.uid, ids.gid);
    let instead = match before == uid {
        true => String::new(),
        false => format!(" instead of {before}"),
    };
    let fs_group = match level {
        super::Level::Pod => format!(", fsGroup {gid}"),
        super::Level::Container => String::new(),
    };
    format!(
        "image facts: {} (`{}`, in every pod this path feeds): its ids are runAsUser {uid}, runAsGroup {gid}{fs_group}{instead}, the image's own user, so the app's files stay its own",
        ids.summary, ids.image
    )
}

/// The short summary the notes and the PR body use: "user 101, volume /data, port 80/tcp".
pub fn summary(facts: &ImageFacts) -> String {
    let user = match &facts.user {
        ImageUser::Root if facts.user_text.is_empty() => "user root (no USER)".to_string(),
        ImageUser::Root => format!("user root (USER {})", facts.user_text),
        ImageUser::Ids { uid, gid }
            if facts.user_text == uid.to_string() || facts.user_text == format!("{uid}:{gid}") =>
        {
            match (uid == gid, facts.user_text.contains(':')) {
                (true, false) => format!("user {uid}"),
                _ => format!("user {uid}:{gid}"),
            }
        }
        ImageUser::Ids { uid, gid } => format!("user {uid}:{gid} (USER {})", facts.user_text),
        ImageUser::Unresolved { .. } => format!("user `{}` (unresolved)", facts.user_text),
    };
    let mut parts = vec![user];
    parts.extend(facts.volumes.iter().map(|v| format!("volume {v}")));
    parts.extend(facts.ports.iter().map(|p| format!("port {p}")));
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(user: ImageUser) -> ImageFacts {
        ImageFacts::of_user(user, "")
    }

    #[test]
    fn the_first_non_root_image_gives_the_pod_ids() {
        let root = facts(ImageUser::Root);
        let app = facts(ImageUser::Ids { uid: 101, gid: 102 });
        let other = facts(ImageUser::Ids { uid: 7, gid: 7 });
        assert_eq!(pod_ids([&root, &app, &other]), Some((101, 102)));
        assert_eq!(pod_ids([&root]), None);
    }

    #[test]
    fn volumes_already_mounted_or_at_tmp_need_nothing() {
        let mut f = facts(ImageUser::Root);
        f.volumes = vec!["/data/".into(), "/tmp".into(), "/cache".into()];
        assert_eq!(volume_paths(&f, &["/cache".into()]), vec!["/data"]);
    }

    #[test]
    fn low_ports_come_from_exposed_ports_and_the_command_line() {
        let mut f = facts(ImageUser::Root);
        f.ports = vec!["80/tcp".into(), "8080/tcp".into()];
        f.entrypoint = vec!["httpd".into(), "-f".into(), "-p".into(), "80".into()];
        f.cmd = vec!["--listen=0.0.0.0:443".into()];
        let ports: Vec<i64> = low_ports(&f, false).into_iter().map(|(n, _)| n).collect();
        assert_eq!(ports, vec![80, 443]);
        // The manifest's own command replaces the image's.
        let ports: Vec<i64> = low_ports(&f, true).into_iter().map(|(n, _)| n).collect();
        assert_eq!(ports, vec![80]);
    }

    #[test]
    fn the_summary_names_user_volumes_and_ports() {
        let mut f = facts(ImageUser::Ids { uid: 101, gid: 101 });
        f.user_text = "101".into();
        f.volumes = vec!["/data".into()];
        f.ports = vec!["80/tcp".into()];
        assert_eq!(summary(&f), "user 101, volume /data, port 80/tcp");
        let mut named = facts(ImageUser::Ids {
            uid: 1001,
            gid: 1001,
        });
        named.user_text = "app".into();
        assert_eq!(summary(&named), "user 1001:1001 (USER app)");
    }
}
