//! Guardrails: what keeps a hardened app running (a writable `/tmp`), and what a person should
//! know before merging (low ports, host namespaces, hostPath volumes). Their rules and wording
//! (the /tmp volume's name, the notes, the host-access reason) are shared with Helm charts,
//! whose pods are read from template text (`sources::chart::guardrails`).

use yaml_splice::{Change, NewValue, Ref, Scalar, Tree};

use super::{Note, NoteKind};

/// Changes and notes that one guardrail adds to a pod.
#[derive(Default)]
pub(super) struct Additions {
    pub changes: Vec<(Change, Ref)>,
    pub notes: Vec<Note>,
    pub errors: Vec<yaml_splice::EngineError>,
}

/// Gives every container in `needing` (those about to get a read-only root filesystem) an
/// emptyDir mounted at `/tmp`, unless it already mounts something there.
pub(super) fn writable_tmp(
    tree: &Tree,
    pod: Ref,
    needing: &[(Ref, String)],
    workload: usize,
) -> Additions {
    writable_dirs(tree, pod, needing, &[], workload)
}

/// A volume an image declares (`VOLUME /data`) that a container with a read-only root
/// filesystem does not mount: it gets an emptyDir there.
pub(super) struct ImageVolume {
    pub container: Ref,
    pub name: String,
    pub path: String,
    /// The image, for the note.
    pub image: String,
}

/// The writable /tmp for the containers in `needing_tmp` (see [`writable_tmp`]) and an emptyDir
/// at each of `image_volumes`: the pod's new volumes in one change, each container's new
/// mounts in one change.
pub(super) fn writable_dirs(
    tree: &Tree,
    pod: Ref,
    needing_tmp: &[(Ref, String)],
    image_volumes: &[ImageVolume],
    workload: usize,
) -> Additions {
    let mut out = Additions::default();
    let without_tmp: Vec<&(Ref, String)> = needing_tmp
        .iter()
        .filter(|(c, _)| !mounts_tmp(tree, *c))
        .collect();
    if without_tmp.is_empty() && image_volumes.is_empty() {
        return out;
    }
    let mut names = volume_names(tree, pod);
    let mut new_volumes = Vec::new();
    let mut new_mounts: Vec<(Ref, Vec<NewValue>)> = Vec::new();
    let mut mount = |container: Ref, name: &str, path: &str| {
        let item = NewValue::map(vec![
            ("name", NewValue::str(name)),
            ("mountPath", NewValue::str(path)),
        ]);
        match new_mounts.iter_mut().find(|(c, _)| *c == container) {
            Some((_, items)) => items.push(item),
            None => new_mounts.push((container, vec![item])),
        }
    };
    if !without_tmp.is_empty() {
        let name = tmp_volume_name(&names);
        if !names.iter().any(|n| n == name) {
            new_volumes.push(empty_dir(name));
            names.push(name.to_string());
        }
        for (container, cname) in without_tmp {
            mount(*container, name, "/tmp");
            out.notes.push(Note {
                workload,
                container: Some(cname.clone()),
                kind: NoteKind::Added,
                message: writable_tmp_message(name),
                line: tree.position(*container).0,
            });
        }
    }
    for v in image_volumes {
        let name = image_volume_name(&v.path, &names);
        new_volumes.push(empty_dir(&name));
        names.push(name.clone());
        mount(v.container, &name, &v.path);
        out.notes.push(Note {
            workload,
            container: Some(v.name.clone()),
            kind: NoteKind::Added,
            message: format!(
                "image facts: `{}` declares VOLUME {}: adds an emptyDir volume `{name}` mounted there, so it stays writable under the read-only root filesystem on runtimes that do not mount image volumes (CRI-O)",
                v.image, v.path
            ),
            line: tree.position(v.container).0,
        });
    }
    if !new_volumes.is_empty() {
        add_items(tree, pod, "volumes", new_volumes, &mut out);
    }
    for (container, items) in new_mounts {
        add_items(tree, container, "volumeMounts", items, &mut out);
    }
    out
}

fn empty_dir(name: &str) -> NewValue {
    NewValue::map(vec![
        ("name", NewValue::str(name)),
        ("emptyDir", NewValue::Map(vec![])),
    ])
}

/// The emptyDir's name for an image volume: the path as a DNS label (`/var/lib/app` ->
/// `var-lib-app`), with `kube-harden-` before it (and a number after) when that is taken.
fn image_volume_name(path: &str, taken: &[String]) -> String {
    let mut label: String = path
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label = label.trim_matches('-').to_string();
    label.truncate(40);
    if label.is_empty() {
        label = "volume".into();
    }
    let free = |n: &String| !taken.iter().any(|t| t == n);
    std::iter::once(label.clone())
        .chain((0..).map(|i| match i {
            0 => format!("kube-harden-{label}"),
            i => format!("kube-harden-{label}-{i}"),
        }))
        .find(free)
        .expect("an endless list has a free name")
}

/// The name of the emptyDir the writable /tmp adds: `tmp`, or `kube-harden-tmp` when the pod
/// already has a volume called `tmp` (which may be the user's, mounted elsewhere).
pub(crate) fn tmp_volume_name(taken: &[String]) -> &'static str {
    if taken.iter().any(|n| n == "tmp") {
        "kube-harden-tmp"
    } else {
        "tmp"
    }
}

/// The `added` note of the writable /tmp.
pub(crate) fn writable_tmp_message(name: &str) -> String {
    format!("adds an emptyDir volume `{name}` mounted at /tmp: with a read-only root filesystem most programs still need somewhere to write temporary files")
}

/// Whether a `mountPath` is `/tmp` (with or without the trailing slash).
pub(crate) fn is_tmp_path(path: &str) -> bool {
    path.trim_end_matches('/') == "/tmp"
}

fn mounts_tmp(tree: &Tree, container: Ref) -> bool {
    let mounts = tree
        .get(container, "volumeMounts")
        .map(|m| tree.items(m))
        .unwrap_or_default();
    mounts.iter().any(|m| {
        let path = tree.get(*m, "mountPath").and_then(|p| tree.as_str(p));
        path.is_some_and(is_tmp_path)
    })
}

fn volume_names(tree: &Tree, pod: Ref) -> Vec<String> {
    let volumes = tree
        .get(pod, "volumes")
        .map(|v| tree.items(v))
        .unwrap_or_default();
    volumes
        .iter()
        .filter_map(|v| tree.get(*v, "name").and_then(|n| tree.as_str(n)))
        .map(str::to_string)
        .collect()
}

/// Appends `items` to the list `map.key`, creating the list when it is missing or empty.
fn add_items(tree: &Tree, map: Ref, key: &str, items: Vec<NewValue>, out: &mut Additions) {
    match append_items(tree, map, key, items) {
        Ok(change) => out.changes.push(change),
        Err(e) => out.errors.push(e),
    }
}

/// The change that appends `item` to the list `map.key` (created when it is missing, null or
/// empty), with the node it goes through (an alias there means it may not be made).
pub(crate) fn append_item(
    tree: &Tree,
    map: Ref,
    key: &str,
    item: NewValue,
) -> Result<(Change, Ref), yaml_splice::EngineError> {
    append_items(tree, map, key, vec![item])
}

/// [`append_item`] for several items in one change.
fn append_items(
    tree: &Tree,
    map: Ref,
    key: &str,
    items: Vec<NewValue>,
) -> Result<(Change, Ref), yaml_splice::EngineError> {
    match tree.get(map, key) {
        None => Ok((
            Change::Insert {
                map: map.id,
                entries: vec![(key.into(), NewValue::Seq(items))],
            },
            map,
        )),
        Some(v) if tree.is_seq(v) => Ok((Change::Append { seq: v.id, items }, v)),
        Some(v) if tree.is_empty(v) => Ok((
            Change::Fill {
                node: v.id,
                value: NewValue::Seq(items),
            },
            v,
        )),
        Some(v) => {
            let (line, col) = tree.position(v);
            Err(yaml_splice::EngineError::new(
                line,
                col,
                format!("`{key}` is not a list"),
            ))
        }
    }
}

/// Risks a reviewer should weigh: ports below 1024, and with `host`, host namespaces and
/// hostPath volumes (when they are not already why the pod is left alone).
pub(super) fn risks(
    tree: &Tree,
    pod: Ref,
    containers: &[(Ref, String)],
    workload: usize,
    host: bool,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut risk = |container: Option<&String>, at: Ref, message: String| {
        notes.push(Note {
            workload,
            container: container.cloned(),
            kind: NoteKind::Risk,
            message,
            line: tree.position(at).0,
        });
    };
    for (c, name) in containers {
        for port in tree
            .get(*c, "ports")
            .map(|p| tree.items(p))
            .unwrap_or_default()
        {
            let Some(number) = tree.get(port, "containerPort") else {
                continue;
            };
            if let Some(Scalar::Int(n)) = tree
                .scalar(number)
                .filter(|s| matches!(s, Scalar::Int(n) if is_low_port(*n)))
            {
                risk(Some(name), number, low_port_message(n));
            }
        }
    }
    if !host {
        return notes;
    }
    for access in host_accesses(tree, pod) {
        risk(None, access.at, access.kind.risk());
    }
    notes
}

/// A port a non-root process cannot bind once ALL capabilities are dropped (0 is no port).
pub(crate) fn is_low_port(port: i64) -> bool {
    (1..1024).contains(&port)
}

/// The risk note of a container that listens on a port below 1024.
pub(crate) fn low_port_message(port: i64) -> String {
    format!("listens on port {port}: a non-root process cannot bind a port below 1024 (dropping ALL capabilities removes NET_BIND_SERVICE); listen on 1024 or above, or set the pod sysctl net.ipv4.ip_unprivileged_port_start")
}

/// One way a pod reaches into its node, and where it says so.
pub(super) struct HostAccess {
    pub at: Ref,
    pub kind: HostAccessKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostAccessKind {
    /// `hostPID`, `hostNetwork` or `hostIPC` set to `true` (a `false` is the default).
    Namespace {
        field: &'static str,
        what: &'static str,
    },
    /// A `hostPath` volume, with its path and the volume's name when they are strings.
    Path {
        path: Option<String>,
        name: Option<String>,
    },
}

/// The host namespaces a pod may share, and what each gives it.
const HOST_NAMESPACES: [(&str, &str); 3] = [
    ("hostPID", "the node's process namespace"),
    ("hostNetwork", "the node's network"),
    ("hostIPC", "the node's IPC namespace"),
];

impl HostAccessKind {
    /// The host namespace a pod field (`hostPID`, `hostNetwork`, `hostIPC`) shares, if it is one.
    pub(crate) fn namespace(field: &str) -> Option<HostAccessKind> {
        HOST_NAMESPACES
            .iter()
            .find(|(f, _)| *f == field)
            .map(|&(field, what)| HostAccessKind::Namespace { field, what })
    }

    /// How the reason for leaving the pod alone names it ("uses the node's network
    /// (hostNetwork: true)", "mounts hostPath /var/log").
    pub(crate) fn phrase(&self) -> String {
        match self {
            HostAccessKind::Namespace { field, what } => format!("uses {what} ({field}: true)"),
            HostAccessKind::Path {
                path: Some(path), ..
            } => format!("mounts hostPath {path}"),
            HostAccessKind::Path {
                name: Some(name), ..
            } => format!("mounts hostPath volume `{name}`"),
            HostAccessKind::Path { .. } => "mounts a hostPath volume".to_string(),
        }
    }

    /// The risk note of a pod hardened anyway (`--harden-host-access-pods`).
    pub(crate) fn risk(&self) -> String {
        match self {
            HostAccessKind::Namespace { field, what } => format!("`{field}: true` shares {what}: a node agent like this may need root; review before merging"),
            HostAccessKind::Path { path, .. } => format!("mounts hostPath {}: files there usually belong to root, so a non-root uid may lose access to them", path.as_deref().unwrap_or("?")),
        }
    }
}

/// Every host namespace the pod shares and every hostPath volume it has, in that order.
pub(super) fn host_accesses(tree: &Tree, pod: Ref) -> Vec<HostAccess> {
    let mut accesses = Vec::new();
    for (field, what) in HOST_NAMESPACES {
        if let Some(at) = tree
            .get(pod, field)
            .filter(|v| tree.scalar(*v) == Some(Scalar::Bool(true)))
        {
            let kind = HostAccessKind::Namespace { field, what };
            accesses.push(HostAccess { at, kind });
        }
    }
    let volumes = tree.get(pod, "volumes").map(|v| tree.items(v));
    for volume in volumes.unwrap_or_default() {
        let Some(at) = tree.get(volume, "hostPath") else {
            continue;
        };
        let text = |map: Ref, key: &str| {
            tree.get(map, key)
                .and_then(|v| tree.as_str(v))
                .map(str::to_string)
        };
        let kind = HostAccessKind::Path {
            path: text(at, "path"),
            name: text(volume, "name"),
        };
        accesses.push(HostAccess { at, kind });
    }
    accesses
}
