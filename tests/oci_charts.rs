//! `helm::repository` with `oci://` charts against Debian's `docker-registry` on 127.0.0.1
//! (tests/common/registry.rs): the fixture chart `fixtures/repository-charts/shop-api`
//! packaged by Helm's engine at several versions and pushed by the test as Helm pushes a chart
//! (Helm's config media type, the chart layer; a version's `+` written `_` in its tag). Exact
//! tags, ranges against the tag list, digests, the cache answering with the registry gone,
//! `--offline`, and an artifact that is no chart. Nothing here reaches beyond 127.0.0.1.

mod common;

use std::fs;
use std::path::Path;

use common::registry::{Registry, OCI_LAYER, OCI_MANIFEST};
use kube_harden::helm::repository::{ChartCache, ChartRef, FetchError, FetchedChart, CHART_LAYER};
use kube_harden::registry::CredentialStore;
use sha2::{Digest, Sha256};

const CHART: &str = "shop-api";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const VERSIONS: [&str; 4] = ["1.0.0", "1.1.0", "1.2.0+build.1", "2.0.0"];

/// The fixture chart packaged by Helm's engine at each version, into `dir`.
fn package(dir: &Path) {
    const SCRIPT: &str = "import sys\nimport helm_python as helm\nfor v in sys.argv[3:]:\n    helm.package(sys.argv[1], destination=sys.argv[2], version=v)\n";
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/repository-charts/shop-api");
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::helm::python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(&chart)
        .arg(dir)
        .args(VERSIONS)
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
}

/// A registry with the chart pushed at every version; version -> manifest digest.
struct Fixture {
    temp: tempfile::TempDir,
    registry: Option<Registry>,
    manifests: std::collections::BTreeMap<String, String>,
    url: String,
}

impl Fixture {
    fn new() -> Fixture {
        let temp = tempfile::tempdir().unwrap();
        let packaged = temp.path().join("packaged");
        fs::create_dir_all(&packaged).unwrap();
        package(&packaged);
        let registry = Registry::start();
        let mut manifests = std::collections::BTreeMap::new();
        for version in VERSIONS {
            let archive = fs::read(packaged.join(format!("{CHART}-{version}.tgz"))).unwrap();
            let config = format!(r#"{{"name":"{CHART}","version":"{version}","apiVersion":"v2"}}"#);
            let repository = format!("charts/{CHART}");
            let body = registry.image_manifest(
                &repository,
                HELM_CONFIG,
                config.as_bytes(),
                &[(CHART_LAYER, &archive)],
            );
            let pushed = registry.push_manifest(
                &repository,
                &version.replace('+', "_"),
                OCI_MANIFEST,
                body.as_bytes(),
            );
            manifests.insert(version.to_string(), pushed.digest);
        }
        let url = format!("oci://{}/charts", registry.host());
        Fixture {
            temp,
            registry: Some(registry),
            manifests,
            url,
        }
    }

    fn cache(&self) -> ChartCache {
        ChartCache::new(self.temp.path().join("cache"))
            .registry_credentials(CredentialStore::none())
    }

    fn fetch(&self, version: &str) -> Result<FetchedChart, FetchError> {
        self.cache()
            .fetch(&ChartRef::new(&self.url, CHART, version))
    }

    fn archive(&self, version: &str) -> Vec<u8> {
        fs::read(
            self.temp
                .path()
                .join(format!("packaged/{CHART}-{version}.tgz")),
        )
        .unwrap()
    }
}

/// The `version:` of an unpacked chart's Chart.yaml.
fn chart_version(fetched: &FetchedChart) -> String {
    let text = fs::read_to_string(fetched.dir.join("Chart.yaml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("version:")).unwrap();
    line["version:".len()..]
        .trim()
        .trim_matches('"')
        .to_string()
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn exact_tags_ranges_and_digests_are_fetched_verified_and_cached() {
    let mut fx = Fixture::new();
    let exact = fx.fetch("1.1.0").unwrap();
    assert!(!exact.from_cache);
    assert_eq!(
        (exact.version.as_str(), chart_version(&exact).as_str()),
        ("1.1.0", "1.1.0")
    );
    assert_eq!(
        exact.digest,
        format!("{:x}", Sha256::digest(fx.archive("1.1.0")))
    );
    assert!(
        exact.url.ends_with("/charts/shop-api:1.1.0"),
        "{}",
        exact.url
    );
    assert!(
        fx.fetch("1.1.0").unwrap().from_cache,
        "the exact tag comes from the cache"
    );

    // A range is chosen against the tag list; `_` in a tag is Helm's `+`.
    let range = fx.fetch("~1.2").unwrap();
    assert_eq!(chart_version(&range), "1.2.0+build.1");
    let again = fx.fetch(">=1.0.0 <2.0.0").unwrap();
    assert!(again.from_cache, "the chosen tag's layer is the cached one");
    assert_eq!(again.dir, range.dir);

    let digest = fx.manifests["2.0.0"].clone();
    let pinned = fx.fetch(&digest).unwrap();
    assert_eq!(chart_version(&pinned), "2.0.0");

    let error = fx.fetch("3.x").unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, FetchError::NotInIndex { .. }), "{text}");
    assert!(
        text.contains("2.0.0, 1.2.0+build.1, 1.1.0, 1.0.0"),
        "{text}"
    );

    // With the registry gone, the cache answers exact tags and digests; offline, a range
    // takes the highest cached match.
    drop(fx.registry.take());
    assert_eq!(chart_version(&fx.fetch("1.1.0").unwrap()), "1.1.0");
    assert_eq!(chart_version(&fx.fetch(&digest).unwrap()), "2.0.0");
    let offline = fx.cache().offline(true);
    let cached = offline
        .fetch(&ChartRef::new(&fx.url, CHART, "1.x"))
        .unwrap();
    assert_eq!(chart_version(&cached), "1.2.0+build.1");
    let error = offline
        .fetch(&ChartRef::new(&fx.url, CHART, "1.0.0"))
        .unwrap_err();
    assert!(matches!(error, FetchError::NotCached { .. }), "{error}");
    let error = fx.fetch("1.x").unwrap_err();
    assert!(
        matches!(&error, FetchError::Registry(e) if e.is_unreachable()),
        "online, a range asks the registry: {error}"
    );
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn an_artifact_without_a_chart_layer_is_refused_and_not_cached() {
    let registry = Registry::start();
    registry.push_image("charts/image", "1.0.0", b"{}", &[(OCI_LAYER, b"a layer")]);
    let root = tempfile::tempdir().unwrap();
    let cache =
        ChartCache::new(root.path().join("cache")).registry_credentials(CredentialStore::none());
    let url = format!("oci://{}/charts", registry.host());
    let error = cache
        .fetch(&ChartRef::new(&url, "image", "1.0.0"))
        .unwrap_err();
    assert!(matches!(error, FetchError::BadArchive { .. }), "{error}");
    assert!(error.to_string().contains("not a Helm chart"), "{error}");
    let cached = root.path().join("cache");
    assert!(
        !cached.exists()
            || common::snapshot(&cached)
                .keys()
                .all(|p| !p.ends_with("Chart.yaml")),
        "nothing cached"
    );
}
