//! The contract, field by field: what each securityContext field must be, and the changes and
//! findings that bring a pod or a container there. Works on one mapping at a time.

use yaml_splice::{Change, EngineError, NewValue, NodeId, Ref, Scalar, Tree};

use super::{Baseline, Control, Finding, Note, NoteKind, Seccomp, PRIVILEGED_CAPABILITIES};

/// What one field of a securityContext must be.
pub(super) enum Want {
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
    /// The seccomp profile: a mapping whose `type` must be RuntimeDefault or Localhost.
    Seccomp { add_missing: bool },
    /// A list that must contain an item.
    Contains {
        key: &'static str,
        control: Control,
        item: &'static str,
    },
    /// The added capabilities, which Pod Security `restricted` limits to NET_BIND_SERVICE:
    /// reported (a finding `fix` does not change, and a risk note), never changed or added.
    AddedCapabilities { key: &'static str },
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

pub(super) fn pod_wants(b: &Baseline) -> Vec<Want> {
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
        Want::Seccomp { add_missing: true },
    ]
}

/// Container wants. The last four only correct values that would override the pod's.
pub(super) fn container_wants(b: &Baseline) -> Vec<Want> {
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
            wants: vec![
                Want::Contains {
                    key: "drop",
                    control: Control::CapabilitiesDrop,
                    item: "ALL",
                },
                Want::AddedCapabilities { key: "add" },
            ],
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
        Want::Seccomp { add_missing: false },
    ]
}

impl Want {
    /// The field this want is about.
    pub fn key(&self) -> &'static str {
        match self {
            Want::Scalar { key, .. }
            | Want::Map { key, .. }
            | Want::Contains { key, .. }
            | Want::AddedCapabilities { key } => key,
            Want::Seccomp { .. } => "seccompProfile",
        }
    }

    /// The seccomp profile's `type`, on its own (a JSON patch may set just that).
    pub fn seccomp_type() -> Want {
        Want::Scalar {
            key: "type",
            control: Control::SeccompProfile,
            value: NewValue::str("RuntimeDefault"),
            short: seccomp_short,
            add_missing: true,
        }
    }

    /// The control this want serves (the first one, for a nested mapping).
    fn control(&self) -> Control {
        match self {
            Want::Scalar { control, .. } | Want::Contains { control, .. } => *control,
            Want::Seccomp { .. } => Control::SeccompProfile,
            Want::AddedCapabilities { .. } => Control::CapabilitiesAdd,
            Want::Map { wants, .. } => wants
                .first()
                .map_or(Control::CapabilitiesDrop, Want::control),
        }
    }
}

/// The wants without those of exempted controls.
pub(super) fn without(wants: Vec<Want>, exempted: &[Control]) -> Vec<Want> {
    wants
        .into_iter()
        .filter_map(|w| match w {
            Want::Map {
                key,
                wants,
                add_missing,
            } => {
                let inner = without(wants, exempted);
                (!inner.is_empty()).then_some(Want::Map {
                    key,
                    wants: inner,
                    add_missing,
                })
            }
            w if exempted.contains(&w.control()) => None,
            w => Some(w),
        })
        .collect()
}

/// Where the findings, notes and changes of one pod or container go.
pub(super) struct Sink<'p> {
    pub workload: usize,
    pub container: Option<String>,
    pub seccomp: &'p Seccomp,
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
    pub changes: Vec<(Change, Ref)>,
    pub errors: Vec<EngineError>,
    /// The alias that the planned securityContext is (`securityContext: *name`), if it is one.
    pub shared: Option<NodeId>,
}

impl<'p> Sink<'p> {
    pub fn new(workload: usize, container: Option<String>, seccomp: &'p Seccomp) -> Self {
        Sink {
            workload,
            container,
            seccomp,
            findings: vec![],
            notes: vec![],
            changes: vec![],
            errors: vec![],
            shared: None,
        }
    }

    fn finding(
        &mut self,
        tree: &Tree,
        control: Control,
        current: String,
        wanted: &NewValue,
        at: Ref,
    ) {
        let (line, col) = tree.position(at);
        let container = self.container.clone();
        let wanted = yaml_splice::value::flow_text(wanted, false);
        self.findings.push(Finding {
            workload: self.workload,
            container,
            control,
            current,
            wanted,
            line,
            col,
            fixable: true,
        });
    }

    fn change(&mut self, change: Change, target: Ref) {
        self.changes.push((change, target));
    }

    fn error(&mut self, tree: &Tree, at: Ref, message: String) {
        let (line, col) = tree.position(at);
        self.errors.push(EngineError::new(line, col, message));
    }

    /// Says that an explicit value is overridden, quoting the comment on or above its line.
    fn override_note(&mut self, tree: &Tree, key: &str, v: Ref, wanted: &NewValue) {
        let (line, _) = tree.position(v);
        let old = tree.source_text(v);
        let new = yaml_splice::value::flow_text(wanted, false);
        let mut message = format!("overrides the explicit `{key}: {old}` with `{new}`");
        // The field's own comment, else the one on its securityContext (a comment above
        // `securityContext:` usually explains all of its values).
        let parent_map = tree.node(v.id).parent.map(|p| Ref {
            id: p,
            alias: v.alias,
        });
        if let Some(comment) = tree
            .comment_for(v)
            .or_else(|| parent_map.and_then(|m| tree.comment_for(m)))
        {
            message.push_str(&format!(" (its comment says: \"{comment}\")"));
        }
        let container = self.container.clone();
        self.notes.push(Note {
            workload: self.workload,
            container,
            kind: NoteKind::Override,
            message,
            line,
        });
    }
}

/// Makes `parent.key` a mapping that meets `wants`.
pub(super) fn ensure_map(
    tree: &Tree,
    parent: Ref,
    key: &str,
    wants: &[Want],
    add_missing: bool,
    sink: &mut Sink,
) {
    match tree.get(parent, key) {
        None => {
            let value = new_value(wants, sink.seccomp);
            if add_missing && !value.is_empty() {
                record_absent(tree, wants, parent, sink);
                let entries = vec![(key.to_string(), NewValue::Map(value))];
                sink.change(
                    Change::Insert {
                        map: parent.id,
                        entries,
                    },
                    parent,
                );
            }
        }
        Some(v) if tree.is_empty(v) && !tree.is_seq(v) => {
            let value = new_value(wants, sink.seccomp);
            if !value.is_empty() {
                record_absent(tree, wants, v, sink);
                sink.change(
                    Change::Fill {
                        node: v.id,
                        value: NewValue::Map(value),
                    },
                    v,
                );
            }
        }
        Some(v) if tree.is_map(v) => wants.iter().for_each(|w| apply_want(tree, v, w, sink)),
        Some(v) => sink.error(tree, v, format!("`{key}` is not a mapping")),
    }
}

pub(super) fn apply_want(tree: &Tree, map: Ref, want: &Want, sink: &mut Sink) {
    match want {
        Want::Map {
            key,
            wants,
            add_missing,
        } => ensure_map(tree, map, key, wants, *add_missing, sink),
        Want::Seccomp { add_missing } => ensure_seccomp(tree, map, *add_missing, sink),
        Want::Scalar {
            key,
            control,
            value,
            short,
            add_missing,
        } => ensure_scalar(tree, map, key, *control, value, *short, *add_missing, sink),
        Want::Contains { key, control, item } => {
            ensure_contains(tree, map, key, *control, item, sink)
        }
        Want::AddedCapabilities { key } => report_added_capabilities(tree, map, key, sink),
    }
}

#[allow(clippy::too_many_arguments)]
fn ensure_scalar(
    tree: &Tree,
    map: Ref,
    key: &str,
    control: Control,
    value: &NewValue,
    short: fn(&Scalar, &NewValue) -> bool,
    add_missing: bool,
    sink: &mut Sink,
) {
    let Some(v) = tree.get(map, key) else {
        if add_missing {
            sink.finding(tree, control, "absent".into(), value, map);
            sink.change(
                Change::Insert {
                    map: map.id,
                    entries: vec![(key.to_string(), value.clone())],
                },
                map,
            );
        }
        return;
    };
    match tree.scalar(v) {
        Some(cur) if short(&cur, value) => {
            sink.finding(tree, control, describe(tree, v), value, v);
            if type_matches(&cur, value) || cur == Scalar::Null {
                if cur != Scalar::Null {
                    sink.override_note(tree, key, v, value);
                }
                sink.change(
                    Change::Replace {
                        node: v.id,
                        value: value.clone(),
                    },
                    v,
                );
            } else {
                let message = format!(
                    "`{key}` is {}; expected {}",
                    describe(tree, v),
                    type_name(value)
                );
                sink.error(tree, v, message);
            }
        }
        Some(_) => {}
        None => sink.error(tree, v, format!("`{key}` is not a scalar")),
    }
}

/// The seccomp profile: created when absent (at pod level), filled when empty, and its type
/// replaced when it is neither RuntimeDefault nor Localhost.
fn ensure_seccomp(tree: &Tree, map: Ref, add_missing: bool, sink: &mut Sink) {
    let wanted = seccomp_value(sink.seccomp);
    match tree.get(map, "seccompProfile") {
        None if add_missing => {
            sink.finding(tree, Control::SeccompProfile, "absent".into(), &wanted, map);
            sink.change(
                Change::Insert {
                    map: map.id,
                    entries: vec![("seccompProfile".into(), wanted)],
                },
                map,
            );
        }
        None => {}
        Some(v) if tree.is_empty(v) && !tree.is_seq(v) => {
            sink.finding(tree, Control::SeccompProfile, describe(tree, v), &wanted, v);
            let NewValue::Map(entries) = wanted else {
                return;
            };
            sink.change(
                Change::Fill {
                    node: v.id,
                    value: NewValue::Map(entries),
                },
                v,
            );
        }
        Some(v) if tree.is_map(v) => {
            let ty = match sink.seccomp {
                Seccomp::RuntimeDefault => "RuntimeDefault",
                Seccomp::Localhost(_) => "Localhost",
            };
            let want_type = NewValue::str(ty);
            ensure_scalar(
                tree,
                v,
                "type",
                Control::SeccompProfile,
                &want_type,
                seccomp_short,
                true,
                sink,
            );
            let replaced = !matches!(
                tree.get(v, "type").and_then(|t| tree.as_str(t)),
                Some("RuntimeDefault" | "Localhost")
            );
            if let (true, Seccomp::Localhost(profile)) = (replaced, sink.seccomp) {
                if tree.get(v, "localhostProfile").is_none() {
                    let entries = vec![("localhostProfile".into(), NewValue::str(profile))];
                    sink.change(Change::Insert { map: v.id, entries }, v);
                }
            }
        }
        Some(v) => sink.error(tree, v, "`seccompProfile` is not a mapping".into()),
    }
}

fn seccomp_value(seccomp: &Seccomp) -> NewValue {
    match seccomp {
        Seccomp::RuntimeDefault => NewValue::map(vec![("type", NewValue::str("RuntimeDefault"))]),
        Seccomp::Localhost(profile) => NewValue::map(vec![
            ("type", NewValue::str("Localhost")),
            ("localhostProfile", NewValue::str(profile)),
        ]),
    }
}

fn ensure_contains(
    tree: &Tree,
    map: Ref,
    key: &str,
    control: Control,
    item: &str,
    sink: &mut Sink,
) {
    let wanted = NewValue::Seq(vec![NewValue::str(item)]);
    match tree.get(map, key) {
        None => {
            sink.finding(tree, control, "absent".into(), &wanted, map);
            sink.change(
                Change::Insert {
                    map: map.id,
                    entries: vec![(key.to_string(), wanted)],
                },
                map,
            );
        }
        Some(v) if tree.is_empty(v) && !tree.is_seq(v) => {
            sink.finding(tree, control, describe(tree, v), &wanted, v);
            sink.change(
                Change::Fill {
                    node: v.id,
                    value: wanted,
                },
                v,
            );
        }
        Some(v) if tree.is_seq(v) => {
            if !tree.items(v).iter().any(|i| tree.as_str(*i) == Some(item)) {
                sink.finding(tree, control, describe(tree, v), &NewValue::str(item), v);
                sink.change(
                    Change::Append {
                        seq: v.id,
                        items: vec![NewValue::str(item)],
                    },
                    v,
                );
            }
        }
        Some(v) => sink.error(tree, v, format!("`{key}` is not a list")),
    }
}

/// The one capability Pod Security `restricted` lets a container add (compared as written).
const RESTRICTED_ALLOWS: &str = "NET_BIND_SERVICE";

/// The capabilities Pod Security `baseline` lets a container add (compared as written).
const BASELINE_ALLOWS: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// A `capabilities.add` list that holds anything but NET_BIND_SERVICE: a finding of
/// `capabilities.add` (not fixable: the list is kept) and a risk note on the list's line, naming
/// each capability and what Pod Security does with it. SYS_ADMIN, CAP_SYS_ADMIN and ALL are not
/// named: they make the pod one that is left to a person, and the reason says so. A value that is
/// not a list is not judged here.
fn report_added_capabilities(tree: &Tree, map: Ref, key: &str, sink: &mut Sink) {
    let Some(list) = tree.get(map, key).filter(|l| tree.is_seq(*l)) else {
        return;
    };
    let names: Vec<&str> = tree
        .items(list)
        .iter()
        .filter_map(|i| tree.as_str(*i))
        .collect();
    let mut refused: Vec<&str> = Vec::new();
    for name in &names {
        let counts = *name != RESTRICTED_ALLOWS && !PRIVILEGED_CAPABILITIES.contains(name);
        if counts && !refused.contains(name) {
            refused.push(name);
        }
    }
    if refused.is_empty() {
        return;
    }
    // At the line of `add:`, where a reader looks for the list.
    let at = super::key_of(tree, list.id).map_or(list, |k| Ref {
        id: k,
        alias: list.alias,
    });
    let (line, col) = tree.position(at);
    let keeps_bind = names
        .iter()
        .any(|n| n.strip_prefix("CAP_").unwrap_or(n) == RESTRICTED_ALLOWS);
    let wanted = if keeps_bind {
        format!("[{RESTRICTED_ALLOWS}]")
    } else {
        "[]".to_string()
    };
    sink.findings.push(Finding {
        workload: sink.workload,
        container: sink.container.clone(),
        control: Control::CapabilitiesAdd,
        current: describe(tree, list),
        wanted,
        line,
        col,
        fixable: false,
    });
    let mut message = format!(
        "adds {}: Pod Security admission at the `restricted` level admits no added capability but {RESTRICTED_ALLOWS}, so it will refuse this pod once the namespace enforces `restricted`",
        refused.join(", ")
    );
    let beyond_baseline: Vec<&str> = refused
        .iter()
        .copied()
        .filter(|c| !BASELINE_ALLOWS.contains(c))
        .collect();
    if !beyond_baseline.is_empty() {
        message.push_str(&format!(
            " (the `baseline` level refuses {} too)",
            and_list(&beyond_baseline)
        ));
    }
    let prefixed: Vec<&str> = refused
        .iter()
        .copied()
        .filter(|c| {
            c.strip_prefix("CAP_")
                .is_some_and(|bare| BASELINE_ALLOWS.contains(&bare))
        })
        .collect();
    if !prefixed.is_empty() {
        message.push_str(&format!(
            "; admission matches names exactly as written, so {} is not {} to it",
            prefixed[0],
            &prefixed[0]["CAP_".len()..]
        ));
    }
    message.push_str("; the list is kept as written: remove what the app does not need");
    sink.notes.push(Note {
        workload: sink.workload,
        container: sink.container.clone(),
        kind: NoteKind::Risk,
        message,
        line,
    });
}

/// `A`, `A and B`, `A, B and C`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The entries to write when a whole mapping is missing: every want that adds when absent.
fn new_value(wants: &[Want], seccomp: &Seccomp) -> Vec<(String, NewValue)> {
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
                let inner = new_value(wants, seccomp);
                (!inner.is_empty()).then(|| (key.to_string(), NewValue::Map(inner)))
            }
            Want::Seccomp { add_missing: true } => {
                Some(("seccompProfile".into(), seccomp_value(seccomp)))
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
                value,
                add_missing: true,
                ..
            } => sink.finding(tree, *control, "absent".into(), value, at),
            Want::Contains { control, item, .. } => sink.finding(
                tree,
                *control,
                "absent".into(),
                &NewValue::Seq(vec![NewValue::str(item)]),
                at,
            ),
            Want::Seccomp { add_missing: true } => {
                let wanted = seccomp_value(sink.seccomp);
                sink.finding(tree, Control::SeccompProfile, "absent".into(), &wanted, at)
            }
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

/// Container wants for a Helm values path: as in a manifest, and `runAsNonRoot: true` added
/// when absent (the chart may render no pod securityContext next to it).
pub(super) fn values_container_wants(b: &Baseline) -> Vec<Want> {
    container_wants(b)
        .into_iter()
        .map(|w| match w {
            Want::Scalar {
                key: "runAsNonRoot",
                control,
                value,
                short,
                ..
            } => Want::Scalar {
                key: "runAsNonRoot",
                control,
                value,
                short,
                add_missing: true,
            },
            w => w,
        })
        .collect()
}

/// The values container wants, with the pod's ids and seccomp profile added when missing too
/// (for a container context that is the only one its pod gets).
pub(super) fn values_container_wants_with_ids(b: &Baseline) -> Vec<Want> {
    ids_added(values_container_wants(b))
        .into_iter()
        .map(|w| match w {
            Want::Seccomp { .. } => Want::Seccomp { add_missing: true },
            w => w,
        })
        .collect()
}

/// [`container_wants`] for a container that runs as another user than its pod (its image's):
/// its own `runAsUser` and `runAsGroup` are added.
pub(super) fn container_wants_with_ids(b: &Baseline) -> Vec<Want> {
    ids_added(container_wants(b))
}

/// `wants` with `runAsUser` and `runAsGroup` added where missing, not only corrected.
fn ids_added(wants: Vec<Want>) -> Vec<Want> {
    wants
        .into_iter()
        .map(|w| match w {
            Want::Scalar {
                key: key @ ("runAsUser" | "runAsGroup"),
                control,
                value,
                short,
                ..
            } => Want::Scalar {
                key,
                control,
                value,
                short,
                add_missing: true,
            },
            w => w,
        })
        .collect()
}

/// The wants that only correct values already written (nothing missing is added).
pub(super) fn only_existing(wants: Vec<Want>) -> Vec<Want> {
    wants
        .into_iter()
        .map(|w| match w {
            Want::Scalar {
                key,
                control,
                value,
                short,
                ..
            } => Want::Scalar {
                key,
                control,
                value,
                short,
                add_missing: false,
            },
            Want::Map { key, wants, .. } => Want::Map {
                key,
                wants: only_existing(wants),
                add_missing: false,
            },
            Want::Seccomp { .. } => Want::Seccomp { add_missing: false },
            w @ (Want::Contains { .. } | Want::AddedCapabilities { .. }) => w,
        })
        .collect()
}

/// The same want for a field under another key (a JSON patch operation's `value`). What is
/// already written is corrected; a missing value is not added.
pub(super) fn rekey(want: Want, key: &'static str) -> Want {
    match want {
        Want::Scalar {
            control,
            value,
            short,
            ..
        } => Want::Scalar {
            key,
            control,
            value,
            short,
            add_missing: false,
        },
        Want::Map { wants, .. } => Want::Map {
            key,
            wants,
            add_missing: false,
        },
        Want::Contains { control, item, .. } => Want::Contains { key, control, item },
        Want::AddedCapabilities { .. } => Want::AddedCapabilities { key },
        Want::Seccomp { .. } => Want::Map {
            key,
            wants: vec![Want::seccomp_type()],
            add_missing: false,
        },
    }
}
