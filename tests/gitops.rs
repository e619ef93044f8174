//! GitOps releases end to end: the golden cases under `fixtures/gitops/` (a Flux
//! `HelmRelease`, Argo CD `Application`s with `valuesObject`, a `values: |` string, both, several
//! sources, an `ApplicationSet`, values from a ConfigMap or a Secret, a privileged chart, a chart
//! this run hardens too, a chart in another repository), each in a git repository whose
//! `origin` is the one the manifests name, with the charts of `fixtures/gitops/charts/`.
//!
//! `fix` (with the render check on, through Helm's engine) must change exactly the files of
//! `expected/` into them, byte for byte, and print `report.txt`; a second `fix` changes nothing.
//! Then the test renders each release itself, before and after, with Helm's engine and the
//! release's own values: every pod of a release the report does not leave alone meets the
//! contract (typed with k8s-openapi), and nothing changed outside securityContexts and the
//! writable /tmp (which goes in through the volume lists a chart wires).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

mod common;
use common::chart_server::ChartServer;
use common::helm::{render_release, run_with_helm, template};
use common::{contract_gaps, copy_dir, snapshot, typed_pod_specs};

const ORIGIN: &str = "https://github.com/acme/fleet.git";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops")
}

fn cases(root: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "the golden cases are there");
    cases
}

/// A git repository with the case's input (the served URL filled in) and the shared charts,
/// `origin` set.
fn work_tree(case: &Path, substitute: &Substitute) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("charts"), &dir.path().join("charts"));
    copy_dir(&case.join("input"), dir.path());
    for (path, bytes) in snapshot(&case.join("input")) {
        if let Ok(text) = String::from_utf8(bytes) {
            fs::write(dir.path().join(path), substitute.fill(&text)).unwrap();
        }
    }
    common::init_with_origin(dir.path(), ORIGIN);
    dir
}

fn args(case: &Path) -> Vec<String> {
    fs::read_to_string(case.join("args.txt"))
        .unwrap_or_else(|_| "apps".into())
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn golden_cases_give_the_expected_files_and_report_and_render_hardened() {
    // The charts a case unpacks go to a cache of the test's own, never the user's.
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path().to_str().unwrap().to_string();
    for case in cases(&fixtures()) {
        run_golden(&case, &Substitute::none(), &["--chart-cache", &cache], &[]);
    }
}

#[test]
fn releases_of_charts_in_a_chart_repository_on_loopback() {
    let served = serve_charts();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap().to_string();
    let substitute = Substitute {
        pairs: vec![(PLACEHOLDER.into(), served.server.url())],
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops-repository");
    let cases = cases(&root);
    assert!(cases.len() >= 6, "the repository cases are there");
    for case in cases {
        run_golden(&case, &substitute, &["--chart-cache", &cache_arg], &[]);
    }
    let log = served.server.log();
    assert!(
        log.iter().any(|p| p == "/tampered/web-1.2.0.tgz"),
        "the tampered archive was downloaded: {log:?}"
    );
    let cached: Vec<PathBuf> = snapshot(cache.path()).into_keys().collect();
    assert!(
        cached.iter().any(|p| p.ends_with("web/Chart.yaml")),
        "the good chart is cached: {cached:?}"
    );
    assert!(
        !cached
            .iter()
            .any(|p| p.to_string_lossy().contains("tampered") && p.ends_with("Chart.yaml")),
        "nothing of the tampered archive is cached: {cached:?}"
    );
}

/// The OCI cases under `fixtures/gitops-oci/`: the fixture charts packaged by Helm's engine
/// and pushed by the test as OCI artifacts (Helm's config and chart layer media types) to
/// Debian's `docker-registry` on 127.0.0.1: an open registry (`web` tagged 0.9.0, 1.2.0 and
/// 2.0.0), one with htpasswd auth whose login is in a temporary
/// `DOCKER_CONFIG`, one with auth and no login there (denied), and a server that answers a
/// chart manifest with another chart's bytes as its layer (a digest mismatch). Then the
/// registries are stopped and the first two cases run again `--offline` from the cache (the
/// range says that it took the highest cached match).
#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn releases_of_charts_in_an_oci_registry_on_loopback() {
    use common::registry::Registry;
    const PASSWORD: &str = "fleet-pw-8c1e0f5a";
    let packaged = package_charts();
    let web = fs::read(packaged.path().join("web-1.2.0.tgz")).unwrap();
    let defaults = fs::read(packaged.path().join("hardened-defaults-0.4.0.tgz")).unwrap();
    let open = Registry::start();
    for tag in ["0.9.0", "1.2.0", "2.0.0"] {
        push_chart(&open, "charts/web", tag, &web);
    }
    let private = Registry::start_with_htpasswd("fleet", PASSWORD);
    push_chart(&private, "charts/web", "1.2.0", &web);
    let locked = Registry::start_with_htpasswd("fleet", PASSWORD);
    push_chart(&locked, "charts/web", "1.2.0", &web);
    let tampered_dir = tempfile::tempdir().unwrap();
    let tampered = ChartServer::start(tampered_dir.path());
    serve_tampered_chart(&tampered, &web, &defaults);

    let home = tempfile::tempdir().unwrap();
    let login = common::registry::base64(format!("fleet:{PASSWORD}").as_bytes());
    let docker = common::registry::docker_config(
        &home.path().join("docker"),
        &format!(
            r#"{{"auths":{{"{}":{{"auth":"{login}"}}}}}}"#,
            private.host()
        ),
    );
    let nowhere = home.path().join("nowhere.json");
    let env: Vec<(&str, &Path)> = vec![
        ("DOCKER_CONFIG", &docker),
        ("HELM_REGISTRY_CONFIG", &nowhere),
        ("REGISTRY_AUTH_FILE", &nowhere),
        ("KUBE_HARDEN_REGISTRY_TOKEN", Path::new("")),
    ];
    let substitute = Substitute {
        pairs: vec![
            ("registry.kube-harden.test".into(), open.host()),
            ("private.kube-harden.test".into(), private.host()),
            ("denied.kube-harden.test".into(), locked.host()),
            (
                "tampered.kube-harden.test".into(),
                format!("127.0.0.1:{}", tampered.port()),
            ),
            // Where the denied case's message says credentials were looked for.
            ("<home>".into(), home.path().display().to_string()),
        ],
    };
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap().to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops-oci");
    let cases = cases(&root);
    for case in &cases {
        run_golden(case, &substitute, &["--chart-cache", &cache_arg], &env);
    }
    let cached = snapshot(cache.path());
    assert!(
        cached
            .keys()
            .any(|p| p.ends_with("charts/web/1.2.0/web/Chart.yaml")),
        "the chart is cached: {:?}",
        cached.keys().collect::<Vec<_>>()
    );
    let tampered_folder = format!("127.0.0.1_{}", tampered.port());
    assert!(
        !cached
            .keys()
            .any(|p| p.to_string_lossy().contains(&tampered_folder)),
        "nothing of the tampered layer is cached"
    );
    assert!(
        cached
            .values()
            .all(|bytes| !String::from_utf8_lossy(bytes).contains(PASSWORD)),
        "no password in the cache"
    );
    drop((open, private, locked, tampered));
    let offline = ["--chart-cache", cache_arg.as_str(), "--offline"];
    run_golden(&cases[0], &substitute, &offline, &env);
    // A range offline: the highest cached match, said so; the same edit as online.
    let work = work_tree(&cases[1], &substitute);
    let fix = [
        "fix",
        "--chart-cache",
        cache_arg.as_str(),
        "--offline",
        "apps",
    ];
    let out = common::helm::run_with_helm_env(work.path(), &fix, &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("`web` 1.2.0 from oci://")
            && stderr
                .contains("(--offline: the highest cached version that matches `>=1.0.0 <2.0.0`)"),
        "{stderr}"
    );
    let expected = fs::read_to_string(cases[1].join("expected/apps/web.yaml")).unwrap();
    assert_eq!(
        fs::read_to_string(work.path().join("apps/web.yaml")).unwrap(),
        substitute.fill(&expected)
    );
}

/// The fixture charts `web` and `hardened-defaults` packaged by Helm's engine.
fn package_charts() -> tempfile::TempDir {
    const SCRIPT: &str = "import sys\nimport helm_python as helm\nfor chart in sys.argv[2:]:\n    helm.package(chart, destination=sys.argv[1])\n";
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let charts = fixtures().join("charts");
    let out = Command::new(common::helm::python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir.path())
        .arg(charts.join("web"))
        .arg(charts.join("hardened-defaults"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";

/// Pushes a chart archive as Helm does: its config (name, version) and the archive as the
/// chart layer, tagged `tag`.
fn push_chart(registry: &common::registry::Registry, repository: &str, tag: &str, archive: &[u8]) {
    let name = repository.rsplit('/').next().unwrap();
    let config = format!(r#"{{"name":"{name}","version":"{tag}","apiVersion":"v2"}}"#);
    let layers = [(kube_harden::helm::repository::CHART_LAYER, archive)];
    let manifest = registry.image_manifest(repository, HELM_CONFIG, config.as_bytes(), &layers);
    registry.push_manifest(
        repository,
        tag,
        common::registry::OCI_MANIFEST,
        manifest.as_bytes(),
    );
}

/// A "registry" whose manifest of `charts/web:1.2.0` lists `web`'s archive digest for its
/// layer, and whose blob at that digest is `other`.
fn serve_tampered_chart(server: &ChartServer, web: &[u8], other: &[u8]) {
    use common::registry::sha256_digest;
    let config = b"{}";
    let layer = sha256_digest(web);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": common::registry::OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": sha256_digest(config), "size": 2},
        "layers": [{"mediaType": kube_harden::helm::repository::CHART_LAYER, "digest": layer, "size": web.len()}],
    });
    server.answer(
        "/v2/charts/web/manifests/1.2.0",
        manifest.to_string().into_bytes(),
    );
    server.answer(&format!("/v2/charts/web/blobs/{layer}"), other.to_vec());
}

/// The placeholders of the fixtures (a URL, a registry host), and what each stands for.
struct Substitute {
    pairs: Vec<(String, String)>,
}

const PLACEHOLDER: &str = "http://charts.kube-harden.test";

impl Substitute {
    fn none() -> Substitute {
        Substitute { pairs: vec![] }
    }

    /// A fixture's text with the served URLs in.
    fn fill(&self, text: &str) -> String {
        self.pairs
            .iter()
            .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
    }

    /// Output with the served URL and the archives' digests (they carry Helm's packaging
    /// time) as placeholders.
    fn normalise(&self, text: &str) -> String {
        let text = self
            .pairs
            .iter()
            .fold(text.to_string(), |text, (from, to)| text.replace(to, from));
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("(sha256 ") {
            out.push_str(&rest[..at + "(sha256 ".len()]);
            let tail = &rest[at + "(sha256 ".len()..];
            let end = tail.find(')').unwrap_or(tail.len());
            out.push_str("<digest>");
            rest = &tail[end..];
        }
        out.push_str(rest);
        without_hex_digests(&out)
    }
}

/// Every 64-digit hexadecimal run (a SHA-256) as `<sha256>`: Helm's archives carry the
/// packaging time, so their digests differ from run to run.
fn without_hex_digests(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() == 64 { "<sha256>" } else { &run });
        run.clear();
        out.push(c);
    }
    out.push_str(if run.len() == 64 { "<sha256>" } else { &run });
    out
}

fn run_golden(case: &Path, substitute: &Substitute, extra: &[&str], env: &[(&str, &Path)]) {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let work = work_tree(case, substitute);
    let before = common::without_git(snapshot(work.path()));
    let mut fix = vec!["fix".to_string()];
    fix.extend(extra.iter().map(|a| a.to_string()));
    fix.extend(args(case));
    let fix: Vec<&str> = fix.iter().map(String::as_str).collect();
    let out = common::helm::run_with_helm_env(work.path(), &fix, env);
    let stderr = substitute.normalise(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
    if std::env::var_os("KUBE_HARDEN_BLESS").is_some() {
        bless(case, substitute, &before, work.path(), &stderr);
    }
    let report = fs::read_to_string(case.join("report.txt")).unwrap();
    assert_eq!(stderr, report, "{name}: the report");
    let after = common::without_git(snapshot(work.path()));
    // A case that changes nothing has no expected/ (git keeps no empty folder).
    let expected = match case.join("expected").is_dir() {
        true => snapshot(&case.join("expected")),
        false => BTreeMap::new(),
    };
    for (path, bytes) in &after {
        let want = match expected.get(path) {
            Some(want) => substitute.fill(&String::from_utf8_lossy(want)).into_bytes(),
            None => before[path].clone(),
        };
        assert!(
            *bytes == want,
            "{name}: {} differs:\n{}",
            path.display(),
            String::from_utf8_lossy(bytes)
        );
    }
    assert!(
        expected.keys().all(|p| after.contains_key(p)),
        "{name}: every expected file is there"
    );
    let again = common::helm::run_with_helm_env(work.path(), &fix, env);
    assert_eq!(again.status.code(), Some(0), "{name}");
    assert_eq!(
        common::without_git(snapshot(work.path())),
        after,
        "{name}: a second fix changes nothing"
    );
    let left_alone: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("left unchanged"))
        .collect();
    // A release the report says renders short (its own values turn a context off) is
    // judged for what changed, not held to the contract.
    let short: Vec<&str> = report
        .lines()
        .filter(|l| l.contains(": risk: renders short of the baseline"))
        .collect();
    check_renders(&name, work.path(), &before, &after, &left_alone, &short);
}

/// `KUBE_HARDEN_BLESS=1`: writes the case's report.txt and expected/ from this run (to be
/// read in review before they are committed); the assertions then run against them.
fn bless(
    case: &Path,
    substitute: &Substitute,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    work: &Path,
    stderr: &str,
) {
    fs::write(case.join("report.txt"), stderr).unwrap();
    let expected = case.join("expected");
    let _ = fs::remove_dir_all(&expected);
    for (path, bytes) in common::without_git(snapshot(work)) {
        if before.get(&path) != Some(&bytes) {
            let to = expected.join(&path);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::write(to, substitute.normalise(&String::from_utf8_lossy(&bytes))).unwrap();
        }
    }
}

/// The fixture charts packaged by Helm's engine into `stable/` with Helm's index, and a
/// `tampered/` repository whose index names `web` 1.2.0 with the right digest and whose
/// archive is another chart's.
struct Served {
    _dir: tempfile::TempDir,
    server: ChartServer,
}

fn serve_charts() -> Served {
    const SCRIPT: &str = r#"
import sys
import helm_python as helm
dest = sys.argv[1]
for chart in sys.argv[2:]:
    helm.package(chart, destination=dest)
helm.repo_index_generate(dest)
"#;
    let dir = tempfile::tempdir().unwrap();
    let stable = dir.path().join("stable");
    fs::create_dir_all(&stable).unwrap();
    let charts = fixtures().join("charts");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(common::helm::python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(&stable)
        .arg(charts.join("web"))
        .arg(charts.join("hardened-defaults"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tampered = dir.path().join("tampered");
    fs::create_dir_all(&tampered).unwrap();
    fs::copy(stable.join("index.yaml"), tampered.join("index.yaml")).unwrap();
    fs::copy(
        stable.join("hardened-defaults-0.4.0.tgz"),
        tampered.join("web-1.2.0.tgz"),
    )
    .unwrap();
    let server = ChartServer::start(dir.path());
    Served { _dir: dir, server }
}

/// Renders every release of the case before and after, with its own values.
fn check_renders(
    name: &str,
    work: &Path,
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
    left_alone: &[&str],
    short: &[&str],
) {
    for (path, bytes) in after.iter().filter(|(p, _)| p.starts_with("apps")) {
        let new = releases(&String::from_utf8_lossy(bytes));
        let old = releases(&String::from_utf8_lossy(&before[path]));
        let post = flux_post_renderers(&String::from_utf8_lossy(bytes));
        for (release, (chart, values)) in &new {
            let renders = work.join(chart).join("Chart.yaml").is_file()
                || (chart.ends_with(".tgz") && work.join(chart).is_file());
            if left_alone
                .iter()
                .any(|l| l.contains(&format!("/{release} ")))
                || !renders
            {
                continue;
            }
            let label = format!("{name}: {release}");
            let render = |values: &Value| {
                let file = tempfile::NamedTempFile::new().unwrap();
                fs::write(file.path(), yaml_serde::to_string(values).unwrap()).unwrap();
                template(&work.join(chart), Some(file.path())).unwrap()
            };
            // A Flux release with post-renderers renders under its own name, through
            // Kustomize's engine: the render before the edits without patches (it had none).
            let (was, now) = match post.get(release).filter(|(_, p)| !p.is_empty()) {
                Some((name, patches)) => (
                    docs(&render_release(
                        &work.join(chart),
                        &old[release].1,
                        name,
                        Some(&[]),
                    )),
                    docs(&render_release(
                        &work.join(chart),
                        values,
                        name,
                        Some(patches),
                    )),
                ),
                None => (docs(&render(&old[release].1)), docs(&render(values))),
            };
            // The writable /tmp goes in only through lists the chart wires (and then exactly
            // as for a manifest); otherwise nothing but securityContexts changes.
            common::assert_only_hardened(was, &now, &label);
            let reported = short.iter().any(|l| l.contains(&format!("/{release} ")));
            let mut pods = 0;
            for doc in &now {
                for spec in typed_pod_specs(doc).unwrap_or_default() {
                    pods += 1;
                    let gaps = contract_gaps(&spec);
                    match reported {
                        true => assert!(!gaps.is_empty(), "{label}: reported short, and is"),
                        false => assert_eq!(gaps, Vec::<String>::new(), "{label}"),
                    }
                }
            }
            assert!(pods > 0, "{label}: the chart renders pods");
        }
    }
}

/// The Flux releases of a manifest with post-renderers: name -> (release name, patches).
fn flux_post_renderers(text: &str) -> BTreeMap<String, (String, Vec<common::helm::Patch>)> {
    docs(text)
        .iter()
        .filter(|d| d["kind"] == "HelmRelease")
        .map(|d| {
            let name = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (name, common::helm::flux_post_renderers(d))
        })
        .collect()
}

fn docs(stream: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The releases of a manifest this test reads itself: name -> (chart path in the
/// repository, values over the chart's defaults). Flux: `spec.values` over the ConfigMaps of
/// `valuesFrom` in the same file; Argo: `helm.values` then `helm.valuesObject`.
fn releases(text: &str) -> BTreeMap<String, (String, Value)> {
    let all = docs(text);
    let config_map = |name: &str| {
        all.iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
            .and_then(|d| d["data"]["values.yaml"].as_str())
            .map(|t| yaml_serde::from_str::<Value>(t).unwrap())
    };
    let mut out = BTreeMap::new();
    for doc in &all {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match doc["kind"].as_str() {
            Some("HelmRelease") => {
                let spec = &doc["spec"]["chart"]["spec"];
                let chart = spec["chart"].as_str().unwrap_or_default();
                // A chartRef to an OCIRepository: the fixture chart its URL ends with.
                let oci_chart = doc["spec"]["chartRef"]["name"].as_str().and_then(|source| {
                    let found = all.iter().find(|d| {
                        d["kind"] == "OCIRepository" && d["metadata"]["name"] == source
                    })?;
                    found["spec"]["url"]
                        .as_str()?
                        .rsplit('/')
                        .next()
                        .map(served_chart)
                });
                // A chart from a chart repository is one of the fixture charts served.
                let chart = match (oci_chart, spec["sourceRef"]["kind"].as_str()) {
                    (Some(oci), _) => oci,
                    (None, Some("HelmRepository")) => served_chart(chart),
                    _ => chart.trim_start_matches("./").to_string(),
                };
                let mut values = Value::Mapping(Default::default());
                for from in doc["spec"]["valuesFrom"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = config_map(from["name"].as_str().unwrap_or_default()) {
                        merge(&mut values, &v);
                    }
                }
                if !doc["spec"]["values"].is_null() {
                    merge(&mut values, &doc["spec"]["values"]);
                }
                out.insert(name, (chart, values));
            }
            Some("Application") | Some("ApplicationSet") => {
                let spec = match doc["kind"].as_str() {
                    Some("ApplicationSet") => &doc["spec"]["template"]["spec"],
                    _ => &doc["spec"],
                };
                let sources: Vec<&Value> = match spec["sources"].as_sequence() {
                    Some(list) => list.iter().collect(),
                    None => vec![&spec["source"]],
                };
                let many = sources.len() > 1;
                for (i, source) in sources.into_iter().enumerate() {
                    let path = match (source["chart"].as_str(), source["path"].as_str()) {
                        (Some(chart), _) => served_chart(chart),
                        (None, Some(path)) => path.to_string(),
                        (None, None) => continue,
                    };
                    let mut values = Value::Mapping(Default::default());
                    if let Some(text) = source["helm"]["values"].as_str() {
                        merge(&mut values, &yaml_serde::from_str(text).unwrap());
                    }
                    if !source["helm"]["valuesObject"].is_null() {
                        merge(&mut values, &source["helm"]["valuesObject"]);
                    }
                    let key = if many {
                        format!("{name}[{i}]")
                    } else {
                        name.clone()
                    };
                    out.insert(key, (path, values));
                }
            }
            _ if !doc["helmCharts"].is_null() => {
                let home = doc["helmGlobals"]["chartHome"].as_str().unwrap_or("charts");
                for entry in doc["helmCharts"].as_sequence().into_iter().flatten() {
                    let chart = entry["name"].as_str().unwrap_or_default();
                    let chart = match entry["repo"].as_str() {
                        Some(_) => served_chart(chart),
                        None => format!("apps/{home}/{chart}"),
                    };
                    let mut values = Value::Mapping(Default::default());
                    if !entry["valuesInline"].is_null() {
                        merge(&mut values, &entry["valuesInline"]);
                    }
                    let key = entry["releaseName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    out.insert(key, (chart, values));
                }
            }
            _ => {}
        }
    }
    out
}

/// The fixture chart a served repository holds under `name` (an absolute path).
fn served_chart(name: &str) -> String {
    fixtures().join("charts").join(name).display().to_string()
}

/// Helm's merge of one values layer over another.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if !v.is_null() => merge(slot, v),
                    _ if v.is_null() => {
                        b.remove(k);
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[test]
fn pr_opens_one_pull_request_per_release() {
    let served = serve_charts();
    let substitute = Substitute {
        pairs: vec![(PLACEHOLDER.into(), served.server.url())],
    };
    let fixture = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gitops-repository");
    for (case, file) in [
        ("01-flux-helm-repository", "apps/web.yaml"),
        ("03-applicationset-chart", "apps/api.yaml"),
    ] {
        let text = fs::read_to_string(root.join(case).join("input").join(file)).unwrap();
        let to = fixture.path().join(file);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::write(to, substitute.fill(&text)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (work, _bare) = common::git_remote::repository_with(dir.path(), fixture.path(), None);
    let cache = tempfile::tempdir().unwrap();
    let out = run_with_helm(
        &work,
        &[
            "pr",
            "--dry-run",
            "--format",
            "json",
            "--repo",
            "acme/fleet",
            "--chart-cache",
            cache.path().to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<(String, Vec<String>)> = common::pr_services(&json).into_iter().collect();
    assert_eq!(
        services,
        vec![
            ("apps-api".to_string(), vec!["apps/api.yaml".to_string()]),
            ("apps-web".to_string(), vec!["apps/web.yaml".to_string()]),
        ],
        "{json:#}"
    );
    let body = json["services"][1]["body"].as_str().unwrap();
    assert!(
        body.contains("the HelmRelease `web` gets in its inline values what its effective values (chart `web` 1.2.0 from "),
        "the body says which release, chart, version and source: {body}"
    );
}

#[test]
fn check_and_explain_name_the_release_its_chart_and_the_values_paths() {
    let case = fixtures().join("01-flux-inline-root");
    let work = work_tree(&case, &Substitute::none());
    let check = run_with_helm(work.path(), &["check", "apps"]);
    let text = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "apps/web.yaml:26:1: HelmRelease/web .Values.podSecurityContext pod: runAsUser is 0"
        ),
        "{text}"
    );
    let json = run_with_helm(work.path(), &["check", "--format", "json", "apps"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "HelmRelease"
            && f["name"] == "web .Values.securityContext"
            && f["control"] == "readOnlyRootFilesystem"
            && f["fixable"] == true),
        "{findings:#?}"
    );
    let sarif = run_with_helm(work.path(), &["check", "--format", "sarif", "apps"]);
    let log: serde_json::Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(
        results.iter().any(
            |r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .is_some_and(|u| u.ends_with("apps/web.yaml"))
        ),
        "{results:#?}"
    );
    let explain = run_with_helm(work.path(), &["explain", "apps"]);
    let explained = String::from_utf8_lossy(&explain.stdout);
    assert!(
        explained.contains("the HelmRelease `web` gets in its inline values what its effective values (chart charts/web in this repository) lack at `.Values.podSecurityContext`, `.Values.securityContext`"),
        "{explained}"
    );
}
