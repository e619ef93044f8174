//! The render check on charts that render differently every time (issue 27): generated
//! passwords, certificates and checksums of them are left out of the comparison and named, a
//! real change beside them is still refused; a chart's own writable /tmp is accepted; an
//! override file that turns a context off is a note. End to end through Helm's real engine
//! (the `helm`-compatible shim on helm-python-sdk, see tests/common/helm.rs), before and after
//! the fix, for the chart itself and for a Flux release of it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::helm::{run_with_helm, template};
use common::{contract_gaps, copy_dir, snapshot, typed_pod_specs};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/charts")
}

/// A copy of one fixture chart in a temporary folder: (folder, chart path inside it).
fn chart_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let chart = tmp.path().join(name);
    copy_dir(&fixtures().join(name), &chart);
    (tmp, chart)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn documents(stream: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &Value| !d.is_null())
        .collect()
}

/// The pod spec of the rendered Deployment (there is one in each fixture).
fn deployment_pod(stream: &str) -> Value {
    let deployment = documents(stream)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment is rendered");
    deployment["spec"]["template"]["spec"].clone()
}

fn yaml(text: &str) -> Value {
    yaml_serde::from_str(text).unwrap()
}

/// The controls the rendered pods fall short of.
fn gaps(stream: &str) -> Vec<String> {
    documents(stream)
        .iter()
        .flat_map(|d| typed_pod_specs(d).unwrap_or_default())
        .flat_map(|spec| contract_gaps(&spec))
        .collect()
}

const POD_CONTEXT: &str = "runAsNonRoot: true\nrunAsUser: 1000\nrunAsGroup: 1000\nfsGroup: 1000\nseccompProfile:\n  type: RuntimeDefault\n";
const CONTAINER_CONTEXT: &str = "allowPrivilegeEscalation: false\nreadOnlyRootFilesystem: true\ncapabilities:\n  drop: [ALL]\nrunAsNonRoot: true\n";

/// The ledger's pod as generated-secrets renders it, with the contexts and the writable /tmp
/// the fix gives it when `hardened`.
fn ledger_pod(hardened: bool) -> Value {
    let mut pod = yaml(
        "containers:
  - name: ledger
    image: registry.example.com/ledger:2.1.0
    ports:
      - name: https
        containerPort: 8443
    env:
      - name: LEDGER_PASSWORD
        valueFrom:
          secretKeyRef:
            name: release-ledger-auth
            key: password
    volumeMounts:
      - name: webhook-tls
        mountPath: /etc/ledger/tls
        readOnly: true
volumes:
  - name: webhook-tls
    secret:
      secretName: release-ledger-webhook-tls
",
    );
    if hardened {
        pod["securityContext"] = yaml(POD_CONTEXT);
        let container = &mut pod["containers"][0];
        container["securityContext"] = yaml(CONTAINER_CONTEXT);
        let mounts = container["volumeMounts"].as_sequence_mut().unwrap();
        mounts.push(yaml("{name: tmp, mountPath: /tmp}"));
        let volumes = pod["volumes"].as_sequence_mut().unwrap();
        volumes.push(yaml("{name: tmp, emptyDir: {}}"));
    }
    pod
}

/// What the fix says it did not compare, for one value set.
fn not_compared<'s>(stderr: &'s str, set: &str) -> &'s str {
    let prefix = format!("`helm template` with {set}: not compared by the render check, as each differs between two renders of the unchanged chart");
    stderr
        .lines()
        .find(|l| l.contains(&prefix))
        .unwrap_or_else(|| panic!("no note for {set}: {stderr}"))
}

#[test]
fn a_chart_that_generates_its_secrets_is_fixed_and_says_what_was_not_compared() {
    let (tmp, chart) = chart_copy("generated-secrets");
    let ci = chart.join("ci/self-signed-values.yaml");
    for values in [None, Some(ci.as_path())] {
        let before = template(&chart, values).unwrap();
        assert_eq!(deployment_pod(&before), ledger_pod(false), "{values:?}");
        // The template that starts with `---# comment` is split as Helm splits it.
        assert!(
            before.contains("# Source: generated-secrets/templates/webhook.yaml\n# The CA and the serving certificate"),
            "{before}"
        );
    }

    let out = run_with_helm(tmp.path(), &["fix", "generated-secrets"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let defaults = not_compared(&stderr, "values.yaml");
    assert!(
        defaults.starts_with("generated-secrets/values.yaml:1: risk: "),
        "{defaults}"
    );
    for field in [
        "Deployment/release-ledger spec.template.metadata.annotations.checksum/secret",
        "Deployment/release-ledger spec.template.metadata.annotations.checksum/webhook-tls",
        "Secret/release-ledger-auth data.password",
        "Secret/release-ledger-auth data.htpasswd",
        "Secret/release-ledger-webhook-tls data.ca.crt",
        "Secret/release-ledger-webhook-tls data.tls.crt",
        "Secret/release-ledger-webhook-tls data.tls.key",
        "ValidatingWebhookConfiguration/release-ledger webhooks[0].clientConfig.caBundle",
    ] {
        assert!(defaults.contains(field), "{field}: {defaults}");
    }
    for stable in ["data.username", "spec.replicas", "webhooks[0].name"] {
        assert!(!defaults.contains(stable), "{stable}: {defaults}");
    }
    let self_signed = not_compared(&stderr, "ci/self-signed-values.yaml");
    assert!(
        self_signed.starts_with("generated-secrets/ci/self-signed-values.yaml:1: risk: ")
            && self_signed.contains(
                "Secret/release-ledger-tls data.tls.crt, Secret/release-ledger-tls data.tls.key"
            ),
        "{self_signed}"
    );

    for values in [None, Some(ci.as_path())] {
        let after = template(&chart, values).unwrap();
        assert_eq!(deployment_pod(&after), ledger_pod(true), "{values:?}");
        assert_eq!(gaps(&after), Vec::<String>::new(), "{values:?}");
    }
    let fixed = snapshot(&chart);
    let second = run_with_helm(tmp.path(), &["fix", "generated-secrets"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(snapshot(&chart), fixed, "a second fix changes nothing");
}

#[test]
fn a_real_change_outside_the_contexts_of_a_chart_that_varies_is_still_refused() {
    let (tmp, chart) = chart_copy("generated-secrets");
    // A template that renders the container's readOnlyRootFilesystem outside any context:
    // the fix changes it, and the two unedited renders agree on it.
    fs::write(
        chart.join("templates/settings.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-ledger-settings\ndata:\n  session-secret: {{ randAlphaNum 12 | quote }}\n  read-only-root: {{ .Values.securityContext.readOnlyRootFilesystem | default false | quote }}\n",
    )
    .unwrap();
    let before = snapshot(&chart);
    let out = run_with_helm(tmp.path(), &["fix", "generated-secrets"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("generated-secrets/values.yaml:1:1: not written: in the render of generated-secrets with values.yaml, ConfigMap/release-ledger-settings the edits change the rendered object outside its securityContexts and the writable /tmp (data.read-only-root)"),
        "{stderr}"
    );
    let note = not_compared(&stderr, "values.yaml");
    assert!(
        note.contains("ConfigMap/release-ledger-settings data.session-secret")
            && !note.contains("data.read-only-root"),
        "the varying field of the same object is not compared, the changed one is: {note}"
    );
    assert_eq!(snapshot(&chart), before, "nothing is written");
}

#[test]
fn a_chart_that_mounts_its_own_tmp_when_read_only_gets_no_second_one() {
    let (tmp, chart) = chart_copy("own-tmp");
    let pod = |context: bool| {
        let mut pod = yaml(
            "containers:
  - name: server
    image: registry.example.com/backup-server:1.14.0
    volumeMounts:
      - name: plugins
        mountPath: /plugins
volumes:
  - name: plugins
    emptyDir: {}
",
        );
        if context {
            pod["securityContext"] = yaml(POD_CONTEXT);
            let container = &mut pod["containers"][0];
            container["securityContext"] = yaml(CONTAINER_CONTEXT);
            let mounts = container["volumeMounts"].as_sequence_mut().unwrap();
            mounts.push(yaml("{name: tmpdir, mountPath: /tmp}"));
            let volumes = pod["volumes"].as_sequence_mut().unwrap();
            volumes.push(yaml("{name: tmpdir, emptyDir: {}}"));
        }
        pod
    };
    assert_eq!(deployment_pod(&template(&chart, None).unwrap()), pod(false));

    let out = run_with_helm(tmp.path(), &["fix", "own-tmp"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("adds an emptyDir"), "{stderr}");
    assert!(
        !stderr.contains("not compared"),
        "a chart that renders the same each time: {stderr}"
    );
    let after = template(&chart, None).unwrap();
    assert_eq!(
        deployment_pod(&after),
        pod(true),
        "one writable /tmp, the chart's own"
    );
    assert_eq!(gaps(&after), Vec::<String>::new());

    let fixed = snapshot(&chart);
    let second = run_with_helm(tmp.path(), &["fix", "own-tmp"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(snapshot(&chart), fixed, "a second fix changes nothing");
}

#[test]
fn an_override_that_turns_a_context_off_is_a_note_and_the_rest_is_fixed() {
    let (tmp, chart) = chart_copy("empty-override");
    let before = snapshot(&chart);
    let out = run_with_helm(tmp.path(), &["fix", "empty-override"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("empty-override/values-dev.yaml:3: values/securityContext: risk: `securityContext: \"\"` turns the chart's securityContext off in this file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("`securityContext` is not a mapping"),
        "{stderr}"
    );
    let after = snapshot(&chart);
    for file in ["values-dev.yaml", "values-staging.yaml"] {
        assert_eq!(after[Path::new(file)], before[Path::new(file)], "{file}");
    }
    assert_ne!(
        after[Path::new("values.yaml")],
        before[Path::new("values.yaml")]
    );

    let hardened = template(&chart, None).unwrap();
    let mut pod = yaml(
        "containers:
  - name: reports
    image: registry.example.com/reports:5.2.0
    volumeMounts:
      - {name: tmp, mountPath: /tmp}
volumes:
  - {name: tmp, emptyDir: {}}
",
    );
    pod["securityContext"] = yaml(POD_CONTEXT);
    pod["containers"][0]["securityContext"] = yaml(CONTAINER_CONTEXT);
    assert_eq!(deployment_pod(&hardened), pod);
    let staging = template(&chart, Some(&chart.join("values-staging.yaml"))).unwrap();
    assert_eq!(
        deployment_pod(&staging),
        pod,
        "`{{}}` keeps the chart's defaults"
    );
    // The development values keep what they chose: no container context.
    let dev = template(&chart, Some(&chart.join("values-dev.yaml"))).unwrap();
    let mut off = pod.clone();
    off["containers"][0]
        .as_mapping_mut()
        .unwrap()
        .remove("securityContext");
    assert_eq!(deployment_pod(&dev), off);

    let second = run_with_helm(tmp.path(), &["fix", "empty-override"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(snapshot(&chart), after, "a second fix changes nothing");
}

#[test]
fn a_flux_release_of_a_chart_that_generates_its_secrets_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("generated-secrets"),
        &dir.path().join("charts/ledger"),
    );
    fs::create_dir_all(dir.path().join("apps")).unwrap();
    fs::write(
        dir.path().join("apps/ledger.yaml"),
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: fleet
  namespace: flux-system
spec:
  interval: 5m
  url: https://github.com/acme/fleet
  ref:
    branch: main
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: ledger
  namespace: ledger
spec:
  interval: 10m
  chart:
    spec:
      chart: ./charts/ledger
      sourceRef:
        kind: GitRepository
        name: fleet
        namespace: flux-system
  values:
    securityContext:
      readOnlyRootFilesystem: false
",
    )
    .unwrap();
    for args in [
        vec!["init", "-q"],
        vec![
            "remote",
            "add",
            "origin",
            "https://github.com/acme/fleet.git",
        ],
    ] {
        let ok = Command::new("git")
            .args(&args)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let out = run_with_helm(dir.path(), &["fix", "apps"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("apps/ledger.yaml:26: HelmRelease/ledger .Values.podSecurityContext: risk: its chart (charts/ledger in this repository): not compared by the render check, as each differs between two renders of the unchanged chart"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Secret/ledger-ledger-webhook-tls data.tls.crt"),
        "{stderr}"
    );

    // The release's values over the chart's, rendered: the pod is hardened.
    let release = fs::read_to_string(dir.path().join("apps/ledger.yaml")).unwrap();
    let values: Value = documents(&release)[1]["spec"]["values"].clone();
    let file = dir.path().join("release-values.yaml");
    fs::write(&file, yaml_serde::to_string(&values).unwrap()).unwrap();
    let rendered = template(&dir.path().join("charts/ledger"), Some(&file)).unwrap();
    assert_eq!(deployment_pod(&rendered), ledger_pod(true));

    let fixed = snapshot(dir.path());
    let second = run_with_helm(dir.path(), &["fix", "apps"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(snapshot(dir.path()), fixed, "a second fix changes nothing");
}
