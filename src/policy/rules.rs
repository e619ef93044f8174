//! What the user asked for: the baseline values, the controls turned off, the exemptions from
//! the configuration, and the `kube-harden.io/skip` annotation on a workload.

use globset::Glob;

use crate::yaml::{EngineError, Ref, Tree};

use super::Control;

/// The values the baseline writes (`--uid`, `--gid`, `--fs-group`, the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub uid: i64,
    pub gid: i64,
    pub fs_group: i64,
    pub seccomp: Seccomp,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline {
            uid: 1000,
            gid: 1000,
            fs_group: 1000,
            seccomp: Seccomp::RuntimeDefault,
        }
    }
}

/// The seccomp profile written where none (or an unconfined one) is set.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Seccomp {
    #[default]
    RuntimeDefault,
    /// `type: Localhost` with this `localhostProfile`.
    Localhost(String),
}

/// A configured exemption: these controls are not applied to matching workloads/containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exemption {
    /// Glob on the kind (`*` for any).
    pub kind: String,
    /// Glob on the workload name.
    pub name: String,
    pub namespace: Option<String>,
    /// None: the pod and every container.
    pub container: Option<String>,
    /// None: every control.
    pub controls: Option<Vec<Control>>,
    pub reason: String,
}

/// Everything that shapes the plan. The writable /tmp is off by default for now: it adds
/// volumes, which the core contract (securityContext only) does not; `--writable-tmp` or the
/// config file turn it on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Rules {
    pub baseline: Baseline,
    /// Controls turned off everywhere.
    pub disabled: Vec<Control>,
    /// Add an emptyDir at `/tmp` where `readOnlyRootFilesystem` is set.
    pub writable_tmp: bool,
    pub exemptions: Vec<Exemption>,
}

/// The annotation that opts a workload out of some controls (`all`, or a comma-separated list).
pub const SKIP_ANNOTATION: &str = "kube-harden.io/skip";

/// Who is exempt from what, for one workload.
pub(super) struct WorkloadExemptions<'r> {
    rules: &'r Rules,
    kind: String,
    name: String,
    namespace: Option<String>,
    /// From the annotation: None when absent, Some(None) for `all`.
    annotated: Option<Option<Vec<Control>>>,
}

impl<'r> WorkloadExemptions<'r> {
    /// Reads the workload's annotation (on the object or its pod template).
    pub fn new(
        rules: &'r Rules,
        tree: &Tree,
        obj: Ref,
        template: Option<Ref>,
        kind: &str,
        name: &str,
    ) -> Result<Self, EngineError> {
        let meta = |r: Ref| tree.get(r, "metadata");
        let namespace = meta(obj)
            .and_then(|m| tree.get(m, "namespace"))
            .and_then(|n| tree.as_str(n))
            .map(str::to_string);
        let annotation = [Some(obj), template]
            .into_iter()
            .flatten()
            .filter_map(|r| {
                meta(r)
                    .and_then(|m| tree.get(m, "annotations"))
                    .and_then(|a| tree.get(a, SKIP_ANNOTATION))
            })
            .next();
        let annotated = match annotation {
            None => None,
            Some(v) => Some(parse_skip(tree, v)?),
        };
        Ok(WorkloadExemptions {
            rules,
            kind: kind.into(),
            name: name.into(),
            namespace,
            annotated,
        })
    }

    /// The controls exempted for the pod (container None) or one container, with the reason.
    pub fn exempted(&self, container: Option<&str>) -> Vec<(Control, String)> {
        let mut out: Vec<(Control, String)> = Vec::new();
        let mut add = |controls: &Option<Vec<Control>>, reason: &str| {
            for c in controls.clone().unwrap_or_else(|| Control::ALL.to_vec()) {
                if !out.iter().any(|(o, _)| *o == c) {
                    out.push((c, reason.to_string()));
                }
            }
        };
        for c in &self.rules.disabled {
            add(&Some(vec![*c]), "turned off in the configuration");
        }
        if let Some(controls) = &self.annotated {
            add(controls, &format!("annotation {SKIP_ANNOTATION}"));
        }
        for e in self
            .rules
            .exemptions
            .iter()
            .filter(|e| self.matches(e, container))
        {
            add(&e.controls, &format!("exemption: {}", e.reason));
        }
        out
    }

    fn matches(&self, e: &Exemption, container: Option<&str>) -> bool {
        let glob = |pattern: &str, text: &str| {
            Glob::new(pattern)
                .map(|g| g.compile_matcher().is_match(text))
                .unwrap_or(false)
        };
        let container_ok = match (&e.container, container) {
            (None, _) => true,
            (Some(want), Some(c)) => glob(want, c),
            (Some(_), None) => false,
        };
        let namespace_ok = match (&e.namespace, &self.namespace) {
            (None, _) => true,
            (Some(want), Some(ns)) => glob(want, ns),
            (Some(_), None) => false,
        };
        glob(&e.kind, &self.kind) && glob(&e.name, &self.name) && container_ok && namespace_ok
    }
}

/// `all` or `runAsUser, readOnlyRootFilesystem`; an unknown name is an error at the value.
fn parse_skip(tree: &Tree, v: Ref) -> Result<Option<Vec<Control>>, EngineError> {
    let (line, col) = tree.position(v);
    let text = tree.as_str(v).ok_or_else(|| {
        EngineError::new(line, col, format!("`{SKIP_ANNOTATION}` must be a string"))
    })?;
    if text.trim() == "all" {
        return Ok(None);
    }
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Control::from_name(name).ok_or_else(|| {
                EngineError::new(
                    line,
                    col,
                    format!(
                        "`{SKIP_ANNOTATION}` names an unknown control `{name}` (known: all, {})",
                        Control::names()
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
