//! Charts whose securityContexts are written by named templates: a library chart's helpers
//! (an app chart whose workloads all come from a vendored `common` library, per controller and
//! per container), and a chart's own helpers (a container context built from image-level keys,
//! with and without a whole-context override, a sidecar wired through a helper, an init
//! container whose helper writes the whole key). Then wiring of other shapes: a context behind
//! an `enabled` switch beside it (`x.securityContext.enabled`, `x.securityContext.context`),
//! a chart that renders only a container securityContext (the pod's ids go there), and volume
//! lists per component or under other names (the writable /tmp goes there). Each is
//! rendered with Helm's engine before and after `fix` (tests/helm-shim/helm), the rendered pods
//! are asserted exactly, and a second `fix` changes nothing.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

mod common;
use common::helm::{run_with_helm, template};
use common::{copy_dir, snapshot};

fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/charts")
            .join(name),
        &chart,
    );
    (tmp, chart)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every rendered workload's securityContexts: `Kind/name` -> {"pod": ..., "<container>": ...}
/// (null where none is rendered).
fn rendered_contexts(chart: &Path) -> Json {
    let stream = template(chart, None).expect("the chart renders");
    let mut out = serde_json::Map::new();
    for document in yaml_serde::Deserializer::from_str(&stream) {
        let doc: yaml_serde::Value = serde::Deserialize::deserialize(document).unwrap();
        let doc: Json = serde_json::to_value(doc).unwrap();
        let Some(spec) = doc.pointer("/spec/template/spec") else {
            continue;
        };
        let mut contexts = serde_json::Map::new();
        contexts.insert("pod".into(), spec["securityContext"].clone());
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap().to_string();
                contexts.insert(name, c["securityContext"].clone());
            }
        }
        let key = format!(
            "{}/{}",
            doc["kind"].as_str().unwrap(),
            doc["metadata"]["name"].as_str().unwrap()
        );
        out.insert(key, Json::Object(contexts));
    }
    Json::Object(out)
}

fn pod_baseline() -> Json {
    json!({"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
           "seccompProfile": {"type": "RuntimeDefault"}})
}

fn container_baseline() -> Json {
    json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false,
           "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}})
}

/// `fix` with the render check on: exit 0, nothing rendered short; then a second `fix`
/// changes nothing.
fn fix_twice(dir: &Path, name: &str) -> String {
    let out = run_with_helm(dir, &["fix", name]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for said in ["renders short", "does not render", "not written"] {
        assert!(!stderr.contains(said), "{stderr}");
    }
    let chart = dir.join(name);
    let once = snapshot(&chart);
    let again = run_with_helm(dir, &["fix", name]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(snapshot(&chart), once, "a second fix changes nothing");
    stderr
}

#[test]
fn a_library_chart_s_controllers_and_containers_are_hardened_where_its_helpers_read_them() {
    let (tmp, chart) = fixture("homelab-app");
    let said = hardens_the_homelab_app(tmp.path(), &chart);
    assert!(
        said.contains("values.yaml:17: values/controllers.main.containers.app.securityContext container app: risk: this chart gets a read-only root filesystem with no writable /tmp: the templates render no values list into the `volumeMounts:` of container `app` (charts/common/templates/_container.tpl:5)"),
        "the library's line that writes the container: {said}"
    );
    // The library chart's own files are not edited and its helpers are not reported alone.
    let common = snapshot(&chart.join("charts/common"));
    let (_pristine, original) = fixture("homelab-app");
    assert_eq!(common, snapshot(&original.join("charts/common")));
}

#[test]
fn a_library_chart_vendored_as_an_archive_is_read_too() {
    // What `helm dependency build` leaves in charts/: the library as a .tgz.
    let (tmp, chart) = fixture("homelab-app");
    let status = std::process::Command::new("tar")
        .args(["czf", "common-1.2.0.tgz", "common"])
        .current_dir(chart.join("charts"))
        .status()
        .unwrap();
    assert!(status.success());
    fs::remove_dir_all(chart.join("charts/common")).unwrap();
    let said = hardens_the_homelab_app(tmp.path(), &chart);
    assert!(
        said.contains("(charts/common-1.2.0.tgz/common/templates/_container.tpl:5)"),
        "{said}"
    );
}

/// The homelab-app fixture in `dir`: rendered before, fixed twice, rendered after; what the
/// first `fix` said.
fn hardens_the_homelab_app(dir: &Path, chart: &Path) -> String {
    assert_eq!(
        rendered_contexts(chart),
        json!({
            "Deployment/release-main": {
                "pod": {"runAsUser": 0},
                "app": {"allowPrivilegeEscalation": true},
                "exporter": null,
            },
            "Deployment/release-worker": {"pod": null, "jobs": null},
        }),
        "before"
    );
    let said = fix_twice(dir, "homelab-app");
    let main_pod = {
        let mut p = pod_baseline();
        p["runAsUser"] = json!(1000);
        p
    };
    assert_eq!(
        rendered_contexts(chart),
        json!({
            "Deployment/release-main": {
                "pod": main_pod,
                "app": container_baseline(),
                "exporter": container_baseline(),
            },
            "Deployment/release-worker": {"pod": pod_baseline(), "jobs": container_baseline()},
        }),
        "after"
    );
    let values = fs::read_to_string(chart.join("values.yaml")).unwrap();
    // The controller's own pod context is only corrected: the default under it has the rest.
    assert!(
        values.contains("    pod:\n      securityContext:\n        runAsUser: 1000 # the upstream image's default\n    containers:\n"),
        "{values}"
    );
    assert!(
        values.contains("  securityContext:\n    runAsNonRoot: true\n    runAsUser: 1000\n"),
        "defaultPodOptions.securityContext is filled: {values}"
    );
    // A container with no context in values gets one where the library reads it.
    assert!(
        values.contains("          tag: \"0.4.0\"\n        securityContext:\n          allowPrivilegeEscalation: false\n"),
        "{values}"
    );
    assert!(
        said.contains("values.yaml:11: values/controllers.main.pod.securityContext: override: overrides the explicit `runAsUser: 0` with `1000`"),
        "{said}"
    );
    assert!(
        !said.contains("takes no securityContext from values"),
        "the library's wiring counts: {said}"
    );
    said
}

#[test]
fn a_container_context_built_from_image_keys_and_a_sidecar_wired_through_a_helper() {
    let (tmp, chart) = fixture("ci-controller");
    let before = json!({
        "StatefulSet/release-controller": {
            "pod": {"fsGroup": 0},
            "init-plugins": {"allowPrivilegeEscalation": false},
            "controller": {"runAsUser": 0, "runAsGroup": 0, "readOnlyRootFilesystem": false,
                           "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            "config-reload": {"readOnlyRootFilesystem": true},
        }
    });
    assert_eq!(rendered_contexts(&chart), before, "before");
    let said = fix_twice(tmp.path(), "ci-controller");
    assert_eq!(
        rendered_contexts(&chart),
        json!({
            "StatefulSet/release-controller": {
                "pod": pod_baseline(),
                "init-plugins": container_baseline(),
                "controller": {"runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": true,
                               "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                "config-reload": container_baseline(),
            }
        }),
        "after"
    );
    let values = fs::read_to_string(chart.join("values.yaml")).unwrap();
    assert!(
        values.contains("  containerSecurityContext: {}\n"),
        "the empty override keeps selecting the context built from the image's keys: {values}"
    );
    assert!(
        said.contains("values.yaml:9: values/controller.image.readOnlyRootFilesystem container controller: override: overrides the explicit `controller.image.readOnlyRootFilesystem: false` with `true`: the chart writes it as the container `controller`'s `readOnlyRootFilesystem` (templates/_helpers.tpl:11) (its comment says: \"the controller writes its plugins at start-up\")"),
        "the key, its line and where the helper writes it: {said}"
    );
    let check = run_with_helm(tmp.path(), &["check", "ci-controller"]);
    let stdout = text(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.contains("has no securityContext"),
        "no advice to add a key a helper writes: {stdout}"
    );
}

#[test]
fn a_whole_context_override_replaces_the_image_keys_and_gets_the_baseline() {
    let (tmp, chart) = fixture("ci-controller");
    let path = chart.join("values.yaml");
    let values = fs::read_to_string(&path).unwrap();
    let values = values.replace(
        "  containerSecurityContext: {}\n",
        "  containerSecurityContext:\n    runAsUser: 0\n",
    );
    fs::write(&path, values).unwrap();
    assert_eq!(
        rendered_contexts(&chart)["StatefulSet/release-controller"]["controller"],
        json!({"runAsUser": 0}),
        "before: the override replaces the context built from the image's keys"
    );
    fix_twice(tmp.path(), "ci-controller");
    let mut wanted = container_baseline();
    wanted["runAsUser"] = json!(1000);
    assert_eq!(
        rendered_contexts(&chart)["StatefulSet/release-controller"]["controller"],
        wanted,
        "after"
    );
    let values = fs::read_to_string(&path).unwrap();
    assert!(
        values.contains("    runAsUser: 0\n    runAsGroup: 0\n    readOnlyRootFilesystem: false"),
        "the image's keys, which no longer render, are left as they are: {values}"
    );
}

#[test]
fn a_context_behind_an_enabled_switch_beside_it_is_turned_on() {
    let (tmp, chart) = fixture("nested-guard");
    assert_eq!(
        rendered_contexts(&chart),
        json!({"Deployment/release-wiki": {"pod": null, "wiki": null}}),
        "before: both switches are off"
    );
    let said = fix_twice(tmp.path(), "nested-guard");
    let mut pod = pod_baseline();
    pod["fsGroup"] = json!(2000);
    assert_eq!(
        rendered_contexts(&chart),
        json!({"Deployment/release-wiki": {"pod": pod, "wiki": container_baseline()}}),
        "after"
    );
    assert!(
        said.contains("values.yaml:8: values/app.securityContext.context: override: `enabled: false` becomes `true`"),
        "{said}"
    );
}

#[test]
fn a_chart_with_only_a_container_context_gets_the_pod_s_ids_there_and_fsgroup_is_said() {
    let (tmp, chart) = fixture("container-only");
    assert_eq!(
        rendered_contexts(&chart),
        json!({"Deployment/release-feeds": {"pod": null, "feeds": {}}}),
        "before"
    );
    let said = fix_twice(tmp.path(), "container-only");
    let mut feeds = container_baseline();
    feeds["runAsUser"] = json!(1000);
    feeds["runAsGroup"] = json!(1000);
    feeds["seccompProfile"] = json!({"type": "RuntimeDefault"});
    assert_eq!(
        rendered_contexts(&chart),
        json!({"Deployment/release-feeds": {"pod": null, "feeds": feeds}}),
        "after"
    );
    assert!(
        said.contains("templates/deployment.yaml:13: Deployment/pod left unchanged: the pod has no securityContext: its containers' contexts get runAsUser, runAsGroup and seccompProfile from values, but fsGroup has no home there (a pod-only field): for it, add `securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}` under `spec:`"),
        "{said}"
    );
    let check = run_with_helm(tmp.path(), &["check", "--format", "json", "container-only"]);
    let json: Json = serde_json::from_slice(&check.stdout).unwrap();
    let left: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["control"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["fsGroup"], "only fsGroup is left: {json:#}");
}

#[test]
fn volume_lists_per_component_and_under_other_names_get_the_writable_tmp() {
    let (tmp, chart) = fixture("component-volumes");
    let before = template(&chart, None).unwrap();
    assert!(
        !before.contains("volumes:") && !before.contains("volumeMounts:"),
        "before: the empty lists render nothing: {before}"
    );
    fix_twice(tmp.path(), "component-volumes");
    let stream = template(&chart, None).unwrap();
    let mut seen = Vec::new();
    for document in yaml_serde::Deserializer::from_str(&stream) {
        let doc: yaml_serde::Value = serde::Deserialize::deserialize(document).unwrap();
        let doc: Json = serde_json::to_value(doc).unwrap();
        let Some(spec) = doc.pointer("/spec/template/spec") else {
            continue;
        };
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(
            spec["volumes"],
            json!([{"name": "tmp", "emptyDir": {}}]),
            "{name}"
        );
        assert_eq!(
            spec["containers"][0]["volumeMounts"],
            json!([{"name": "tmp", "mountPath": "/tmp"}]),
            "{name}"
        );
        seen.push(name);
    }
    assert_eq!(
        seen,
        vec!["release-controller", "release-default-backend"],
        "`controller.additionalVolumes` and `defaultBackend.extraVolumes`"
    );
}
