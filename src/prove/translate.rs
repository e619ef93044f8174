//! A container as a pod spec has it, turned into the container engine's `run` arguments as a
//! kubelet would run it: the pod's and the container's securityContext, each emptyDir as a fresh
//! writable folder, the manifest's command, args and env (with the kubelet's `$(VAR)` expansion)
//! and workingDir, no network, and the port floor a kubelet node keeps. Also the kubelet's runAsNonRoot rule, judged from the image's
//! config. Pure: no engine is run here, so every rule is tested as an argument list.

use serde_json::Value;

use super::expand::Env;
use super::{Engine, ImageConfig};

/// The value given to every env variable the manifest takes from a Secret, a ConfigMap or a
/// field: the proof never reads the cluster's data.
pub const PLACEHOLDER: &str = "kube-harden-placeholder";

/// One side of a container to run: its pod spec and its own entry in `containers`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Side {
    pub pod: Value,
    pub container: Value,
}

/// A host folder to bind into the container, made fresh for each run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The volume's name (the host folder is named after it).
    pub volume: String,
    pub path: String,
    pub read_only: bool,
}

/// What to start: the engine's arguments after `run` but before the image (without the name
/// and labels, which the runner adds), the image, the arguments after it, and the folders to
/// make and bind.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub options: Vec<String>,
    pub image: String,
    pub command_args: Vec<String>,
    pub mounts: Vec<Mount>,
    /// What the translation could not reproduce, said with the verdict.
    pub gaps: Vec<String>,
}

/// The engine arguments for `side`. `mount_source` names the host folder of a mount.
pub fn run_spec(side: &Side, engine: Engine, mount_source: &dyn Fn(&Mount) -> String) -> RunSpec {
    let mut spec = RunSpec {
        options: vec!["--network".into(), "none".into()],
        image: text(&side.container["image"]).unwrap_or_default(),
        command_args: vec![],
        mounts: mounts(side),
        gaps: vec![],
    };
    // A kubelet's pod network namespace keeps the kernel's floor (containerd's default without
    // enable_unprivileged_ports, CRI-O); docker sets 0 in every container.
    spec.options.extend(args(&[
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=1024",
    ]));
    user_options(side, &mut spec.options);
    security_options(side, engine, &mut spec);
    for mount in &spec.mounts {
        let mode = if mount.read_only { ":ro" } else { "" };
        spec.options.push("-v".into());
        spec.options
            .push(format!("{}:{}{mode}", mount_source(mount), mount.path));
    }
    let env = container_env(side);
    env_options(side, &env, &mut spec);
    if let Some(dir) = text(&side.container["workingDir"]) {
        spec.options.extend(["-w".to_string(), dir]);
    }
    command_options(side, &env, &mut spec);
    spec
}

/// `--user` and `--group-add`: runAsUser/runAsGroup (the container's over the pod's), and the
/// supplementary groups a kubelet gives (fsGroup, supplementalGroups).
fn user_options(side: &Side, options: &mut Vec<String>) {
    let user = context_field(side, "runAsUser").and_then(|v| v.as_i64());
    let group = context_field(side, "runAsGroup").and_then(|v| v.as_i64());
    match (user, group) {
        (Some(u), Some(g)) => options.extend(["--user".into(), format!("{u}:{g}")]),
        (Some(u), None) => options.extend(["--user".into(), u.to_string()]),
        // The image's user with the pod's group: an engine takes no group alone, and the image's
        // user is only known by inspecting it, so the runner fills `USER:GID` in.
        (None, Some(g)) => options.extend(["--user".into(), format!("{IMAGE_USER}:{g}")]),
        (None, None) => {}
    }
    let pod_context = &side.pod["securityContext"];
    let mut groups: Vec<i64> = pod_context["fsGroup"].as_i64().into_iter().collect();
    if let Some(extra) = pod_context["supplementalGroups"].as_array() {
        groups.extend(extra.iter().filter_map(Value::as_i64));
    }
    groups.dedup();
    for g in groups {
        options.extend(["--group-add".into(), g.to_string()]);
    }
}

/// Stands for the image's own user in `--user`, replaced by the runner once it has inspected the
/// image (`0` where the image names none).
pub const IMAGE_USER: &str = "{image-user}";

/// `--read-only`, capabilities, `no-new-privileges`, seccomp, `--privileged`.
fn security_options(side: &Side, engine: Engine, spec: &mut RunSpec) {
    let context = &side.container["securityContext"];
    let options = &mut spec.options;
    if context["privileged"].as_bool() == Some(true) {
        options.push("--privileged".into());
    }
    if context["readOnlyRootFilesystem"].as_bool() == Some(true) {
        options.push("--read-only".into());
        // podman's --read-only mounts writable tmpfs on /run, /tmp and /var/tmp; a kubelet does not.
        if engine == Engine::Podman {
            options.push("--read-only-tmpfs=false".into());
        }
    }
    let capabilities = &context["capabilities"];
    for (list, flag) in [("drop", "--cap-drop"), ("add", "--cap-add")] {
        for name in capabilities[list].as_array().into_iter().flatten() {
            if let Some(name) = name.as_str() {
                options.extend([flag.to_string(), name.to_string()]);
            }
        }
    }
    if context["allowPrivilegeEscalation"].as_bool() == Some(false) {
        options.extend(args(&["--security-opt", "no-new-privileges"]));
    }
    let seccomp = context_field(side, "seccompProfile")
        .and_then(|p| text(&p["type"]))
        .unwrap_or_default();
    match seccomp.as_str() {
        // The engine's default profile is what RuntimeDefault names.
        "RuntimeDefault" => {}
        "Localhost" => spec
            .gaps
            .push("a Localhost seccomp profile runs with the engine's default one".into()),
        // Unset is Unconfined on a kubelet without --seccomp-default.
        _ => options.extend(args(&["--security-opt", "seccomp=unconfined"])),
    }
}

/// The volumes mounted into the container. An emptyDir is a fresh writable folder, as a kubelet
/// makes it; any other volume is an empty folder too (its data is the cluster's), read-only for
/// the kinds a kubelet mounts read-only.
fn mounts(side: &Side) -> Vec<Mount> {
    let volumes = side.pod["volumes"].as_array().cloned().unwrap_or_default();
    let read_only_kinds = ["configMap", "secret", "projected", "downwardAPI"];
    side.container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let volume = text(&m["name"])?;
            let path = text(&m["mountPath"])?;
            let source = volumes
                .iter()
                .find(|v| text(&v["name"]).as_ref() == Some(&volume));
            let read_only_kind =
                source.is_some_and(|v| read_only_kinds.iter().any(|k| v.get(*k).is_some()));
            Some(Mount {
                volume,
                path,
                read_only: m["readOnly"].as_bool() == Some(true) || read_only_kind,
            })
        })
        .collect()
}

/// The container's env as the kubelet builds it, in order: a value from a Secret, a ConfigMap or
/// a field is the placeholder; a value written out has its `$(NAME)` references to earlier
/// entries expanded (a reference to a later or an unknown name stays as written).
fn container_env(side: &Side) -> Env {
    let mut env = Env::default();
    for entry in side.container["env"].as_array().into_iter().flatten() {
        let Some(name) = text(&entry["name"]) else {
            continue;
        };
        let value = match (&entry["value"], entry.get("valueFrom")) {
            (_, Some(_)) => PLACEHOLDER.to_string(),
            (Value::Null, None) => String::new(),
            (v, None) => env.expand(&text(v).unwrap_or_else(|| v.to_string())),
        };
        env.define(name, value);
    }
    env
}

/// `-e NAME=value` for each env entry.
fn env_options(side: &Side, env: &Env, spec: &mut RunSpec) {
    for (name, value) in env.entries() {
        spec.options
            .extend(["-e".into(), format!("{name}={value}")]);
    }
    if side.container.get("envFrom").is_some() {
        spec.gaps
            .push("envFrom is not reproduced (the cluster's ConfigMaps and Secrets)".into());
    }
}

/// Kubernetes' `command` replaces the image's ENTRYPOINT (and with it its CMD), `args` its CMD:
/// `--entrypoint` takes the first word, the rest follow the image. Each word has its `$(NAME)`
/// references expanded against the container's whole env, as the kubelet does before the
/// runtime sees them (an engine would pass them on as written).
fn command_options(side: &Side, env: &Env, spec: &mut RunSpec) {
    let words = |key: &str| -> Vec<String> {
        side.container[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| env.expand(&text(w).unwrap_or_else(|| w.to_string())))
            .collect()
    };
    let (command, arguments) = (words("command"), words("args"));
    if let Some((first, rest)) = command.split_first() {
        spec.options.extend(["--entrypoint".into(), first.clone()]);
        spec.command_args.extend(rest.iter().cloned());
    }
    spec.command_args.extend(arguments);
}

/// A securityContext field as the kubelet reads it: the container's, else the pod's.
fn context_field<'a>(side: &'a Side, field: &str) -> Option<&'a Value> {
    side.container["securityContext"]
        .get(field)
        .or_else(|| side.pod["securityContext"].get(field))
        .filter(|v| !v.is_null())
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The kubelet's runAsNonRoot rule: with runAsNonRoot true, a container without runAsUser must
/// have an image whose USER is a non-zero number. The reason the kubelet would give, if it
/// refuses.
pub fn refused_by_run_as_non_root(side: &Side, image: &ImageConfig) -> Option<String> {
    if context_field(side, "runAsNonRoot").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    if let Some(uid) = context_field(side, "runAsUser").and_then(Value::as_i64) {
        return (uid == 0).then(|| "runAsNonRoot with runAsUser 0".to_string());
    }
    let user = image.user.split(':').next().unwrap_or_default();
    match user.parse::<i64>() {
        _ if user.is_empty() => Some("image runs as root (no USER)".into()),
        Ok(0) => Some("image runs as root (USER 0)".into()),
        Ok(_) => None,
        Err(_) => Some(format!(
            "image has a non-numeric USER ({user}) and no runAsUser: the kubelet cannot verify it is not root"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(mount: &Mount) -> String {
        format!("/scratch/{}", mount.volume)
    }

    fn hardened() -> Side {
        Side {
            pod: json!({
                "securityContext": {
                    "runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000,
                    "supplementalGroups": [3000], "seccompProfile": {"type": "RuntimeDefault"}
                },
                "volumes": [
                    {"name": "tmp", "emptyDir": {}},
                    {"name": "conf", "configMap": {"name": "web"}}
                ]
            }),
            container: json!({
                "name": "web", "image": "example/web:1",
                "command": ["/bin/web", "--serve"], "args": ["--port", 8080],
                "workingDir": "/srv",
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}
                ],
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "conf", "mountPath": "/etc/web"}
                ],
                "securityContext": {
                    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
                }
            }),
        }
    }

    #[test]
    fn a_hardened_container_as_docker_arguments() {
        let spec = run_spec(&hardened(), Engine::Docker, &source);
        assert_eq!(
            spec.options.join(" "),
            "--network none --sysctl net.ipv4.ip_unprivileged_port_start=1024 \
             --user 1000:1000 --group-add 2000 --group-add 3000 --read-only \
             --cap-drop ALL --cap-add NET_BIND_SERVICE --security-opt no-new-privileges \
             -v /scratch/tmp:/tmp -v /scratch/conf:/etc/web:ro \
             -e MODE=prod -e TOKEN=kube-harden-placeholder -w /srv --entrypoint /bin/web"
        );
        assert_eq!(spec.image, "example/web:1");
        assert_eq!(spec.command_args, ["--serve", "--port", "8080"]);
        assert!(spec.gaps.is_empty(), "{:?}", spec.gaps);
    }

    #[test]
    fn podman_gets_no_writable_tmpfs_with_read_only() {
        let spec = run_spec(&hardened(), Engine::Podman, &source);
        let at = spec
            .options
            .iter()
            .position(|o| o == "--read-only")
            .unwrap();
        assert_eq!(spec.options[at + 1], "--read-only-tmpfs=false");
    }

    #[test]
    fn a_container_as_the_manifest_had_it_runs_unconfined_as_the_image_user() {
        let side = Side {
            pod: json!({}),
            container: json!({"name": "web", "image": "example/web:1", "args": ["-v"]}),
        };
        let spec = run_spec(&side, Engine::Docker, &source);
        assert_eq!(
            spec.options.join(" "),
            "--network none --sysctl net.ipv4.ip_unprivileged_port_start=1024 \
             --security-opt seccomp=unconfined"
        );
        assert_eq!(spec.command_args, ["-v"]);
    }

    #[test]
    fn a_group_without_a_user_keeps_the_image_user() {
        let side = Side {
            pod: json!({"securityContext": {"runAsGroup": 5}}),
            container: json!({"name": "a", "image": "i"}),
        };
        let spec = run_spec(&side, Engine::Docker, &source);
        assert!(spec.options.join(" ").contains("--user {image-user}:5"));
    }

    #[test]
    fn the_container_context_wins_over_the_pod_context() {
        let side = Side {
            pod: json!({"securityContext": {"runAsUser": 1, "seccompProfile": {"type": "RuntimeDefault"}}}),
            container: json!({"name": "a", "image": "i", "securityContext": {
                "runAsUser": 7, "seccompProfile": {"type": "Unconfined"}}}),
        };
        let options = run_spec(&side, Engine::Docker, &source).options.join(" ");
        assert!(options.contains("--user 7 "), "{options}");
        assert!(options.ends_with("seccomp=unconfined"), "{options}");
    }

    fn with_env_and_words(env: Value, command: Value, args: Value) -> RunSpec {
        let side = Side {
            pod: json!({}),
            container: json!({"name": "a", "image": "i", "env": env, "command": command, "args": args}),
        };
        run_spec(&side, Engine::Docker, &source)
    }

    #[test]
    fn command_and_args_have_env_references_expanded_as_the_kubelet_does() {
        let spec = with_env_and_words(
            json!([{"name": "PORT", "value": "8080"}, {"name": "MODE", "value": "prod"}]),
            json!(["/bin/$(MODE)-server", "--port=$(PORT)"]),
            json!(["--mode", "$(MODE)", "$(PORT)$(PORT)"]),
        );
        let options = spec.options.join(" ");
        assert!(
            options.ends_with("--entrypoint /bin/prod-server"),
            "{options}"
        );
        assert_eq!(
            spec.command_args,
            ["--port=8080", "--mode", "prod", "80808080"]
        );
    }

    #[test]
    fn a_doubled_dollar_is_a_literal_reference_and_an_undefined_one_stays() {
        let spec = with_env_and_words(
            json!([{"name": "PORT", "value": "8080"}]),
            json!(["sh", "-c"]),
            json!(["echo $$(PORT) $(PORT) $(UNSET) $HOME"]),
        );
        assert_eq!(
            spec.command_args,
            ["-c", "echo $(PORT) 8080 $(UNSET) $HOME"]
        );
    }

    #[test]
    fn an_env_value_refers_to_earlier_entries_only() {
        let spec = with_env_and_words(
            json!([
                {"name": "HOST", "value": "db"},
                {"name": "URL", "value": "$(HOST):$(PORT)/$$(HOST)"},
                {"name": "PORT", "value": "5432"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
                {"name": "AUTH", "value": "Bearer $(TOKEN)"},
                {"name": "HOST", "value": "$(HOST)-replica"}
            ]),
            json!(null),
            json!(["$(URL)", "$(HOST)", "$(AUTH)"]),
        );
        let env: Vec<&str> = (spec.options.windows(2))
            .filter(|pair| pair[0] == "-e")
            .map(|pair| pair[1].as_str())
            .collect();
        assert_eq!(
            env,
            [
                "HOST=db",
                "URL=db:$(PORT)/$(HOST)",
                "PORT=5432",
                "TOKEN=kube-harden-placeholder",
                "AUTH=Bearer kube-harden-placeholder",
                "HOST=db-replica",
            ]
        );
        // command and args see the env as it ends: the last value of a name given twice.
        assert_eq!(
            spec.command_args,
            [
                "db:$(PORT)/$(HOST)",
                "db-replica",
                "Bearer kube-harden-placeholder"
            ]
        );
    }

    fn image(user: &str) -> ImageConfig {
        ImageConfig {
            user: user.to_string(),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn run_as_non_root_is_judged_as_the_kubelet_does() {
        let mut side = hardened();
        // runAsUser set: the image's USER does not matter.
        assert_eq!(refused_by_run_as_non_root(&side, &image("")), None);
        side.pod["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("runAsUser");
        let refused = |user: &str| refused_by_run_as_non_root(&side, &image(user));
        assert_eq!(refused("").as_deref(), Some("image runs as root (no USER)"));
        assert_eq!(
            refused("0:0").as_deref(),
            Some("image runs as root (USER 0)")
        );
        assert!(refused("app").unwrap().contains("non-numeric USER (app)"));
        assert_eq!(refused("65532:65532"), None);
        side.pod["securityContext"]["runAsNonRoot"] = json!(false);
        assert_eq!(refused_by_run_as_non_root(&side, &image("")), None);
    }
}
