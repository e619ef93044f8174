//! Validation with positions: from the file as written ([`format`](super::format)) to the
//! checked values of a [`Config`], every error as `path:line:col: message` ([`ConfigError`]).
//!
//! How positions are found: syntax errors, unknown and duplicate keys, and a mapping or list
//! where another shape belongs come from serde-saphyr's own error location. Every check made
//! after deserialising (ranges, globs, the Localhost rule, control names, empty reasons, a
//! missing exemption key, and the type of booleans, ids and `seccompProfile`, which we check
//! ourselves so that `"1000"` and `yes` are not coerced) reads the position from the
//! [`serde_saphyr::Spanned`] wrapper around the raw value, so no text search is needed.
//! Lines and columns are 1-based and count characters; 0:0 means "no position" (an I/O error).

use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use super::format::{
    yaml_options, Key, RawBaseline, RawConfig, RawControls, RawExemption, RawService, Scalar,
};
use super::queries::{
    exclude_globs, path_glob, BaselineConfig, Config, Controls, NamedService, RenderMode, Seccomp,
    DEFAULT_ENGINE_TIMEOUT, DEFAULT_HARDEN_HOST_ACCESS_PODS, DEFAULT_ID, DEFAULT_WRITABLE_TMP,
    FILE_NAMES, MAX_ENGINE_TIMEOUT,
};
use crate::policy::{Control, ControlSet, Exemption};

/// The largest uid/gid Kubernetes accepts (the API field is an int32 and must not be negative).
pub const MAX_ID: i64 = 2_147_483_647;

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

impl ConfigError {
    /// An error at `line:col` (0:0 for none) of the file, named `.kube-harden.yaml` until
    /// [`load`](super::load) names the real path.
    pub(super) fn at(line: usize, col: usize, message: String) -> ConfigError {
        ConfigError {
            path: FILE_NAMES[0].to_string(),
            line,
            col,
            message,
        }
    }
}

/// Parses and validates configuration text. An empty file (or one with only comments) means
/// every default. Errors name the file `.kube-harden.yaml`; [`load`](super::load) names the
/// real path.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: Option<RawConfig> =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(from_yaml_error)?;
    raw.map_or_else(|| Ok(Config::default()), |raw| raw.validate())
}

// ---------------------------------------------------------------------------------------------
// Raw values to `Config`, each error at the value's position.

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        Ok(Config {
            baseline: self.baseline.validate()?,
            controls: self.controls.validate()?,
            writable_tmp: optional_bool(
                "writableTmp",
                self.writable_tmp.get(),
                DEFAULT_WRITABLE_TMP,
            )?,
            harden_host_access_pods: optional_bool(
                "hardenHostAccessPods",
                self.harden_host_access_pods.get(),
                DEFAULT_HARDEN_HOST_ACCESS_PODS,
            )?,
            render: render_mode(self.render.get())?,
            engine_timeout: engine_timeout(self.engine_timeout.get())?,
            images: images_mode(self.images.get())?,
            platform: platform(self.platform.get())?,
            insecure_registries: self
                .insecure_registries
                .iter()
                .map(|r| non_empty("insecureRegistries", r))
                .collect::<Result<_, _>>()?,
            image_volumes_as_notes: image_volumes(self.image_volumes.get())?,
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
            run_as_user: optional_id("runAsUser", self.run_as_user.get())?,
            run_as_group: optional_id("runAsGroup", self.run_as_group.get())?,
            fs_group: optional_id("fsGroup", self.fs_group.get())?,
            seccomp: seccomp(self.seccomp_profile.get(), self.localhost_profile.get())?,
            ids_given: self.run_as_user.get().is_some()
                || self.run_as_group.get().is_some()
                || self.fs_group.get().is_some(),
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
            controls.set(control, optional_bool(control.name(), value.get(), true)?);
        }
        Ok(controls)
    }

    fn entries(&self) -> [(Control, &Key<Spanned<Scalar>>); 9] {
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
            (Control::CapabilitiesAdd, &self.capabilities_add),
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
    let (kind, name) = workload(raw.workload.get().ok_or_else(|| required("workload"))?)?;
    Ok(Exemption {
        kind,
        name,
        namespace: raw
            .namespace
            .get()
            .map(|n| non_empty("namespace", n))
            .transpose()?,
        container: raw
            .container
            .get()
            .map(|c| non_empty("container", c))
            .transpose()?,
        controls: control_set(raw.controls.get().ok_or_else(|| required("controls"))?)?,
        reason: reason(raw.reason.get().ok_or_else(|| required("reason"))?)?,
    })
}

fn named_service(entry: &Spanned<RawService>) -> Result<NamedService, ConfigError> {
    let required = |key: &str| {
        error_at(
            &entry.referenced,
            format!("this service is missing `{key}`"),
        )
    };
    let name = entry.value.name.get().ok_or_else(|| required("name"))?;
    let paths = entry.value.paths.get().ok_or_else(|| required("paths"))?;
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

/// `render`: when the render check of Kustomize trees runs.
fn render_mode(value: Option<&Spanned<Scalar>>) -> Result<RenderMode, ConfigError> {
    let Some(value) = value else {
        return Ok(RenderMode::default());
    };
    match &value.value {
        Scalar::Str(s) if s == "auto" => Ok(RenderMode::Auto),
        Scalar::Str(s) if s == "always" => Ok(RenderMode::Always),
        Scalar::Str(s) if s == "never" => Ok(RenderMode::Never),
        other => Err(error_at(
            &value.referenced,
            format!(
                "`render` must be auto, always or never, found {}",
                other.describe()
            ),
        )),
    }
}

/// `images`: auto, always or never.
fn images_mode(value: Option<&Spanned<Scalar>>) -> Result<crate::images::ImagesMode, ConfigError> {
    use crate::images::ImagesMode;
    let Some(value) = value else {
        return Ok(ImagesMode::default());
    };
    match &value.value {
        Scalar::Str(s) if s == "auto" => Ok(ImagesMode::Auto),
        Scalar::Str(s) if s == "always" => Ok(ImagesMode::Always),
        Scalar::Str(s) if s == "never" => Ok(ImagesMode::Never),
        other => Err(error_at(
            &value.referenced,
            format!(
                "`images` must be auto, always or never, found {}",
                other.describe()
            ),
        )),
    }
}

/// `platform`: `os/arch[/variant]`.
fn platform(value: Option<&Spanned<Scalar>>) -> Result<crate::registry::Platform, ConfigError> {
    let Some(value) = value else {
        return Ok(crate::registry::Platform::default());
    };
    match &value.value {
        Scalar::Str(s) => crate::registry::Platform::parse(s).ok_or_else(|| {
            error_at(
                &value.referenced,
                format!("`platform` must be os/arch or os/arch/variant (linux/arm64), found {s:?}"),
            )
        }),
        other => Err(error_at(
            &value.referenced,
            format!(
                "`platform` must be a string such as linux/amd64, found {}",
                other.describe()
            ),
        )),
    }
}

/// `imageVolumes`: `emptyDir` (mount one at each declared volume) or `note`.
fn image_volumes(value: Option<&Spanned<Scalar>>) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(false);
    };
    match &value.value {
        Scalar::Str(s) if s == "emptyDir" => Ok(false),
        Scalar::Str(s) if s == "note" => Ok(true),
        other => Err(error_at(
            &value.referenced,
            format!(
                "`imageVolumes` must be emptyDir or note, found {}",
                other.describe()
            ),
        )),
    }
}

/// `engineTimeout`: whole seconds, from 1 to a day.
fn engine_timeout(value: Option<&Spanned<Scalar>>) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(DEFAULT_ENGINE_TIMEOUT);
    };
    match value.value {
        Scalar::Int(n) if (1..=i128::from(MAX_ENGINE_TIMEOUT)).contains(&n) => Ok(n as u64),
        ref other => Err(error_at(
            &value.referenced,
            format!(
                "`engineTimeout` must be a number of seconds from 1 to {MAX_ENGINE_TIMEOUT}, found {}",
                other.describe()
            ),
        )),
    }
}

fn optional_bool(
    key: &str,
    value: Option<&Spanned<Scalar>>,
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

fn optional_id(key: &str, value: Option<&Spanned<Scalar>>) -> Result<i64, ConfigError> {
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

/// An error at a position the parser reported.
fn error_at(location: &Location, message: impl Into<String>) -> ConfigError {
    let line = usize::try_from(location.line()).unwrap_or(0);
    let col = usize::try_from(location.column()).unwrap_or(0);
    ConfigError::at(line, col, one_line(&message.into()))
}

fn from_yaml_error(err: serde_saphyr::Error) -> ConfigError {
    // The user formatter gives the message without the "at line X, column Y" suffix and
    // without snippets; the position goes into our own fields.
    let message = plain_words(UserMessageFormatter.format_message(&err).into_owned());
    match err.location() {
        Some(location) => error_at(&location, message),
        None => ConfigError::at(0, 0, one_line(&message)),
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
pub(super) fn utf8(bytes: &[u8]) -> Result<&str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // `valid` is UTF-8 by construction, so this counts characters, as the parser's columns do.
        let col = 1 + String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count();
        ConfigError::at(line, col, "the file is not UTF-8".into())
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
