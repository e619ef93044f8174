//! The GitOps-native remedy when a chart's values cannot express the baseline (no
//! securityContext values, no volume lists, a template that hard-codes a value): a Flux
//! `HelmRelease` gets `spec.postRenderers[].kustomize.patches`, one strategic-merge patch per
//! rendered workload that still falls short, which Flux applies to what Helm renders. The
//! patches are made from the chart rendered with the release's own name and its values as the
//! edits leave them: the policy plans that render as a manifest, and each patch carries what it
//! changes (pod and container securityContexts, the writable /tmp's mount and volume). Applying
//! them is Kustomize's business: the pipeline hands in a function ([`ApplyPatches`]).

use serde_json::{json, Map, Value};
use yaml_splice::{NewValue, Tree};

use crate::policy::Rules;

/// One patch: the object it targets (kind, name as rendered) and the patch document.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    pub kind: String,
    pub name: String,
    pub text: String,
}

/// Applies patches to a rendered stream with Kustomize's engine: the patched stream, or why not.
pub type ApplyPatches<'a> = dyn Fn(&str, &[Patch]) -> Result<String, String> + Sync + 'a;

/// The name Flux installs a release under: `spec.releaseName`, else `metadata.name` (with
/// `spec.targetNamespace-` before it when set).
pub fn release_name(object: &Value) -> Option<String> {
    if let Some(name) = object.pointer("/spec/releaseName").and_then(Value::as_str) {
        return Some(name.to_string());
    }
    let name = object.pointer("/metadata/name").and_then(Value::as_str)?;
    Some(
        match object
            .pointer("/spec/targetNamespace")
            .and_then(Value::as_str)
        {
            Some(ns) => format!("{ns}-{name}"),
            None => name.to_string(),
        },
    )
}

/// The patches that bring each workload of `rendered` to the baseline (none for a pod left to
/// a person, or one that meets it already).
pub fn patches(rendered: &str, rules: &Rules) -> Result<Vec<Patch>, String> {
    let tree = Tree::parse(rendered).map_err(|e| e.message)?;
    let plan = crate::policy::plan(&tree, rules);
    if plan.changes.is_empty() {
        return Ok(vec![]);
    }
    let outcome =
        yaml_splice::apply_changes(&tree, plan.changes).map_err(|e| e.message.to_string())?;
    let old = crate::verify::load_all(rendered).map_err(|e| e.to_string())?;
    let new = crate::verify::load_all(&outcome.text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (was, now) in old.iter().zip(&new) {
        let (was, now) = (to_json(was), to_json(now));
        if was == now {
            continue;
        }
        let (Some(kind), Some(name)) = (
            now.get("kind").and_then(Value::as_str),
            now.pointer("/metadata/name").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Some(body) = patch_of(&was, &now) else {
            continue;
        };
        let text = yaml_serde::to_string(&body).map_err(|e| e.to_string())?;
        out.push(Patch {
            kind: kind.to_string(),
            name: name.to_string(),
            text,
        });
    }
    Ok(out)
}

fn to_json(value: &yaml_serde::Value) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The strategic-merge patch from `was` to `now` for their pod template: the pod's
/// securityContext, each container's (by name), and mounts and volumes that are new.
fn patch_of(was: &Value, now: &Value) -> Option<Value> {
    let path = pod_path(now)?;
    let (old_pod, new_pod) = (was.pointer(&path)?, now.pointer(&path)?);
    let mut pod = Map::new();
    if old_pod.get("securityContext") != new_pod.get("securityContext") {
        pod.insert("securityContext".into(), new_pod["securityContext"].clone());
    }
    for list in ["initContainers", "containers"] {
        let containers = container_patches(old_pod.get(list), new_pod.get(list));
        if !containers.is_empty() {
            pod.insert(list.into(), Value::Array(containers));
        }
    }
    let volumes = added(old_pod.get("volumes"), new_pod.get("volumes"), "name");
    if !volumes.is_empty() {
        pod.insert("volumes".into(), Value::Array(volumes));
    }
    if pod.is_empty() {
        return None;
    }
    let mut body = Value::Object(pod);
    for key in path.trim_start_matches('/').split('/').rev() {
        body = json!({ key: body });
    }
    let mut patch = json!({
        "apiVersion": now["apiVersion"],
        "kind": now["kind"],
        "metadata": {"name": now["metadata"]["name"]},
    });
    merge_into(&mut patch, body);
    Some(patch)
}

fn merge_into(into: &mut Value, other: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, other) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

/// The JSON pointer of an object's pod spec.
fn pod_path(object: &Value) -> Option<String> {
    let path = match object.get("kind")?.as_str()? {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    object.pointer(path).map(|_| path.to_string())
}

/// Per container that changed: its name, its new securityContext, and its new mounts.
fn container_patches(old: Option<&Value>, new: Option<&Value>) -> Vec<Value> {
    let Some(new) = new.and_then(Value::as_array) else {
        return vec![];
    };
    let old = old.and_then(Value::as_array);
    let mut out = Vec::new();
    for container in new {
        let name = &container["name"];
        let before = old.and_then(|o| o.iter().find(|c| &c["name"] == name));
        let mut patch = Map::new();
        if before.and_then(|b| b.get("securityContext")) != container.get("securityContext") {
            patch.insert(
                "securityContext".into(),
                container["securityContext"].clone(),
            );
        }
        let mounts = added(
            before.and_then(|b| b.get("volumeMounts")),
            container.get("volumeMounts"),
            "mountPath",
        );
        if !mounts.is_empty() {
            patch.insert("volumeMounts".into(), Value::Array(mounts));
        }
        if !patch.is_empty() {
            patch.insert("name".into(), name.clone());
            out.push(Value::Object(patch));
        }
    }
    out
}

/// The items of `new` whose `key` no item of `old` has.
fn added(old: Option<&Value>, new: Option<&Value>, key: &str) -> Vec<Value> {
    let old: Vec<&Value> = old
        .and_then(Value::as_array)
        .map(|l| l.iter().map(|i| &i[key]).collect())
        .unwrap_or_default();
    new.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| !old.contains(&&i[key]))
        .cloned()
        .collect()
}

/// The `postRenderers` list that carries the patches (a new key of the release's `spec`).
pub fn as_post_renderers(patches: &[Patch]) -> NewValue {
    let entries = patches
        .iter()
        .map(|p| {
            NewValue::map(vec![
                (
                    "target",
                    NewValue::map(vec![
                        ("kind", NewValue::str(&p.kind)),
                        ("name", NewValue::str(&p.name)),
                    ]),
                ),
                ("patch", NewValue::str(&p.text)),
            ])
        })
        .collect();
    NewValue::Seq(vec![NewValue::map(vec![(
        "kustomize",
        NewValue::map(vec![("patches", NewValue::Seq(entries))]),
    )])])
}

/// The patches of a release's `spec.postRenderers` (kustomize patches with a target kind and
/// name), to apply when the release is rendered; Err for post-renderers this tool does not
/// apply (images, JSON 6902 lists without a target).
pub fn existing(object: &Value) -> Result<Vec<Patch>, String> {
    let mut out = Vec::new();
    for renderer in object
        .pointer("/spec/postRenderers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(kustomize) = renderer.get("kustomize") else {
            continue;
        };
        if kustomize.get("images").is_some() {
            return Err("its post-renderers replace images".into());
        }
        for patch in kustomize
            .get("patches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let target = patch.get("target");
            let field = |k: &str| target.and_then(|t| t.get(k)).and_then(Value::as_str);
            let (Some(kind), Some(name), Some(text)) = (
                field("kind"),
                field("name"),
                patch.get("patch").and_then(Value::as_str),
            ) else {
                return Err("a post-renderer patch without a target kind and name".into());
            };
            out.push(Patch {
                kind: kind.into(),
                name: name.into(),
                text: text.into(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_deployment_gets_a_patch_of_what_the_policy_sets() {
        let rendered = "---\n# Source: x/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-x\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          image: x:1\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web-x\n";
        let patches = patches(rendered, &Rules::default()).unwrap();
        assert_eq!(patches.len(), 1);
        assert_eq!(
            (patches[0].kind.as_str(), patches[0].name.as_str()),
            ("Deployment", "web-x")
        );
        let body: Value = serde_json::to_value(
            yaml_serde::from_str::<yaml_serde::Value>(&patches[0].text).unwrap(),
        )
        .unwrap();
        let pod = &body["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["containers"][0]["name"], "x");
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
        assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/tmp");
        assert_eq!(pod["volumes"][0]["emptyDir"], json!({}));
        assert!(
            pod["containers"][0].get("image").is_none(),
            "only what changes"
        );
    }

    #[test]
    fn flux_names_the_release() {
        assert_eq!(
            release_name(
                &json!({"metadata": {"name": "web"}, "spec": {"targetNamespace": "prod"}})
            ),
            Some("prod-web".into())
        );
        assert_eq!(
            release_name(&json!({"metadata": {"name": "web"}, "spec": {"releaseName": "w"}})),
            Some("w".into())
        );
    }
}
