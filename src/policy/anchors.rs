//! Anchored mappings that several places share through aliases. An edit is never made through
//! an alias; an edit inside an anchored mapping is made once, and every alias sees it. So a
//! securityContext written as an alias (`securityContext: *hardened`) is planned against what
//! the anchored mapping becomes: when the edits planned on the anchored mapping itself are
//! exactly the ones the alias's own pod or container needs, the alias needs no edit of its own
//! and gets a note; otherwise (it would need more, or it must not get some of them: a field of
//! another level, a control its container is exempted from) the file is refused at the alias,
//! saying which and why. An edit through a `<<` merge key, or through any other alias, is
//! refused as before.

use yaml_splice::tree::NodeKind;
use yaml_splice::value::flow_text;
use yaml_splice::{Change, EngineError, NodeId, Ref, Tree};

use super::{key_of, Note, NoteKind, Plan};

/// A change the policy asks for, with the pod or container it was planned for.
#[derive(Debug)]
pub(super) struct Planned {
    pub change: Change,
    /// The node the change edits, as reached from the document root (with the first alias on
    /// the way, if any).
    pub target: Ref,
    pub workload: usize,
    /// None for the pod (or for what a guardrail adds to it).
    pub container: Option<String>,
    /// The alias that the planned securityContext itself is (`securityContext: *name`), if it is
    /// one: a change reached through that alias is checked against the anchored mapping's own.
    pub shared: Option<NodeId>,
}

/// The alias that is `owner`'s own value for `key` (`key: *name`), when `owner` is reached
/// through no alias. A value found through a `<<` merge key is not one.
pub(super) fn context_alias(tree: &Tree, owner: Ref, key: &str) -> Option<NodeId> {
    if owner.alias.is_some() {
        return None;
    }
    let NodeKind::Map(entries) = &tree.node(owner.id).kind else {
        return None;
    };
    let value = entries
        .iter()
        .find(|&&(k, _)| tree.key_str(k) == Some(key))
        .map(|&(_, v)| v)?;
    matches!(tree.node(value).kind, NodeKind::Alias { target: Some(_) }).then_some(value)
}

/// A pod the policy leaves alone: its node, and its workload.
#[derive(Debug, Clone, Copy)]
pub(super) struct LeftAlone {
    pub pod: NodeId,
    pub workload: usize,
}

/// Keeps the changes that edit nodes reached through no alias. A change reached through the
/// alias that a securityContext is goes when the anchored mapping gets exactly the same edits
/// (one note per such alias); every other change through an alias becomes a refusal. An edit
/// inside an anchored mapping that an alias in a pod left alone shares is refused too.
pub(super) fn accept_changes(
    tree: &Tree,
    planned: Vec<Planned>,
    left_alone: &[LeftAlone],
    plan: &mut Plan,
) {
    let (direct, through): (Vec<Planned>, Vec<Planned>) =
        planned.into_iter().partition(|p| p.target.alias.is_none());
    // Changes through an alias, grouped by it, in the order of the first one.
    let mut groups: Vec<(NodeId, Vec<Planned>)> = Vec::new();
    for p in through {
        let alias = p.target.alias.expect("partitioned");
        if p.shared != Some(alias) {
            plan.refusals.push(through_alias(tree, alias));
            continue;
        }
        match groups.iter_mut().find(|(a, _)| *a == alias) {
            Some((_, group)) => group.push(p),
            None => groups.push((alias, vec![p])),
        }
    }
    for (alias, group) in groups {
        let shared = SharedContext::new(tree, alias);
        let inside: Vec<&Planned> = direct
            .iter()
            .filter(|d| is_within(tree, d.target.id, shared.anchor))
            .collect();
        let anchored: Vec<&Change> = inside.iter().map(|d| &d.change).collect();
        let needed: Vec<&Change> = group.iter().map(|p| &p.change).collect();
        let missing: Vec<&Change> = needed
            .iter()
            .copied()
            .filter(|c| !anchored.contains(c))
            .collect();
        let unwanted: Vec<&Change> = anchored
            .iter()
            .copied()
            .filter(|c| !needed.contains(c))
            .collect();
        let first = &group[0];
        let (line, col) = tree.position(Ref::root(alias));
        if missing.is_empty() && unwanted.is_empty() {
            plan.notes.push(Note {
                workload: first.workload,
                container: first.container.clone(),
                kind: NoteKind::Override,
                message: format!(
                    "its securityContext is an alias (`*{name}`) of the mapping anchored at line {anchor_line}: the edits made there harden it too, and it needs no other",
                    name = shared.name,
                    anchor_line = shared.line,
                ),
                line,
            });
            continue;
        }
        // Whose context the anchored mapping is, as the edits planned there say.
        let owner = inside.first().map(|d| d.container.as_deref());
        let mut why = Vec::new();
        if !missing.is_empty() {
            let gets = if anchored.is_empty() {
                "the mapping gets no edit, and it would need"
            } else {
                "it would also need"
            };
            why.push(format!("{gets} {}", describe(tree, &missing)));
        }
        if !unwanted.is_empty() {
            let reason = match owner {
                Some(owner) if owner.is_some() != first.container.is_some() => {
                    let level = if owner.is_some() {
                        "a container"
                    } else {
                        "the pod"
                    };
                    format!("fields of {level}'s securityContext")
                }
                _ => "which its own plan does not give it (an exemption, for one)".to_string(),
            };
            why.push(format!(
                "they would give it {}, {reason}",
                describe(tree, &unwanted)
            ));
        }
        let whose = match owner {
            Some(Some(c)) => format!(" (container `{c}`'s)"),
            Some(None) => " (the pod's)".to_string(),
            None => String::new(),
        };
        let message = format!(
            "{scope}: its securityContext is an alias (`*{name}`) of the mapping anchored at line {anchor_line}{whose}, and the edits planned there do not fit it: {why}; give it a securityContext of its own, or change the anchored mapping by hand",
            scope = scope(plan, first.workload, first.container.as_deref()),
            name = shared.name,
            anchor_line = shared.line,
            why = why.join("; "),
        );
        plan.refusals.push(EngineError::new(line, col, message));
    }
    for d in direct {
        if let Some(refusal) = seen_by_pod_left_alone(tree, &d, left_alone, plan) {
            plan.refusals.push(refusal);
        }
        plan.changes.push(d.change);
    }
}

/// The refusal of an edit that would go through an alias that is not a whole securityContext
/// (a `<<` merge key, an aliased container or pod spec, an alias inside a context).
fn through_alias(tree: &Tree, alias: NodeId) -> EngineError {
    let (line, col) = tree.position(Ref::root(alias));
    let message = "the edit would go through an alias or merge key (`*name` / `<<`); change the anchored value by hand";
    EngineError::new(line, col, message)
}

/// An alias that is a whole securityContext, and the mapping it stands for.
struct SharedContext<'t> {
    anchor: NodeId,
    name: &'t str,
    /// Where the anchor is written: the line of the key whose value it is, else its own.
    line: usize,
}

impl<'t> SharedContext<'t> {
    fn new(tree: &'t Tree, alias: NodeId) -> Self {
        let anchor = tree.deref(Ref::root(alias)).id;
        let name = tree.node(anchor).anchor.as_deref().unwrap_or("?");
        SharedContext {
            anchor,
            name,
            line: anchor_line(tree, anchor),
        }
    }
}

/// The line of the key whose value `node` is (where `key: &name` is written), else its own.
fn anchor_line(tree: &Tree, node: NodeId) -> usize {
    key_of(tree, node).map_or_else(
        || tree.position(Ref::root(node)).0,
        |k| tree.position(Ref::root(k)).0,
    )
}

/// Whether `node` is `ancestor` or lies inside it.
fn is_within(tree: &Tree, node: NodeId, ancestor: NodeId) -> bool {
    let mut current = Some(node);
    while let Some(c) = current {
        if c == ancestor {
            return true;
        }
        current = tree.node(c).parent;
    }
    false
}

/// `container `app` of Deployment/web`, or `the pod of Deployment/web`.
fn scope(plan: &Plan, workload: usize, container: Option<&str>) -> String {
    let whose = match container {
        Some(c) => format!("container `{c}`"),
        None => "the pod".to_string(),
    };
    match plan.workloads.get(workload) {
        Some(w) => format!("{whose} of {}/{}", w.kind, w.name),
        None => whose,
    }
}

/// What changes set, in a few words: "`readOnlyRootFilesystem: true`, `drop` to hold ALL".
fn describe(tree: &Tree, changes: &[&Change]) -> String {
    let key = |node: NodeId| {
        key_of(tree, node)
            .and_then(|k| tree.key_str(k))
            .unwrap_or("the value")
            .to_string()
    };
    let parts: Vec<String> = changes
        .iter()
        .flat_map(|c| match c {
            Change::Insert { entries, .. } => entries
                .iter()
                .map(|(k, v)| format!("`{k}: {}`", flow_text(v, false)))
                .collect(),
            Change::Replace { node, value } | Change::Fill { node, value } => {
                vec![format!("`{}: {}`", key(*node), flow_text(value, false))]
            }
            Change::Append { seq, items } => {
                let items: Vec<String> = items.iter().map(|i| flow_text(i, false)).collect();
                vec![format!("`{}` to hold {}", key(*seq), items.join(", "))]
            }
        })
        .collect();
    parts.join(", ")
}

/// A refusal when `direct` edits an anchored mapping that an alias inside a pod left alone
/// shares: that pod must not change.
fn seen_by_pod_left_alone(
    tree: &Tree,
    direct: &Planned,
    left_alone: &[LeftAlone],
    plan: &Plan,
) -> Option<EngineError> {
    let mut current = Some(direct.target.id);
    while let Some(node) = current {
        for &alias in tree.aliases_of.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
            let Some(pod) = left_alone.iter().find(|l| is_within(tree, alias, l.pod)) else {
                continue;
            };
            let left = plan
                .workloads
                .get(pod.workload)
                .map_or("a pod".to_string(), |w| format!("{}/{}", w.kind, w.name));
            let name = tree.node(node).anchor.as_deref().unwrap_or("?");
            let (line, col) = tree.position(Ref::root(alias));
            let planned_for = scope(plan, direct.workload, direct.container.as_deref());
            return Some(EngineError::new(line, col, format!(
                "this alias (`*{name}`) is in {left}, a pod left alone, and it shares the mapping anchored at line {anchor_line}, which {planned_for} gets edits in; give one of them a mapping of its own, or change it by hand",
                anchor_line = anchor_line(tree, node),
            )));
        }
        current = tree.node(node).parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{plan, NoteKind, Rules};
    use yaml_splice::Tree;

    const SHARED: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers:\n  - name: init\n    securityContext: &hardened\n      allowPrivilegeEscalation: false\n  containers:\n  - name: app\n    securityContext: *hardened\n  - name: metrics\n    image: x\n";

    #[test]
    fn an_alias_that_needs_what_the_anchor_gets_is_planned_once_with_a_note() {
        let tree = Tree::parse(SHARED).unwrap();
        let rules = Rules {
            writable_tmp: false,
            ..Rules::default()
        };
        let plan = plan(&tree, &rules);
        assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
        let notes: Vec<_> = plan
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Override)
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(notes[0].container.as_deref(), Some("app"));
        assert_eq!(notes[0].line, 12, "the alias's line");
        assert!(notes[0]
            .message
            .contains("alias (`*hardened`) of the mapping anchored at line 8"));
        // The pod's context, init's two fields (readOnlyRootFilesystem, capabilities) once,
        // and metrics' context: app's identical changes are not made a second time.
        assert_eq!(plan.changes.len(), 4, "{:#?}", plan.changes);
        // app's findings stay: the anchored mapping's edits are what fix them.
        assert!(plan
            .findings
            .iter()
            .any(|f| f.container.as_deref() == Some("app") && f.fixable));
    }

    #[test]
    fn an_alias_that_would_need_more_is_refused_at_its_line() {
        let mut rules = Rules {
            writable_tmp: false,
            ..Rules::default()
        };
        rules.exemptions.push(super::super::Exemption {
            kind: "*".into(),
            name: "p".into(),
            namespace: None,
            container: Some("init".into()),
            controls: super::super::ControlSet::List(vec![super::super::Control::CapabilitiesDrop]),
            reason: "needs them".into(),
        });
        let tree = Tree::parse(SHARED).unwrap();
        let plan = plan(&tree, &rules);
        let refusal = &plan.refusals[0];
        assert_eq!((refusal.line, refusal.col), (12, 22));
        assert!(
            refusal
                .message
                .contains("it would also need `capabilities: {drop: [ALL]}`"),
            "{}",
            refusal.message
        );
    }
}
