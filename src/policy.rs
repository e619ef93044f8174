//! The hardening contract: where pod specs live, what "hardened" means for a pod and for each
//! container, and which pods are left to a person. It reads manifests through the YAML view and
//! asks for changes by node; it never sees a byte offset.

use serde::Serialize;

use crate::yaml::{Change, EngineError, NewValue, Ref, Scalar, Tree};

/// The values the baseline writes (`--uid`, `--gid`, `--fs-group`).
#[derive(Clone, Copy, Debug)]
pub struct Baseline {
    pub uid: i64,
    pub gid: i64,
    pub fs_group: i64,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline {
            uid: 1000,
            gid: 1000,
            fs_group: 1000,
        }
    }
}

/// One control of the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Control {
    #[serde(rename = "runAsNonRoot")]
    RunAsNonRoot,
    #[serde(rename = "runAsUser")]
    RunAsUser,
    #[serde(rename = "runAsGroup")]
    RunAsGroup,
    #[serde(rename = "fsGroup")]
    FsGroup,
    #[serde(rename = "seccompProfile")]
    SeccompProfile,
    #[serde(rename = "allowPrivilegeEscalation")]
    AllowPrivilegeEscalation,
    #[serde(rename = "readOnlyRootFilesystem")]
    ReadOnlyRootFilesystem,
    #[serde(rename = "capabilities.drop")]
    CapabilitiesDrop,
}

impl Control {
    pub fn name(self) -> &'static str {
        match self {
            Control::RunAsNonRoot => "runAsNonRoot",
            Control::RunAsUser => "runAsUser",
            Control::RunAsGroup => "runAsGroup",
            Control::FsGroup => "fsGroup",
            Control::SeccompProfile => "seccompProfile",
            Control::AllowPrivilegeEscalation => "allowPrivilegeEscalation",
            Control::ReadOnlyRootFilesystem => "readOnlyRootFilesystem",
            Control::CapabilitiesDrop => "capabilities.drop",
        }
    }
}

/// A Kubernetes object that holds a pod spec.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    /// Index of the YAML document in the file (0-based).
    pub document: usize,
    pub line: usize,
}

/// A pod or container that falls short of one control.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Index into [`Plan::workloads`].
    pub workload: usize,
    /// None for the pod-level securityContext.
    pub container: Option<String>,
    pub control: Control,
    /// The value found (`absent` when the field is missing).
    pub current: String,
    pub line: usize,
    pub col: usize,
    /// False when the pod is left alone (see [`Plan::skipped`]).
    pub fixable: bool,
}

/// A pod the policy leaves unchanged, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedPod {
    pub workload: usize,
    pub reason: String,
}

/// Everything the policy decided for one file.
#[derive(Debug, Default)]
pub struct Plan {
    pub workloads: Vec<Workload>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<SkippedPod>,
    pub changes: Vec<Change>,
    /// Changes the policy needs but may not make (they would go through an alias).
    pub refusals: Vec<EngineError>,
}

/// True when a document is a Kubernetes object (has string `apiVersion` and `kind`).
pub fn is_kubernetes_object(tree: &Tree, root: Ref) -> bool {
    let field = |k| tree.get(root, k).and_then(|v| tree.as_str(v)).is_some();
    tree.is_map(root) && field("apiVersion") && field("kind")
}

/// Plans the hardening of every workload in every document of `tree`.
pub fn plan(tree: &Tree, baseline: Baseline) -> Plan {
    let mut plan = Plan::default();
    for (document, doc) in tree.docs.iter().enumerate() {
        if let Some(root) = doc.root {
            visit_object(tree, Ref::root(root), document, baseline, &mut plan);
        }
    }
    plan.findings.sort_by_key(|f| (f.workload, f.line, f.col));
    plan
}

/// Kinds whose pod spec is at `spec.template.spec`.
const TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
];

fn visit_object(tree: &Tree, obj: Ref, document: usize, baseline: Baseline, plan: &mut Plan) {
    if !is_kubernetes_object(tree, obj) {
        return;
    }
    let kind = tree
        .get(obj, "kind")
        .and_then(|k| tree.as_str(k))
        .unwrap_or_default()
        .to_string();
    if kind == "List" || kind.ends_with("List") {
        for item in tree
            .get(obj, "items")
            .map(|i| tree.items(i))
            .unwrap_or_default()
        {
            visit_object(tree, item, document, baseline, plan);
        }
        return;
    }
    let Some(pod) = pod_spec(tree, obj, &kind) else {
        return;
    };
    let name = tree
        .get(obj, "metadata")
        .and_then(|m| tree.get(m, "name"))
        .and_then(|n| tree.as_str(n));
    plan.workloads.push(Workload {
        kind,
        name: name.unwrap_or("<unnamed>").to_string(),
        document,
        line: tree.position(obj).0,
    });
    plan_pod(tree, pod, plan.workloads.len() - 1, baseline, plan);
}

/// The pod spec of an object, by kind (see the contract in README.md).
fn pod_spec(tree: &Tree, obj: Ref, kind: &str) -> Option<Ref> {
    let path: &[&str] = match kind {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        k if TEMPLATE_KINDS.contains(&k) => &["spec", "template", "spec"],
        _ => {
            let spec = walk(tree, obj, &["spec", "template", "spec"])?;
            tree.get(spec, "containers")?;
            return Some(spec);
        }
    };
    walk(tree, obj, path).filter(|&s| tree.is_map(s))
}

fn walk(tree: &Tree, from: Ref, path: &[&str]) -> Option<Ref> {
    path.iter().try_fold(from, |node, key| tree.get(node, key))
}

/// What one field of a securityContext must be.
enum Want {
    /// A scalar field; `short` says whether the current value falls short.
    Scalar {
        key: &'static str,
        control: Control,
        value: NewValue,
        short: fn(&Scalar, &NewValue) -> bool,
        add_missing: bool,
    },
    /// A nested mapping with its own wants.
    Map {
        key: &'static str,
        wants: Vec<Want>,
        add_missing: bool,
    },
    /// A list that must contain an item.
    Contains {
        key: &'static str,
        control: Control,
        item: &'static str,
    },
}

fn bool_short(cur: &Scalar, want: &NewValue) -> bool {
    !matches!((cur, want), (Scalar::Bool(c), NewValue::Bool(w)) if c == w)
}

/// An id falls short when it is 0 or null; anything but an integer is a type error.
fn id_short(cur: &Scalar, _: &NewValue) -> bool {
    !matches!(cur, Scalar::Int(n) if *n != 0)
}

fn seccomp_short(cur: &Scalar, _: &NewValue) -> bool {
    !matches!(
        cur,
        Scalar::Str("RuntimeDefault") | Scalar::Str("Localhost")
    )
}

fn seccomp_want(add_missing: bool) -> Want {
    let ty = Want::Scalar {
        key: "type",
        control: Control::SeccompProfile,
        value: NewValue::str("RuntimeDefault"),
        short: seccomp_short,
        add_missing: true,
    };
    Want::Map {
        key: "seccompProfile",
        wants: vec![ty],
        add_missing,
    }
}

fn pod_wants(b: Baseline) -> Vec<Want> {
    vec![
        Want::Scalar {
            key: "runAsNonRoot",
            control: Control::RunAsNonRoot,
            value: NewValue::Bool(true),
            short: bool_short,
            add_missing: true,
        },
        Want::Scalar {
            key: "runAsUser",
            control: Control::RunAsUser,
            value: NewValue::Int(b.uid),
            short: id_short,
            add_missing: true,
        },
        Want::Scalar {
            key: "runAsGroup",
            control: Control::RunAsGroup,
            value: NewValue::Int(b.gid),
            short: id_short,
            add_missing: true,
        },
        Want::Scalar {
            key: "fsGroup",
            control: Control::FsGroup,
            value: NewValue::Int(b.fs_group),
            short: id_short,
            add_missing: true,
        },
        seccomp_want(true),
    ]
}

/// Container wants. The last four only correct values that would override the pod's.
fn container_wants(b: Baseline) -> Vec<Want> {
    vec![
        Want::Scalar {
            key: "allowPrivilegeEscalation",
            control: Control::AllowPrivilegeEscalation,
            value: NewValue::Bool(false),
            short: bool_short,
            add_missing: true,
        },
        Want::Scalar {
            key: "readOnlyRootFilesystem",
            control: Control::ReadOnlyRootFilesystem,
            value: NewValue::Bool(true),
            short: bool_short,
            add_missing: true,
        },
        Want::Map {
            key: "capabilities",
            wants: vec![Want::Contains {
                key: "drop",
                control: Control::CapabilitiesDrop,
                item: "ALL",
            }],
            add_missing: true,
        },
        Want::Scalar {
            key: "runAsNonRoot",
            control: Control::RunAsNonRoot,
            value: NewValue::Bool(true),
            short: bool_short,
            add_missing: false,
        },
        Want::Scalar {
            key: "runAsUser",
            control: Control::RunAsUser,
            value: NewValue::Int(b.uid),
            short: id_short,
            add_missing: false,
        },
        Want::Scalar {
            key: "runAsGroup",
            control: Control::RunAsGroup,
            value: NewValue::Int(b.gid),
            short: id_short,
            add_missing: false,
        },
        seccomp_want(false),
    ]
}

/// Where the findings and changes of one pod or container go.
struct Sink<'p> {
    workload: usize,
    container: Option<String>,
    findings: Vec<Finding>,
    changes: Vec<(Change, Ref)>,
    errors: &'p mut Vec<EngineError>,
}

impl Sink<'_> {
    fn finding(&mut self, tree: &Tree, control: Control, current: String, at: Ref) {
        let (line, col) = tree.position(at);
        let container = self.container.clone();
        self.findings.push(Finding {
            workload: self.workload,
            container,
            control,
            current,
            line,
            col,
            fixable: true,
        });
    }

    fn change(&mut self, change: Change, target: Ref) {
        self.changes.push((change, target));
    }
}

fn plan_pod(tree: &Tree, pod: Ref, workload: usize, baseline: Baseline, plan: &mut Plan) {
    if let Some(reason) = windows_reason(tree, pod) {
        plan.skipped.push(SkippedPod { workload, reason });
        return;
    }
    let containers = containers(tree, pod);
    let leave_alone = containers
        .iter()
        .find_map(|(c, name)| privileged_reason(tree, *c, name));
    let mut errors = Vec::new();
    let mut sinks = Vec::new();
    let mut pod_sink = Sink {
        workload,
        container: None,
        findings: vec![],
        changes: vec![],
        errors: &mut errors,
    };
    ensure_map(
        tree,
        pod,
        "securityContext",
        &pod_wants(baseline),
        true,
        &mut pod_sink,
    );
    sinks.push((pod_sink.findings, pod_sink.changes));
    for (c, name) in &containers {
        let mut sink = Sink {
            workload,
            container: Some(name.clone()),
            findings: vec![],
            changes: vec![],
            errors: &mut errors,
        };
        ensure_map(
            tree,
            *c,
            "securityContext",
            &container_wants(baseline),
            true,
            &mut sink,
        );
        sinks.push((sink.findings, sink.changes));
    }
    for (mut findings, changes) in sinks {
        if leave_alone.is_some() {
            findings.iter_mut().for_each(|f| f.fixable = false);
        } else {
            for (change, target) in changes {
                if let Some(alias) = target.alias {
                    let (line, col) = tree.position(Ref::root(alias));
                    plan.refusals.push(EngineError::new(line, col, "the edit would go through an alias or merge key (`*name` / `<<`); change the anchored value by hand"));
                } else {
                    plan.changes.push(change);
                }
            }
        }
        plan.findings.extend(findings);
    }
    plan.refusals.extend(errors);
    if let Some(reason) = leave_alone {
        plan.skipped.push(SkippedPod { workload, reason });
    }
}

fn windows_reason(tree: &Tree, pod: Ref) -> Option<String> {
    let os = walk(tree, pod, &["os", "name"]).and_then(|n| tree.as_str(n));
    let selector =
        walk(tree, pod, &["nodeSelector", "kubernetes.io/os"]).and_then(|n| tree.as_str(n));
    (os == Some("windows") || selector == Some("windows"))
        .then(|| "Windows pod: the API rejects these securityContext fields on Windows".to_string())
}

/// Every container of the pod, with its name.
fn containers(tree: &Tree, pod: Ref) -> Vec<(Ref, String)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| tree.get(pod, k))
        .flat_map(|list| tree.items(list))
        .filter(|c| tree.is_map(*c))
        .map(|c| {
            let name = tree
                .get(c, "name")
                .and_then(|n| tree.as_str(n))
                .unwrap_or("<unnamed>");
            (c, name.to_string())
        })
        .collect()
}

/// Why a container makes its pod one to leave to a person, if it does.
fn privileged_reason(tree: &Tree, container: Ref, name: &str) -> Option<String> {
    let sc = tree.get(container, "securityContext")?;
    if tree.get(sc, "privileged").and_then(|p| tree.scalar(p)) == Some(Scalar::Bool(true)) {
        return Some(format!("container `{name}` is privileged: allowPrivilegeEscalation: false is rejected next to it, and the pod needs a person's decision"));
    }
    let added = walk(tree, sc, &["capabilities", "add"])
        .map(|a| tree.items(a))
        .unwrap_or_default();
    let risky = added
        .iter()
        .filter_map(|a| tree.as_str(*a))
        .find(|c| matches!(*c, "SYS_ADMIN" | "CAP_SYS_ADMIN" | "ALL"))?;
    Some(format!("container `{name}` adds capability {risky}: allowPrivilegeEscalation: false is rejected next to it, and the pod needs a person's decision"))
}

/// Makes `parent.key` a mapping that meets `wants`.
fn ensure_map(
    tree: &Tree,
    parent: Ref,
    key: &'static str,
    wants: &[Want],
    add_missing: bool,
    sink: &mut Sink,
) {
    match tree.get(parent, key) {
        None => {
            let value = new_value(wants);
            if add_missing && !value.is_empty() {
                record_absent(tree, wants, parent, sink);
                sink.change(
                    Change::Insert {
                        map: parent.id,
                        entries: vec![(key.to_string(), NewValue::Map(value))],
                    },
                    parent,
                );
            }
        }
        Some(v) if tree.is_empty(v) && !tree.is_seq(v) => {
            let value = new_value(wants);
            if !value.is_empty() {
                record_absent(tree, wants, v, sink);
                sink.change(
                    Change::Fill {
                        node: tree.deref(v).id,
                        value: NewValue::Map(value),
                    },
                    v,
                );
            }
        }
        Some(v) if tree.is_map(v) => wants.iter().for_each(|w| apply_want(tree, v, w, sink)),
        Some(v) => {
            let (line, col) = tree.position(v);
            sink.errors.push(EngineError::new(
                line,
                col,
                format!("`{key}` is not a mapping"),
            ));
        }
    }
}

fn apply_want(tree: &Tree, map: Ref, want: &Want, sink: &mut Sink) {
    match want {
        Want::Map {
            key,
            wants,
            add_missing,
        } => ensure_map(tree, map, key, wants, *add_missing, sink),
        Want::Scalar {
            key,
            control,
            value,
            short,
            add_missing,
        } => match tree.get(map, key) {
            None if *add_missing => {
                sink.finding(tree, *control, "absent".into(), map);
                sink.change(
                    Change::Insert {
                        map: map.id,
                        entries: vec![(key.to_string(), value.clone())],
                    },
                    map,
                );
            }
            None => {}
            Some(v) => match tree.scalar(v) {
                Some(cur) if short(&cur, value) => {
                    sink.finding(tree, *control, describe(tree, v), v);
                    if type_matches(&cur, value) || cur == Scalar::Null {
                        sink.change(
                            Change::Replace {
                                node: tree.deref(v).id,
                                value: value.clone(),
                            },
                            v,
                        );
                    } else {
                        let (line, col) = tree.position(v);
                        sink.errors.push(EngineError::new(
                            line,
                            col,
                            format!(
                                "`{key}` is {}; expected {}",
                                describe(tree, v),
                                type_name(value)
                            ),
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    let (line, col) = tree.position(v);
                    sink.errors.push(EngineError::new(
                        line,
                        col,
                        format!("`{key}` is not a scalar"),
                    ));
                }
            },
        },
        Want::Contains { key, control, item } => match tree.get(map, key) {
            None => {
                sink.finding(tree, *control, "absent".into(), map);
                sink.change(
                    Change::Insert {
                        map: map.id,
                        entries: vec![(key.to_string(), NewValue::Seq(vec![NewValue::str(item)]))],
                    },
                    map,
                );
            }
            Some(v) if tree.is_empty(v) && !tree.is_seq(v) => {
                sink.finding(tree, *control, describe(tree, v), v);
                sink.change(
                    Change::Fill {
                        node: tree.deref(v).id,
                        value: NewValue::Seq(vec![NewValue::str(item)]),
                    },
                    v,
                );
            }
            Some(v) if tree.is_seq(v) => {
                if !tree.items(v).iter().any(|i| tree.as_str(*i) == Some(item)) {
                    sink.finding(tree, *control, describe(tree, v), v);
                    sink.change(
                        Change::Append {
                            seq: tree.deref(v).id,
                            items: vec![NewValue::str(item)],
                        },
                        v,
                    );
                }
            }
            Some(v) => {
                let (line, col) = tree.position(v);
                sink.errors.push(EngineError::new(
                    line,
                    col,
                    format!("`{key}` is not a list"),
                ));
            }
        },
    }
}

/// The entries to write when a whole mapping is missing: every want that adds when absent.
fn new_value(wants: &[Want]) -> Vec<(String, NewValue)> {
    wants
        .iter()
        .filter_map(|w| match w {
            Want::Scalar {
                key,
                value,
                add_missing: true,
                ..
            } => Some((key.to_string(), value.clone())),
            Want::Map {
                key,
                wants,
                add_missing: true,
            } => {
                let inner = new_value(wants);
                (!inner.is_empty()).then(|| (key.to_string(), NewValue::Map(inner)))
            }
            Want::Contains { key, item, .. } => {
                Some((key.to_string(), NewValue::Seq(vec![NewValue::str(item)])))
            }
            _ => None,
        })
        .collect()
}

/// Findings for every control that a new mapping at `at` will add.
fn record_absent(tree: &Tree, wants: &[Want], at: Ref, sink: &mut Sink) {
    for w in wants {
        match w {
            Want::Scalar {
                control,
                add_missing: true,
                ..
            }
            | Want::Contains { control, .. } => sink.finding(tree, *control, "absent".into(), at),
            Want::Map {
                wants,
                add_missing: true,
                ..
            } => record_absent(tree, wants, at, sink),
            _ => {}
        }
    }
}

fn type_matches(cur: &Scalar, want: &NewValue) -> bool {
    matches!(
        (cur, want),
        (Scalar::Bool(_), NewValue::Bool(_))
            | (Scalar::Int(_), NewValue::Int(_))
            | (Scalar::Str(_), NewValue::Str(_))
    )
}

fn type_name(v: &NewValue) -> &'static str {
    match v {
        NewValue::Bool(_) => "a boolean",
        NewValue::Int(_) => "an integer",
        _ => "a string",
    }
}

/// A short text of the current value for reports: `false`, `0`, `[NET_RAW]`, `{}`.
fn describe(tree: &Tree, v: Ref) -> String {
    if tree.is_seq(v) {
        let items: Vec<String> = tree
            .items(v)
            .iter()
            .map(|i| tree.as_str(*i).unwrap_or("?").to_string())
            .collect();
        return format!("[{}]", items.join(", "));
    }
    match tree.scalar(v) {
        Some(Scalar::Null) => "null".into(),
        Some(Scalar::Bool(b)) => b.to_string(),
        Some(Scalar::Int(i)) => i.to_string(),
        Some(Scalar::Str(s)) => s.to_string(),
        None if tree.is_empty(v) => "{}".into(),
        None => tree
            .source_text(v)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}
