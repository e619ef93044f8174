//! JSON 6902 patches (a list of `op`/`path`/`value`) on a pod spec. The path says the level:
//! an `add` or `replace` whose path ends at a pod or container `securityContext` replaces the
//! base's whole context, so its `value` gets the whole baseline for that level; one that sets a
//! single field is corrected when its value falls short; one that adds or replaces a whole
//! container gets the container baseline in it; a `remove` of a context or of one of its fields
//! is for a person to decide, and is said at its line.

use yaml_splice::{Ref, Tree};

use super::contract::{container_wants, ensure_map, pod_wants, rekey, without, Sink, Want};
use super::{Note, NoteKind, Plan, Rules, Workload};

/// The object a JSON patch is applied to, for reports, and the names of its containers by
/// list and index (`containers`, 0) when the base is known.
pub struct JsonPatchTarget<'a> {
    pub kind: String,
    pub name: String,
    pub container_name: &'a dyn Fn(&str, usize) -> Option<String>,
}

/// Where an operation's path ends, relative to a pod spec.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    PodContext,
    /// A container's context: its list and index (None for `-`, an appended item).
    ContainerContext(String, Option<usize>),
    /// A field of a context (`runAsUser`, `capabilities/drop`): the container, or None for the
    /// pod, and the field path below the context.
    Field(Option<(String, Option<usize>)>, Vec<String>),
    /// A whole container.
    Container(String, Option<usize>),
    Elsewhere,
}

/// Plans every operation of a JSON patch (the first document, a list).
pub fn plan_json_patch(tree: &Tree, rules: &Rules, target: &JsonPatchTarget) -> Plan {
    let mut plan = Plan::default();
    let Some(list) = tree.docs.first().and_then(|d| d.root).map(Ref::root) else {
        return plan;
    };
    plan.workloads.push(Workload {
        kind: target.kind.clone(),
        name: target.name.clone(),
        document: 0,
        line: tree.position(list).0,
        app: None,
        images: vec![],
    });
    let mut changes = Vec::new();
    for op in tree.items(list) {
        let text = |key| tree.get(op, key).and_then(|v| tree.as_str(v));
        let (Some(verb), Some(path)) = (text("op"), text("path")) else {
            continue;
        };
        let place = place_of(path);
        let container_of = |list: &str, index: Option<usize>| {
            index
                .and_then(|i| (target.container_name)(list, i))
                .unwrap_or_else(|| {
                    format!("{list}[{}]", index.map_or("-".into(), |i| i.to_string()))
                })
        };
        match (verb, place) {
            ("remove", Place::PodContext | Place::ContainerContext(..) | Place::Field(..)) => {
                plan.notes.push(Note {
                    workload: 0,
                    container: None,
                    kind: NoteKind::Risk,
                    message: format!("`remove` of `{path}` takes the base's hardening away from the rendered pod: left to a person"),
                    line: tree.position(op).0,
                });
            }
            ("add" | "replace", place) => {
                let mut sink = match &place {
                    Place::ContainerContext(l, i) | Place::Container(l, i) => {
                        Sink::new(0, Some(container_of(l, *i)), &rules.baseline.seccomp)
                    }
                    Place::Field(Some((l, i)), _) => {
                        Sink::new(0, Some(container_of(l, *i)), &rules.baseline.seccomp)
                    }
                    _ => Sink::new(0, None, &rules.baseline.seccomp),
                };
                plan_value(tree, op, &place, rules, &mut sink);
                changes.extend(plan.absorb(sink));
            }
            _ => {}
        }
    }
    super::accept_changes(tree, changes, &mut plan);
    plan.findings.sort_by_key(|f| (f.line, f.col));
    plan
}

/// The changes that bring the `value` of one `add`/`replace` operation to the contract.
fn plan_value(tree: &Tree, op: Ref, place: &Place, rules: &Rules, sink: &mut Sink) {
    let disabled = &rules.disabled;
    match place {
        Place::PodContext => {
            let wants = without(pod_wants(&rules.baseline), disabled);
            ensure_map(tree, op, "value", &wants, true, sink);
        }
        Place::ContainerContext(..) => {
            let wants = without(container_wants(&rules.baseline), disabled);
            ensure_map(tree, op, "value", &wants, true, sink);
        }
        Place::Container(..) => {
            let Some(container) = tree.get(op, "value").filter(|v| tree.is_map(*v)) else {
                return;
            };
            let wants = without(container_wants(&rules.baseline), disabled);
            ensure_map(tree, container, "securityContext", &wants, true, sink);
        }
        Place::Field(container, field) => {
            let level_wants = match container {
                None => pod_wants(&rules.baseline),
                Some(_) => container_wants(&rules.baseline),
            };
            if let Some(want) = field_want(without(level_wants, disabled), field) {
                let notes_before = sink.notes.len();
                super::contract::apply_want(tree, op, &want, sink);
                // The value is keyed `value` in the operation: name the field it sets.
                let name = field.join(".");
                for note in &mut sink.notes[notes_before..] {
                    note.message = note.message.replacen(
                        "explicit `value: ",
                        &format!("explicit `{name}: "),
                        1,
                    );
                }
            }
        }
        Place::Elsewhere => {}
    }
}

/// The want for one field path below a context (`runAsUser`, `capabilities`, `capabilities/drop`,
/// `seccompProfile`, `seccompProfile/type`), keyed `value` so that it applies to the
/// operation's value. Only explicit values are corrected: nothing is added to a field's value.
fn field_want(wants: Vec<Want>, field: &[String]) -> Option<Want> {
    let first = field.first()?;
    let want = wants.into_iter().find(|w| w.key() == first)?;
    let want = match (field.len(), want) {
        (1, want) => want,
        (2, Want::Map { wants, .. }) => wants.into_iter().find(|w| w.key() == field[1])?,
        (2, Want::Seccomp { .. }) if field[1] == "type" => Want::seccomp_type(),
        _ => return None,
    };
    Some(rekey(want, "value"))
}

/// Where a JSON pointer ends, relative to the pod specs of the kinds the policy knows.
fn place_of(path: &str) -> Place {
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    const POD_SPECS: [&[&str]; 4] = [
        &["spec", "template", "spec"],
        &["spec", "jobTemplate", "spec", "template", "spec"],
        &["template", "spec"],
        &["spec"],
    ];
    let Some(rest) = POD_SPECS.iter().find_map(|prefix| {
        let starts =
            segments.len() > prefix.len() && prefix.iter().zip(&segments).all(|(p, s)| p == s);
        starts.then(|| &segments[prefix.len()..])
    }) else {
        return Place::Elsewhere;
    };
    const LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
    match rest {
        [context] if context == "securityContext" => Place::PodContext,
        [context, field @ ..] if context == "securityContext" => Place::Field(None, field.to_vec()),
        [list, index] if LISTS.contains(&list.as_str()) => {
            Place::Container(list.clone(), index.parse().ok())
        }
        [list, index, context]
            if LISTS.contains(&list.as_str()) && context == "securityContext" =>
        {
            Place::ContainerContext(list.clone(), index.parse().ok())
        }
        [list, index, context, field @ ..]
            if LISTS.contains(&list.as_str()) && context == "securityContext" =>
        {
            Place::Field(Some((list.clone(), index.parse().ok())), field.to_vec())
        }
        _ => Place::Elsewhere,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_say_their_level() {
        let c = |l: &str, i: Option<usize>| (l.to_string(), i);
        assert_eq!(
            place_of("/spec/template/spec/securityContext"),
            Place::PodContext
        );
        assert_eq!(
            place_of("/spec/template/spec/containers/0/securityContext"),
            Place::ContainerContext("containers".into(), Some(0))
        );
        assert_eq!(
            place_of("/spec/template/spec/initContainers/-"),
            Place::Container("initContainers".into(), None)
        );
        assert_eq!(
            place_of("/spec/template/spec/containers/1/securityContext/runAsUser"),
            Place::Field(Some(c("containers", Some(1))), vec!["runAsUser".into()])
        );
        assert_eq!(
            place_of("/spec/jobTemplate/spec/template/spec/securityContext/seccompProfile/type"),
            Place::Field(None, vec!["seccompProfile".into(), "type".into()])
        );
        assert_eq!(
            place_of("/spec/template/spec/nodeSelector"),
            Place::Elsewhere
        );
        assert_eq!(place_of("/metadata/labels/a~1b"), Place::Elsewhere);
    }
}
