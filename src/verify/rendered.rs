//! The rendered check's judge, shared by every source that renders (Kustomize builds, Helm
//! templates): a rendered stream after the edits against the stream before. Every rendered pod
//! meets the contract or is left alone (the policy, run on the rendered objects, says which), a
//! pod left alone renders as it did, explicit non-zero ids are kept, no pod becomes one the API
//! server or the kubelet refuses, and outside securityContexts and the writable `/tmp`
//! additions every rendered object is as it was. Where an object came from is the caller's
//! knowledge (an origin annotation, a `# Source:` comment), passed in as a function.

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

/// Judges the stream `after` against `before` (both rendered from the same input).
pub fn judge(
    before: &str,
    after: &str,
    rules: &Rules,
    origin_of: Origin,
) -> Result<Vec<Problem>, String> {
    let old = objects(before)?;
    let new = objects(after)?;
    let mut problems = Vec::new();
    let left_alone = left_alone_objects(before, rules);
    for (name, object) in &new {
        let broken = |message: String| Problem {
            object: name.clone(),
            origin: origin_of(object),
            kind: ProblemKind::Broken(message),
        };
        let Some(was) = old.get(name) else {
            problems.push(broken("appears in the render only after the edits".into()));
            continue;
        };
        let added = added_tmp_volumes(was, object);
        if strip(was.clone(), &[]) != strip(object.clone(), &added) {
            problems.push(broken(
                "the edits change the rendered object outside its securityContexts and the writable /tmp".into(),
            ));
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
        problems.push(Problem {
            object: name.clone(),
            origin: origin_of(&old[name]),
            kind: ProblemKind::Broken("is no longer rendered after the edits".into()),
        });
    }
    problems.extend(short_of_baseline(after, &new, rules, origin_of));
    Ok(problems)
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
        .map(|f| {
            let w = &plan.workloads[f.workload];
            let found = objects
                .iter()
                .find(|(n, _)| n.kind == w.kind && n.name == w.name);
            Problem {
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
            }
        })
        .collect()
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

/// The writable-`/tmp` volumes the edits added: an `emptyDir` named `tmp` or `kube-harden-tmp`
/// that the pod before did not have.
fn added_tmp_volumes(old: &Value, new: &Value) -> Vec<String> {
    let volumes = |object: &Value| -> Vec<Value> {
        pod_spec(object)
            .and_then(|p| p.get("volumes"))
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default()
    };
    let before = volumes(old);
    volumes(new)
        .into_iter()
        .filter(|v| {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            let empty_dir = v
                .get("emptyDir")
                .is_some_and(|e| e.as_mapping().is_some_and(|m| m.is_empty()));
            matches!(name, "tmp" | "kube-harden-tmp")
                && empty_dir
                && !before.iter().any(|b| b.get("name") == v.get("name"))
        })
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The object without securityContexts, the `added` volumes and their mounts at `/tmp`.
fn strip(mut object: Value, added: &[String]) -> Value {
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
            if let Some(Value::Sequence(mounts)) = c.get_mut("volumeMounts") {
                mounts.retain(|m| {
                    let path = m.get("mountPath").and_then(Value::as_str);
                    !(path == Some("/tmp") && is_added(m))
                });
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

    const BEFORE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1337\n      containers:\n      - name: web\n        image: nginx\n";

    #[test]
    fn a_hardened_render_that_keeps_the_uid_passes() {
        let after = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1337\n        runAsNonRoot: true\n        runAsGroup: 1000\n        fsGroup: 1000\n        seccompProfile: {type: RuntimeDefault}\n      containers:\n      - name: web\n        image: nginx\n        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}\n        volumeMounts: [{name: tmp, mountPath: /tmp}]\n      volumes: [{name: tmp, emptyDir: {}}]\n";
        assert_eq!(
            judge(BEFORE, after, &Rules::default(), &|_| None).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_changed_uid_another_change_and_a_short_control_are_found() {
        let after = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 1000\n      containers:\n      - name: web\n        image: nginx:2\n";
        let problems = judge(BEFORE, after, &Rules::default(), &|_| None).unwrap();
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
}
