//! Which containers to prove: the workloads of a set of Kubernetes objects before and after the
//! change, paired by kind, namespace and name, and within them each container whose run would
//! differ (its own entry, or its pod's securityContext or volumes). Objects come in parsed;
//! where they came from (a manifest, a render) is the caller's knowledge.

use serde_json::Value;

use super::translate::Side;

/// One container to run as it was and as it will be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    /// Where the workload is, for messages: a file, or a rendered source.
    pub origin: String,
    /// The changed files it comes from (the caller fills them in).
    pub files: Vec<std::path::PathBuf>,
    /// `Deployment/web`.
    pub workload: String,
    pub container: String,
    pub before: Side,
    pub after: Side,
}

/// The containers that change between `before` and `after` (objects as parsed), in order.
/// Init containers run to their end and are not proven.
pub fn changed_containers(origin: &str, before: &[Value], after: &[Value]) -> Vec<Case> {
    let mut cases = Vec::new();
    for new in after {
        let Some((id, new_pod)) = workload(new) else {
            continue;
        };
        let Some(old_pod) = before
            .iter()
            .filter_map(workload)
            .find(|(old_id, _)| *old_id == id)
            .map(|(_, pod)| pod)
        else {
            continue;
        };
        for container in new_pod["containers"].as_array().into_iter().flatten() {
            let Some(name) = container["name"].as_str() else {
                continue;
            };
            let Some(old) = old_pod["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"].as_str() == Some(name))
            else {
                continue;
            };
            let before = side(old_pod, old);
            let after = side(new_pod, container);
            if before != after && container["image"].is_string() {
                cases.push(Case {
                    origin: origin.to_string(),
                    files: vec![],
                    workload: id.label(),
                    container: name.to_string(),
                    before,
                    after,
                });
            }
        }
    }
    cases
}

/// A container's side: what of its pod matters to its run (securityContext, volumes) and itself.
fn side(pod: &Value, container: &Value) -> Side {
    let mut kept = serde_json::Map::new();
    for key in ["securityContext", "volumes"] {
        if let Some(v) = pod.get(key) {
            kept.insert(key.to_string(), v.clone());
        }
    }
    Side {
        pod: Value::Object(kept),
        container: container.clone(),
    }
}

#[derive(PartialEq, Eq)]
struct WorkloadId {
    kind: String,
    namespace: String,
    name: String,
}

impl WorkloadId {
    fn label(&self) -> String {
        match self.namespace.as_str() {
            "" => format!("{}/{}", self.kind, self.name),
            ns => format!("{}/{}/{}", self.kind, ns, self.name),
        }
    }
}

/// An object's identity and pod spec, if it holds one with containers.
fn workload(object: &Value) -> Option<(WorkloadId, &Value)> {
    let kind = object["kind"].as_str()?;
    let mut pod = object;
    for key in crate::policy::pod_spec_path(kind) {
        pod = pod.get(*key)?;
    }
    pod.get("containers")?.as_array()?;
    let metadata = &object["metadata"];
    Some((
        WorkloadId {
            kind: kind.to_string(),
            namespace: metadata["namespace"].as_str().unwrap_or_default().into(),
            name: metadata["name"].as_str().unwrap_or_default().into(),
        },
        pod,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(name: &str, context: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "example/app:1", "securityContext": context},
                {"name": "side", "image": "example/side:1"}
            ]}}}
        })
    }

    #[test]
    fn only_changed_containers_of_paired_workloads_are_proven() {
        let before = [
            deployment("web", json!({})),
            deployment("gone", json!({})),
            json!({"kind": "Service", "metadata": {"name": "web"}}),
        ];
        let after = [
            deployment("web", json!({"readOnlyRootFilesystem": true})),
            deployment("new", json!({"readOnlyRootFilesystem": true})),
            json!({"kind": "Service", "metadata": {"name": "web"}}),
        ];
        let cases = changed_containers("k8s/web.yaml", &before, &after);
        assert_eq!(cases.len(), 1, "{cases:?}");
        assert_eq!(cases[0].workload, "Deployment/web");
        assert_eq!(cases[0].container, "app");
        assert_eq!(
            cases[0].after.container["securityContext"]["readOnlyRootFilesystem"],
            json!(true)
        );
    }

    #[test]
    fn a_pod_context_change_proves_every_container() {
        let mut after = deployment("web", json!({}));
        after["spec"]["template"]["spec"]["securityContext"] = json!({"runAsNonRoot": true});
        let cases = changed_containers("x", &[deployment("web", json!({}))], &[after]);
        let names: Vec<&str> = cases.iter().map(|c| c.container.as_str()).collect();
        assert_eq!(names, ["app", "side"]);
    }
}
