//! What the user asked for: the baseline values, the controls turned off, the exemptions from
//! the configuration, and the `kube-harden.io/skip` annotation on a workload.

use globset::Glob;

use yaml_splice::{EngineError, Ref, Tree};

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

/// The controls an exemption covers: `[all]`, or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlSet {
    All,
    List(Vec<Control>),
}

impl ControlSet {
    pub fn contains(&self, control: Control) -> bool {
        match self {
            ControlSet::All => true,
            ControlSet::List(list) => list.contains(&control),
        }
    }
}

/// An exemption: these controls are not applied to the matching workloads or containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exemption {
    /// The kind, as a glob (`*` for any kind); case-sensitive, like Kubernetes kinds.
    pub kind: String,
    /// The workload's `metadata.name`, as a glob (`billing-*`).
    pub name: String,
    /// Only workloads in this namespace; `None` for any namespace.
    pub namespace: Option<String>,
    /// Only this container; `None` for the pod and every container.
    pub container: Option<String>,
    pub controls: ControlSet,
    pub reason: String,
}

impl Exemption {
    /// Whether this exemption switches `control` off where it applies.
    pub fn covers(&self, control: Control) -> bool {
        self.controls.contains(control)
    }

    /// Whether it applies to a pod (`container: None`) or one of its containers. Without a
    /// container it covers the pod and every container; with one, that container only. With a
    /// namespace it applies only when the manifest states that namespace: a manifest without
    /// one may be deployed anywhere, so it is hardened rather than guessed to be exempt.
    pub fn matches(
        &self,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
        container: Option<&str>,
    ) -> bool {
        glob_matches(&self.kind, kind)
            && glob_matches(&self.name, name)
            && scope_matches(self.namespace.as_deref(), namespace)
            && scope_matches(self.container.as_deref(), container)
    }
}

/// A glob that does not compile matches nothing: the workload is hardened rather than
/// exempted by accident.
fn glob_matches(pattern: &str, text: &str) -> bool {
    Glob::new(pattern).is_ok_and(|g| g.compile_matcher().is_match(text))
}

fn scope_matches(wanted: Option<&str>, actual: Option<&str>) -> bool {
    match (wanted, actual) {
        (None, _) => true,
        (Some(wanted), Some(actual)) => wanted == actual,
        (Some(_), None) => false,
    }
}

/// Everything that shapes the plan. The writable /tmp is on by default (issue 5: a read-only
/// root filesystem without it breaks apps that write temporary files); `--no-writable-tmp` or
/// the config file turn it off. Pods with host access (host namespaces, hostPath volumes) are
/// left to a person unless `harden_host_access` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub baseline: Baseline,
    /// Controls turned off everywhere.
    pub disabled: Vec<Control>,
    /// Add an emptyDir at `/tmp` where `readOnlyRootFilesystem` is set.
    pub writable_tmp: bool,
    /// Harden pods that use `hostPID`, `hostNetwork`, `hostIPC` or a `hostPath` volume instead
    /// of leaving them alone (`hardenHostAccessPods`, `--harden-host-access-pods`).
    pub harden_host_access: bool,
    pub exemptions: Vec<Exemption>,
    /// The ids were given (`--uid`/`--gid`/`--fs-group`, the config's `baseline`): they win
    /// over an image's user.
    pub ids_given: bool,
    /// The images' facts, when the run reads them (`--images`).
    pub images: super::ImageLookup,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            baseline: Baseline::default(),
            disabled: vec![],
            writable_tmp: true,
            harden_host_access: false,
            exemptions: vec![],
            ids_given: false,
            images: super::ImageLookup::default(),
        }
    }
}

/// The annotation that opts a workload out of some controls (`all`, or a comma-separated list).
pub const SKIP_ANNOTATION: &str = "kube-harden.io/skip";

/// Who is exempt from what, for one workload.
pub(super) struct WorkloadExemptions<'r> {
    rules: &'r Rules,
    kind: String,
    name: String,
    namespace: Option<String>,
    /// From the annotation, when there is one.
    annotated: Option<ControlSet>,
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
        let mut add = |controls: &ControlSet, reason: &str| {
            for c in Control::ALL.into_iter().filter(|c| controls.contains(*c)) {
                if !out.iter().any(|(o, _)| *o == c) {
                    out.push((c, reason.to_string()));
                }
            }
        };
        for c in &self.rules.disabled {
            add(
                &ControlSet::List(vec![*c]),
                "turned off in the configuration",
            );
        }
        if let Some(controls) = &self.annotated {
            add(controls, &format!("annotation {SKIP_ANNOTATION}"));
        }
        let namespace = self.namespace.as_deref();
        for e in self
            .rules
            .exemptions
            .iter()
            .filter(|e| e.matches(&self.kind, &self.name, namespace, container))
        {
            add(&e.controls, &format!("exemption: {}", e.reason));
        }
        out
    }
}

/// `all` or `runAsUser, readOnlyRootFilesystem`; an unknown name is an error at the value.
fn parse_skip(tree: &Tree, v: Ref) -> Result<ControlSet, EngineError> {
    let (line, col) = tree.position(v);
    let text = tree.as_str(v).ok_or_else(|| {
        EngineError::new(line, col, format!("`{SKIP_ANNOTATION}` must be a string"))
    })?;
    if text.trim() == "all" {
        return Ok(ControlSet::All);
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
        .map(ControlSet::List)
}
