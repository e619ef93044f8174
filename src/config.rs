//! The configuration file, `.kube-harden.yaml`: its format, its defaults, and the questions the
//! rest of the tool asks of it (is this path excluded? which exemptions cover this container?).
//!
//! This module owns reading and validating the file, and nothing else: it knows the names of
//! the controls but not what they do to a manifest. Every error points at the offending key or
//! value as `path:line:col: message`, so a typo is fixed in one look.
//!
//! How positions are found: syntax errors, unknown and duplicate keys, and a mapping or list
//! where another shape belongs come from serde-saphyr's own error location. Every check made
//! after deserialising (ranges, globs, the Localhost rule, control names, empty reasons, a
//! missing exemption key, and the type of booleans, ids and `seccompProfile`, which we check
//! ourselves so that `"1000"` and `yes` are not coerced) reads the position from the
//! [`serde_saphyr::Spanned`] wrapper around the raw value, so no text search is needed.
//! Lines and columns are 1-based and count characters; 0:0 means "no position" (an I/O error).
//!
//! The file format is documented in `docs/config.md`; `schema/kube-harden.schema.json` is its
//! JSON Schema, and `tests/config.rs` keeps the two in step with this parser.

use std::borrow::Cow;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

/// The file names [`find`] looks for at the repository root, in order of preference.
pub const FILE_NAMES: [&str; 2] = [".kube-harden.yaml", ".kube-harden.yml"];

/// The largest uid/gid Kubernetes accepts (the API field is an int32 and must not be negative).
pub const MAX_ID: i64 = 2_147_483_647;

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
    /// Gitignore-style globs, relative to the repository root, as written in the file.
    pub exclude: Vec<String>,
    pub exemptions: Vec<Exemption>,
    /// Named services for `kube-harden pr`: a file that matches one of a service's globs
    /// (relative to the repository root) belongs to it; the first service that matches wins.
    pub services: Vec<NamedService>,
}

/// The defaults of every key.
pub const DEFAULT_WRITABLE_TMP: bool = true;
pub const DEFAULT_HARDEN_HOST_ACCESS_PODS: bool = false;

impl Default for Config {
    fn default() -> Self {
        Config {
            baseline: BaselineConfig::default(),
            controls: Controls::default(),
            writable_tmp: DEFAULT_WRITABLE_TMP,
            harden_host_access_pods: DEFAULT_HARDEN_HOST_ACCESS_PODS,
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
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            run_as_user: DEFAULT_ID,
            run_as_group: DEFAULT_ID,
            fs_group: DEFAULT_ID,
            seccomp: Seccomp::RuntimeDefault,
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

/// The controls are the policy's; in this file `capabilities.drop` is spelled
/// `capabilitiesDrop` (a key cannot hold a dot comfortably), which `Control::from_name` accepts.
pub use crate::policy::Control;

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
        }
    }
}

/// Exemptions are the policy's (it owns what they mean); this file only reads them.
pub use crate::policy::{ControlSet, Exemption};

/// A configuration file that could not be read or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{col}: {message}")]
pub struct ConfigError {
    pub path: String,
    /// 1-based; 0 when the error has no position (the file could not be read).
    pub line: usize,
    /// 1-based, in characters; 0 when the error has no position.
    pub col: usize,
    pub message: String,
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
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|err| ConfigError {
        path: label.clone(),
        line: 0,
        col: 0,
        message: format!("cannot read the configuration file: {err}"),
    })?;
    let text = utf8(&bytes).map_err(|err| ConfigError {
        path: label.clone(),
        ..err
    })?;
    parse(text).map_err(|err| ConfigError { path: label, ..err })
}

/// Parses and validates configuration text. An empty file (or one with only comments) means
/// every default. Errors name the file `.kube-harden.yaml`; [`load`] names the real path.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: Option<RawConfig> =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(from_yaml_error)?;
    raw.map_or_else(|| Ok(Config::default()), |raw| raw.validate())
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

// ---------------------------------------------------------------------------------------------
// Matching helpers.

/// The globs one gitignore-style pattern stands for (see [`ExcludeMatcher`]).
fn exclude_globs(pattern: &str) -> Result<Vec<Glob>, String> {
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
fn path_glob(source: &str) -> Result<Glob, String> {
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

// ---------------------------------------------------------------------------------------------
// The file as written. Everything is optional here so that defaults apply; values whose type we
// check ourselves are kept as `Spanned<Scalar>` so the error can point at them.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    // Not `Option`: serde would read `baseline: ~` as "absent"; as a struct it is an error.
    #[serde(default)]
    baseline: RawBaseline,
    #[serde(default)]
    controls: RawControls,
    #[serde(default, deserialize_with = "present")]
    writable_tmp: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    harden_host_access_pods: Option<Spanned<Scalar>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    // Spanned, so that a missing key can be reported at the start of its entry (serde's own
    // "missing field" error points at the entry's last key).
    #[serde(default)]
    exemptions: Vec<Spanned<RawExemption>>,
    #[serde(default)]
    services: Vec<Spanned<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default, deserialize_with = "present")]
    name: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    paths: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBaseline {
    #[serde(default, deserialize_with = "present")]
    run_as_user: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    run_as_group: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    fs_group: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    seccomp_profile: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    localhost_profile: Option<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawControls {
    #[serde(default, deserialize_with = "present")]
    run_as_non_root: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    run_as_user: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    run_as_group: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    fs_group: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    seccomp_profile: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    allow_privilege_escalation: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    read_only_root_filesystem: Option<Spanned<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    capabilities_drop: Option<Spanned<Scalar>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExemption {
    #[serde(default, deserialize_with = "present")]
    workload: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    namespace: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    container: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    controls: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default, deserialize_with = "present")]
    reason: Option<Spanned<String>>,
}

/// Reads a present value as `Some`, so that an explicit `null` reaches the inner type and is
/// rejected there instead of silently meaning "use the default".
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Any YAML value, as the parser typed it. Booleans and ids are read this way, not as `bool`
/// and `i64`, because serde-saphyr would accept `"1000"` for an integer and `"true"` for a
/// bool (the schema does not), and because an error raised inside a custom visitor is placed
/// at the key, while a check after the fact can point at the value.
#[derive(Debug)]
enum Scalar {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Null,
    Sequence,
    Mapping,
}

impl Scalar {
    fn describe(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(x) => format!("the number {x}"),
            Scalar::Str(s) => format!("the string {s:?}"),
            Scalar::Null => "null".into(),
            Scalar::Sequence => "a list".into(),
            Scalar::Mapping => "a mapping".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
        Ok(i128::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Sequence)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Mapping)
    }
}

/// Options that make the parser agree with the JSON Schema: YAML 1.2 booleans only (`yes` is
/// a string), strings that look like numbers or booleans must be quoted, `1_000` is a string,
/// and duplicate keys are errors (the default, stated because the README promises it).
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.no_schema = true;
    options.underscored_numbers_as_strings = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

// ---------------------------------------------------------------------------------------------
// Validation: raw values to `Config`, each error at the value's position.

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        Ok(Config {
            baseline: self.baseline.validate()?,
            controls: self.controls.validate()?,
            writable_tmp: optional_bool("writableTmp", &self.writable_tmp, DEFAULT_WRITABLE_TMP)?,
            harden_host_access_pods: optional_bool(
                "hardenHostAccessPods",
                &self.harden_host_access_pods,
                DEFAULT_HARDEN_HOST_ACCESS_PODS,
            )?,
            exclude: self
                .exclude
                .iter()
                .map(exclude_pattern)
                .collect::<Result<_, _>>()?,
            exemptions: self
                .exemptions
                .iter()
                .map(exemption)
                .collect::<Result<_, _>>()?,
            services: self
                .services
                .iter()
                .map(named_service)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl RawBaseline {
    fn validate(self) -> Result<BaselineConfig, ConfigError> {
        Ok(BaselineConfig {
            run_as_user: optional_id("runAsUser", &self.run_as_user)?,
            run_as_group: optional_id("runAsGroup", &self.run_as_group)?,
            fs_group: optional_id("fsGroup", &self.fs_group)?,
            seccomp: seccomp(
                self.seccomp_profile.as_ref(),
                self.localhost_profile.as_ref(),
            )?,
        })
    }
}

/// `seccompProfile`, and the Localhost rule: a profile is required with `Localhost` and
/// meaningless otherwise.
fn seccomp(
    kind: Option<&Spanned<Scalar>>,
    profile: Option<&Spanned<String>>,
) -> Result<Seccomp, ConfigError> {
    let localhost = match kind {
        Some(kind) => is_localhost(kind)?.then_some(kind),
        None => None,
    };
    match (localhost, profile) {
        (None, None) => Ok(Seccomp::RuntimeDefault),
        (Some(_), Some(profile)) => Ok(Seccomp::Localhost {
            profile: non_empty("localhostProfile", profile)?,
        }),
        (Some(kind), None) => Err(error_at(
            &kind.referenced,
            "`seccompProfile: Localhost` needs `localhostProfile` (the profile's path on the node)",
        )),
        (None, Some(profile)) => Err(error_at(
            &profile.referenced,
            "`localhostProfile` is only allowed with `seccompProfile: Localhost`",
        )),
    }
}

fn is_localhost(kind: &Spanned<Scalar>) -> Result<bool, ConfigError> {
    match &kind.value {
        Scalar::Str(s) if s == "RuntimeDefault" => Ok(false),
        Scalar::Str(s) if s == "Localhost" => Ok(true),
        other => Err(error_at(
            &kind.referenced,
            format!(
                "`seccompProfile` must be RuntimeDefault or Localhost, found {}",
                other.describe()
            ),
        )),
    }
}

impl RawControls {
    fn validate(self) -> Result<Controls, ConfigError> {
        let mut controls = Controls::default();
        for (control, value) in self.entries() {
            controls.set(control, optional_bool(control.name(), value, true)?);
        }
        Ok(controls)
    }

    fn entries(&self) -> [(Control, &Option<Spanned<Scalar>>); 8] {
        [
            (Control::RunAsNonRoot, &self.run_as_non_root),
            (Control::RunAsUser, &self.run_as_user),
            (Control::RunAsGroup, &self.run_as_group),
            (Control::FsGroup, &self.fs_group),
            (Control::SeccompProfile, &self.seccomp_profile),
            (
                Control::AllowPrivilegeEscalation,
                &self.allow_privilege_escalation,
            ),
            (
                Control::ReadOnlyRootFilesystem,
                &self.read_only_root_filesystem,
            ),
            (Control::CapabilitiesDrop, &self.capabilities_drop),
        ]
    }
}

fn exemption(entry: &Spanned<RawExemption>) -> Result<Exemption, ConfigError> {
    let raw = &entry.value;
    let required = |key: &str| {
        error_at(
            &entry.referenced,
            format!("this exemption is missing `{key}`"),
        )
    };
    let (kind, name) = workload(raw.workload.as_ref().ok_or_else(|| required("workload"))?)?;
    Ok(Exemption {
        kind,
        name,
        namespace: raw
            .namespace
            .as_ref()
            .map(|n| non_empty("namespace", n))
            .transpose()?,
        container: raw
            .container
            .as_ref()
            .map(|c| non_empty("container", c))
            .transpose()?,
        controls: control_set(raw.controls.as_ref().ok_or_else(|| required("controls"))?)?,
        reason: reason(raw.reason.as_ref().ok_or_else(|| required("reason"))?)?,
    })
}

fn named_service(entry: &Spanned<RawService>) -> Result<NamedService, ConfigError> {
    let required = |key: &str| {
        error_at(
            &entry.referenced,
            format!("this service is missing `{key}`"),
        )
    };
    let name = entry.value.name.as_ref().ok_or_else(|| required("name"))?;
    let paths = entry
        .value
        .paths
        .as_ref()
        .ok_or_else(|| required("paths"))?;
    if paths.value.is_empty() {
        return Err(error_at(
            &paths.referenced,
            "`paths` must list at least one glob",
        ));
    }
    Ok(NamedService {
        name: non_empty("name", name)?,
        paths: paths
            .value
            .iter()
            .map(exclude_pattern)
            .collect::<Result<_, _>>()?,
    })
}

fn optional_bool(
    key: &str,
    value: &Option<Spanned<Scalar>>,
    default: bool,
) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.value {
        Scalar::Bool(b) => Ok(b),
        ref other => Err(error_at(
            &value.referenced,
            format!("`{key}` must be true or false, found {}", other.describe()),
        )),
    }
}

fn optional_id(key: &str, value: &Option<Spanned<Scalar>>) -> Result<i64, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_ID);
    };
    let found = match value.value {
        Scalar::Int(n) if (1..=i128::from(MAX_ID)).contains(&n) => return Ok(n as i64),
        Scalar::Int(0) => "0 (root)".to_string(),
        ref other => other.describe(),
    };
    Err(error_at(
        &value.referenced,
        format!("`{key}` must be an integer from 1 to {MAX_ID}, found {found}"),
    ))
}

fn non_empty(key: &str, value: &Spanned<String>) -> Result<String, ConfigError> {
    if value.value.is_empty() {
        return Err(error_at(
            &value.referenced,
            format!("`{key}` must not be empty"),
        ));
    }
    Ok(value.value.clone())
}

fn reason(value: &Spanned<String>) -> Result<String, ConfigError> {
    // A reason of spaces says no more than none; the point is that a reviewer can read why.
    if value.value.trim().is_empty() {
        return Err(error_at(
            &value.referenced,
            "`reason` must say why the workload is exempt; it is empty",
        ));
    }
    Ok(value.value.clone())
}

/// `Kind/name`, each part a glob that must compile.
fn workload(value: &Spanned<String>) -> Result<(String, String), ConfigError> {
    let bad = |why: String| error_at(&value.referenced, why);
    let (kind, name) = value
        .value
        .split_once('/')
        .filter(|(kind, name)| !kind.is_empty() && !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| {
            bad(format!(
                "`workload` must be `Kind/name` (like `Deployment/billing`), found {:?}",
                value.value
            ))
        })?;
    for part in [kind, name] {
        path_glob(part).map_err(|why| bad(format!("bad glob `{part}` in `workload`: {why}")))?;
    }
    Ok((kind.to_string(), name.to_string()))
}

fn exclude_pattern(value: &Spanned<String>) -> Result<String, ConfigError> {
    let pattern = &value.value;
    let why = if pattern.is_empty() {
        Some("an exclude pattern must not be empty".to_string())
    } else if pattern.starts_with('!') {
        Some(format!(
            "negated pattern `{pattern}`: `!` is not supported in `exclude`"
        ))
    } else {
        exclude_globs(pattern)
            .err()
            .map(|why| format!("bad glob `{pattern}`: {why}"))
    };
    match why {
        Some(why) => Err(error_at(&value.referenced, why)),
        None => Ok(pattern.clone()),
    }
}

fn control_set(value: &Spanned<Vec<Spanned<String>>>) -> Result<ControlSet, ConfigError> {
    let items = &value.value;
    if items.is_empty() {
        return Err(error_at(
            &value.referenced,
            "`controls` must list at least one control, or be `[all]`",
        ));
    }
    if items.len() == 1 && items[0].value == "all" {
        return Ok(ControlSet::All);
    }
    let mut list: Vec<Control> = Vec::with_capacity(items.len());
    for item in items {
        let control = control_name(item)?;
        if list.contains(&control) {
            return Err(error_at(
                &item.referenced,
                format!("control `{}` is listed twice", control.name()),
            ));
        }
        list.push(control);
    }
    Ok(ControlSet::List(list))
}

fn control_name(item: &Spanned<String>) -> Result<Control, ConfigError> {
    if item.value == "all" {
        return Err(error_at(
            &item.referenced,
            "`all` must be the only entry of `controls`",
        ));
    }
    Control::from_name(&item.value).ok_or_else(|| {
        let names: Vec<&str> = Control::ALL.iter().map(|c| c.name()).collect();
        error_at(
            &item.referenced,
            format!(
                "unknown control `{}`, expected one of {}, or all",
                item.value,
                names.join(", ")
            ),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// An error at a position; the path is filled in by [`parse`] or [`load`].
fn error_at(location: &Location, message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: FILE_NAMES[0].to_string(),
        line: usize::try_from(location.line()).unwrap_or(0),
        col: usize::try_from(location.column()).unwrap_or(0),
        message: one_line(&message.into()),
    }
}

fn from_yaml_error(err: serde_saphyr::Error) -> ConfigError {
    // The user formatter gives the message without the "at line X, column Y" suffix and
    // without snippets; the position goes into our own fields.
    let message = plain_words(UserMessageFormatter.format_message(&err).into_owned());
    match err.location() {
        Some(location) => error_at(&location, message),
        None => ConfigError {
            path: FILE_NAMES[0].to_string(),
            line: 0,
            col: 0,
            message: one_line(&message),
        },
    }
}

/// serde-saphyr speaks of parser events where a user wrote a value; say what was expected.
fn plain_words(message: String) -> String {
    match message.as_str() {
        "expected mapping start" => "expected a mapping of keys to values".into(),
        "expected sequence start" => "expected a list".into(),
        "value requires quoting" => {
            "expected a string: quote this value, or YAML reads it as a number, boolean or null"
                .into()
        }
        _ => message,
    }
}

/// The text as UTF-8, or an error at the first byte that is not.
fn utf8(bytes: &[u8]) -> Result<&str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // `valid` is UTF-8 by construction, so this counts characters, as the parser's columns do.
        let col = 1 + String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count();
        ConfigError {
            path: String::new(),
            line,
            col,
            message: "the file is not UTF-8".into(),
        }
    })
}

/// Messages quote user text; keep a control character in it from breaking the one-line format.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Config {
    /// The policy rules this configuration asks for.
    pub fn rules(&self) -> crate::policy::Rules {
        use crate::policy;
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
        }
    }
}
