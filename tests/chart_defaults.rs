//! Chart defaults that the render proves untaken (issue 27, point 3): a template that renders
//! a securityContext of its own for an empty value (`{{- else if (or .Values.service.hostPort
//! .Values.tls.hostPort) }}` after `{{- if .Values.securityContext }}`, or `default (dict ...)
//! .Values.x`). Where no render of the values in use takes that branch, the value is filled
//! and a note names the condition under which the chart's default would have applied; where a
//! render takes it, the value is left to a person with that reason. End to end through Helm's
//! real engine (the `helm`-compatible shim on helm-python-sdk, see tests/common/helm.rs): the
//! pods are rendered before and after the fix and asserted exactly.

use std::fs;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

mod common;
use common::helm::{run_with_helm, template};
use common::{copy_dir, run_in, snapshot};

/// A copy of the `edge-proxy` fixture chart in a temporary folder: (folder, chart path).
fn edge_proxy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join("edge-proxy");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts/edge-proxy"),
        &chart,
    );
    (tmp, chart)
}

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The pod spec of the rendered Deployment.
fn deployment_pod(chart: &Path, values: Option<&Path>) -> Value {
    let stream = template(chart, values).unwrap();
    let deployment = yaml_serde::Deserializer::from_str(&stream)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment is rendered");
    deployment["spec"]["template"]["spec"].clone()
}

const POD_CONTEXT: &str = "runAsNonRoot: true\nrunAsUser: 1000\nrunAsGroup: 1000\nfsGroup: 1000\nseccompProfile:\n  type: RuntimeDefault\n";
const PROXY_CONTEXT: &str = "allowPrivilegeEscalation: false\nreadOnlyRootFilesystem: true\ncapabilities:\n  drop: [ALL]\nrunAsNonRoot: true\n";
/// The chart's own context of the proxy on a host port.
const PROXY_DEFAULT: &str = "capabilities:\n  add: [NET_BIND_SERVICE]\n  drop: [ALL]\n";
/// The chart's own context of the metrics container (`default (dict ...)`).
const METRICS_DEFAULT: &str = "runAsUser: 65534\nallowPrivilegeEscalation: false\n";

/// The edge proxy's pod: `pod` and `proxy` are the contexts it renders (None: no key).
fn pod(pod: Option<&str>, proxy: Option<&str>, host_port: Option<u16>) -> Value {
    let mut spec = yaml(
        "containers:
  - name: proxy
    image: registry.example.com/edge-proxy:3.2.0
    ports:
      - name: http
        containerPort: 8080
      - name: https
        containerPort: 8443
  - name: metrics
    image: registry.example.com/edge-metrics:1.4.2
",
    );
    spec["containers"][1]["securityContext"] = yaml(METRICS_DEFAULT);
    if let Some(port) = host_port {
        spec["containers"][0]["ports"][0]["hostPort"] = Value::from(port);
    }
    if let Some(context) = proxy {
        spec["containers"][0]["securityContext"] = yaml(context);
    }
    if let Some(context) = pod {
        spec["securityContext"] = yaml(context);
    }
    spec
}

const METRICS_TAKEN: &str = "edge-proxy/values.yaml:24: values/metrics.securityContext left unchanged: the template (templates/deployment.yaml:46) renders a securityContext of its own when `.Values.metrics.securityContext` is empty, and `helm template` with `values.yaml` takes that branch (Deployment/release-edge-proxy spec.template.spec.containers[1].securityContext is the chart's own); a filled value would replace it, so it is left to a person";

#[test]
fn a_default_branch_no_render_takes_is_replaced_by_the_filled_value() {
    let (tmp, chart) = edge_proxy();
    assert_eq!(deployment_pod(&chart, None), pod(None, None, None));

    let out = run_with_helm(tmp.path(), &["fix", "edge-proxy"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("edge-proxy/values.yaml:19: values/securityContext container proxy: override: the template (templates/deployment.yaml:36) renders a securityContext of its own when `.Values.securityContext` is empty and `or .Values.service.hostPort .Values.tls.hostPort`; `helm template` with `values.yaml` does not take that branch, so the value is filled: it now replaces the chart's default where that condition would hold"),
        "{stderr}"
    );
    assert!(stderr.contains(METRICS_TAKEN), "{stderr}");
    assert!(
        !stderr.contains("check it by hand"),
        "the else branch is the chart's default of the wired key, not a gap: {stderr}"
    );

    assert_eq!(
        deployment_pod(&chart, None),
        pod(Some(POD_CONTEXT), Some(PROXY_CONTEXT), None),
        "the proxy gets the baseline; the metrics container keeps the chart's own"
    );
    let fixed = snapshot(&chart);
    let second = run_with_helm(tmp.path(), &["fix", "edge-proxy"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(snapshot(&chart), fixed, "a second fix changes nothing");
}

#[test]
fn a_default_branch_a_value_set_takes_is_left_with_its_condition() {
    let (tmp, chart) = edge_proxy();
    let ci = chart.join("ci/host-port-values.yaml");
    fs::create_dir(chart.join("ci")).unwrap();
    fs::write(&ci, "service:\n  hostPort: 80\n").unwrap();
    assert_eq!(deployment_pod(&chart, None), pod(None, None, None));
    assert_eq!(
        deployment_pod(&chart, Some(&ci)),
        pod(None, Some(PROXY_DEFAULT), Some(80))
    );

    let out = run_with_helm(tmp.path(), &["fix", "edge-proxy"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("edge-proxy/values.yaml:19: values/securityContext left unchanged: the template (templates/deployment.yaml:36) renders a securityContext of its own when `.Values.securityContext` is empty and `or .Values.service.hostPort .Values.tls.hostPort`, and `helm template` with `ci/host-port-values.yaml` takes that branch (Deployment/release-edge-proxy spec.template.spec.containers[0].securityContext is the chart's own); a filled value would replace it, so it is left to a person"),
        "{stderr}"
    );
    assert!(stderr.contains(METRICS_TAKEN), "{stderr}");

    assert_eq!(
        deployment_pod(&chart, None),
        pod(Some(POD_CONTEXT), None, None),
        "only the pod's context is filled"
    );
    assert_eq!(
        deployment_pod(&chart, Some(&ci)),
        pod(Some(POD_CONTEXT), Some(PROXY_DEFAULT), Some(80)),
        "the chart's own context still ships on the host port"
    );
    let fixed = snapshot(&chart);
    let second = run_with_helm(tmp.path(), &["fix", "edge-proxy"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(snapshot(&chart), fixed, "a second fix changes nothing");
}

#[test]
fn without_a_render_a_default_is_left_to_a_person() {
    let (tmp, chart) = edge_proxy();
    let out = run_in(tmp.path(), &["--render", "never", "fix", "edge-proxy"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("edge-proxy/values.yaml:19: values/securityContext left unchanged: the template (templates/deployment.yaml:36) renders a securityContext of its own when `.Values.securityContext` is empty and `or .Values.service.hostPort .Values.tls.hostPort`; no render proved that branch untaken (no render check ran, a render failed, or the values in use do not render it), and a filled value would replace it, so it is left to a person"),
        "{stderr}"
    );
    let values = fs::read_to_string(chart.join("values.yaml")).unwrap();
    assert!(values.contains("\nsecurityContext: {}\n"), "{values}");
    assert!(
        values.contains("\npodSecurityContext:\n  runAsNonRoot: true\n"),
        "{values}"
    );
}
