//! Flux's post-build variable substitution: a Flux `Kustomization` (kustomize.toolkit.fluxcd.io)
//! that builds a folder may replace `${var}` in what the folder builds with the values of
//! `spec.postBuild.substitute` and of the ConfigMaps and Secrets `spec.postBuild.substituteFrom`
//! names (later sources win; `substitute` wins over all). `${var:=default}` and `${var:-default}`
//! take the default when the variable is unset; `$${var}` is a literal `${var}`; an object
//! annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` is left as it is. Flux replaces
//! a variable it cannot resolve with nothing: here it is named, so the user can tell.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// The variables of the Flux `Kustomization`s that build one folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vars {
    pub values: BTreeMap<String, String>,
    /// The Flux `Kustomization` they come from (its file), for messages.
    pub from: String,
    /// Sources of variables that are not in the repository (a Secret), by name.
    pub missing: Vec<String>,
}

/// The text with its variables replaced, and the names of those nothing resolves.
pub fn apply(text: &str, vars: &Vars) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unresolved = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(escaped) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        match reference(tail) {
            Some((len, name, default)) => {
                match (vars.values.get(name), default) {
                    (Some(value), _) => out.push_str(value),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => {
                        if !unresolved.iter().any(|u| u == name) {
                            unresolved.push(name.to_string());
                        }
                    }
                }
                rest = &tail[len..];
            }
            None => {
                out.push('$');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    (out, unresolved)
}

/// `${name}`, `${name:=default}`, `${name:-default}` at the start of `text`: its length, the
/// name and the default.
fn reference(text: &str) -> Option<(usize, &str, Option<&str>)> {
    let inner = text.strip_prefix("${")?;
    let end = inner.find('}')?;
    let body = &inner[..end];
    let (name, default) = match body.find([':', '=', '-']) {
        Some(at) => {
            let op = &body[at..];
            let default = op
                .strip_prefix(":=")
                .or_else(|| op.strip_prefix(":-"))
                .or_else(|| op.strip_prefix('='))
                .or_else(|| op.strip_prefix('-'))?;
            (&body[..at], Some(default))
        }
        None => (body, None),
    };
    let valid = name.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    valid.then_some((end + 3, name, default))
}

/// The data of a ConfigMap or Secret by kind, namespace and name.
pub type LookupData<'a> = dyn Fn(&str, Option<&str>, &str) -> Option<BTreeMap<String, String>> + 'a;

/// Whether an object asks not to be substituted.
pub fn disabled(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations/kustomize.toolkit.fluxcd.io~1substitute")
        .and_then(Value::as_str)
        == Some("disabled")
}

/// The variables a Flux `Kustomization` object gives the folder it builds: `substituteFrom`
/// objects in order (found by `lookup`: kind, namespace, name to their data), then
/// `substitute`. None when it substitutes nothing.
pub fn vars_of(object: &Value, file: &Path, lookup: &LookupData<'_>) -> Option<Vars> {
    let post = object.pointer("/spec/postBuild")?;
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let mut vars = Vars {
        from: file.display().to_string(),
        ..Vars::default()
    };
    for source in post
        .get("substituteFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = source
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("ConfigMap");
        let Some(name) = source.get("name").and_then(Value::as_str) else {
            continue;
        };
        let optional = source.get("optional").and_then(Value::as_bool) == Some(true);
        match lookup(kind, namespace, name) {
            Some(data) => vars.values.extend(data),
            None if optional => {}
            None => vars.missing.push(format!("{kind} `{name}`")),
        }
    }
    if let Some(map) = post.get("substitute").and_then(Value::as_object) {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vars.values.insert(k.clone(), text);
        }
    }
    Some(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        Vars {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Vars::default()
        }
    }

    #[test]
    fn variables_defaults_escapes_and_the_unresolved() {
        let v = vars(&[("cluster", "prod"), ("replicas", "3")]);
        let (text, unresolved) = apply(
            "name: web-${cluster}\nreplicas: ${replicas}\ntag: ${tag:=1.2}\nlevel: ${level:-info}\nraw: $${cluster}\nshell: $HOME\nmissing: ${region}\n",
            &v,
        );
        assert_eq!(
            text,
            "name: web-prod\nreplicas: 3\ntag: 1.2\nlevel: info\nraw: ${cluster}\nshell: $HOME\nmissing: \n"
        );
        assert_eq!(unresolved, vec!["region".to_string()]);
    }

    #[test]
    fn substitute_wins_over_substitute_from_and_a_missing_secret_is_named() {
        let object: Value = serde_json::json!({
            "metadata": {"namespace": "flux-system"},
            "spec": {"postBuild": {
                "substitute": {"cluster": "prod", "replicas": 3},
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "cluster-vars"},
                    {"kind": "Secret", "name": "cluster-secrets"},
                    {"kind": "Secret", "name": "extra", "optional": true}
                ]
            }}
        });
        let lookup = |kind: &str, _: Option<&str>, name: &str| {
            (kind == "ConfigMap" && name == "cluster-vars").then(|| {
                [("cluster", "staging"), ("domain", "example.com")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
        };
        let vars = vars_of(&object, Path::new("clusters/prod/apps.yaml"), &lookup).unwrap();
        assert_eq!(vars.values["cluster"], "prod");
        assert_eq!(vars.values["replicas"], "3");
        assert_eq!(vars.values["domain"], "example.com");
        assert_eq!(vars.missing, vec!["Secret `cluster-secrets`".to_string()]);
    }

    #[test]
    fn an_object_can_opt_out() {
        let object: Value = serde_json::json!({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/substitute": "disabled"}}});
        assert!(disabled(&object));
        assert!(!disabled(&serde_json::json!({"metadata": {}})));
    }
}
