//! Independent oracles shared by the integration tests: pod specs found in plain data, data
//! with every securityContext removed, and the typed check with k8s-openapi.

// Each test crate uses a different part of these helpers.
#![allow(dead_code)]

pub mod chart_server;
pub mod engine;
pub mod fake_github;
pub mod git_http;
pub mod git_remote;
pub mod helm;
pub mod processes;
pub mod registry;

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

/// A document's `kind`, or "" when it has none.
fn kind_of(doc: &Value) -> String {
    doc.get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Mutable pod specs of one document, found by kind (lists included).
pub fn pod_specs_mut(doc: &mut Value) -> Vec<&mut Value> {
    let kind = kind_of(doc);
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

/// Asserts that the render `now` is the render `was` but for securityContexts and, when `now`
/// mounts a /tmp, the writable /tmp additions (as for a manifest).
pub fn assert_only_hardened(was: Vec<Value>, now: &[Value], label: &str) {
    let with_tmp = now.iter().any(|d| {
        yaml_serde::to_string(d)
            .unwrap()
            .contains("mountPath: /tmp")
    });
    let expected = match with_tmp {
        true => strip_security_contexts(with_tmp_additions(was)),
        false => strip_security_contexts(was),
    };
    assert_eq!(
        expected,
        strip_security_contexts(now.to_vec()),
        "{label}: nothing but securityContexts and the writable /tmp changed in the render"
    );
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

/// Whether a pod spec (plain data) is one the contract leaves to a person: a Windows pod, a
/// container that is privileged or adds SYS_ADMIN/CAP_SYS_ADMIN/ALL, or (unless `host_opt_in`)
/// host access: `hostPID`, `hostNetwork` or `hostIPC` set to `true`, or a `hostPath` volume.
pub fn pod_left_alone(pod: &Value, host_opt_in: bool) -> bool {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let windows = text(pod.get("os").and_then(|o| o.get("name"))).as_deref() == Some("windows")
        || text(
            pod.get("nodeSelector")
                .and_then(|n| n.get("kubernetes.io/os")),
        )
        .as_deref()
            == Some("windows");
    let privileged = containers_of(pod).iter().any(|c| {
        let sc = c.get("securityContext");
        let is_privileged = sc.and_then(|s| s.get("privileged")) == Some(&Value::Bool(true));
        let adds = sc
            .and_then(|s| s.get("capabilities"))
            .and_then(|c| c.get("add"))
            .and_then(Value::as_sequence)
            .is_some_and(|a| {
                a.iter()
                    .any(|c| matches!(c.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN" | "ALL")))
            });
        is_privileged || adds
    });
    let host_namespace = ["hostPID", "hostNetwork", "hostIPC"]
        .iter()
        .any(|k| pod.get(*k) == Some(&Value::Bool(true)));
    let host_path = pod
        .get("volumes")
        .and_then(Value::as_sequence)
        .is_some_and(|vs| vs.iter().any(|v| v.get("hostPath").is_some()));
    windows || privileged || (!host_opt_in && (host_namespace || host_path))
}

/// The containers of a pod spec (init, regular, ephemeral) that are mappings.
fn containers_of(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| pod.get(*k).and_then(Value::as_sequence))
        .flatten()
        .filter(|c| c.is_mapping())
        .collect()
}

/// The documents as `fix` should leave them outside securityContexts, with the writable /tmp
/// on (the default): in each pod that is not left alone, every container whose
/// `readOnlyRootFilesystem` is not already `true` (so the fix sets it) and that mounts nothing
/// at `/tmp` gets the mount `{name: N, mountPath: /tmp}` appended to its `volumeMounts`, and
/// the pod gets `{name: N, emptyDir: {}}` appended to its `volumes` (unless it has a volume
/// named N), where N is `tmp`, or `kube-harden-tmp` when a volume is named `tmp`. Containers
/// opted out of `readOnlyRootFilesystem` by the `kube-harden.io/skip` annotation get nothing.
/// Compare `strip_security_contexts` of both sides: exactly these additions, nothing else.
pub fn with_tmp_additions(mut docs: Vec<Value>) -> Vec<Value> {
    for doc in &mut docs {
        add_tmp(doc);
    }
    docs
}

fn add_tmp(doc: &mut Value) {
    let kind = kind_of(doc);
    if kind.ends_with("List") {
        if let Some(Value::Sequence(items)) = doc.get_mut("items") {
            items.iter_mut().for_each(add_tmp);
        }
        return;
    }
    let skip_annotation = |v: Option<&Value>| {
        v.and_then(|m| m.get("metadata"))
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("kube-harden.io/skip"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let template = match kind.as_str() {
        "Pod" => None,
        "CronJob" => doc
            .get("spec")
            .and_then(|s| s.get("jobTemplate"))
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template")),
        "PodTemplate" => doc.get("template"),
        _ => doc.get("spec").and_then(|s| s.get("template")),
    };
    let skip = skip_annotation(Some(doc)).or_else(|| skip_annotation(template));
    let rorf_skipped = skip.is_some_and(|s| {
        s.trim() == "all" || s.split(',').any(|c| c.trim() == "readOnlyRootFilesystem")
    });
    if rorf_skipped {
        return;
    }
    for pod in pod_specs_mut(doc) {
        if pod_left_alone(pod, false) {
            continue;
        }
        add_tmp_to_pod(pod);
    }
}

fn add_tmp_to_pod(pod: &mut Value) {
    let volume_names: Vec<String> = pod
        .get("volumes")
        .and_then(Value::as_sequence)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let name = if volume_names.iter().any(|n| n == "tmp") {
        "kube-harden-tmp"
    } else {
        "tmp"
    };
    let mapping = |entries: &[(&str, Value)]| {
        let mut m = yaml_serde::Mapping::new();
        for (k, v) in entries {
            m.insert(Value::String(k.to_string()), v.clone());
        }
        Value::Mapping(m)
    };
    let mount = mapping(&[
        ("name", Value::String(name.into())),
        ("mountPath", Value::String("/tmp".into())),
    ]);
    let mut mounted = false;
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Sequence(cs)) = pod.get_mut(key) else {
            continue;
        };
        for c in cs.iter_mut().filter(|c| c.is_mapping()) {
            let read_only = c
                .get("securityContext")
                .and_then(|s| s.get("readOnlyRootFilesystem"))
                == Some(&Value::Bool(true));
            let mounts_tmp = c
                .get("volumeMounts")
                .and_then(Value::as_sequence)
                .is_some_and(|ms| {
                    ms.iter().any(|m| {
                        m.get("mountPath")
                            .and_then(Value::as_str)
                            .is_some_and(|p| p.trim_end_matches('/') == "/tmp")
                    })
                });
            if read_only || mounts_tmp {
                continue;
            }
            append(c, "volumeMounts", mount.clone());
            mounted = true;
        }
    }
    if mounted && !volume_names.iter().any(|n| n == name) {
        let empty_dir = Value::Mapping(yaml_serde::Mapping::new());
        let volume = mapping(&[
            ("name", Value::String(name.into())),
            ("emptyDir", empty_dir),
        ]);
        append(pod, "volumes", volume);
    }
}

/// Appends `item` to the list `map.key`; a missing or null key becomes a one-item list.
fn append(map: &mut Value, key: &str, item: Value) {
    let Value::Mapping(m) = map else { return };
    match m.get_mut(key) {
        Some(Value::Sequence(items)) => items.push(item),
        _ => {
            m.insert(Value::String(key.into()), Value::Sequence(vec![item]));
        }
    }
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
                                .chain(tmp_gaps(&spec))
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

/// Windows pods, pods with a privileged (or SYS_ADMIN/ALL-adding) container, and pods with
/// host access (`hostPID`/`hostNetwork`/`hostIPC: true`, a `hostPath` volume) are left alone.
pub fn left_alone(spec: &PodSpec) -> bool {
    let host_access = [spec.host_pid, spec.host_network, spec.host_ipc].contains(&Some(true))
        || spec.volumes.iter().flatten().any(|v| v.host_path.is_some());
    host_access || windows_or_privileged(spec)
}

/// Windows pods and pods with a privileged (or SYS_ADMIN/ALL-adding) container.
fn windows_or_privileged(spec: &PodSpec) -> bool {
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

/// Where a hardened pod's writable /tmp is not a valid one: a container mounts `/tmp` from a
/// volume the pod does not have, or from a `kube-harden-tmp` volume that is not an emptyDir.
pub fn tmp_gaps(spec: &PodSpec) -> Vec<String> {
    let volumes = spec.volumes.iter().flatten();
    let mut gaps = Vec::new();
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for m in c.volume_mounts.iter().flatten() {
            if m.mount_path.trim_end_matches('/') != "/tmp" {
                continue;
            }
            match volumes.clone().find(|v| v.name == m.name) {
                None => gaps.push(format!(
                    "container {} mounts /tmp from a missing volume {}",
                    c.name, m.name
                )),
                // Only the tool uses this name; a `tmp` volume may be the user's own.
                Some(v) if m.name == "kube-harden-tmp" && v.empty_dir.is_none() => {
                    gaps.push(format!(
                        "container {} mounts /tmp from kube-harden-tmp, which is not an emptyDir",
                        c.name
                    ));
                }
                Some(_) => {}
            }
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

/// Every file under `dir`, relative path -> bytes.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
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

/// The services of `pr --format json`: each service's name and its files.
pub fn pr_services(json: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    json["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let files = s["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            (s["service"].as_str().unwrap().to_string(), files)
        })
        .collect()
}

/// Makes `dir` a git repository whose `origin` is `origin` (a GitOps release that names that
/// URL takes its charts from this repository).
pub fn init_with_origin(dir: &Path, origin: &str) {
    for args in [vec!["init", "-q"], vec!["remote", "add", "origin", origin]] {
        let ok = std::process::Command::new("git")
            .args(&args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "git {args:?}");
    }
}

/// A snapshot without the `.git` folder.
pub fn without_git(
    files: std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>,
) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    files
        .into_iter()
        .filter(|(p, _)| !p.starts_with(".git"))
        .collect()
}
