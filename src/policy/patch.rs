//! Strategic-merge patches: partial objects merged onto a base that supplies the baseline.
//!
//! What a patch writes overrides the base, so nothing is added to a context the patch shares
//! with its base (a `runAsUser: 1000` written there would override the base's own uid, a new
//! `/tmp` mount would replace the base's by `mountPath`); an explicit value that falls short
//! is corrected. A container the base does not have is new: it gets the whole container
//! baseline and the writable `/tmp`. `$patch: replace` on a context makes the patch's context
//! the whole context, so it gets the whole baseline for its level; `$patch: delete` on a
//! context or one of its fields is for a person to decide, and is said at its line.

use yaml_splice::{Ref, Tree};

use super::contract::{
    container_wants, container_wants_with_ids, ensure_map, only_existing, pod_wants, without, Sink,
    Want,
};
use super::patch_images::{self, PatchImages, ShippedImages};
use super::rules::WorkloadExemptions;
use super::{
    app_label, containers, controls, guardrails, host_access_reason, is_kubernetes_object,
    pod_spec, pod_template, privileged_reason, windows_reason, Baseline, Control, Note, NoteKind,
    Plan, Rules, SkippedPod, Workload,
};

/// The base a patched object is merged onto: the names of the containers it has (every
/// container list), for the object a patch document names (its kind and name). None when the
/// base is not known: every container is then taken to exist there.
pub type BaseContainers<'a> = &'a dyn Fn(usize, &str, &str) -> Option<Vec<String>>;

/// Plans every patched pod of every document of a strategic-merge patch.
pub fn plan_patch(tree: &Tree, rules: &Rules, base: BaseContainers) -> Plan {
    plan_patch_with_images(tree, rules, base, &|_, _, _| None)
}

/// [`plan_patch`] with the images the build ships in each patched pod (see
/// [`patch_images`]): their facts give the ids the patch writes and plan the containers it adds.
pub fn plan_patch_with_images(
    tree: &Tree,
    rules: &Rules,
    base: BaseContainers,
    shipped: ShippedImages,
) -> Plan {
    let mut plan = Plan::default();
    for (document, doc) in tree.docs.iter().enumerate() {
        let Some(root) = doc.root.map(Ref::root) else {
            continue;
        };
        if is_kubernetes_object(tree, root) {
            plan_patched_object(tree, root, document, rules, (base, shipped), &mut plan);
        }
    }
    plan.findings.sort_by_key(|f| (f.workload, f.line, f.col));
    plan.notes.sort_by_key(|n| (n.workload, n.line));
    plan
}

fn plan_patched_object(
    tree: &Tree,
    obj: Ref,
    document: usize,
    rules: &Rules,
    (base, shipped): (BaseContainers, ShippedImages),
    plan: &mut Plan,
) {
    let text = |r: Option<Ref>| {
        r.and_then(|v| tree.as_str(v))
            .unwrap_or_default()
            .to_string()
    };
    let kind = text(tree.get(obj, "kind"));
    let Some(pod) = pod_spec(tree, obj, &kind) else {
        return;
    };
    let name = text(tree.get(obj, "metadata").and_then(|m| tree.get(m, "name")));
    let template = pod_template(tree, obj, pod);
    let exemptions = match WorkloadExemptions::new(rules, tree, obj, template, &kind, &name) {
        Ok(e) => e,
        Err(e) => return plan.refusals.push(e),
    };
    let base_containers = base(document, &kind, &name);
    let shipped = shipped(document, &kind, &name);
    plan.workloads.push(Workload {
        app: app_label(tree, obj, template),
        images: vec![],
        kind,
        name,
        document,
        line: tree.position(obj).0,
    });
    let workload = plan.workloads.len() - 1;
    let patched = PatchedPod {
        tree,
        pod,
        workload,
        rules,
        exemptions: &exemptions,
        base_containers: base_containers.as_deref(),
        shipped: shipped.as_ref(),
    };
    patched.plan(plan);
}

/// One pod of a patch, with what the planning needs to know around it.
struct PatchedPod<'a, 's> {
    tree: &'a Tree<'s>,
    pod: Ref,
    workload: usize,
    rules: &'a Rules,
    exemptions: &'a WorkloadExemptions<'a>,
    base_containers: Option<&'a [String]>,
    /// What the build ships in this pod (for its images' facts).
    shipped: Option<&'a patch_images::ShippedPod>,
}

/// How a patch's securityContext meets the base's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Merge {
    /// Merged key by key: only explicit values that fall short are corrected.
    Fields,
    /// The patch's context is the whole context (`$patch: replace`, or a new container).
    Whole,
    /// `$patch: delete` on the context or a field of it: a person decides.
    Deleted,
}

impl<'a> PatchedPod<'a, '_> {
    fn plan(&self, plan: &mut Plan) {
        let tree = self.tree;
        let containers = containers(tree, self.pod);
        let leave_alone = windows_reason(tree, self.pod)
            .or_else(|| {
                containers
                    .iter()
                    .find_map(|(c, name)| privileged_reason(tree, *c, name))
            })
            .or_else(|| {
                host_access_reason(tree, self.pod).filter(|_| !self.rules.harden_host_access)
            });
        if let Some(reason) = leave_alone {
            plan.skipped.push(SkippedPod {
                workload: self.workload,
                reason,
            });
            return;
        }
        let images = self.images(&containers);
        let baseline = &images.baseline;
        let pod_sink = self.plan_context(self.pod, None, pod_wants(baseline), plan);
        let mut sinks = vec![pod_sink];
        let mut needing_tmp = Vec::new();
        for (container, name) in &containers {
            let is_new = self
                .base_containers
                .is_some_and(|names| !names.contains(name));
            let wants = match images.container_ids.iter().find(|(n, _, _)| n == name) {
                Some((_, uid, gid)) => container_wants_with_ids(&Baseline {
                    uid: *uid,
                    gid: *gid,
                    ..baseline.clone()
                }),
                None => container_wants(baseline),
            };
            let sink = self.plan_context(*container, Some(name), wants, plan);
            let read_only_added = sink
                .findings
                .iter()
                .any(|f| f.control == Control::ReadOnlyRootFilesystem);
            if is_new && read_only_added {
                needing_tmp.push((*container, name.clone()));
            }
            sinks.push(sink);
        }
        let writes_image_ids = sinks.iter().any(|sink| {
            sink.findings.iter().any(|f| {
                matches!(
                    f.control,
                    Control::RunAsUser | Control::RunAsGroup | Control::FsGroup
                )
            })
        });
        if writes_image_ids {
            plan.notes.extend(patch_images::ids_note(
                &images,
                tree,
                self.pod,
                self.workload,
            ));
        }
        plan.notes.extend(images.notes);
        plan.refusals.extend(images.errors);
        let mut changes = Vec::new();
        for sink in sinks {
            changes.extend(plan.absorb(sink));
        }
        if self.rules.writable_tmp && !needing_tmp.is_empty() {
            let tmp = guardrails::writable_tmp(tree, self.pod, &needing_tmp, self.workload);
            changes.extend(plan.absorb_additions(tmp, self.workload));
        }
        super::accept_changes(tree, changes, plan);
    }

    /// The images' facts for this pod: its ids, and the containers the patch adds.
    fn images(&self, containers: &[(Ref, String)]) -> PatchImages {
        let added: Vec<(Ref, String)> = containers
            .iter()
            .filter(|(_, name)| {
                self.base_containers
                    .is_some_and(|names| !names.contains(name))
            })
            .cloned()
            .collect();
        patch_images::plan(
            self.tree,
            &added,
            self.base_containers,
            self.shipped,
            self.rules,
            self.workload,
        )
    }

    /// Plans the securityContext of the pod (`container` None) or of one container.
    fn plan_context(
        &self,
        owner: Ref,
        container: Option<&String>,
        wants: Vec<Want>,
        plan: &mut Plan,
    ) -> Sink<'a> {
        let tree = self.tree;
        let mut sink = Sink::new(
            self.workload,
            container.cloned(),
            &self.rules.baseline.seccomp,
        );
        sink.shared = super::anchors::context_alias(tree, owner, "securityContext");
        let exempted = self.exemptions.exempted(container.map(String::as_str));
        let wants = without(wants, &controls(&exempted));
        let is_new = container.is_some_and(|name| {
            self.base_containers
                .is_some_and(|names| !names.contains(name))
        });
        let merge = match tree.get(owner, "securityContext") {
            _ if is_new => Merge::Whole,
            Some(context) => merge_of(tree, context),
            None => Merge::Fields,
        };
        match merge {
            Merge::Whole => ensure_map(tree, owner, "securityContext", &wants, true, &mut sink),
            Merge::Fields => {
                let wants = only_existing(wants);
                ensure_map(tree, owner, "securityContext", &wants, false, &mut sink);
            }
            Merge::Deleted => plan.notes.push(self.deleted_note(owner, container)),
        }
        sink
    }

    fn deleted_note(&self, owner: Ref, container: Option<&String>) -> Note {
        let tree = self.tree;
        let context = tree.get(owner, "securityContext").unwrap_or(owner);
        let whose = match container {
            Some(name) => format!("container `{name}`'s"),
            None => "the pod's".to_string(),
        };
        Note {
            workload: self.workload,
            container: container.cloned(),
            kind: NoteKind::Risk,
            message: format!("`$patch: delete` removes {whose} securityContext (or a field of it) from the base: the base's hardening does not reach this pod; left to a person"),
            line: tree.position(context).0,
        }
    }
}

/// `$patch: replace` or `$patch: delete` on a context, or `delete` on a field of it.
fn merge_of(tree: &Tree, context: Ref) -> Merge {
    let directive = |map: Ref| tree.get(map, "$patch").and_then(|d| tree.as_str(d));
    match directive(context) {
        Some("replace") => return Merge::Whole,
        Some("delete") => return Merge::Deleted,
        _ => {}
    }
    let field_deleted = [
        "seccompProfile",
        "capabilities",
        "seLinuxOptions",
        "windowsOptions",
    ]
    .iter()
    .filter_map(|k| tree.get(context, k))
    .any(|field| directive(field) == Some("delete"));
    if field_deleted {
        Merge::Deleted
    } else {
        Merge::Fields
    }
}
