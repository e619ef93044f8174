//! Helm charts through the command line: the fixture charts under `fixtures/charts/` are
//! copied to a temporary folder and fixed; the values files must come out as the contract says,
//! the templates and every other file byte-identical, and a second run must change nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

mod common;
use common::run_in;
use common::{copy_dir, snapshot};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies one fixture chart, runs `fix` on it, and returns (folder, before, after, stderr, code).
struct Fixed {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
    after: BTreeMap<PathBuf, Vec<u8>>,
    stderr: String,
    code: i32,
}

fn fix(chart: &str) -> Fixed {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(chart);
    copy_dir(&fixtures().join(chart), &dir);
    let before = snapshot(&dir);
    let out = run_in(tmp.path(), &["fix", chart]);
    Fixed {
        after: snapshot(&dir),
        before,
        dir,
        _tmp: tmp,
        stderr: text(&out.stderr),
        code: out.status.code().unwrap(),
    }
}

impl Fixed {
    fn changed(&self) -> Vec<String> {
        self.before
            .iter()
            .filter(|(p, b)| self.after.get(*p) != Some(*b))
            .map(|(p, _)| p.display().to_string())
            .collect()
    }

    fn values(&self, name: &str) -> serde_json::Value {
        let v: yaml_serde::Value = yaml_serde::from_slice(&self.after[Path::new(name)]).unwrap();
        serde_json::to_value(v).unwrap()
    }

    fn second_run_changes_nothing(&self) {
        let out = run_in(self.dir.parent().unwrap(), &["fix", "."]);
        assert_eq!(snapshot(&self.dir), self.after, "{}", text(&out.stderr));
    }
}

#[test]
fn current_scaffold_uncomments_matching_hints_and_keeps_the_others() {
    let f = fix("scaffold-current");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(
        f.changed(),
        vec!["values.yaml"],
        "only the values file changes"
    );
    let after = text(&f.after[Path::new("values.yaml")]);
    let expected = "podSecurityContext:
  runAsNonRoot: true
  runAsUser: 1000
  runAsGroup: 1000
  fsGroup: 1000
  seccompProfile:
    type: RuntimeDefault
  # fsGroup: 2000

securityContext:
  allowPrivilegeEscalation: false
  capabilities:
    drop:
    - ALL
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  # runAsUser: 1000
";
    assert!(after.contains(expected), "{after}");
    assert_eq!(
        after.matches("readOnlyRootFilesystem").count(),
        1,
        "no second copy"
    );
    // The test pod of the scaffold takes nothing from values: reported, not invented.
    assert!(
        f.stderr.contains("templates/tests/test-connection.yaml:11: Pod/wget left unchanged: container `wget` has no securityContext; add `securityContext: {{- toYaml .Values.securityContext | nindent 8 }}`"),
        "{}",
        f.stderr
    );
    f.second_run_changes_nothing();
}

const LOW_PORT_80: &str = "risk: listens on port 80: a non-root process cannot bind a port below 1024 (dropping ALL capabilities removes NET_BIND_SERVICE); listen on 1024 or above, or set the pod sysctl net.ipv4.ip_unprivileged_port_start";

#[test]
fn current_scaffold_gets_its_writable_tmp_through_volumes_and_volume_mounts_and_a_port_80_note() {
    let f = fix("scaffold-current");
    assert_eq!(f.code, 0, "{}", f.stderr);
    let after = text(&f.after[Path::new("values.yaml")]);
    // The empty lists become block lists; the scaffold's commented examples stay below them.
    let expected = "# Additional volumes on the output Deployment definition.
volumes:
- name: tmp
  emptyDir: {}
  # - name: foo
  #   secret:
  #     secretName: mysecret
  #     optional: false

# Additional volumeMounts on the output Deployment definition.
volumeMounts:
- name: tmp
  mountPath: /tmp
  # - name: foo
  #   mountPath: \"/etc/foo\"
  #   readOnly: true
";
    assert!(after.contains(expected), "{after}");
    let before = text(&f.before[Path::new("values.yaml")]);
    assert!(before.contains("\nvolumes: []\n") && before.contains("\nvolumeMounts: []\n"));
    // `service.port: 80` is what the template gives `containerPort`: the note is on its line.
    assert!(
        f.stderr.contains(&format!(
            "scaffold-current/values.yaml:57: values/service.port container {{{{ .Chart.Name }}}}: {LOW_PORT_80}"
        )),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("scaffold-current/values.yaml:152: values/securityContext container {{ .Chart.Name }}: added: adds an emptyDir volume `tmp` mounted at /tmp: with a read-only root filesystem most programs still need somewhere to write temporary files (an item of `volumes` and `volumeMounts` here)"),
        "{}",
        f.stderr
    );
    f.second_run_changes_nothing();
}

#[test]
fn explain_and_check_show_the_port_80_and_tmp_notes_of_the_scaffold() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("scaffold-current"), &tmp.path().join("c"));
    let out = run_in(tmp.path(), &["explain", "c"]);
    let explain = text(&out.stdout);
    let port = "c/values.yaml:57: values/service.port\n  container {{ .Chart.Name }}\n    risk: listens on port 80: ";
    assert!(explain.contains(port), "{explain}");
    assert!(
        explain.contains("    runAsNonRoot: absent -> true  # the kubelet refuses to start the container if it would run as root (uid 0)\n    added: adds an emptyDir volume `tmp` mounted at /tmp"),
        "{explain}"
    );
    let out = run_in(tmp.path(), &["check", "--format", "json", "c"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes: Vec<(String, String, u64)> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        // helm is not on this machine's PATH: the render check says once that it was skipped.
        .filter(|n| {
            !n["message"]
                .as_str()
                .unwrap()
                .contains("render check of Helm charts skipped")
        })
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_string(),
                n["name"].as_str().unwrap().to_string(),
                n["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        vec![
            ("added".to_string(), "securityContext".to_string(), 152),
            ("risk".to_string(), "service.port".to_string(), 57),
        ]
    );
}

#[test]
fn no_writable_tmp_by_flag_or_config_leaves_the_volume_lists_alone() {
    let with_tmp = fix("scaffold-current");
    for args in [
        vec!["fix", "--no-writable-tmp", "c"],
        vec!["fix", "--config", "cfg.yaml", "c"],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join("scaffold-current"), &tmp.path().join("c"));
        fs::write(tmp.path().join("cfg.yaml"), "writableTmp: false\n").unwrap();
        let out = run_in(tmp.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let after = fs::read_to_string(tmp.path().join("c/values.yaml")).unwrap();
        assert!(after.contains("\nvolumes: []\n"), "{args:?}: {after}");
        assert!(after.contains("\nvolumeMounts: []\n"), "{args:?}: {after}");
        assert!(
            after.contains("  readOnlyRootFilesystem: true\n"),
            "{after}"
        );
        // Only the lists differ from the default run.
        let default = text(&with_tmp.after[Path::new("values.yaml")]);
        assert_eq!(
            after
                .replace("volumes: []", "volumes:\n- name: tmp\n  emptyDir: {}")
                .replace(
                    "volumeMounts: []",
                    "volumeMounts:\n- name: tmp\n  mountPath: /tmp"
                ),
            default
        );
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("/tmp"), "{args:?}: {stderr}");
    }
}

#[test]
fn extra_volumes_get_the_tmp_in_values_and_in_the_override_that_replaces_them() {
    let f = fix("extra-volumes");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.changed(), vec!["values-prod.yaml", "values.yaml"]);
    let after = text(&f.after[Path::new("values.yaml")]);
    let lists = "  ## Additional volumes on the server pod.
  extraVolumes:
  - name: tmp
    emptyDir: {}
  #  - name: certs
  #    secret:
  #      secretName: server-certs

  ## Additional volume mounts on the server container.
  extraVolumeMounts:
  - name: tmp
    mountPath: /tmp
  #  - name: certs
";
    assert!(after.contains(lists), "{after}");
    // The config reloader mounts the same volume through its own list.
    assert!(
        after.ends_with("(the volumes come from server.extraVolumes).\n  extraVolumeMounts:\n  - name: tmp\n    mountPath: /tmp\n"),
        "{after}"
    );
    // An override that sets the lists replaces the chart's: it needs the items too.
    assert_eq!(
        text(&f.after[Path::new("values-prod.yaml")]),
        "# Production: three replicas, TLS certificates from a secret.
server:
  replicas: 3
  extraVolumes:
    - name: certs
      secret:
        secretName: server-certs
    - name: tmp
      emptyDir: {}
  extraVolumeMounts:
    - name: certs
      mountPath: /etc/server/certs
      readOnly: true
    - name: tmp
      mountPath: /tmp
"
    );
    assert!(
        f.stderr.contains("extra-volumes/values.yaml:29: values/configReloader.securityContext container config-reloader: added: adds an emptyDir volume `tmp` mounted at /tmp: with a read-only root filesystem most programs still need somewhere to write temporary files (an item of `server.extraVolumes` and `configReloader.extraVolumeMounts` here)"),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains("no writable /tmp"), "{}", f.stderr);
    f.second_run_changes_nothing();
}

#[test]
fn a_bitnami_chart_that_mounts_tmp_from_its_empty_dir_gets_no_other() {
    let f = fix("bitnami-empty-dir");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.changed(), vec!["values.yaml"]);
    let (before, after) = (
        text(&f.before[Path::new("values.yaml")]),
        text(&f.after[Path::new("values.yaml")]),
    );
    assert!(after.contains("\nextraVolumes: []\n") && after.contains("\nextraVolumeMounts: []\n"));
    let v = f.values("values.yaml");
    assert_eq!(
        v["containerSecurityContext"]["readOnlyRootFilesystem"],
        true
    );
    // Port 8080 in values, 80 only on the Service: no port note, no /tmp note, nothing added.
    for quiet in ["no writable /tmp", "added:", "listens on port"] {
        assert!(!f.stderr.contains(quiet), "{quiet}: {}", f.stderr);
    }
    let removed: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    assert_eq!(removed, vec!["  readOnlyRootFilesystem: false"]);
    f.second_run_changes_nothing();
}

const HOST_REASON_TAIL: &str = ": a node agent's access to the host, so a person must decide how to harden it (hardenHostAccessPods: true or --harden-host-access-pods hardens it anyway)";

#[test]
fn a_template_that_hard_codes_host_network_leaves_its_pod_to_a_person() {
    let f = fix("node-agent");
    assert_eq!(f.code, 0, "{}", f.stderr);
    let v = f.values("values.yaml");
    // The agent's values paths are the DaemonSet's: not edited.
    assert_eq!(
        v["agent"]["podSecurityContext"],
        serde_json::json!({"runAsUser": 65534})
    );
    assert_eq!(
        v["agent"]["securityContext"],
        serde_json::json!({"readOnlyRootFilesystem": true})
    );
    for line in [5, 7] {
        let path = if line == 5 {
            "agent.podSecurityContext"
        } else {
            "agent.securityContext"
        };
        let expected = format!("node-agent/values.yaml:{line}: values/{path} left unchanged: uses the node's network (hostNetwork: true) and mounts hostPath /{HOST_REASON_TAIL}");
        assert!(f.stderr.contains(&expected), "{expected}\n{}", f.stderr);
    }
    // The aggregator is hardened; its literal port 514 is reported on the template.
    assert_eq!(
        v["aggregator"]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(v["aggregator"]["podSecurityContext"]["runAsUser"], 1000);
    assert!(
        f.stderr.contains("node-agent/templates/aggregator.yaml:26: Deployment/aggregator container aggregator: risk: listens on port 514: a non-root process cannot bind a port below 1024"),
        "{}",
        f.stderr
    );
    // It has no volume lists in values: a risk note says so, and how to give it one.
    assert!(
        f.stderr.contains("node-agent/values.yaml:16: values/aggregator.securityContext container aggregator: risk: this chart gets a read-only root filesystem with no writable /tmp: the templates render no values list into the `volumeMounts:` of container `aggregator` (templates/aggregator.yaml:22). Give it one through values: render a list into the container's `volumeMounts:` and one into the pod's `volumes:`"),
        "{}",
        f.stderr
    );
    // `check` still lists the agent's shortfalls, left to a person.
    let out = run_in(f.dir.parent().unwrap(), &["check", "node-agent"]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("node-agent/values.yaml:8:5: values/agent.securityContext container agent: allowPrivilegeEscalation is absent (left to a person)"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1));
    f.second_run_changes_nothing();
}

#[test]
fn values_that_turn_on_host_pid_leave_the_pod_to_a_person_unless_opted_in() {
    let f = fix("host-pid");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(f.changed().is_empty(), "{:?}", f.changed());
    let expected = format!("host-pid/values.yaml:12: values/securityContext left unchanged: uses the node's process namespace (hostPID: true) and mounts hostPath /proc{HOST_REASON_TAIL}");
    assert!(f.stderr.contains(&expected), "{}", f.stderr);
    // hostNetwork and hostIPC are false in values: not named.
    assert!(
        !f.stderr.contains("hostNetwork") && !f.stderr.contains("hostIPC"),
        "{}",
        f.stderr
    );

    for opt_in in [
        vec!["fix", "--harden-host-access-pods", "c"],
        vec!["fix", "--config", "cfg.yaml", "c"],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join("host-pid"), &tmp.path().join("c"));
        fs::write(tmp.path().join("cfg.yaml"), "hardenHostAccessPods: true\n").unwrap();
        let out = run_in(tmp.path(), &opt_in);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        let after = fs::read_to_string(tmp.path().join("c/values.yaml")).unwrap();
        let v: serde_json::Value =
            serde_json::to_value(yaml_serde::from_str::<yaml_serde::Value>(&after).unwrap())
                .unwrap();
        assert_eq!(
            v["securityContext"]["readOnlyRootFilesystem"], true,
            "{opt_in:?}"
        );
        assert_eq!(
            v["extraVolumes"],
            serde_json::json!([{"name": "proc", "hostPath": {"path": "/proc"}}, {"name": "tmp", "emptyDir": {}}])
        );
        assert_eq!(
            v["extraVolumeMounts"][1],
            serde_json::json!({"name": "tmp", "mountPath": "/tmp"})
        );
        for risk in [
            "c/templates/daemonset.yaml:16: DaemonSet/pod: risk: `hostPID: true` shares the node's process namespace: a node agent like this may need root; review before merging",
            "c/templates/daemonset.yaml:35: DaemonSet/pod: risk: mounts hostPath /proc: files there usually belong to root, so a non-root uid may lose access to them",
        ] {
            assert!(stderr.contains(risk), "{opt_in:?}: {stderr}");
        }
        let again = run_in(tmp.path(), &opt_in);
        assert_eq!(again.status.code(), Some(0));
        assert_eq!(
            fs::read_to_string(tmp.path().join("c/values.yaml")).unwrap(),
            after,
            "a second run changes nothing"
        );
    }
}

#[test]
fn the_old_scaffold_reports_its_literal_port_80_on_the_template_and_its_missing_tmp() {
    let f = fix("scaffold-old");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(
        f.stderr.contains(&format!(
            "scaffold-old/templates/deployment.yaml:35: Deployment/{{{{ .Chart.Name }}}} container {{{{ .Chart.Name }}}}: {LOW_PORT_80}"
        )),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("scaffold-old/values.yaml:22: values/securityContext container {{ .Chart.Name }}: risk: this chart gets a read-only root filesystem with no writable /tmp: the templates render no values list into the `volumeMounts:` of container `{{ .Chart.Name }}` (templates/deployment.yaml:28)"),
        "{}",
        f.stderr
    );
    // `service.port: 80` feeds only the Service there: not a container port.
    assert!(!f.stderr.contains("values/service.port"), "{}", f.stderr);
}

#[test]
fn old_scaffold_gets_the_same_values() {
    let f = fix("scaffold-old");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.changed(), vec!["values.yaml"]);
    let v = f.values("values.yaml");
    assert_eq!(
        v["podSecurityContext"],
        serde_json::json!({"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert_eq!(
        v["securityContext"],
        serde_json::json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true})
    );
    // The resources hints are not a securityContext: untouched.
    let after = text(&f.after[Path::new("values.yaml")]);
    assert!(after.contains("resources: {}\n  # limits:\n"), "{after}");
    f.second_run_changes_nothing();
}

#[test]
fn bitnami_style_enables_the_contexts_and_follows_the_contract() {
    let f = fix("bitnami-style");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(f.changed(), vec!["values.yaml"]);
    let v = f.values("values.yaml");
    let pod = &v["podSecurityContext"];
    assert_eq!(pod["enabled"], true);
    assert_eq!(pod["fsGroup"], 1001, "a non-zero id is kept");
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["runAsUser"], 1000);
    let c = &v["containerSecurityContext"];
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["runAsUser"], 1001);
    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let m = &v["metrics"]["containerSecurityContext"];
    assert_eq!(m["enabled"], true);
    assert_eq!(m["runAsUser"], 1000, "0 becomes the baseline uid");
    assert_eq!(m["allowPrivilegeEscalation"], false);
    assert!(
        f.stderr
            .contains("override: overrides the explicit `readOnlyRootFilesystem: false` with `true` (its comment says: \"the web server writes its pid file next to its binary\")"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("`enabled: false` becomes `true`"),
        "{}",
        f.stderr
    );
    f.second_run_changes_nothing();
}

#[test]
fn multi_component_paths_get_their_level_and_override_files_only_their_insecure_values() {
    let f = fix("multi-component");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert_eq!(
        f.changed(),
        vec![
            "ci/privileged-values.yaml",
            "values-prod.yaml",
            "values.yaml"
        ],
        "values-staging.yaml sets no security context and is left alone"
    );
    let v = f.values("values.yaml");
    let pod_keys = [
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "fsGroup",
        "seccompProfile",
    ];
    for pod in [
        "server.podSecurityContext",
        "worker.podSecurityContext",
        "migrate.podSecurityContext",
    ] {
        let (a, b) = pod.split_once('.').unwrap();
        let keys: Vec<&str> = v[a][b]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{pod}: {keys:?}");
        assert!(
            keys.iter().all(|k| pod_keys.contains(k)),
            "{pod}: only pod fields: {keys:?}"
        );
    }
    assert_eq!(v["server"]["podSecurityContext"]["runAsUser"], 1000);
    let server = &v["server"]["containerSecurityContext"];
    assert_eq!(
        server["capabilities"]["add"],
        serde_json::json!(["NET_BIND_SERVICE"])
    );
    assert_eq!(
        server["capabilities"]["drop"],
        serde_json::json!(["NET_RAW", "ALL"])
    );
    assert!(
        server.get("fsGroup").is_none(),
        "no pod field at container level"
    );
    let worker = &v["worker"]["securityContext"];
    assert_eq!(worker["enabled"], true);
    assert_eq!(worker["runAsNonRoot"], true);
    // The agent's pod spec is written by a helper in templates/_agent.tpl.
    assert_eq!(
        v["agent"]["podSecurityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        v["agent"]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    let migrate = &v["migrate"]["securityContext"];
    assert_eq!(migrate["allowPrivilegeEscalation"], false);
    assert_eq!(migrate["readOnlyRootFilesystem"], true);
    // Override files: explicit insecure values corrected, nothing added.
    assert_eq!(
        text(&f.after[Path::new("values-prod.yaml")]),
        "# Production overrides.\nserver:\n  containerSecurityContext:\n    readOnlyRootFilesystem: true   # prod writes a cache to /var/cache\n  podSecurityContext:\n    runAsUser: 1000\nworker:\n  replicas: 6\n"
    );
    assert_eq!(
        text(&f.after[Path::new("ci/privileged-values.yaml")]),
        "migrate:\n  securityContext:\n    allowPrivilegeEscalation: false\n"
    );
    f.second_run_changes_nothing();
}

#[test]
fn a_chart_that_wires_nothing_is_reported_and_not_edited() {
    let f = fix("unwired");
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(f.changed().is_empty(), "{:?}", f.changed());
    assert!(
        f.stderr.contains("unwired/templates/deployment.yaml:15: Deployment/app left unchanged: container `app` has no securityContext; add `securityContext: {{- toYaml .Values.securityContext | nindent 12 }}`"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr
            .contains("1 Helm chart whose templates take no securityContext from values"),
        "{}",
        f.stderr
    );
    // `check` does not call it compliant: the template's shortfalls, left to a person.
    let out = run_in(f.dir.parent().unwrap(), &["check", "unwired"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("unwired/templates/deployment.yaml:15:1: Deployment/app container app: readOnlyRootFilesystem is absent (left to a person)"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| !l.contains("render check of Helm charts skipped"))
            .count(),
        8,
        "5 pod and 3 container controls: {stdout}"
    );
}

#[test]
fn a_schema_that_forbids_an_added_key_stops_the_write() {
    let f = fix("schema-forbids");
    assert_eq!(f.code, 2, "{}", f.stderr);
    assert!(f.changed().is_empty(), "{:?}", f.changed());
    assert!(
        f.stderr.contains("schema-forbids/values.yaml:2:1: the hardened values would not validate against values.schema.json (/securityContext: Additional properties are not allowed ('readOnlyRootFilesystem', 'runAsGroup', 'runAsUser', 'seccompProfile' were unexpected)); not written"),
        "{}",
        f.stderr
    );
}

#[test]
fn check_lists_the_values_shortfalls_and_passes_after_fix() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("multi-component"), &tmp.path().join("c"));
    let out = run_in(tmp.path(), &["check", "--format", "json", "c"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(
            |f| f["file"].as_str().unwrap().ends_with("values-prod.yaml")
                && f["control"] == "readOnlyRootFilesystem"
                && f["current"] == "false"
        ),
        "{findings:#?}"
    );
    assert_eq!(run_in(tmp.path(), &["fix", "c"]).status.code(), Some(0));
    let out = run_in(tmp.path(), &["check", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_broken_values_file_is_an_error_at_its_position_and_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("c");
    copy_dir(&fixtures().join("scaffold-old"), &chart);
    let broken = "podSecurityContext: {}\nsecurityContext: {}\nsecurityContext: {}\n";
    fs::write(chart.join("values.yaml"), broken).unwrap();
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("c/values.yaml:3:1: "), "{stderr}");
    assert!(stderr.contains("duplicate"), "{stderr}");
    assert_eq!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        broken
    );
}

#[test]
fn a_values_file_given_alone_is_handled_with_its_chart() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("multi-component"), &tmp.path().join("c"));
    let out = run_in(tmp.path(), &["diff", "c/values-prod.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(diff.contains("+++ b/c/values-prod.yaml"), "{diff}");
    assert!(
        !diff.contains("b/c/values.yaml"),
        "only the file asked for: {diff}"
    );
    assert!(diff.contains("+    runAsUser: 1000"), "{diff}");
}

/// The old scaffold with other values.yaml/override texts.
fn scaffold_with(values: &str, overrides: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("c");
    copy_dir(&fixtures().join("scaffold-old"), &chart);
    fs::write(chart.join("values.yaml"), values).unwrap();
    for (name, text) in overrides {
        fs::write(chart.join(name), text).unwrap();
    }
    (tmp, chart)
}

const OLD_SCAFFOLD_REST: &str = "replicaCount: 1\nimage:\n  repository: nginx\n  pullPolicy: IfNotPresent\n  tag: \"\"\nservice:\n  type: ClusterIP\n  port: 80\nresources: {}\n";

#[test]
fn a_privileged_container_leaves_its_pod_to_a_person() {
    let values = format!(
        "{OLD_SCAFFOLD_REST}podSecurityContext: {{}}\nsecurityContext:\n  privileged: true\n"
    );
    let (tmp, chart) = scaffold_with(&values, &[]);
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    assert_eq!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        values
    );
    assert!(stderr.contains("c/values.yaml:11: values/securityContext left unchanged: `securityContext` is privileged: true"), "{stderr}");
    assert!(stderr.contains("c/values.yaml:10: values/podSecurityContext left unchanged: a container of the same template is left alone"), "{stderr}");
}

#[test]
fn an_override_that_nulls_a_context_is_a_risk_and_not_edited() {
    let values = format!("{OLD_SCAFFOLD_REST}podSecurityContext: {{}}\nsecurityContext: {{}}\n");
    let (tmp, chart) = scaffold_with(&values, &[("values-dev.yaml", "securityContext: null\n")]);
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        fs::read_to_string(chart.join("values-dev.yaml")).unwrap(),
        "securityContext: null\n"
    );
    assert_ne!(
        fs::read_to_string(chart.join("values.yaml")).unwrap(),
        values
    );
    assert!(stderr.contains("c/values-dev.yaml:1: values/securityContext: risk: null here deletes the chart's `securityContext`"), "{stderr}");
}

#[test]
fn a_crlf_values_file_gets_crlf_lines_and_the_same_hints() {
    let lf = fix("scaffold-old");
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("c");
    copy_dir(&fixtures().join("scaffold-old"), &chart);
    let original = fs::read_to_string(chart.join("values.yaml")).unwrap();
    fs::write(chart.join("values.yaml"), original.replace('\n', "\r\n")).unwrap();
    let out = run_in(tmp.path(), &["fix", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let crlf = fs::read_to_string(chart.join("values.yaml")).unwrap();
    let expected = text(&lf.after[Path::new("values.yaml")]).replace('\n', "\r\n");
    assert_eq!(crlf, expected);
}
