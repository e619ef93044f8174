//! The loaded configuration and the questions the pipeline asks of it: where the file is
//! ([`find`], [`load`]), the checked values with their defaults ([`Config`] and its parts),
//! which paths are excluded ([`ExcludeMatcher`]), which exemptions cover a workload or a
//! container, which service a file belongs to, and the baseline as [`policy::Rules`].

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::validate::{parse, utf8, ConfigError};
use crate::policy::{self, Control, Exemption};

/// The file names [`find`] looks for at the repository root, in order of preference.
pub const FILE_NAMES: [&str; 2] = [".kube-harden.yaml", ".kube-harden.yml"];

/// The id used for `runAsUser`, `runAsGroup` and `fsGroup` when the file does not say.
pub const DEFAULT_ID: i64 = 1000;

/// The whole configuration, with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub baseline: BaselineConfig,
    pub controls: Controls,
    /// Add an `emptyDir` at `/tmp` where `readOnlyRootFilesystem` is set (default: true).
    pub writable_tmp: bool,
    /// Harden pods with host namespaces or hostPath volumes instead of leaving them to a
    /// person (default: false).
    pub harden_host_access_pods: bool,
    /// When Kustomize trees are built to check the edits (default: auto, when an engine is found).
    pub render: RenderMode,
    /// The most seconds an external program (a build, a render) or a chart download may take
    /// (default: 120).
    pub engine_timeout: u64,
    /// When image facts are read (`images`, default: auto).
    pub images: crate::images::ImagesMode,
    /// The platform an image index is followed to (`platform`, default: linux/amd64).
    pub platform: crate::registry::Platform,
    /// Registries other than loopback spoken to over plain HTTP (`insecureRegistries`).
    pub insecure_registries: Vec<String>,
    /// An image's declared volume gets a risk note instead of an emptyDir
    /// (`imageVolumes: note`; default `emptyDir`).
    pub image_volumes_as_notes: bool,
    /// Gitignore-style globs, relative to the repository root, as written in the file.
    pub exclude: Vec<String>,
    pub exemptions: Vec<Exemption>,
    /// Named services for `kube-harden pr`: a file that matches one of a service's globs
    /// (relative to the repository root) belongs to it; the first service that matches wins.
    pub services: Vec<NamedService>,
}

/// When to build: `auto` builds when an engine is found, `always` makes a missing engine an
/// error, `never` does not build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenderMode {
    #[default]
    Auto,
    Always,
    Never,
}

/// The defaults of every key.
pub const DEFAULT_WRITABLE_TMP: bool = true;
pub const DEFAULT_HARDEN_HOST_ACCESS_PODS: bool = false;
pub const DEFAULT_ENGINE_TIMEOUT: u64 = 120;
/// The longest `engineTimeout` (a day): more is a typo, not a limit.
pub const MAX_ENGINE_TIMEOUT: u64 = 86_400;

impl Default for Config {
    fn default() -> Self {
        Config {
            baseline: BaselineConfig::default(),
            controls: Controls::default(),
            writable_tmp: DEFAULT_WRITABLE_TMP,
            harden_host_access_pods: DEFAULT_HARDEN_HOST_ACCESS_PODS,
            render: RenderMode::default(),
            engine_timeout: DEFAULT_ENGINE_TIMEOUT,
            images: crate::images::ImagesMode::default(),
            platform: crate::registry::Platform::default(),
            insecure_registries: vec![],
            image_volumes_as_notes: false,
            exclude: vec![],
            exemptions: vec![],
            services: vec![],
        }
    }
}

/// A service named in the configuration, and the globs of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedService {
    pub name: String,
    pub paths: Vec<String>,
}

/// The values the baseline writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineConfig {
    pub run_as_user: i64,
    pub run_as_group: i64,
    pub fs_group: i64,
    pub seccomp: Seccomp,
    /// The file sets `runAsUser`, `runAsGroup` or `fsGroup` (they then win over an image's
    /// user).
    pub ids_given: bool,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            run_as_user: DEFAULT_ID,
            run_as_group: DEFAULT_ID,
            fs_group: DEFAULT_ID,
            seccomp: Seccomp::RuntimeDefault,
            ids_given: false,
        }
    }
}

/// The seccomp profile the baseline sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seccomp {
    RuntimeDefault,
    /// A profile on the node, relative to the kubelet's seccomp folder.
    Localhost {
        profile: String,
    },
}

/// Which controls are on; all are on unless the file turns them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controls {
    pub run_as_non_root: bool,
    pub run_as_user: bool,
    pub run_as_group: bool,
    pub fs_group: bool,
    pub seccomp_profile: bool,
    pub allow_privilege_escalation: bool,
    pub read_only_root_filesystem: bool,
    pub capabilities_drop: bool,
    /// Report a `capabilities.add` that Pod Security `restricted` refuses (never changed).
    pub capabilities_add: bool,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            run_as_non_root: true,
            run_as_user: true,
            run_as_group: true,
            fs_group: true,
            seccomp_profile: true,
            allow_privilege_escalation: true,
            read_only_root_filesystem: true,
            capabilities_drop: true,
            capabilities_add: true,
        }
    }
}

impl Controls {
    /// Whether `control` is on.
    pub fn is_on(&self, control: Control) -> bool {
        *self.slot(control)
    }

    /// Turns `control` on or off.
    pub fn set(&mut self, control: Control, on: bool) {
        *self.slot_mut(control) = on;
    }

    fn slot(&self, control: Control) -> &bool {
        match control {
            Control::RunAsNonRoot => &self.run_as_non_root,
            Control::RunAsUser => &self.run_as_user,
            Control::RunAsGroup => &self.run_as_group,
            Control::FsGroup => &self.fs_group,
            Control::SeccompProfile => &self.seccomp_profile,
            Control::AllowPrivilegeEscalation => &self.allow_privilege_escalation,
            Control::ReadOnlyRootFilesystem => &self.read_only_root_filesystem,
            Control::CapabilitiesDrop => &self.capabilities_drop,
            Control::CapabilitiesAdd => &self.capabilities_add,
        }
    }

    fn slot_mut(&mut self, control: Control) -> &mut bool {
        match control {
            Control::RunAsNonRoot => &mut self.run_as_non_root,
            Control::RunAsUser => &mut self.run_as_user,
            Control::RunAsGroup => &mut self.run_as_group,
            Control::FsGroup => &mut self.fs_group,
            Control::SeccompProfile => &mut self.seccomp_profile,
            Control::AllowPrivilegeEscalation => &mut self.allow_privilege_escalation,
            Control::ReadOnlyRootFilesystem => &mut self.read_only_root_filesystem,
            Control::CapabilitiesDrop => &mut self.capabilities_drop,
            Control::CapabilitiesAdd => &mut self.capabilities_add,
        }
    }
}

/// The configuration file at the root of `repo_root`, if there is one (`.kube-harden.yaml`
/// wins over `.kube-harden.yml` when both exist).
pub fn find(repo_root: &Path) -> Option<PathBuf> {
    FILE_NAMES
        .iter()
        .map(|name| repo_root.join(name))
        .find(|path| path.is_file())
}

/// Reads and validates the configuration file at `path`; errors carry `path` as given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    std::fs::read(path)
        .map_err(|err| ConfigError::at(0, 0, format!("cannot read the configuration file: {err}")))
        .and_then(|bytes| parse(utf8(&bytes)?))
        .map_err(|err| ConfigError {
            path: path.display().to_string(),
            ..err
        })
}

impl Config {
    /// Whether `relative_path` (relative to the repository root) matches an `exclude` glob.
    /// Builds the matcher on each call; use [`Config::exclude_matcher`] for many paths.
    pub fn excludes(&self, relative_path: &Path) -> bool {
        self.exclude_matcher().is_excluded(relative_path)
    }

    /// The compiled `exclude` globs, to test many paths without recompiling.
    pub fn exclude_matcher(&self) -> ExcludeMatcher {
        ExcludeMatcher::new(&self.exclude)
    }

    /// The named services, each with a matcher for its globs.
    pub fn service_matchers(&self) -> Vec<(String, ExcludeMatcher)> {
        self.services
            .iter()
            .map(|s| (s.name.clone(), ExcludeMatcher::new(&s.paths)))
            .collect()
    }

    /// The exemptions that apply to a pod (`container: None`) or to one of its containers.
    /// An exemption without a container applies to the pod and to every container; one with
    /// a container applies to that container only. An exemption with a namespace applies only
    /// when the manifest states that namespace: a manifest without one may be deployed
    /// anywhere, so it is hardened rather than guessed to be exempt.
    pub fn exemption_for(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        container: Option<&str>,
    ) -> Vec<&Exemption> {
        self.exemptions
            .iter()
            .filter(|e| e.matches(kind, name, namespace, container))
            .collect()
    }

    /// The policy rules this configuration asks for.
    pub fn rules(&self) -> policy::Rules {
        let b = &self.baseline;
        let seccomp = match &b.seccomp {
            Seccomp::RuntimeDefault => policy::Seccomp::RuntimeDefault,
            Seccomp::Localhost { profile } => policy::Seccomp::Localhost(profile.clone()),
        };
        policy::Rules {
            baseline: policy::Baseline {
                uid: b.run_as_user,
                gid: b.run_as_group,
                fs_group: b.fs_group,
                seccomp,
            },
            disabled: Control::ALL
                .into_iter()
                .filter(|&c| !self.controls.is_on(c))
                .collect(),
            writable_tmp: self.writable_tmp,
            harden_host_access: self.harden_host_access_pods,
            exemptions: self.exemptions.clone(),
            ids_given: b.ids_given,
            images: policy::ImageLookup::default(),
        }
    }
}

/// `exclude` compiled once. Gitignore rules: a pattern without a `/` (other than a trailing
/// one) matches at any depth; one with a `/` is relative to the root (a leading `/` only says
/// so); a trailing `/` matches folders only; a matched folder excludes everything inside it;
/// `*` and `?` do not cross `/`, `**` does. Negation (`!`) is not supported.
#[derive(Debug, Clone)]
pub struct ExcludeMatcher {
    set: GlobSet,
}

impl ExcludeMatcher {
    /// Compiles `patterns`. A pattern that does not compile is skipped: [`parse`] has already
    /// rejected those, and for a hand-built config skipping means "not excluded", the safe side.
    pub fn new(patterns: &[String]) -> ExcludeMatcher {
        let mut builder = GlobSetBuilder::new();
        for glob in patterns
            .iter()
            .filter_map(|p| exclude_globs(p).ok())
            .flatten()
        {
            builder.add(glob);
        }
        let set = builder.build().unwrap_or_else(|_| GlobSet::empty());
        ExcludeMatcher { set }
    }

    /// Whether `relative_path` is excluded. `./` prefixes are ignored and `\` is not a separator.
    pub fn is_excluded(&self, relative_path: &Path) -> bool {
        !self.set.is_empty() && self.set.is_match(normalise(relative_path))
    }
}

/// The globs one gitignore-style pattern stands for (see [`ExcludeMatcher`]). Validation calls
/// it too, so that a pattern the matcher would skip is an error in the file instead.
pub(super) fn exclude_globs(pattern: &str) -> Result<Vec<Glob>, String> {
    let dir_only = pattern.ends_with('/');
    let trimmed = pattern.trim_end_matches('/');
    // Per gitignore, a slash at the start or in the middle anchors the pattern at the root.
    let anchored = trimmed.contains('/');
    let trimmed = trimmed.trim_start_matches('/');
    if trimmed.is_empty() {
        return Err("an exclude pattern needs a name, not just `/`".into());
    }
    // Check the pattern as written first: appending `/**` to a broken one (`[a-`, `x\`)
    // would report the wrong problem, or none.
    path_glob(trimmed)?;
    let base = if anchored {
        trimmed.to_string()
    } else {
        format!("**/{trimmed}")
    };
    let mut sources = vec![format!("{base}/**")];
    if !dir_only {
        sources.push(base);
    }
    sources.iter().map(|s| path_glob(s)).collect()
}

/// A glob where `*` stops at `/`, as in gitignore, and `\` escapes on every platform.
pub(super) fn path_glob(source: &str) -> Result<Glob, String> {
    GlobBuilder::new(source)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|err| err.kind().to_string())
}

/// `relative_path` as `a/b/c`, the form the globs are written in.
fn normalise(relative_path: &Path) -> String {
    let parts: Vec<Cow<'_, str>> = relative_path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy()),
            Component::ParentDir => Some(Cow::Borrowed("..")),
            _ => None,
        })
        .collect();
    parts.join("/")
}
