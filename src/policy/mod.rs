//! The hardening policy: where pod specs live, what "hardened" means for a pod and for each
//! container, which pods are left to a person, and what a reviewer should know. It reads
//! manifests through the YAML view and asks for changes by node; it never sees a byte offset.
//!
//! - [`contract`]: the securityContext fields, one mapping at a time (and the added
//!   capabilities, which are only reported);
//! - [`anchors`]: which changes are made: none through an alias, and a securityContext that is
//!   an alias planned against what its anchored mapping becomes;
//! - [`guardrails`]: a writable `/tmp`, and the risks worth a reviewer's attention;
//! - [`rules`]: the baseline values, switches and exemptions (configuration, annotation);
//! - [`patch`]: strategic-merge patches, whose base supplies the baseline;
//! - [`json_patch`]: JSON 6902 patches, whose paths say the level they change.

mod anchors;
mod contract;
mod guardrails;
pub mod images;
mod json_patch;
mod patch;
mod patch_images;
mod rules;
mod with_images;

use serde::Serialize;

use yaml_splice::{Change, EngineError, Ref, Scalar, Tree};

use anchors::{context_alias, LeftAlone, Planned};
use contract::{container_wants, container_wants_with_ids, ensure_map, pod_wants, without, Sink};
pub(crate) use guardrails::{
    append_item, is_low_port, is_tmp_path, low_port_message, tmp_volume_name, writable_tmp_message,
    HostAccessKind,
};
pub use images::{ImageFacts, ImageLookup, ImageUser};
pub use json_patch::{plan_json_patch, JsonPatchTarget};
pub use patch::{plan_patch, plan_patch_with_images, BaseContainers};
pub use patch_images::{ShippedContainer, ShippedImages, ShippedPod};
use rules::WorkloadExemptions;
pub use rules::{Baseline, ControlSet, Exemption, Rules, Seccomp, SKIP_ANNOTATION};

/// One control of the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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
    /// Reported only: a container's `capabilities.add` holds nothing but NET_BIND_SERVICE (the
    /// Pod Security `restricted` level refuses any other); the list is kept as written.
    #[serde(rename = "capabilities.add")]
    CapabilitiesAdd,
}

impl Control {
    /// Every control, in the contract's order.
    pub const ALL: [Control; 9] = [
        Control::RunAsNonRoot,
        Control::RunAsUser,
        Control::RunAsGroup,
        Control::FsGroup,
        Control::SeccompProfile,
        Control::AllowPrivilegeEscalation,
        Control::ReadOnlyRootFilesystem,
        Control::CapabilitiesDrop,
        Control::CapabilitiesAdd,
    ];

    /// The control a name stands for: its field name, or `capabilitiesDrop`/`capabilities.drop`
    /// (`capabilitiesAdd`/`capabilities.add`).
    pub fn from_name(name: &str) -> Option<Control> {
        let name = match name {
            "capabilitiesDrop" => "capabilities.drop",
            "capabilitiesAdd" => "capabilities.add",
            name => name,
        };
        Control::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The names, for messages.
    pub fn names() -> String {
        Control::ALL.map(Control::name).join(", ")
    }

    /// Why the control matters, in one sentence (for `explain` and PR text).
    pub fn why(self) -> &'static str {
        match self {
            Control::RunAsNonRoot => "the kubelet refuses to start the container if it would run as root (uid 0)",
            Control::RunAsUser => "a fixed non-zero uid, so runAsNonRoot holds even for images whose USER is root",
            Control::RunAsGroup => "a fixed non-zero primary group instead of the image's (often root) group",
            Control::FsGroup => "mounted volumes become writable for the pod's group",
            Control::SeccompProfile => "the container runtime's default syscall filter blocks rarely needed, often exploited syscalls",
            Control::AllowPrivilegeEscalation => "no process can gain more privileges than its parent (setuid binaries, no_new_privs)",
            Control::ReadOnlyRootFilesystem => "an intruder cannot change the container's binaries or drop tools into it",
            Control::CapabilitiesDrop => "no Linux capabilities: root-like powers such as NET_RAW or CHOWN are gone",
            Control::CapabilitiesAdd => "Pod Security admission at the `restricted` level refuses a pod whose containers add any capability but NET_BIND_SERVICE",
        }
    }

    /// Whether `fix` leaves the field as written and only reports it (`capabilities.add`:
    /// removing a capability the app uses would break it, so a person decides). Its findings
    /// are never fixable.
    pub fn is_report_only(self) -> bool {
        self == Control::CapabilitiesAdd
    }

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
            Control::CapabilitiesAdd => "capabilities.add",
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
    /// The application it belongs to: label `app.kubernetes.io/name`, else `app`, on the object
    /// or its pod template.
    pub app: Option<String>,
    /// The container images (`image:` of every container).
    pub images: Vec<String>,
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
    /// The value the contract sets (flow style, e.g. `true`, `[ALL]`).
    pub wanted: String,
    pub line: usize,
    pub col: usize,
    /// False when the pod is left alone (see [`Plan::skipped`]), and for a control that is only
    /// reported ([`Control::is_report_only`]).
    pub fixable: bool,
}

/// A pod the policy leaves unchanged, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedPod {
    pub workload: usize,
    pub reason: String,
}

/// The ids a pod's images gave it: the first image that runs as a non-root user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenIds {
    pub workload: usize,
    pub uid: i64,
    pub gid: i64,
    /// The image, as its `image:` field names it, and the summary of its facts.
    pub image: String,
    pub summary: String,
}

/// Everything the policy decided for one file.
#[derive(Debug, Default)]
pub struct Plan {
    pub workloads: Vec<Workload>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<SkippedPod>,
    pub notes: Vec<Note>,
    pub changes: Vec<Change>,
    /// Changes the policy needs but may not make (they would go through an alias).
    pub refusals: Vec<EngineError>,
    /// The ids each pod's images gave it (with `--images`): what a source that writes the
    /// pod's securityContext elsewhere (chart values) needs to give it the same.
    pub image_ids: Vec<ChosenIds>,
    /// The notes the images gave beside their ids (also in [`Plan::notes`]): a root or
    /// unresolved user, low ports, volumes, an image that cannot be read.
    pub image_notes: Vec<Note>,
    /// The changes of the pods planned so far, admitted by [`accept_changes`] once every pod
    /// of the file is planned (an anchored mapping may be shared by several).
    pending: Vec<Planned>,
    /// The pods left alone so far (an edit that an alias in one of them would see is refused).
    left_alone: Vec<LeftAlone>,
}

impl Plan {
    /// Takes a pod's or container's findings, notes and errors; returns its changes, which
    /// [`accept_changes`] admits once the whole pod (or file) is planned.
    fn absorb(&mut self, sink: contract::Sink) -> Vec<Planned> {
        self.findings.extend(sink.findings);
        self.notes.extend(sink.notes);
        self.refusals.extend(sink.errors);
        let (workload, container, shared) = (sink.workload, sink.container, sink.shared);
        sink.changes
            .into_iter()
            .map(|(change, target)| Planned {
                change,
                target,
                workload,
                container: container.clone(),
                shared,
            })
            .collect()
    }

    /// The same for what a guardrail adds to a pod.
    fn absorb_additions(
        &mut self,
        additions: guardrails::Additions,
        workload: usize,
    ) -> Vec<Planned> {
        self.notes.extend(additions.notes);
        self.refusals.extend(additions.errors);
        additions
            .changes
            .into_iter()
            .map(|(change, target)| Planned {
                change,
                target,
                workload,
                container: None,
                shared: None,
            })
            .collect()
    }
}

/// Something a reviewer should read about a workload or container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    pub workload: usize,
    pub container: Option<String>,
    pub kind: NoteKind,
    pub message: String,
    pub line: usize,
}

impl Note {
    /// The `workload` of a note about the whole file (a kustomization's remote resource, a
    /// render check's result): it names no workload.
    pub const FILE: usize = usize::MAX;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteKind {
    /// The change may break the app: read before merging.
    Risk,
    /// An explicit value someone wrote is overridden.
    Override,
    /// Something beyond the securityContext is added (a writable /tmp).
    Added,
    /// Controls not applied, and why.
    Exempted,
    /// What the container's image says (its user, volumes, ports), and what it changed.
    Image,
}

impl NoteKind {
    /// The word shown before a note (the same as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            NoteKind::Risk => "risk",
            NoteKind::Override => "override",
            NoteKind::Added => "added",
            NoteKind::Exempted => "exempted",
            NoteKind::Image => "image",
        }
    }
}

/// Whether a document's text may hold a pod spec the contract applies to: only if it has the
/// word `containers` (the API requires that list in every pod spec). Lets the engine leave the
/// large documents of a stream (CRDs) unparsed.
pub fn may_hold_pod_spec(document: &str) -> bool {
    document.contains("containers")
}

/// True when a document is a Kubernetes object (has string `apiVersion` and `kind`).
pub fn is_kubernetes_object(tree: &Tree, root: Ref) -> bool {
    let field = |k| tree.get(root, k).and_then(|v| tree.as_str(v)).is_some();
    tree.is_map(root) && field("apiVersion") && field("kind")
}

/// Plans the hardening of every workload in every document of `tree`.
pub fn plan(tree: &Tree, rules: &Rules) -> Plan {
    let mut plan = Plan::default();
    for (document, doc) in tree.docs.iter().enumerate() {
        if let Some(root) = doc.root {
            visit_object(tree, Ref::root(root), document, rules, &mut plan);
        }
    }
    let pending = std::mem::take(&mut plan.pending);
    let left_alone = std::mem::take(&mut plan.left_alone);
    anchors::accept_changes(tree, pending, &left_alone, &mut plan);
    plan.findings.sort_by_key(|f| (f.workload, f.line, f.col));
    plan.notes.sort_by_key(|n| (n.workload, n.line));
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

fn visit_object(tree: &Tree, obj: Ref, document: usize, rules: &Rules, plan: &mut Plan) {
    if !is_kubernetes_object(tree, obj) {
        return;
    }
    let kind = tree
        .get(obj, "kind")
        .and_then(|k| tree.as_str(k))
        .unwrap_or_default()
        .to_string();
    if kind.ends_with("List") {
        for item in tree
            .get(obj, "items")
            .map(|i| tree.items(i))
            .unwrap_or_default()
        {
            visit_object(tree, item, document, rules, plan);
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
    let name = name.unwrap_or("<unnamed>").to_string();
    let template = pod_template(tree, obj, pod);
    let exemptions = match WorkloadExemptions::new(rules, tree, obj, template, &kind, &name) {
        Ok(e) => e,
        Err(e) => return plan.refusals.push(e),
    };
    let app = app_label(tree, obj, template);
    let images = containers(tree, pod)
        .iter()
        .filter_map(|(c, _)| {
            tree.get(*c, "image")
                .and_then(|i| tree.as_str(i))
                .map(str::to_string)
        })
        .collect();
    plan.workloads.push(Workload {
        kind,
        name,
        document,
        line: tree.position(obj).0,
        app,
        images,
    });
    plan_pod(
        tree,
        pod,
        plan.workloads.len() - 1,
        rules,
        &exemptions,
        plan,
    );
}

/// The pod template that holds the pod spec (None for a Pod, whose spec is the object's).
fn pod_template(tree: &Tree, obj: Ref, pod: Ref) -> Option<Ref> {
    tree.node(pod.id)
        .parent
        .filter(|&p| p != obj.id)
        .map(|p| Ref {
            id: p,
            alias: pod.alias,
        })
}

/// `app.kubernetes.io/name`, else `app`, from the object's labels, else its pod template's.
fn app_label(tree: &Tree, obj: Ref, template: Option<Ref>) -> Option<String> {
    let labels = |r: Ref| walk(tree, r, &["metadata", "labels"]);
    let from = |r: Ref| {
        let l = labels(r)?;
        ["app.kubernetes.io/name", "app"]
            .iter()
            .find_map(|k| tree.get(l, k).and_then(|v| tree.as_str(v)))
    };
    from(obj)
        .or_else(|| template.and_then(from))
        .map(str::to_string)
}

/// Where an object of `kind` holds its pod spec (see the contract in README.md); any kind not
/// named holds it at `spec.template.spec`, when that has `containers`.
pub fn pod_spec_path(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        _ => &["spec", "template", "spec"],
    }
}

/// The pod spec of an object, by kind (see the contract in README.md).
fn pod_spec(tree: &Tree, obj: Ref, kind: &str) -> Option<Ref> {
    let spec = walk(tree, obj, pod_spec_path(kind))?;
    let known = matches!(kind, "Pod" | "CronJob" | "PodTemplate") || TEMPLATE_KINDS.contains(&kind);
    if known {
        tree.is_map(spec).then_some(spec)
    } else {
        tree.get(spec, "containers").map(|_| spec)
    }
}

fn walk(tree: &Tree, from: Ref, path: &[&str]) -> Option<Ref> {
    path.iter().try_fold(from, |node, key| tree.get(node, key))
}

/// Plans one pod: its securityContext, each container's, the writable /tmp, and the notes.
fn plan_pod(
    tree: &Tree,
    pod: Ref,
    workload: usize,
    rules: &Rules,
    exemptions: &WorkloadExemptions,
    plan: &mut Plan,
) {
    if let Some(reason) = windows_reason(tree, pod) {
        plan.skipped.push(SkippedPod { workload, reason });
        return;
    }
    let containers = containers(tree, pod);
    let privileged = containers
        .iter()
        .find_map(|(c, name)| privileged_reason(tree, *c, name));
    // A pod with host access is a node agent's: left to a person unless the user opted in.
    let host_access = host_access_reason(tree, pod).filter(|_| !rules.harden_host_access);
    let host_left_alone = privileged.is_none() && host_access.is_some();
    let leave_alone = privileged.or(host_access);
    let seccomp = &rules.baseline.seccomp;
    let images = match leave_alone {
        None => with_images::plan_images(tree, pod, &containers, rules, workload),
        Some(_) => with_images::plan_images(tree, pod, &containers, &Rules::default(), workload),
    };
    let baseline = &images.baseline;
    let mut sinks = Vec::new();
    let mut pod_sink = Sink::new(workload, None, seccomp);
    pod_sink.shared = context_alias(tree, pod, "securityContext");
    let exempted = exemptions.exempted(None);
    exemption_notes(&exempted, POD_CONTROLS, &mut pod_sink, tree.position(pod).0);
    ensure_map(
        tree,
        pod,
        "securityContext",
        &without(pod_wants(baseline), &controls(&exempted)),
        true,
        &mut pod_sink,
    );
    sinks.push(pod_sink);
    let mut needing_tmp = Vec::new();
    for (c, name) in &containers {
        let mut sink = Sink::new(workload, Some(name.clone()), seccomp);
        sink.shared = context_alias(tree, *c, "securityContext");
        let exempted = exemptions.exempted(Some(name));
        exemption_notes(
            &exempted,
            CONTAINER_CONTROLS,
            &mut sink,
            tree.position(*c).0,
        );
        let own_ids = images.container_ids.iter().find(|(n, _, _)| n == name);
        let wants = match own_ids {
            Some((_, uid, gid)) => container_wants_with_ids(&Baseline {
                uid: *uid,
                gid: *gid,
                ..baseline.clone()
            }),
            None => container_wants(baseline),
        };
        ensure_map(
            tree,
            *c,
            "securityContext",
            &without(wants, &controls(&exempted)),
            true,
            &mut sink,
        );
        if sink
            .findings
            .iter()
            .any(|f| f.control == Control::ReadOnlyRootFilesystem)
        {
            needing_tmp.push((*c, name.clone()));
        }
        sinks.push(sink);
    }
    let mut changes: Vec<Planned> = Vec::new();
    for sink in sinks {
        changes.extend(plan.absorb(sink));
    }
    if leave_alone.is_none() {
        let as_notes = rules.images.volumes_as_notes;
        let (volumes, volume_notes) =
            with_images::image_volumes(tree, &images, &needing_tmp, as_notes, workload);
        plan.image_notes.extend(volume_notes.iter().cloned());
        plan.notes.extend(volume_notes);
        let tmp_for: &[(Ref, String)] = if rules.writable_tmp {
            &needing_tmp
        } else {
            &[]
        };
        let dirs = guardrails::writable_dirs(tree, pod, tmp_for, &volumes, workload);
        changes.extend(plan.absorb_additions(dirs, workload));
    }
    plan.image_ids.extend(images.chosen);
    plan.image_notes.extend(images.notes.iter().cloned());
    plan.notes.extend(images.id_notes);
    plan.notes.extend(images.notes);
    plan.refusals.extend(images.errors);
    // When host access is why the pod is left alone, the reason already names each field.
    plan.notes.extend(guardrails::risks(
        tree,
        pod,
        &containers,
        workload,
        !host_left_alone,
    ));
    match leave_alone {
        Some(reason) => {
            plan.findings
                .iter_mut()
                .filter(|f| f.workload == workload)
                .for_each(|f| f.fixable = false);
            plan.notes
                .retain(|n| n.workload != workload || n.kind == NoteKind::Risk);
            plan.skipped.push(SkippedPod { workload, reason });
            plan.left_alone.push(LeftAlone {
                pod: pod.id,
                workload,
            });
        }
        None => plan.pending.extend(changes),
    }
}

/// Keeps the changes that do not go through an alias, and those through the alias that a
/// securityContext is when its anchored mapping gets the same edits; the others become
/// refusals (see [`anchors`]).
fn accept_changes(tree: &Tree, changes: Vec<Planned>, plan: &mut Plan) {
    anchors::accept_changes(tree, changes, &[], plan);
}

fn controls(exempted: &[(Control, String)]) -> Vec<Control> {
    exempted.iter().map(|(c, _)| *c).collect()
}

/// Controls that exist at pod level, and at container level.
const POD_CONTROLS: &[Control] = &[
    Control::RunAsNonRoot,
    Control::RunAsUser,
    Control::RunAsGroup,
    Control::FsGroup,
    Control::SeccompProfile,
];
/// (`capabilities.add` is only reported, never applied: an exemption silences its report, and
/// there is nothing "not applied" to say.)
const CONTAINER_CONTROLS: &[Control] = &[
    Control::RunAsNonRoot,
    Control::RunAsUser,
    Control::RunAsGroup,
    Control::SeccompProfile,
    Control::AllowPrivilegeEscalation,
    Control::ReadOnlyRootFilesystem,
    Control::CapabilitiesDrop,
];

/// One note per reason: "not applied: runAsUser, fsGroup (annotation kube-harden.io/skip)",
/// naming only the controls that exist at this level.
fn exemption_notes(
    exempted: &[(Control, String)],
    applicable: &[Control],
    sink: &mut Sink,
    line: usize,
) {
    let relevant: Vec<&(Control, String)> = exempted
        .iter()
        .filter(|(c, _)| applicable.contains(c))
        .collect();
    let mut reasons: Vec<&String> = relevant.iter().map(|(_, r)| r).collect();
    reasons.dedup();
    for reason in reasons {
        let names: Vec<&str> = relevant
            .iter()
            .filter(|(_, r)| r == reason)
            .map(|(c, _)| c.name())
            .collect();
        sink.notes.push(Note {
            workload: sink.workload,
            container: sink.container.clone(),
            kind: NoteKind::Exempted,
            message: format!("not applied: {} ({reason})", names.join(", ")),
            line,
        });
    }
}

fn windows_reason(tree: &Tree, pod: Ref) -> Option<String> {
    let os = walk(tree, pod, &["os", "name"]).and_then(|n| tree.as_str(n));
    let selector =
        walk(tree, pod, &["nodeSelector", "kubernetes.io/os"]).and_then(|n| tree.as_str(n));
    (os == Some("windows") || selector == Some("windows"))
        .then(|| "Windows pod: the API rejects these securityContext fields on Windows".to_string())
}

/// Why a pod's access to its node makes it one to leave to a person, if it does: `hostPID`,
/// `hostNetwork` or `hostIPC` set to `true` (a `false` is the default and does not count), or a
/// `hostPath` volume.
fn host_access_reason(tree: &Tree, pod: Ref) -> Option<String> {
    host_access_reason_of(guardrails::host_accesses(tree, pod).iter().map(|a| &a.kind))
}

/// The reason a pod with these accesses to its node is left to a person, each field named,
/// e.g. "uses the node's network (hostNetwork: true) and mounts hostPath /var/log: ..."; None
/// without any.
pub(crate) fn host_access_reason_of<'a>(
    accesses: impl IntoIterator<Item = &'a HostAccessKind>,
) -> Option<String> {
    let mut uses: Vec<String> = accesses.into_iter().map(HostAccessKind::phrase).collect();
    let last = uses.pop()?;
    let all = if uses.is_empty() {
        last
    } else {
        format!("{} and {last}", uses.join(", "))
    };
    Some(format!("{all}: a node agent's access to the host, so a person must decide how to harden it (hardenHostAccessPods: true or --harden-host-access-pods hardens it anyway)"))
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

/// The key node of the mapping entry whose value is `value`.
pub(super) fn key_of(tree: &Tree, value: yaml_splice::NodeId) -> Option<yaml_splice::NodeId> {
    let parent = tree.node(value).parent?;
    match &tree.node(parent).kind {
        yaml_splice::tree::NodeKind::Map(entries) => {
            entries.iter().find(|&&(_, v)| v == value).map(|&(k, _)| k)
        }
        _ => None,
    }
}

/// Added capabilities that make a pod one to leave to a person (the API rejects
/// `allowPrivilegeEscalation: false` next to them).
pub(super) const PRIVILEGED_CAPABILITIES: [&str; 3] = ["SYS_ADMIN", "CAP_SYS_ADMIN", "ALL"];

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
        .find(|c| PRIVILEGED_CAPABILITIES.contains(c))?;
    Some(format!("container `{name}` adds capability {risky}: allowPrivilegeEscalation: false is rejected next to it, and the pod needs a person's decision"))
}

/// Where a securityContext found outside a manifest applies (a Helm values path: the chart's
/// templates say which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pod,
    Container,
}

/// Plans the securityContext mapping at `parent.key` (a Helm values path) as the contract's
/// `level` wants it. `complete`: add what is missing (the chart's defaults); otherwise only
/// explicit values that fall short are corrected (an override file, whose missing keys come
/// from the defaults). At container level `runAsNonRoot: true` is added too, since a chart may
/// render the container's context without the pod's. Findings and notes refer to `workload`.
pub fn plan_context(
    tree: &Tree,
    parent: Ref,
    key: &str,
    level: Level,
    rules: &Rules,
    complete: bool,
    workload: usize,
) -> Plan {
    let wants = match level {
        Level::Pod => pod_wants(&rules.baseline),
        Level::Container => contract::values_container_wants(&rules.baseline),
    };
    plan_context_wants(tree, parent, key, level, wants, rules, complete, workload)
}

/// [`plan_context`] for a container context that is the only one its pod gets (a chart that
/// renders no pod securityContext): it also gets the pod's `runAsUser`, `runAsGroup` and
/// `seccompProfile`, which a container's context may hold (`fsGroup` may not).
pub fn plan_container_context_with_pod_ids(
    tree: &Tree,
    parent: Ref,
    key: &str,
    rules: &Rules,
    complete: bool,
    workload: usize,
) -> Plan {
    let wants = contract::values_container_wants_with_ids(&rules.baseline);
    let level = Level::Container;
    plan_context_wants(tree, parent, key, level, wants, rules, complete, workload)
}

#[allow(clippy::too_many_arguments)]
fn plan_context_wants(
    tree: &Tree,
    parent: Ref,
    key: &str,
    level: Level,
    wants: Vec<contract::Want>,
    rules: &Rules,
    complete: bool,
    workload: usize,
) -> Plan {
    let mut wants = without(wants, &rules.disabled);
    if !complete {
        wants = contract::only_existing(wants);
    }
    let container = (level == Level::Container).then(|| key.to_string());
    // A values path that is an alias is refused as any edit through an alias: each path is
    // planned on its own, so the anchored mapping's edits are not known here.
    let mut sink = Sink::new(workload, container, &rules.baseline.seccomp);
    ensure_map(tree, parent, key, &wants, complete, &mut sink);
    let mut plan = Plan::default();
    let changes = plan.absorb(sink);
    accept_changes(tree, changes, &mut plan);
    plan
}
