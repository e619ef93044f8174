//! The rendered check's judge, shared by every source that renders (Kustomize builds, Helm
//! templates): a rendered stream after the edits against the stream before. Every rendered pod
//! meets the contract or is left alone (the policy, run on the rendered objects, says which), a
//! pod left alone renders as it did, explicit non-zero ids are kept, no pod becomes one the API
//! server or the kubelet refuses, and outside securityContexts and the writable `/tmp`
//! additions every rendered object is as it was. Where an object came from is the caller's
//! knowledge (an origin annotation, a `# Source:` comment), passed in as a function.
//!
//! Some renders vary by themselves (a generated password or certificate, a checksum of it, `now`):
//! when the first comparison finds a difference outside the securityContexts, the caller's
//! function renders the unedited input once more, and every field that differs between the
//! two unedited renders is left out of the comparison (field by field, never a whole object),
//! and named in the verdict. A deterministic render never pays for the second one.

use std::collections::BTreeMap;

use yaml_serde::Value;
use yaml_splice::Tree;

use crate::policy::{self, Rules};

/// A rendered object, named for messages: `Deployment/prod-web`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectName {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// What is wrong with one rendered object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub object: ObjectName,
    /// The file the object came from, as the caller's origin function says.
    pub origin: Option<String>,
    pub kind: ProblemKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// A control the rendered pod falls short of (after the edits): reported, not an error.
    Short {
        container: Option<String>,
        control: policy::Control,
        current: String,
        wanted: String,
    },
    /// The edits would ship something they must not: an error, and nothing is written.
    Broken(String),
}

impl ProblemKind {
    /// A shortfall as a finding of the report's `workload` at `line`: not fixable by an edit
    /// of that file (the render undoes or drops it).
    pub fn short_finding(&self, workload: usize, line: usize) -> Option<policy::Finding> {
        let ProblemKind::Short {
            container,
            control,
            current,
            wanted,
        } = self
        else {
            return None;
        };
        Some(policy::Finding {
            workload,
            container: container.clone(),
            control: *control,
            current: current.clone(),
            wanted: wanted.clone(),
            line,
            col: 1,
            fixable: false,
        })
    }

    /// A shortfall named for a message: `readOnlyRootFilesystem in container `web``.
    pub fn short_label(&self) -> Option<String> {
        let ProblemKind::Short {
            container, control, ..
        } = self
        else {
            return None;
        };
        Some(match container {
            Some(c) => format!("{} in container `{c}`", control.name()),
            None => control.name().to_string(),
        })
    }
}

/// The rendered objects of a stream, by name.
fn objects(stream: &str) -> Result<BTreeMap<ObjectName, Value>, String> {
    let docs = crate::verify::load_all(stream)
        .map_err(|e| format!("the rendered output does not load: {e}"))?;
    let mut out = BTreeMap::new();
    for doc in docs {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let meta = doc.get("metadata");
        let name = ObjectName {
            kind: text(doc.get("kind")).unwrap_or_default(),
            namespace: text(meta.and_then(|m| m.get("namespace"))),
            name: text(meta.and_then(|m| m.get("name"))).unwrap_or_default(),
        };
        out.insert(name, doc);
    }
    Ok(out)
}

/// Where a rendered object came from (a file the user can open), if the render says.
pub type Origin<'a> = &'a dyn Fn(&Value) -> Option<String>;

/// Renders the unedited input once more, with the same values: what differs between two such
/// renders varies by itself.
pub type Again<'a> = &'a dyn Fn() -> Result<String, String>;

/// What the judge found, and what it did not compare.
#[derive(Debug, Default)]
pub struct Verdict {
    pub problems: Vec<Problem>,
    /// The fields (and objects whose names vary) left out of the comparison because they
    /// differ between two renders of the unedited input: `Secret/web data.tls.crt`.
    pub not_compared: Vec<String>,
    /// The containers the edits make read-only with nothing mounted at /tmp: the app may
    /// break, a risk of the pod (not a control it falls short of).
    pub no_tmp: Vec<NoTmp>,
}

/// A container that the edits give a read-only root filesystem, and no writable /tmp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoTmp {
    pub object: ObjectName,
    /// The file the object came from, as the caller's origin function says.
    pub origin: Option<String>,
    pub container: String,
}

impl Verdict {
    /// The report's sentence on what was not compared and why (`input`: "chart", "build"),
    /// when something was not.
    pub fn not_compared_note(&self, input: &str) -> Option<String> {
        (!self.not_compared.is_empty()).then(|| {
            format!(
                "not compared by the render check, as each differs between two renders of the unchanged {input} (generated when it renders: random values, certificates, checksums of them, times): {}",
                self.not_compared.join(", ")
            )
        })
    }
}

/// Judges the stream `after` against `before` (both rendered from the same input; `again`
/// renders the unedited input once more, called only when something differs outside the
/// securityContexts).
pub fn judge(
    before: &str,
    after: &str,
    rules: &Rules,
    origin_of: Origin,
    again: Again,
) -> Result<Verdict, String> {
    let old = objects(before)?;
    let new = objects(after)?;
    let outside = outside_differences(&old, &new, &image_volume_of(rules));
    let unmatched = old
        .keys()
        .chain(new.keys())
        .any(|n| !old.contains_key(n) || !new.contains_key(n));
    let variance = if outside.is_empty() && !unmatched {
        Variance::default()
    } else {
        Variance::between(&old, again)
    };
    let mut problems = Vec::new();
    let mut not_compared = variance.fields_not_compared();
    let left_alone = left_alone_objects(before, rules);
    for (name, object) in &new {
        let broken = |message: String| Problem {
            object: name.clone(),
            origin: origin_of(object),
            kind: ProblemKind::Broken(message),
        };
        let Some(was) = old.get(name) else {
            if variance.renames(&name.kind) {
                not_compared.push(format!("{name} (its name varies)"));
            } else {
                problems.push(broken("appears in the render only after the edits".into()));
            }
            continue;
        };
        let changed: Vec<String> = outside
            .get(name)
            .into_iter()
            .flatten()
            .filter(|field| !variance.covers(name, field))
            .map(display)
            .collect();
        if !changed.is_empty() {
            problems.push(broken(format!(
                "the edits change the rendered object outside its securityContexts and the writable /tmp ({})",
                changed.join(", ")
            )));
        }
        let (old_pod, new_pod) = (pod_spec(was), pod_spec(object));
        let (Some(old_pod), Some(new_pod)) = (old_pod, new_pod) else {
            continue;
        };
        if left_alone.contains(name) && contexts(old_pod) != contexts(new_pod) {
            problems.push(broken("renders a pod left to a person (privileged, host access or Windows) with changed securityContexts".into()));
        }
        problems.extend(changed_ids(old_pod, new_pod).into_iter().map(&broken));
        problems.extend(refused(new_pod, old_pod).into_iter().map(&broken));
    }
    for name in old.keys().filter(|n| !new.contains_key(*n)) {
        if variance.renames(&name.kind) {
            not_compared.push(format!("{name} (its name varies)"));
            continue;
        }
        problems.push(Problem {
            object: name.clone(),
            origin: origin_of(&old[name]),
            kind: ProblemKind::Broken("is no longer rendered after the edits".into()),
        });
    }
    problems.extend(short_of_baseline(after, &new, rules, origin_of));
    let no_tmp = made_read_only_without_tmp(&old, &new, origin_of);
    Ok(Verdict {
        problems,
        not_compared,
        no_tmp,
    })
}

/// The containers whose root filesystem the edits make read-only while nothing is mounted at
/// /tmp in them.
fn made_read_only_without_tmp(
    old: &BTreeMap<ObjectName, Value>,
    new: &BTreeMap<ObjectName, Value>,
    origin_of: Origin,
) -> Vec<NoTmp> {
    let read_only = |c: &Value| {
        c.get("securityContext")
            .and_then(|s| s.get("readOnlyRootFilesystem"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let mounts_tmp = |c: &Value| {
        c.get("volumeMounts")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("mountPath").and_then(Value::as_str))
            .any(|path| path.trim_end_matches('/') == "/tmp")
    };
    let mut out = Vec::new();
    for (name, object) in new {
        let (Some(new_pod), Some(old_pod)) = (pod_spec(object), old.get(name).and_then(pod_spec))
        else {
            continue;
        };
        for container in containers(new_pod).filter(|c| read_only(c) && !mounts_tmp(c)) {
            let container_name = name_of(container);
            let was_read_only = containers(old_pod)
                .find(|c| name_of(c) == container_name)
                .is_some_and(read_only);
            if !was_read_only {
                out.push(NoTmp {
                    object: name.clone(),
                    origin: origin_of(object),
                    container: container_name,
                });
            }
        }
    }
    out
}

/// One step into a rendered object: a mapping key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Key(String),
    Index(usize),
}

type Field = Vec<Step>;

/// `spec.template.metadata.annotations.checksum/secret`, `spec.containers[0].env[2].value`.
fn display(field: &Field) -> String {
    let mut out = String::new();
    for step in field {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("(the whole object)");
    }
    out
}

/// The fields where `a` and `b` differ: the deepest place where they still have the same
/// shape (a mapping whose keys differ, a list whose length differs, or a changed value).
fn differences(a: &Value, b: &Value, at: &mut Field, out: &mut Vec<Field>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y))
            if x.len() == y.len() && x.keys().all(|k| y.contains_key(k)) =>
        {
            for (key, value) in x {
                let text = match key.as_str() {
                    Some(k) => k.to_string(),
                    None => format!("{key:?}"),
                };
                at.push(Step::Key(text));
                differences(value, &y[key], at, out);
                at.pop();
            }
        }
        (Value::Sequence(x), Value::Sequence(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                at.push(Step::Index(i));
                differences(p, q, at, out);
                at.pop();
            }
        }
        (Value::Tagged(x), Value::Tagged(y)) if x.tag == y.tag => {
            differences(&x.value, &y.value, at, out)
        }
        _ => out.push(at.clone()),
    }
}

/// The fields where `old` and `new` differ outside the securityContexts and the writable
/// `/tmp` the edits added, per object rendered both times.
fn outside_differences(
    old: &BTreeMap<ObjectName, Value>,
    new: &BTreeMap<ObjectName, Value>,
    image_volume: &ImageVolume,
) -> BTreeMap<ObjectName, Vec<Field>> {
    let mut out = BTreeMap::new();
    for (name, object) in new {
        let Some(was) = old.get(name) else { continue };
        let added = added_tmp_volumes(was, object, image_volume);
        let mut fields = Vec::new();
        differences(
            &strip(was.clone(), &[], image_volume),
            &strip(object.clone(), &added, image_volume),
            &mut Vec::new(),
            &mut fields,
        );
        if !fields.is_empty() {
            out.insert(name.clone(), fields);
        }
    }
    out
}

/// What differs between two renders of the unedited input.
#[derive(Default)]
struct Variance {
    /// Per object, the fields (outside securityContexts) that differ.
    fields: BTreeMap<ObjectName, Vec<Field>>,
    /// The kinds whose objects' names differ between the two renders.
    renamed_kinds: std::collections::BTreeSet<String>,
}

impl Variance {
    /// Renders the unedited input once more and compares it with `old`; no variance when the
    /// second render fails (everything is compared then).
    fn between(old: &BTreeMap<ObjectName, Value>, again: Again) -> Variance {
        let Ok(second) = again().and_then(|s| objects(&s)) else {
            return Variance::default();
        };
        let mut variance = Variance::default();
        for (name, object) in old {
            let Some(other) = second.get(name) else {
                variance.renamed_kinds.insert(name.kind.clone());
                continue;
            };
            let mut fields = Vec::new();
            differences(
                &strip(object.clone(), &[], &|_, _| false),
                &strip(other.clone(), &[], &|_, _| false),
                &mut Vec::new(),
                &mut fields,
            );
            if !fields.is_empty() {
                variance.fields.insert(name.clone(), fields);
            }
        }
        for name in second.keys().filter(|n| !old.contains_key(*n)) {
            variance.renamed_kinds.insert(name.kind.clone());
        }
        variance
    }

    /// Whether `field` of `object` is one that varies (or lies inside one).
    fn covers(&self, object: &ObjectName, field: &Field) -> bool {
        self.fields
            .get(object)
            .is_some_and(|varying| varying.iter().any(|v| field.starts_with(v)))
    }

    /// Whether the names of this kind's objects vary from render to render.
    fn renames(&self, kind: &str) -> bool {
        self.renamed_kinds.contains(kind)
    }

    /// `Secret/web data.tls.crt`, for each varying field.
    fn fields_not_compared(&self) -> Vec<String> {
        self.fields
            .iter()
            .flat_map(|(name, fields)| fields.iter().map(move |f| format!("{name} {}", display(f))))
            .collect()
    }
}

/// The objects whose pods the policy leaves to a person, in a rendered stream.
fn left_alone_objects(stream: &str, rules: &Rules) -> Vec<ObjectName> {
    let Ok(tree) = Tree::parse(stream) else {
        return vec![];
    };
    let plan = policy::plan(&tree, rules);
    let Ok(objects) = objects(stream) else {
        return vec![];
    };
    let names: Vec<&ObjectName> = objects.keys().collect();
    plan.skipped
        .iter()
        .filter_map(|s| {
            let w = &plan.workloads[s.workload];
            names
                .iter()
                .find(|n| n.kind == w.kind && n.name == w.name)
                .map(|n| (*n).clone())
        })
        .collect()
}

/// The controls the rendered pods fall short of, per the policy run on the rendered stream.
fn short_of_baseline(
    after: &str,
    objects: &BTreeMap<ObjectName, Value>,
    rules: &Rules,
    origin_of: Origin,
) -> Vec<Problem> {
    let Ok(tree) = Tree::parse(after) else {
        return vec![];
    };
    let plan = policy::plan(&tree, rules);
    plan.findings
        .iter()
        .filter(|f| f.fixable)
        .filter_map(|f| {
            let w = &plan.workloads[f.workload];
            let found = objects
                .iter()
                .find(|(n, _)| n.kind == w.kind && n.name == w.name);
            let held_by_containers = f.container.is_none()
                && found
                    .and_then(|(_, o)| pod_spec(o))
                    .is_some_and(|pod| every_container_holds(pod, f.control));
            if held_by_containers {
                return None;
            }
            Some(Problem {
                object: found.map(|(n, _)| n.clone()).unwrap_or(ObjectName {
                    kind: w.kind.clone(),
                    namespace: None,
                    name: w.name.clone(),
                }),
                origin: found.and_then(|(_, o)| origin_of(o)),
                kind: ProblemKind::Short {
                    container: f.container.clone(),
                    control: f.control,
                    current: f.current.clone(),
                    wanted: f.wanted.clone(),
                },
            })
        })
        .collect()
}

/// Whether every container of the pod sets a pod-level control in its own securityContext
/// (which wins over the pod's for that container): the pod then meets it as it runs, as when
/// a chart takes only a container securityContext from values. fsGroup has no such field.
fn every_container_holds(pod: &Value, control: policy::Control) -> bool {
    use policy::Control;
    let holds = |container: &Value| {
        let context = container.get("securityContext");
        let field = |key: &str| context.and_then(|c| c.get(key));
        let non_zero = |key: &str| field(key).and_then(Value::as_i64).is_some_and(|id| id > 0);
        match control {
            Control::RunAsNonRoot => field("runAsNonRoot").and_then(Value::as_bool) == Some(true),
            Control::RunAsUser => non_zero("runAsUser"),
            Control::RunAsGroup => non_zero("runAsGroup"),
            Control::SeccompProfile => matches!(
                field("seccompProfile")
                    .and_then(|p| p.get("type"))
                    .and_then(Value::as_str),
                Some("RuntimeDefault" | "Localhost")
            ),
            _ => false,
        }
    };
    let mut all = containers(pod).peekable();
    all.peek().is_some() && all.all(holds)
}

fn pod_spec(object: &Value) -> Option<&Value> {
    let kind = object.get("kind")?.as_str()?;
    let spec = policy::pod_spec_path(kind)
        .iter()
        .try_fold(object, |v, k| v.get(*k))?;
    spec.get("containers").map(|_| spec)
}

fn pod_spec_mut(object: &mut Value) -> Option<&mut Value> {
    let kind = object.get("kind")?.as_str()?.to_string();
    let spec = policy::pod_spec_path(&kind)
        .iter()
        .try_fold(object, |v, k| v.get_mut(*k))?;
    spec.get("containers").is_some().then_some(spec)
}

const LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    LISTS
        .iter()
        .filter_map(|l| pod.get(*l).and_then(Value::as_sequence))
        .flatten()
}

fn name_of(container: &Value) -> String {
    container
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_string()
}

/// The pod's and each container's securityContext.
fn contexts(pod: &Value) -> Vec<Option<&Value>> {
    std::iter::once(pod.get("securityContext"))
        .chain(containers(pod).map(|c| c.get("securityContext")))
        .collect()
}

/// Whether a path is a `VOLUME` of a container's image (by the image facts of the run's
/// lookup): the edits mount an emptyDir there under a read-only root filesystem.
type ImageVolume<'a> = dyn Fn(&Value, &str) -> bool + 'a;

fn image_volume_of(rules: &Rules) -> impl Fn(&Value, &str) -> bool + '_ {
    |container: &Value, path: &str| {
        let Some(image) = container.get("image").and_then(Value::as_str) else {
            return false;
        };
        let path = path.trim_end_matches('/');
        match rules.images.facts(image) {
            Some(Ok(facts)) => facts
                .volumes
                .iter()
                .any(|v| v.trim_end_matches('/') == path),
            _ => false,
        }
    }
}

/// A mount the edits may add: at `/tmp`, or at a `VOLUME` of the container's image.
fn writable_mount(container: &Value, mount: &Value, image_volume: &ImageVolume) -> bool {
    match mount.get("mountPath").and_then(Value::as_str) {
        Some("/tmp") => true,
        Some(path) => image_volume(container, path),
        None => false,
    }
}

/// The writable volumes the edits added: an `emptyDir` the pod before did not have, named
/// `tmp` or `kube-harden-tmp` (the tool's own), or of any name when a container mounts it at
/// `/tmp` (a chart that mounts its own writable /tmp once the root filesystem is read-only) or
/// at a `VOLUME` of its image.
fn added_tmp_volumes(old: &Value, new: &Value, image_volume: &ImageVolume) -> Vec<String> {
    let volumes = |object: &Value| -> Vec<Value> {
        pod_spec(object)
            .and_then(|p| p.get("volumes"))
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default()
    };
    let mounted_at_tmp = |name: &str| {
        pod_spec(new).is_some_and(|pod| {
            containers(pod).any(|c| {
                c.get("volumeMounts")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .any(|m| {
                        m.get("name").and_then(Value::as_str) == Some(name)
                            && writable_mount(c, m, image_volume)
                    })
            })
        })
    };
    let before = volumes(old);
    volumes(new)
        .into_iter()
        .filter(|v| {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            let empty_dir = v
                .get("emptyDir")
                .is_some_and(|e| e.is_null() || e.as_mapping().is_some());
            // New emptyDirs only: an image is looked up for nothing else.
            empty_dir
                && !before.iter().any(|b| b.get("name") == v.get("name"))
                && (matches!(name, "tmp" | "kube-harden-tmp") || mounted_at_tmp(name))
        })
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The object without securityContexts, the `added` volumes and their mounts at `/tmp` or at
/// a `VOLUME` of the container's image.
fn strip(mut object: Value, added: &[String], image_volume: &ImageVolume) -> Value {
    let Some(pod) = pod_spec_mut(&mut object) else {
        return object;
    };
    let Value::Mapping(pod) = pod else {
        return object;
    };
    pod.remove("securityContext");
    let is_added = |v: &Value| {
        v.get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| added.iter().any(|a| a == n))
    };
    if let Some(Value::Sequence(volumes)) = pod.get_mut("volumes") {
        volumes.retain(|v| !is_added(v));
        if volumes.is_empty() {
            pod.remove("volumes");
        }
    }
    for list in LISTS {
        let Some(Value::Sequence(items)) = pod.get_mut(list) else {
            continue;
        };
        for container in items.iter_mut() {
            let Value::Mapping(c) = container else {
                continue;
            };
            c.remove("securityContext");
            let this = Value::Mapping(c.clone());
            if let Some(Value::Sequence(mounts)) = c.get_mut("volumeMounts") {
                mounts.retain(|m| !(is_added(m) && writable_mount(&this, m, image_volume)));
                if mounts.is_empty() {
                    c.remove("volumeMounts");
                }
            }
        }
    }
    object
}

/// Explicit non-zero ids of the render before that the edits changed.
fn changed_ids(old: &Value, new: &Value) -> Vec<String> {
    let id = |ctx: Option<&Value>, key: &str| ctx.and_then(|c| c.get(key)).and_then(Value::as_i64);
    let mut out = Vec::new();
    let mut compare =
        |what: String, before: Option<&Value>, after: Option<&Value>, keys: &[&str]| {
            for key in keys {
                if let Some(was) = id(before, key).filter(|v| *v != 0) {
                    if id(after, key) != Some(was) {
                        out.push(format!("the edits change {what}'s explicit `{key}: {was}`"));
                    }
                }
            }
        };
    compare(
        "the pod".into(),
        old.get("securityContext"),
        new.get("securityContext"),
        &["runAsUser", "runAsGroup", "fsGroup"],
    );
    for c in containers(old) {
        let name = name_of(c);
        let after = containers(new).find(|n| name_of(n) == name);
        compare(
            format!("container `{name}`"),
            c.get("securityContext"),
            after.and_then(|a| a.get("securityContext")),
            &["runAsUser", "runAsGroup"],
        );
    }
    out
}

/// What the API server or the kubelet would refuse in the pod after the edits, unless the
/// pod before had it already.
fn refused(new: &Value, old: &Value) -> Vec<String> {
    let before = refusals(old);
    refusals(new)
        .into_iter()
        .filter(|r| !before.contains(r))
        .collect()
}

fn refusals(pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let flag =
        |ctx: Option<&Value>, key: &str| ctx.and_then(|c| c.get(key)).and_then(Value::as_bool);
    let pod_ctx = pod.get("securityContext");
    for c in containers(pod) {
        let name = name_of(c);
        let ctx = c.get("securityContext");
        let privileged = flag(ctx, "privileged") == Some(true);
        let sys_admin = ctx
            .and_then(|x| x.get("capabilities"))
            .and_then(|x| x.get("add"))
            .and_then(Value::as_sequence)
            .is_some_and(|adds| {
                adds.iter()
                    .any(|a| matches!(a.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN")))
            });
        if (privileged || sys_admin) && flag(ctx, "allowPrivilegeEscalation") == Some(false) {
            out.push(format!("container `{name}` has allowPrivilegeEscalation: false next to privileged: true or SYS_ADMIN, which the API server refuses"));
        }
        let non_root = flag(ctx, "runAsNonRoot").or(flag(pod_ctx, "runAsNonRoot")) == Some(true);
        let uid = ctx
            .and_then(|x| x.get("runAsUser"))
            .or(pod_ctx.and_then(|x| x.get("runAsUser")))
            .and_then(Value::as_i64);
        if non_root && uid == Some(0) {
            out.push(format!("container `{name}` has runAsNonRoot: true with runAsUser: 0, which the kubelet refuses to start"));
        }
        let mut paths: Vec<&str> = c
            .get("volumeMounts")
            .and_then(Value::as_sequence)
            .map(|m| {
                m.iter()
                    .filter_map(|m| m.get("mountPath").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort_unstable();
        if let Some(twice) = paths.windows(2).find(|w| w[0] == w[1]) {
            out.push(format!(
                "container `{name}` mounts two volumes at {}, which the API server refuses",
                twice[0]
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second render of a test that must not need one.
    fn no_second() -> Result<String, String> {
        panic!("a second render of the unedited input was asked for")
    }

    const BEFORE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1337\n      containers:\n      - name: web\n        image: nginx\n";

    #[test]
    fn a_hardened_render_that_keeps_the_uid_passes() {
        let after = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1337\n        runAsNonRoot: true\n        runAsGroup: 1000\n        fsGroup: 1000\n        seccompProfile: {type: RuntimeDefault}\n      containers:\n      - name: web\n        image: nginx\n        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n        volumeMounts: [{name: tmp, mountPath: /tmp}]\n      volumes: [{name: tmp, emptyDir: {}}]\n";
        let verdict = judge(BEFORE, after, &Rules::default(), &|_| None, &no_second).unwrap();
        assert_eq!(verdict.problems, vec![]);
        assert_eq!(verdict.not_compared, Vec::<String>::new());
    }

    #[test]
    fn pod_controls_every_container_holds_are_met_but_fs_group_is_short() {
        // A chart that takes only a container securityContext: the containers hold the
        // pod-level ids and seccomp; fsGroup has no home.
        let after = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        securityContext: {runAsNonRoot: true, runAsUser: 1337, runAsGroup: 1000, seccompProfile: {type: RuntimeDefault}, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n        volumeMounts: [{name: tmp, mountPath: /tmp}]\n      volumes: [{name: tmp, emptyDir: {}}]\n";
        let before = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n        securityContext: {runAsUser: 1337}\n";
        let again = || Ok(before.to_string());
        let verdict = judge(before, after, &Rules::default(), &|_| None, &again).unwrap();
        let short: Vec<String> = verdict
            .problems
            .iter()
            .filter_map(|p| p.kind.short_label())
            .collect();
        assert_eq!(short, vec!["fsGroup"]);
        assert_eq!(verdict.no_tmp, vec![]);
    }

    #[test]
    fn a_container_made_read_only_without_a_tmp_mount_is_named() {
        let before = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n      - name: log\n        image: busybox\n        securityContext: {readOnlyRootFilesystem: true}\n";
        let after = before.replace(
            "      - name: web\n        image: nginx\n",
            "      - name: web\n        image: nginx\n        securityContext: {readOnlyRootFilesystem: true}\n",
        );
        let verdict = judge(
            before,
            &after,
            &Rules::default(),
            &|_| Some("t.yaml".into()),
            &no_second,
        )
        .unwrap();
        // `log` was read-only before the edits: not theirs to answer for.
        assert_eq!(
            verdict.no_tmp,
            vec![NoTmp {
                object: ObjectName {
                    kind: "Deployment".into(),
                    namespace: None,
                    name: "web".into()
                },
                origin: Some("t.yaml".into()),
                container: "web".into(),
            }]
        );
    }

    #[test]
    fn a_changed_uid_another_change_and_a_short_control_are_found() {
        let after = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1000\n      containers:\n      - name: web\n        image: nginx:2\n";
        let again = || Ok(BEFORE.to_string());
        let problems = judge(BEFORE, after, &Rules::default(), &|_| None, &again)
            .unwrap()
            .problems;
        let broken: Vec<&ProblemKind> = problems
            .iter()
            .map(|p| &p.kind)
            .filter(|k| matches!(k, ProblemKind::Broken(_)))
            .collect();
        assert_eq!(broken.len(), 2, "{problems:#?}");
        assert!(problems.iter().any(|p| matches!(
            &p.kind,
            ProblemKind::Short {
                control: policy::Control::RunAsNonRoot,
                ..
            }
        )));
    }

    #[test]
    fn pods_the_api_refuses_are_found() {
        let pod = |ctx: &str| -> Value {
            yaml_serde::from_str(&format!("containers:\n- name: a\n  securityContext: {ctx}\n  volumeMounts: [{{name: x, mountPath: /tmp}}, {{name: y, mountPath: /tmp}}]\n")).unwrap()
        };
        let found = refusals(&pod(
            "{privileged: true, allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 0}",
        ));
        assert_eq!(found.len(), 3, "{found:#?}");
    }

    /// A chart that generates a password and signs a certificate on every render, and puts a
    /// checksum of them on its pod template; `{pw}`, `{crt}` and `{sum}` vary, `{extra}` is
    /// what the edits may add, `{pod}` the pod's contexts and /tmp.
    fn generated(pw: &str, crt: &str, sum: &str, extra: &str, pod: &str) -> String {
        format!("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web\ndata:\n  password: {pw}\n  tls.crt: {crt}\n  user: YWRtaW4={extra}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  template:\n    metadata:\n      annotations:\n        checksum/secret: {sum}\n    spec:\n      containers:\n      - name: web\n        image: nginx\n{pod}")
    }

    const HARDENED: &str = "        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n        volumeMounts: [{name: tmp, mountPath: /tmp}]\n      securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}\n      volumes: [{name: tmp, emptyDir: {}}]\n";

    #[test]
    fn fields_that_vary_by_themselves_are_not_compared_and_are_named() {
        let before = generated("cGFzcw==", "Y2VydDE=", "aaa", "", "");
        let after = generated("b3RoZXI=", "Y2VydDI=", "bbb", "", HARDENED);
        let again = || Ok(generated("dGhpcmQ=", "Y2VydDM=", "ccc", "", ""));
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
        assert_eq!(verdict.problems, vec![]);
        assert_eq!(
            verdict.not_compared,
            vec![
                "Deployment/web spec.template.metadata.annotations.checksum/secret",
                "Secret/web data.password",
                "Secret/web data.tls.crt",
            ]
        );
        let note = verdict.not_compared_note("chart").unwrap();
        assert!(
            note.contains("two renders of the unchanged chart"),
            "{note}"
        );
    }

    #[test]
    fn a_real_change_beside_fields_that_vary_still_counts() {
        let before = generated("cGFzcw==", "Y2VydDE=", "aaa", "", "");
        let again = || Ok(generated("dGhpcmQ=", "Y2VydDM=", "ccc", "", ""));
        // The edits add a key to the Secret's data (whose keys are stable), and change a
        // value the two unedited renders agree on.
        let added = generated("b3RoZXI=", "Y2VydDI=", "bbb", "\n  extra: eA==", HARDENED);
        let changed = added
            .replace("user: YWRtaW4=", "user: cm9vdA==")
            .replace("replicas: 1", "replicas: 2");
        for (after, fields) in [
            (added.clone(), vec!["Secret/web: data"]),
            (
                changed,
                vec!["Secret/web: data", "Deployment/web: spec.replicas"],
            ),
        ] {
            let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
            let broken: Vec<String> = verdict
                .problems
                .iter()
                .filter_map(|p| match &p.kind {
                    ProblemKind::Broken(why) => Some(format!("{}: {why}", p.object)),
                    ProblemKind::Short { .. } => None,
                })
                .collect();
            assert_eq!(broken.len(), fields.len(), "{broken:#?}");
            for field in fields {
                let (object, path) = field.split_once(": ").unwrap();
                assert!(
                    broken.iter().any(|b| b.starts_with(object)
                        && b.ends_with(&format!("the writable /tmp ({path})"))),
                    "{field}: {broken:#?}"
                );
            }
        }
    }

    #[test]
    fn a_second_render_runs_only_when_the_first_comparison_fails() {
        let calls = std::cell::Cell::new(0);
        let again = || {
            calls.set(calls.get() + 1);
            Ok(generated("cGFzcw==", "Y2VydDE=", "aaa", "", ""))
        };
        let before = generated("cGFzcw==", "Y2VydDE=", "aaa", "", "");
        let after = generated("cGFzcw==", "Y2VydDE=", "aaa", "", HARDENED);
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
        assert_eq!((verdict.problems, calls.get()), (vec![], 0));
        // A deterministic render with a real change: asked once, and nothing is excused.
        let after = after.replace("replicas: 1", "replicas: 3");
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
        assert_eq!((verdict.problems.len(), calls.get()), (1, 1));
        assert_eq!(verdict.not_compared, Vec::<String>::new());
    }

    #[test]
    fn the_chart_s_own_tmp_emptydir_is_the_writable_tmp() {
        let own = "        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n        volumeMounts: [{name: tmpdir, mountPath: /tmp}]\n      securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}\n      volumes: [{name: tmpdir, emptyDir: {sizeLimit: 64Mi}}]\n";
        let before = generated("cGFzcw==", "Y2VydDE=", "aaa", "", "");
        let after = generated("cGFzcw==", "Y2VydDE=", "aaa", "", own);
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &no_second).unwrap();
        assert_eq!(verdict.problems, vec![]);
        // Mounted somewhere else as well, it is more than a writable /tmp.
        let twice = own.replace(
            "[{name: tmpdir, mountPath: /tmp}]",
            "[{name: tmpdir, mountPath: /tmp}, {name: tmpdir, mountPath: /var/cache}]",
        );
        let after = generated("cGFzcw==", "Y2VydDE=", "aaa", "", &twice);
        let again = || Ok(before.clone());
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
        assert_eq!(verdict.problems.len(), 1, "{:#?}", verdict.problems);
    }

    #[test]
    fn an_empty_dir_at_a_volume_the_image_declares_is_the_tool_s_own() {
        use crate::policy::{ImageFacts, ImageLookup, ImageUser};
        let with_data = HARDENED
            .replace(
                "[{name: tmp, mountPath: /tmp}]",
                "[{name: tmp, mountPath: /tmp}, {name: data, mountPath: /data}]",
            )
            .replace(
                "[{name: tmp, emptyDir: {}}]",
                "[{name: tmp, emptyDir: {}}, {name: data, emptyDir: {}}]",
            );
        let before = generated("cGFzcw==", "Y2VydDE=", "aaa", "", "");
        let after = generated("cGFzcw==", "Y2VydDE=", "aaa", "", &with_data);
        let facts = std::sync::Arc::new(ImageFacts {
            digest: "sha256:0".into(),
            user_text: String::new(),
            user: ImageUser::Root,
            volumes: vec!["/data".into()],
            ports: vec![],
            entrypoint: vec![],
            cmd: vec![],
            root_only_paths: vec![],
        });
        let rules = Rules {
            images: ImageLookup::new(std::sync::Arc::new(move |_: &str| Ok(facts.clone()))),
            ..Rules::default()
        };
        let verdict = judge(&before, &after, &rules, &|_| None, &no_second).unwrap();
        assert_eq!(verdict.problems, vec![]);
        // Without the image's word, a new volume at /data is a change outside the contexts.
        let again = || Ok(before.clone());
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
        assert_eq!(verdict.problems.len(), 1, "{:#?}", verdict.problems);
    }

    #[test]
    fn an_object_whose_name_varies_is_not_compared_and_is_named() {
        // A hook Job named with `randAlphaNum`: another name in every render.
        let job = |suffix: &str| {
            format!("---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate-{suffix}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: migrate\n")
        };
        let before = job("x1b2c");
        let after = job("k9d8e").replace(
            "        image: migrate\n",
            &format!("        image: migrate\n{HARDENED}"),
        );
        let again = || Ok(job("q7r6s"));
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &again).unwrap();
        assert_eq!(verdict.problems, vec![]);
        assert_eq!(
            verdict.not_compared,
            vec![
                "Job/migrate-k9d8e (its name varies)",
                "Job/migrate-x1b2c (its name varies)"
            ]
        );
        // Without a second render that renames it, a new name is a new object.
        let same = || Ok(before.clone());
        let verdict = judge(&before, &after, &Rules::default(), &|_| None, &same).unwrap();
        assert_eq!(verdict.problems.len(), 2, "{:#?}", verdict.problems);
    }
}
