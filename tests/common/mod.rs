//! Independent oracles shared by the integration tests: pod specs found in plain data, data
//! with every securityContext removed, and the typed check with k8s-openapi.

// Each test crate uses a different part of these helpers.
#![allow(dead_code)]

pub mod fake_github;
pub mod git_http;
pub mod git_remote;

use std::path::Path;
use std::process::Output;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodSpec, PodTemplate, ReplicationController, SecurityContext,
};
use yaml_serde::Value;

const TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
];

/// Mutable pod specs of one document, found by kind (lists included).
pub fn pod_specs_mut(doc: &mut Value) -> Vec<&mut Value> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if kind.ends_with("List") {
        return match doc.get_mut("items") {
            Some(Value::Sequence(items)) => items.iter_mut().flat_map(pod_specs_mut).collect(),
            _ => vec![],
        };
    }
    let path: &[&str] = match kind.as_str() {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        k if TEMPLATE_KINDS.contains(&k) => &["spec", "template", "spec"],
        _ if doc
            .get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec"))
            .and_then(|s| s.get("containers"))
            .is_some() =>
        {
            &["spec", "template", "spec"]
        }
        _ => return vec![],
    };
    let mut node = doc;
    for key in path {
        match node.get_mut(*key) {
            Some(next) => node = next,
            None => return vec![],
        }
    }
    if node.is_mapping() {
        vec![node]
    } else {
        vec![]
    }
}

/// The documents with every pod-level and container-level `securityContext` removed.
pub fn strip_security_contexts(mut docs: Vec<Value>) -> Vec<Value> {
    for doc in &mut docs {
        for pod in pod_specs_mut(doc) {
            let Value::Mapping(pod) = pod else { continue };
            pod.remove("securityContext");
            for key in ["initContainers", "containers", "ephemeralContainers"] {
                if let Some(Value::Sequence(cs)) = pod.get_mut(key) {
                    for c in cs.iter_mut() {
                        if let Value::Mapping(c) = c {
                            c.remove("securityContext");
                        }
                    }
                }
            }
        }
    }
    docs
}

/// Counts of the typed check.
#[derive(Default, Debug)]
pub struct TypedOutcome {
    pub checked: usize,
    /// Documents whose kind/apiVersion k8s-openapi has no type for, or that fail typing before
    /// the fix already (old apiVersions, YAML 1.1 octals).
    pub untyped: usize,
}

impl TypedOutcome {
    /// Types `after` and asserts the contract's fields positively; typing must not newly fail.
    pub fn check(
        &mut self,
        file: &Path,
        before: &Value,
        after: &Value,
        problems: &mut Vec<String>,
    ) {
        if typed_pod_specs(before).is_none() {
            self.untyped += 1;
            return;
        }
        match typed_pod_specs(after) {
            None => problems.push(format!(
                "{}: typed before the fix but not after",
                file.display()
            )),
            Some(specs) => {
                for spec in specs {
                    self.checked += 1;
                    if !left_alone(&spec) {
                        problems.extend(
                            contract_gaps(&spec)
                                .into_iter()
                                .map(|g| format!("{}: {g}", file.display())),
                        );
                    }
                }
            }
        }
    }
}

fn from<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    yaml_serde::from_value(v.clone()).ok()
}

/// The pod specs of a document as k8s-openapi types; None when it cannot be typed.
pub fn typed_pod_specs(doc: &Value) -> Option<Vec<PodSpec>> {
    let kind = doc.get("kind")?.as_str()?;
    let api = doc.get("apiVersion")?.as_str()?;
    let spec = match (api, kind) {
        ("v1", "Pod") => from::<Pod>(doc)?.spec,
        ("v1", "ReplicationController") => from::<ReplicationController>(doc)?.spec?.template?.spec,
        ("v1", "PodTemplate") => from::<PodTemplate>(doc)?.template?.spec,
        ("apps/v1", "Deployment") => from::<Deployment>(doc)?.spec.template.spec,
        ("apps/v1", "StatefulSet") => from::<StatefulSet>(doc)?.spec.template.spec,
        ("apps/v1", "DaemonSet") => from::<DaemonSet>(doc)?.spec.template.spec,
        ("apps/v1", "ReplicaSet") => from::<ReplicaSet>(doc)?.spec.template?.spec,
        ("batch/v1", "Job") => from::<Job>(doc)?.spec?.template.spec,
        ("batch/v1", "CronJob") => from::<CronJob>(doc)?.spec.job_template.spec?.template.spec,
        _ => return None,
    };
    Some(spec.into_iter().collect())
}

/// Windows pods and pods with a privileged (or SYS_ADMIN/ALL-adding) container are left alone.
fn left_alone(spec: &PodSpec) -> bool {
    let windows = spec.os.as_ref().is_some_and(|o| o.name == "windows")
        || spec
            .node_selector
            .as_ref()
            .and_then(|n| n.get("kubernetes.io/os"))
            .is_some_and(|o| o == "windows");
    let privileged = all_containers(spec).any(|sc| {
        sc.is_some_and(|sc| {
            sc.privileged == Some(true)
                || sc
                    .capabilities
                    .as_ref()
                    .and_then(|c| c.add.as_ref())
                    .is_some_and(|a| {
                        a.iter()
                            .any(|c| matches!(c.as_str(), "SYS_ADMIN" | "CAP_SYS_ADMIN" | "ALL"))
                    })
        })
    });
    windows || privileged
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = Option<&SecurityContext>> {
    let regular = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c: &Container| c.security_context.as_ref());
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| c.security_context.as_ref());
    regular.chain(ephemeral)
}

/// Every way the spec misses the contract.
pub fn contract_gaps(spec: &PodSpec) -> Vec<String> {
    let mut gaps = Vec::new();
    let Some(psc) = &spec.security_context else {
        return vec!["pod securityContext missing".into()];
    };
    if psc.run_as_non_root != Some(true) {
        gaps.push("pod runAsNonRoot is not true".into());
    }
    for (name, v) in [
        ("runAsUser", psc.run_as_user),
        ("runAsGroup", psc.run_as_group),
        ("fsGroup", psc.fs_group),
    ] {
        if v.unwrap_or(0) == 0 {
            gaps.push(format!("pod {name} is {v:?}"));
        }
    }
    let seccomp = psc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        gaps.push(format!("pod seccompProfile is {seccomp:?}"));
    }
    for sc in all_containers(spec) {
        let Some(sc) = sc else {
            gaps.push("a container has no securityContext".into());
            continue;
        };
        if sc.allow_privilege_escalation != Some(false) {
            gaps.push("container allowPrivilegeEscalation is not false".into());
        }
        if sc.read_only_root_filesystem != Some(true) {
            gaps.push("container readOnlyRootFilesystem is not true".into());
        }
        if !sc
            .capabilities
            .as_ref()
            .and_then(|c| c.drop.as_ref())
            .is_some_and(|d| d.iter().any(|c| c == "ALL"))
        {
            gaps.push("container capabilities.drop lacks ALL".into());
        }
        if sc.run_as_user == Some(0)
            || sc.run_as_group == Some(0)
            || sc.run_as_non_root == Some(false)
        {
            gaps.push("container overrides the pod with root".into());
        }
        let ct = sc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
        if ct.is_some_and(|t| !matches!(t, "RuntimeDefault" | "Localhost")) {
            gaps.push(format!("container seccompProfile is {ct:?}"));
        }
    }
    gaps
}

/// Runs the `kube-harden` binary in `dir` with `args`, without colour.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("kube-harden")
        .unwrap()
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Copies a folder recursively (fixtures hold no symlinks).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Reads a `$GITHUB_OUTPUT` file the way the runner does: `name=value`, or `name<<DELIM`, the
/// value's lines, then a line that is exactly `DELIM`.
pub fn parse_outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.split('\n');
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let heredoc = line.find("<<");
        let equals = line.find('=');
        match (heredoc, equals) {
            (Some(h), e) if e.is_none_or(|e| h < e) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                let mut value = Vec::new();
                loop {
                    let next = lines.next().expect("heredoc is closed by its delimiter");
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                out.insert(name.to_string(), value.join("\n"));
            }
            (_, Some(e)) => {
                out.insert(line[..e].to_string(), line[e + 1..].to_string());
            }
            _ => panic!("not an output line: {line:?}"),
        }
    }
    out
}
