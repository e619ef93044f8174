//! Image-aware planning (`--images`) against a real registry on loopback: the tests build
//! their own images (OCI layers written here with tar and flate2, no pulls), push them to
//! Debian's `docker-registry` (tests/common/registry.rs) and run the binary over the manifests
//! of fixtures/images/manifests, whose `REGISTRY` is the test registry. The results are
//! compared with the golden files of fixtures/images/expected (`KUBE_HARDEN_BLESS=1` rewrites
//! them). Covered: a root image serving port 80, a numeric USER 101, a named USER with 0700
//! files, VOLUME /data, a well-behaved 65532 image (no risk note), a multi-platform index
//! with an arm64 decoy, a passwd whiteout, two images with different users in one pod, auth
//! through a temporary DOCKER_CONFIG, an unreachable registry, `--offline` from the cache,
//! `--images never` (no connection at all) and `--images always`. The tests that start
//! `docker-registry` are marked ignored for a machine without it; `.ci/run` installs it
//! (scripts/registry-deps.sh) and runs them.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::registry::{docker_config, free_port, Pushed, Registry, OCI_LAYER};

const PASSWORD: &str = "pw-9f86d081884c7d65";

// ---------------------------------------------------------------------------------------
// Images, written here.

/// One entry of a layer: a folder or a file, with its mode and owner.
enum Entry<'a> {
    Dir(&'a str, u32, u64),
    File(&'a str, &'a [u8], u32, u64),
}

/// A gzip-compressed tar layer of `entries`.
fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        let (path, data, mode, uid): (&str, &[u8], u32, u64) = match entry {
            Entry::Dir(path, mode, uid) => {
                header.set_entry_type(tar::EntryType::Directory);
                (path, b"", *mode, *uid)
            }
            Entry::File(path, data, mode, uid) => (path, data, *mode, *uid),
        };
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn base_layer() -> Vec<u8> {
    layer(&[
        Entry::Dir("etc/", 0o755, 0),
        Entry::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1001:1001::/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
            0o644,
            0,
        ),
        Entry::File("etc/group", b"root:x:0:\napp:x:1001:\n", 0o644, 0),
        Entry::Dir("bin/", 0o755, 0),
        Entry::Dir("tmp/", 0o1777, 0),
    ])
}

/// An image config for `linux/<arch>` with `config` as its `config` object.
fn config(arch: &str, config: serde_json::Value) -> Vec<u8> {
    serde_json::json!({
        "architecture": arch, "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": []},
    })
    .to_string()
    .into_bytes()
}

/// Pushes an image of the base layer and `top` (when given) to `repository:tag`.
fn push(
    registry: &Registry,
    repository: &str,
    tag: &str,
    arch: &str,
    cfg: serde_json::Value,
    top: Option<Vec<u8>>,
) -> Pushed {
    let base = base_layer();
    let mut layers: Vec<(&str, &[u8])> = vec![(OCI_LAYER, &base)];
    if let Some(top) = &top {
        layers.push((OCI_LAYER, top));
    }
    registry.push_image(repository, tag, &config(arch, cfg), &layers)
}

/// The test images (see fixtures/images/README.md).
fn push_test_images(registry: &Registry) {
    push_some_test_images(registry, &[]);
}

/// The test images named (`root-port80`, ...; all when none is): each push is a few requests,
/// and a test that needs two images need not wait for eight.
fn push_some_test_images(registry: &Registry, names: &[&str]) {
    use serde_json::json;
    let wanted = |name: &str| names.is_empty() || names.contains(&name);
    if wanted("root-port80") {
        push(
            registry,
            "khtest/root-port80",
            "1",
            "amd64",
            json!({"ExposedPorts": {"80/tcp": {}}, "Cmd": ["httpd", "-f", "-p", "80", "-h", "/www"]}),
            Some(layer(&[
                Entry::Dir("www/", 0o700, 0),
                Entry::File("www/index.html", b"<p>hi</p>", 0o600, 0),
                Entry::File("www/robots.txt", b"", 0o644, 0),
            ])),
        );
    }
    let uid101 = |repository: &str, tag: &str, arch: &str| {
        push(
            registry,
            repository,
            tag,
            arch,
            json!({"User": "101", "ExposedPorts": {"8080/tcp": {}},
                   "Cmd": ["sh", "-c", "touch /var/cache/app/started && httpd -f -p 8080"]}),
            Some(layer(&[
                Entry::Dir("var/", 0o755, 0),
                Entry::Dir("var/cache/", 0o755, 0),
                Entry::Dir("var/cache/app/", 0o755, 101),
            ])),
        )
    };
    if wanted("uid101-cache") {
        uid101("khtest/uid101-cache", "1", "amd64");
    }
    if wanted("named-user") {
        push(
            registry,
            "khtest/named-user",
            "1",
            "amd64",
            json!({"User": "app", "ExposedPorts": {"8080/tcp": {}}}),
            Some(layer(&[
                Entry::Dir("app/", 0o700, 1001),
                Entry::File("app/config", b"secret=1\n", 0o600, 1001),
            ])),
        );
    }
    if wanted("volume-data") {
        push(
            registry,
            "khtest/volume-data",
            "1",
            "amd64",
            json!({"User": "1000", "Volumes": {"/data": {}}, "ExposedPorts": {"8080/tcp": {}}}),
            Some(layer(&[Entry::Dir("data/", 0o755, 1000)])),
        );
    }
    if wanted("good") {
        let good = push(
            registry,
            "khtest/good",
            "1",
            "amd64",
            json!({"User": "65532:65532", "ExposedPorts": {"8080/tcp": {}}, "Entrypoint": ["/app"]}),
            None,
        );
        // The index: linux/amd64 is the good image, linux/arm64 a decoy that runs as 101.
        let decoy = uid101("khtest/good", "arm64-decoy", "arm64");
        registry.push_index(
            "khtest/good",
            "multi",
            &[(&decoy, "linux/arm64"), (&good, "linux/amd64")],
        );
    }
    if wanted("whiteout-user") {
        // USER app, but the top layer hides /etc/passwd with a whiteout.
        push(
            registry,
            "khtest/whiteout-user",
            "1",
            "amd64",
            json!({"User": "app"}),
            Some(layer(&[Entry::File("etc/.wh.passwd", b"", 0o644, 0)])),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Runs.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images")
}

/// The manifests of fixtures/images/manifests (or the `names` of them) in a new folder, with
/// `REGISTRY` replaced by `host`.
fn workdir(host: &str, names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("manifests")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !names.is_empty() && !names.contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(dir.path().join(&name), text.replace("REGISTRY", host)).unwrap();
    }
    dir
}

/// Runs the binary in `dir` with its own image cache and an empty DOCKER_CONFIG (unless
/// `env` names another).
fn run(dir: &Path, cache: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let empty = dir.join(".no-docker-config");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = assert_cmd::Command::cargo_bin("kube-harden").unwrap();
    command
        .args(args)
        .arg("--image-cache")
        .arg(cache)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", &empty)
        .env_remove("KUBE_HARDEN_IMAGES")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("KUBE_HARDEN_REGISTRY_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Compares `actual` (with `host` put back as `REGISTRY`) with the golden file `name`.
fn golden(name: &str, actual: &str, host: &str) {
    let actual = actual.replace(host, "REGISTRY");
    let path = fixtures().join("expected").join(name);
    if std::env::var_os("KUBE_HARDEN_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (KUBE_HARDEN_BLESS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

/// The pod securityContext ids of the first workload in `file`.
fn pod_ids(file: &Path) -> (i64, i64, i64) {
    let text = std::fs::read_to_string(file).unwrap();
    let doc: serde_json::Value = yaml_serde::from_str(&text).unwrap();
    let sc = &doc["spec"]["template"]["spec"]["securityContext"];
    let id = |k: &str| sc[k].as_i64().unwrap_or(-1);
    (id("runAsUser"), id("runAsGroup"), id("fsGroup"))
}

// ---------------------------------------------------------------------------------------

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn fix_plans_each_pod_with_its_images_facts() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = workdir(&host, &[]);
    let cache = tempfile::tempdir().unwrap();

    let diff = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    golden("diff.txt", &text(&diff.stdout), &host);

    let fix = run(dir.path(), cache.path(), &["fix", "."], &[]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix.stderr));
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("."))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    for name in &names {
        let written = std::fs::read_to_string(dir.path().join(name)).unwrap();
        golden(&format!("fixed/{name}"), &written, &host);
    }
    // The facts, one by one (the golden files hold the whole text).
    let ids = |name: &str| pod_ids(&dir.path().join(name));
    assert_eq!(ids("uid101.yaml"), (101, 101, 101), "numeric USER 101");
    assert_eq!(
        ids("named-user.yaml"),
        (1001, 1001, 1001),
        "USER app via /etc/passwd"
    );
    assert_eq!(ids("good.yaml"), (65532, 65532, 65532));
    assert_eq!(
        ids("multi-platform.yaml"),
        (65532, 65532, 65532),
        "not the arm64 decoy's 101"
    );
    assert_eq!(
        ids("root-port80.yaml"),
        (1000, 1000, 1000),
        "a root image keeps 1000"
    );
    assert_eq!(
        ids("pinned-ids.yaml").0,
        4000,
        "the manifest's own id stands"
    );
    let diff = text(&diff.stdout);
    assert!(diff.contains("exposes 80/tcp"), "{diff}");
    assert!(
        diff.contains("/www (0700)") && diff.contains("/www/index.html (0600)"),
        "{diff}"
    );
    assert!(diff.contains("mountPath: /data"), "{diff}");
    assert!(
        diff.contains(
            "it runs as uid 4000, which its securityContext sets, not as its image's user 101"
        ),
        "{diff}"
    );
    // The well-behaved image gets its ids and no risk.
    let good_notes: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with("# ") && l.contains("khtest/good:1`") && !l.contains("pair"))
        .collect();
    assert!(
        good_notes.iter().all(|l| !l.contains("risk")),
        "{good_notes:?}"
    );
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn check_and_explain_report_the_image_facts() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = workdir(&host, &["uid101.yaml", "root-port80.yaml"]);
    let cache = tempfile::tempdir().unwrap();

    let check = run(
        dir.path(),
        cache.path(),
        &["check", ".", "--format", "json"],
        &[],
    );
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    let json: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let notes = json.to_string();
    assert!(notes.contains(r#""type":"image""#), "{notes}");
    assert!(notes.contains("image facts: user 101"), "{notes}");
    assert!(notes.contains("exposes 80/tcp"), "{notes}");

    let explain = run(dir.path(), cache.path(), &["explain", "."], &[]);
    assert_eq!(explain.status.code(), Some(0), "{}", text(&explain.stderr));
    let out = text(&explain.stdout);
    assert!(out.contains("image facts: user 101"), "{out}");
    assert!(out.contains("101"), "{out}");
}

#[test]
#[ignore = "needs docker-registry and htpasswd: .ci/run installs them (scripts/registry-deps.sh)"]
fn credentials_come_from_a_temporary_docker_config() {
    let registry = Registry::start_with_htpasswd("ci", PASSWORD);
    push_test_images(&registry);
    let host = registry.host();
    let dir = workdir(&host, &["uid101.yaml"]);
    let cache = tempfile::tempdir().unwrap();

    let without = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(without.status.code(), Some(0), "{}", text(&without.stderr));
    let out = text(&without.stdout);
    assert!(
        out.contains("cannot be read") && out.contains("access denied"),
        "{out}"
    );
    assert!(out.contains("runAsUser: 1000"), "{out}");

    let auth = common::registry::base64(format!("ci:{PASSWORD}").as_bytes());
    let config = docker_config(
        &dir.path().join(".docker"),
        &format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    );
    let with = run(
        dir.path(),
        cache.path(),
        &["diff", "."],
        &[("DOCKER_CONFIG", &config)],
    );
    assert_eq!(with.status.code(), Some(0), "{}", text(&with.stderr));
    let out = text(&with.stdout);
    assert!(out.contains("runAsUser: 101"), "{out}");
    assert!(!out.contains(PASSWORD) && !text(&with.stderr).contains(PASSWORD));
}

#[test]
fn an_unreachable_registry_is_told_once_and_the_files_are_still_planned() {
    let host = format!("127.0.0.1:{}", free_port());
    let dir = workdir(&host, &["uid101.yaml", "sidecar.yaml", "good.yaml"]);
    let cache = tempfile::tempdir().unwrap();
    let out = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let told: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("cannot be reached"))
        .collect();
    assert_eq!(told.len(), 1, "{stderr}");
    assert!(told[0].contains(&host), "{stderr}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("runAsUser: 1000"), "{stdout}");
    assert!(!stdout.contains("image facts"), "{stdout}");
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn offline_reads_only_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let (host, dir) = {
        let registry = Registry::start();
        push_test_images(&registry);
        let host = registry.host();
        let dir = workdir(&host, &["uid101.yaml", "named-user.yaml"]);
        let online = run(dir.path(), cache.path(), &["diff", "."], &[]);
        assert_eq!(online.status.code(), Some(0), "{}", text(&online.stderr));
        (host, dir)
        // The registry stops here.
    };
    let offline = run(dir.path(), cache.path(), &["fix", ".", "--offline"], &[]);
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline.stderr));
    assert_eq!(pod_ids(&dir.path().join("uid101.yaml")), (101, 101, 101));
    assert_eq!(
        pod_ids(&dir.path().join("named-user.yaml")),
        (1001, 1001, 1001)
    );
    assert!(!text(&offline.stderr).contains("cannot be reached"));

    // An empty cache, offline: planned without facts, and said once.
    let empty = tempfile::tempdir().unwrap();
    let dir = workdir(&host, &["good.yaml"]);
    let out = run(dir.path(), empty.path(), &["fix", ".", "--offline"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pod_ids(&dir.path().join("good.yaml")), (1000, 1000, 1000));
    assert!(
        text(&out.stderr).contains("not in the image cache"),
        "{}",
        text(&out.stderr)
    );
}

/// A listener that counts the connections made to it (and answers none).
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (host, count)
}

#[test]
fn images_never_makes_no_connection() {
    let (host, connections) = counting_listener();
    let dir = workdir(&host, &["uid101.yaml", "root-port80.yaml"]);
    let cache = tempfile::tempdir().unwrap();
    let never = run(
        dir.path(),
        cache.path(),
        &["diff", ".", "--images", "never"],
        &[],
    );
    assert_eq!(never.status.code(), Some(0), "{}", text(&never.stderr));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "no request with --images never"
    );
    assert!(!text(&never.stdout).contains("image facts"));
    // The same run without it does knock (the control: the listener sees connections).
    let auto = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(auto.status.code(), Some(0), "{}", text(&auto.stderr));
    assert!(connections.load(Ordering::SeqCst) > 0);
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn images_always_makes_an_unreadable_image_an_error_for_its_file() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      image: {host}/khtest/missing:1\n"
    );
    std::fs::write(dir.path().join("pod.yaml"), &manifest).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        cache.path(),
        &["fix", ".", "--images", "always"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot be read (--images always)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pod.yaml")).unwrap(),
        manifest
    );
    // auto: the same image is a note, and the file is hardened.
    let out = run(dir.path(), cache.path(), &["fix", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot be read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn the_reader_reads_each_image_once_and_then_from_the_cache() {
    use kube_harden::images::{ImageReader, ImageSettings, ReadCounts};
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    // 40 distinct references (tags) of the five images.
    let images: Vec<String> = (0..40)
        .map(|i| {
            let name = [
                "root-port80",
                "uid101-cache",
                "named-user",
                "volume-data",
                "good",
            ][i % 5];
            let tag = format!("t{i}");
            let image = format!("{host}/khtest/{name}");
            let manifest = common::registry::http()
                .get(format!("http://{host}/v2/khtest/{name}/manifests/1"))
                .header("accept", common::registry::OCI_MANIFEST)
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            registry.push_manifest(
                &format!("khtest/{name}"),
                &tag,
                common::registry::OCI_MANIFEST,
                &manifest,
            );
            format!("{image}:{tag}")
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let settings_for = |dir: &Path| ImageSettings {
        cache_dir: dir.to_path_buf(),
        ..ImageSettings::default()
    };
    let settings = settings_for(cache.path());
    let cold = ImageReader::new(settings.clone());
    let started = std::time::Instant::now();
    cold.prefetch(&images);
    let cold_time = started.elapsed();
    // Five images: each digest read once from the registry, the other tags from the cache.
    let counts = cold.counts();
    assert_eq!(counts.failed, 0);
    assert_eq!(counts.fetched + counts.cached, 40, "{counts:?}");
    assert!(counts.fetched >= 5, "{counts:?}");

    let warm = ImageReader::new(settings);
    let started = std::time::Instant::now();
    warm.prefetch(&images);
    let warm_time = started.elapsed();
    assert_eq!(
        warm.counts(),
        ReadCounts {
            fetched: 0,
            cached: 40,
            failed: 0
        }
    );
    for image in &images {
        assert_eq!(warm.facts(image).unwrap(), cold.facts(image).unwrap());
    }
    // Offline, the cache alone answers (by reference), with the same facts.
    drop(registry);
    let offline = ImageReader::new(ImageSettings {
        offline: true,
        ..settings_for(cache.path())
    });
    let started = std::time::Instant::now();
    offline.prefetch(&images);
    let offline_time = started.elapsed();
    assert_eq!(
        offline.counts(),
        ReadCounts {
            fetched: 0,
            cached: 40,
            failed: 0
        }
    );
    for image in &images {
        assert_eq!(offline.facts(image).unwrap(), cold.facts(image).unwrap());
    }
    // Figures for the notes (not asserted: a shared machine's speed is no test).
    let rate = |t: std::time::Duration| 40.0 / t.as_secs_f64();
    eprintln!(
        "image facts: 40 references of 5 images: cold {:.0}/s ({cold_time:?}), warm {:.0}/s ({warm_time:?}), offline {:.0}/s ({offline_time:?})",
        rate(cold_time),
        rate(warm_time),
        rate(offline_time)
    );
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn a_passwd_whiteout_leaves_a_named_user_unresolved() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pod.yaml"),
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      image: {host}/khtest/whiteout-user:1\n"),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("has USER `app`, which cannot be resolved: the image has no /etc/passwd"),
        "{stdout}"
    );
    assert!(stdout.contains("runAsUser: 1000"), "{stdout}");
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn platform_picks_the_index_entry() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = workdir(&host, &["multi-platform.yaml"]);
    let cache = tempfile::tempdir().unwrap();
    let arm = run(
        dir.path(),
        cache.path(),
        &["diff", ".", "--platform", "linux/arm64"],
        &[],
    );
    assert_eq!(arm.status.code(), Some(0), "{}", text(&arm.stderr));
    assert!(
        text(&arm.stdout).contains("runAsUser: 101"),
        "the arm64 entry runs as 101"
    );
    let s390 = run(
        dir.path(),
        cache.path(),
        &["diff", ".", "--platform", "linux/s390x"],
        &[],
    );
    assert_eq!(s390.status.code(), Some(0), "{}", text(&s390.stderr));
    let out = text(&s390.stdout);
    assert!(out.contains("no manifest for linux/s390x"), "{out}");
    assert!(out.contains("runAsUser: 1000"), "{out}");
    let bad = run(
        dir.path(),
        cache.path(),
        &["diff", ".", "--platform", "amd64"],
        &[],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a platform without its OS is refused"
    );
}

// ---------------------------------------------------------------------------------------
// Chart values and GitOps releases: the images are rendered values.

/// fixtures/images/<folder> copied into `dir` (REGISTRY replaced by `host`).
fn copy_fixture(folder: &str, dir: &Path, host: &str) {
    let from = fixtures().join(folder);
    for entry in walk(&from) {
        let to = dir.join(entry.strip_prefix(&from).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(&entry).unwrap();
        std::fs::write(to, text.replace("REGISTRY", host)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => files.extend(walk(&path)),
            false => files.push(path),
        }
    }
    files
}

/// Runs the binary with Helm's engine (the test shim) and the render check on.
fn run_rendered(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let shim = common::helm::shim();
    let python = common::helm::python();
    let mut all = vec!["--render", "always", "--helm-bin", shim.to_str().unwrap()];
    all.extend_from_slice(args);
    run(dir, cache, &all, &[("KUBE_HARDEN_HELM_PYTHON", &python)])
}

/// The documents of a YAML stream (empty ones dropped).
fn documents(stream: &str) -> Vec<yaml_serde::Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(stream)
        .map(|d| yaml_serde::Value::deserialize(d).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

/// The pod securityContext ids of each Deployment a render holds, by name.
fn rendered_ids(stream: &str) -> Vec<(String, (i64, i64, i64))> {
    let docs = documents(stream);
    docs.iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(|d| {
            let sc = &d["spec"]["template"]["spec"]["securityContext"];
            let id = |k: &str| sc[k].as_i64().unwrap_or(-1);
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            (name, (id("runAsUser"), id("runAsGroup"), id("fsGroup")))
        })
        .collect()
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn chart_values_get_the_ids_of_the_images_their_pods_render() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    copy_fixture("charts", &dir.path().join("charts"), &host);
    let cache = tempfile::tempdir().unwrap();
    let chart = dir.path().join("charts/web");

    let diff = run_rendered(dir.path(), cache.path(), &["diff", "charts"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    golden("chart-diff.txt", &text(&diff.stdout), &host);
    let fix = run_rendered(dir.path(), cache.path(), &["fix", "charts"]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix.stderr));

    // What ships: the chart rendered with the values as `fix` left them.
    let rendered = common::helm::template(&chart, None).unwrap();
    let ids = rendered_ids(&rendered);
    assert_eq!(
        ids,
        vec![
            ("release-web".to_string(), (101, 101, 101)),
            ("release-worker".to_string(), (1000, 1000, 1000)),
        ],
        "the web pod runs the USER 101 image, the worker a root one"
    );
    let diff = text(&diff.stdout);
    assert!(diff.contains("fsGroup 101 instead of 1000"), "{diff}");
    // A pod no values path feeds: its template is left to a person, with its image's facts.
    let check = run_rendered(dir.path(), cache.path(), &["check", "charts"]);
    let said = text(&check.stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("charts/web/templates/migrate.yaml:")
                && l.contains("rendered Job/release-migrate: image facts: user root")),
        "{said}"
    );
    assert!(
        diff.contains("rendered Deployment/release-worker: image facts: user root"),
        "{diff}"
    );
    assert!(
        diff.contains("/www (0700)") && diff.contains("exposes 80/tcp"),
        "{diff}"
    );

    // The user's own ids win over the image's.
    let pinned = tempfile::tempdir().unwrap();
    copy_fixture("charts", &pinned.path().join("charts"), &host);
    let args = [
        "fix",
        "--uid",
        "4000",
        "--gid",
        "4000",
        "--fs-group",
        "4000",
        "charts",
    ];
    let fix = run_rendered(pinned.path(), cache.path(), &args);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix.stderr));
    let rendered = common::helm::template(&pinned.path().join("charts/web"), None).unwrap();
    assert!(rendered_ids(&rendered)
        .iter()
        .all(|(_, ids)| *ids == (4000, 4000, 4000)));

    // `--images always`: a rendered image the registry does not have fails the values file,
    // which is not written.
    let values = pinned.path().join("charts/web/values.yaml");
    let written = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, written.replace("root-port80:1", "missing:1")).unwrap();
    let before = std::fs::read(&values).unwrap();
    let args = ["fix", "--images", "always", "charts"];
    let fix = run_rendered(pinned.path(), cache.path(), &args);
    let out = text(&fix.stdout) + &text(&fix.stderr);
    assert_eq!(fix.status.code(), Some(2), "{out}");
    assert!(
        out.contains("rendered Deployment/release-worker: image `"),
        "{out}"
    );
    assert!(
        out.contains("missing:1` cannot be read (--images always)"),
        "{out}"
    );
    assert_eq!(std::fs::read(&values).unwrap(), before, "nothing written");
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn a_release_s_values_get_the_ids_of_the_images_it_renders() {
    let registry = Registry::start();
    push_test_images(&registry);
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    copy_fixture("charts", &dir.path().join("charts"), &host);
    copy_fixture("gitops", dir.path(), &host);
    common::init_with_origin(dir.path(), "https://github.com/acme/fleet");
    let cache = tempfile::tempdir().unwrap();

    let diff = run_rendered(dir.path(), cache.path(), &["diff", "apps"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    golden("release-diff.txt", &text(&diff.stdout), &host);
    let fix = run_rendered(dir.path(), cache.path(), &["fix", "apps"]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix.stderr));

    // What ships: the chart rendered under the release's name with its values as written.
    let release = std::fs::read_to_string(dir.path().join("apps/web.yaml")).unwrap();
    let docs = documents(&release);
    let values = &docs[1]["spec"]["values"];
    let rendered =
        common::helm::render_release(&dir.path().join("charts/web"), values, "shop", None);
    assert_eq!(
        rendered_ids(&rendered),
        vec![
            ("shop-web".to_string(), (65532, 65532, 65532)),
            ("shop-worker".to_string(), (1000, 1000, 1000)),
        ],
        "the release's web image runs as 65532:65532, the chart's worker image as root"
    );
    let diff = text(&diff.stdout);
    assert!(
        diff.contains("rendered Deployment/shop-worker: image facts: user root")
            && diff.contains("rendered Job/shop-migrate: image facts: user root"),
        "{diff}"
    );
    // The chart and its release in one run: the chart's values.yaml gets its own image's 101,
    // which the release inherits; the release runs another image, and is told.
    let both = tempfile::tempdir().unwrap();
    copy_fixture("charts", &both.path().join("charts"), &host);
    copy_fixture("gitops", both.path(), &host);
    common::init_with_origin(both.path(), "https://github.com/acme/fleet");
    let diff = run_rendered(both.path(), cache.path(), &["diff", "."]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    let diff = text(&diff.stdout);
    assert!(diff.contains("+  runAsUser: 101"), "{diff}");
    let check = run_rendered(both.path(), cache.path(), &["check", "."]);
    let diff = text(&check.stdout);
    assert!(
        diff.contains("rendered Deployment/shop-web: image facts: user 65532:65532")
            && diff.contains(
                "it runs as uid 101, which its securityContext sets, not as its image's user 65532"
            ),
        "{diff}"
    );
}

// ---------------------------------------------------------------------------------------
// Docker Hub's pull limit: a run that knows an image asks with a HEAD (not counted), not a
// GET (counted). A counting forwarder in front of the registry sees every request.

use common::registry::{count, CountingProxy};

/// `khtest/uid101-cache:1` (USER 101) and `khtest/good:multi` (an index of a 65532 amd64
/// image and an arm64 decoy); the pushes of the index, the amd64 image and the decoy.
fn push_quota_images(registry: &Registry) -> (Pushed, Pushed, Pushed) {
    use serde_json::json;
    push(
        registry,
        "khtest/uid101-cache",
        "1",
        "amd64",
        json!({"User": "101"}),
        None,
    );
    let good = push(
        registry,
        "khtest/good",
        "1",
        "amd64",
        json!({"User": "65532:65532"}),
        None,
    );
    let decoy = push(
        registry,
        "khtest/good",
        "arm64-decoy",
        "arm64",
        json!({"User": "101"}),
        None,
    );
    let index = registry.push_index(
        "khtest/good",
        "multi",
        &[(&decoy, "linux/arm64"), (&good, "linux/amd64")],
    );
    (index, good, decoy)
}

/// (manifest GETs, manifest HEADs, blob GETs, all requests) of one run.
fn tally(requests: &[(String, String)]) -> (usize, usize, usize, usize) {
    (
        count(requests, "GET", "/manifests/"),
        count(requests, "HEAD", "/manifests/"),
        count(requests, "GET", "/blobs/"),
        requests.len(),
    )
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn a_warm_run_asks_only_heads_and_a_re_pushed_tag_is_read_again() {
    let registry = Registry::start();
    let (_, good, decoy) = push_quota_images(&registry);
    let proxy = CountingProxy::start(&registry.host());
    let host = proxy.host();
    let dir = workdir(&host, &["uid101.yaml", "multi-platform.yaml"]);
    let cache = tempfile::tempdir().unwrap();
    let diff = |what: &str| {
        let out = run(dir.path(), cache.path(), &["diff", "."], &[]);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        (text(&out.stdout), proxy.take())
    };

    // Cold: each manifest GET once (the index once, not again for its digest) and the configs.
    let (cold, requests) = diff("cold");
    assert!(cold.contains("runAsUser: 101") && cold.contains("runAsUser: 65532"));
    let cold_tally = tally(&requests);
    assert_eq!(cold_tally.0, 3, "tag, index, amd64 child: {requests:?}");
    assert_eq!(cold_tally.1, 0, "nothing known yet: {requests:?}");

    // Warm: one HEAD per reference and nothing else.
    let (warm, requests) = diff("warm");
    assert_eq!(warm, cold, "the cache answers as the registry did");
    let warm_tally = tally(&requests);
    assert_eq!(warm_tally, (0, 2, 0, 2), "{requests:?}");
    eprintln!(
        "image reads of 2 references (a tag, a multi-platform tag): cold {} manifest GETs, {} blob GETs, {} requests; warm {} manifest GETs, {} HEADs, {} requests",
        cold_tally.0, cold_tally.2, cold_tally.3, warm_tally.0, warm_tally.1, warm_tally.3
    );

    // The tag re-pushed as another image (USER 202): its new digest is read, the other not.
    push(
        &registry,
        "khtest/uid101-cache",
        "1",
        "amd64",
        serde_json::json!({"User": "202"}),
        None,
    );
    let (out, requests) = diff("re-pushed tag");
    assert!(out.contains("runAsUser: 202"), "{out}");
    assert!(!out.contains("runAsUser: 101"), "{out}");
    assert_eq!(count(&requests, "GET", "uid101-cache/manifests/1"), 1);
    assert_eq!(count(&requests, "GET", "/khtest/good/"), 0, "{requests:?}");
    assert_eq!(count(&requests, "HEAD", "/manifests/"), 2, "{requests:?}");

    // The multi-platform tag re-pushed as a new index of the same images: the HEAD names the
    // index, so it is read again, and the platform's facts come from the cache (no blob).
    registry.push_index(
        "khtest/good",
        "multi",
        &[(&good, "linux/amd64"), (&decoy, "linux/arm64")],
    );
    let (out, requests) = diff("re-pushed index");
    assert!(out.contains("runAsUser: 65532"), "{out}");
    assert_eq!(tally(&requests), (2, 2, 0, 4), "{requests:?}");
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn a_digest_pinned_cached_image_makes_no_request() {
    let registry = Registry::start();
    let (index, good, _) = push_quota_images(&registry);
    let proxy = CountingProxy::start(&registry.host());
    let host = proxy.host();
    let dir = tempfile::tempdir().unwrap();
    // One pod pinned to the amd64 manifest, one to the index.
    for (name, digest) in [("manifest", &good.digest), ("index", &index.digest)] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n    - name: a\n      image: {host}/khtest/good@{digest}\n"),
        )
        .unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let cold = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(cold.status.code(), Some(0), "{}", text(&cold.stderr));
    let requests = proxy.take();
    assert!(count(&requests, "GET", "/manifests/") > 0, "{requests:?}");
    assert_eq!(text(&cold.stdout).matches("runAsUser: 65532").count(), 2);

    let warm = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(warm.status.code(), Some(0), "{}", text(&warm.stderr));
    assert_eq!(proxy.take(), vec![], "a digest never changes: no request");
    assert_eq!(text(&warm.stdout), text(&cold.stdout));
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn a_head_without_a_digest_falls_back_to_the_gets() {
    let registry = Registry::start();
    push_quota_images(&registry);
    let proxy = CountingProxy::start(&registry.host());
    let host = proxy.host();
    let dir = workdir(&host, &["uid101.yaml"]);
    let cache = tempfile::tempdir().unwrap();
    let cold = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(cold.status.code(), Some(0), "{}", text(&cold.stderr));
    proxy.take();

    proxy.strip_head_digest(true);
    let warm = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(warm.status.code(), Some(0), "{}", text(&warm.stderr));
    assert!(text(&warm.stdout).contains("runAsUser: 101"));
    let requests = proxy.take();
    // The HEAD says nothing usable: the manifest is read, its facts are the cache's.
    assert_eq!(tally(&requests), (1, 1, 0, 2), "{requests:?}");
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn the_head_answers_a_token_challenge_as_docker_hub_asks() {
    // Docker Hub's shape: every request challenged, an anonymous token from the realm.
    let registry = Registry::start();
    push_quota_images(&registry);
    let front = common::registry::TokenFront::start(&registry.host(), None, "anon-token-1");
    let proxy = CountingProxy::start(&front.host());
    let dir = workdir(&proxy.host(), &["uid101.yaml"]);
    let cache = tempfile::tempdir().unwrap();
    let cold = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(cold.status.code(), Some(0), "{}", text(&cold.stderr));
    assert!(text(&cold.stdout).contains("runAsUser: 101"));
    proxy.take();
    let tokens = front.log().token_requests.len();

    let warm = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(warm.status.code(), Some(0), "{}", text(&warm.stderr));
    assert_eq!(text(&warm.stdout), text(&cold.stdout));
    let requests = proxy.take();
    // The HEAD is challenged, a token is asked for, the HEAD is sent again with it.
    assert_eq!(tally(&requests), (0, 2, 0, 2), "{requests:?}");
    assert_eq!(front.log().token_requests.len(), tokens + 1);
}

// ---------------------------------------------------------------------------------------
// Kustomize: the image that ships is the built one.

/// fixtures/images/<name> in a new folder (REGISTRY replaced by `host`).
fn tree_copy(name: &str, host: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(name, dir.path(), host);
    dir
}

/// The objects `kubectl kustomize` builds from `dir`.
fn kustomize_build(dir: &Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl (its kustomize builds the overlay)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(&text(&out.stdout))
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .collect()
}

/// The (runAsUser, runAsGroup, fsGroup) of a pod's securityContext, or of a container's
/// (no fsGroup there: -1), from a parsed Deployment.
fn ids_of(deployment: &serde_json::Value, container: Option<&str>) -> (i64, i64, i64) {
    let pod = &deployment["spec"]["template"]["spec"];
    let sc = match container {
        None => &pod["securityContext"],
        Some(name) => {
            let containers = pod["containers"].as_array().unwrap();
            let c = containers.iter().find(|c| c["name"] == name).unwrap();
            &c["securityContext"]
        }
    };
    let id = |k: &str| sc[k].as_i64().unwrap_or(-1);
    (id("runAsUser"), id("runAsGroup"), id("fsGroup"))
}

fn deployment_in_file(file: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file).unwrap();
    yaml_serde::from_str(&text).unwrap()
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn kustomize_plans_with_the_facts_of_the_image_the_build_ships() {
    let registry = Registry::start();
    push_some_test_images(&registry, &["uid101-cache", "good"]);
    let host = registry.host();
    let dir = tree_copy("kustomize", &host);
    let cache = tempfile::tempdir().unwrap();

    let diff = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    let notes = text(&diff.stdout).replace(&host, "REGISTRY");
    // The base's text names `web-image`; the overlay's images: ships uid101-cache.
    assert!(
        notes.contains("image facts: user 101, port 8080/tcp (`REGISTRY/khtest/uid101-cache:1`, what the build of overlay ships for `web-image`): runAsUser 101"),
        "{notes}"
    );
    assert!(!notes.contains("cannot be read"), "{notes}");
    assert!(
        !text(&diff.stderr).contains("cannot be reached"),
        "{}",
        text(&diff.stderr)
    );
    // The patch: its runAsUser 0 takes the base image's 65532, and the container it adds
    // runs as its own image's 101.
    assert!(
        notes.contains("where this patch sets them, runAsUser 65532"),
        "{notes}"
    );
    assert!(
        notes.contains(
            "the container this patch adds runs as 101:101, not as the pod's 65532:65532"
        ),
        "{notes}"
    );

    let fix = run(dir.path(), cache.path(), &["fix", "."], &[]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix.stderr));
    let base = |name: &str| deployment_in_file(&dir.path().join("base").join(name));
    assert_eq!(
        ids_of(&base("web.yaml"), None),
        (101, 101, 101),
        "what ships runs as 101"
    );
    assert_eq!(ids_of(&base("api.yaml"), None), (65532, 65532, 65532));
    let patch = deployment_in_file(&dir.path().join("overlay/api-patch.yaml"));
    assert_eq!(
        ids_of(&patch, None).0,
        65532,
        "the patch's root is corrected to the image's user"
    );
    assert_eq!(ids_of(&patch, Some("cache")), (101, 101, -1));
    // The comments stay.
    let patch_text = std::fs::read_to_string(dir.path().join("overlay/api-patch.yaml")).unwrap();
    assert!(patch_text.contains("# the images: transformer makes it uid101-cache too"));

    // What ships: the overlay's build.
    let built = kustomize_build(&dir.path().join("overlay"));
    let object = |name: &str| {
        built
            .iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the build"))
    };
    let web = object("prod-web");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{host}/khtest/uid101-cache:1")
    );
    assert_eq!(ids_of(web, None), (101, 101, 101));
    let api = object("prod-api");
    assert_eq!(ids_of(api, None), (65532, 65532, 65532));
    assert_eq!(ids_of(api, Some("cache")), (101, 101, -1));
    assert_eq!(
        ids_of(api, Some("api")),
        (-1, -1, -1),
        "the api runs as its pod"
    );
}

// ---------------------------------------------------------------------------------------
// A registry that is not on loopback by its name.

/// The machine's own name: the tool speaks plain HTTP only to `localhost` and 127.0.0.0/8
/// literals, so to a registry addressed by this name it speaks HTTPS unless told otherwise.
/// The name resolves to this machine (its /etc/hosts or its own address), so the test's
/// traffic stays on it; the registry listens on every interface to answer either way.
fn machine_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the machine's hostname")
        .trim()
        .to_string();
    use std::net::ToSocketAddrs;
    let addresses: Vec<_> = (name.as_str(), 80)
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("the machine's name `{name}` does not resolve: {e}"))
        .collect();
    assert!(!addresses.is_empty(), "`{name}` resolves to nothing");
    assert!(
        name != "localhost" && name.parse::<std::net::IpAddr>().is_err(),
        "`{name}` is what the tool takes for loopback"
    );
    name
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn a_registry_beyond_loopback_is_read_over_plain_http_only_when_named_insecure() {
    let registry = Registry::start_on_all_interfaces();
    push_some_test_images(&registry, &["uid101-cache"]);
    let host = format!("{}:{}", machine_name(), registry.port());
    let dir = workdir(&host, &["uid101.yaml"]);

    // Not named: HTTPS, which a plain-HTTP registry refuses; planned without the facts.
    let cache = tempfile::tempdir().unwrap();
    let refused = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(refused.status.code(), Some(0), "{}", text(&refused.stderr));
    let (out, err) = (text(&refused.stdout), text(&refused.stderr));
    assert!(
        out.contains("runAsUser: 1000") && !out.contains("runAsUser: 101"),
        "{out}"
    );
    assert!(!out.contains("image facts"), "{out}");
    // Said once for the registry, with what to do.
    assert!(
        err.contains(&format!("image facts: {host} cannot be reached"))
            && err.contains(&format!(
                "answers HTTPS with plain HTTP; `--insecure-registry {host}`"
            )),
        "{err}"
    );

    // --insecure-registry HOST:PORT: plain HTTP, the facts are read.
    let cache = tempfile::tempdir().unwrap();
    let flag = run(
        dir.path(),
        cache.path(),
        &["diff", ".", "--insecure-registry", &host],
        &[],
    );
    assert_eq!(flag.status.code(), Some(0), "{}", text(&flag.stderr));
    let out = text(&flag.stdout);
    assert!(
        out.contains("runAsUser: 101") && out.contains("image facts: user 101"),
        "{out}"
    );

    // The config key does the same.
    std::fs::write(
        dir.path().join(".kube-harden.yaml"),
        format!("insecureRegistries: [\"{host}\"]\n"),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = run(dir.path(), cache.path(), &["fix", "."], &[]);
    assert_eq!(config.status.code(), Some(0), "{}", text(&config.stderr));
    assert_eq!(pod_ids(&dir.path().join("uid101.yaml")), (101, 101, 101));
}

// ---------------------------------------------------------------------------------------
// zstd layers.

const OCI_ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The tar of `entries` compressed by the reference `zstd` (Debian's package), in one frame
/// with its checksum, as image builders write it.
fn zstd_layer(entries: &[Entry]) -> Vec<u8> {
    use flate2::read::GzDecoder;
    use std::io::Read;
    let mut tar = Vec::new();
    GzDecoder::new(layer(entries).as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    let mut child = std::process::Command::new("zstd")
        .args(["-q", "-c", "--check"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("zstd (Debian's package; scripts/registry-deps.sh installs it)");
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "zstd failed");
    assert!(out.stdout.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]));
    out.stdout
}

#[test]
#[ignore = "needs docker-registry and zstd: .ci/run installs them (scripts/registry-deps.sh)"]
fn zstd_layers_are_read() {
    let registry = Registry::start();
    let base = base_layer();
    // USER app, whose passwd entry is only in the zstd top layer.
    let named = zstd_layer(&[
        Entry::Dir("etc/", 0o755, 0),
        Entry::File(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\napp:x:2002:2003::/app:/bin/sh\n",
            0o644,
            0,
        ),
        Entry::File("etc/group", b"root:x:0:\napp:x:2003:\n", 0o644, 0),
    ]);
    registry.push_image(
        "khtest/named-zstd",
        "1",
        &config("amd64", serde_json::json!({"User": "app"})),
        &[(OCI_LAYER, &base), (OCI_ZSTD_LAYER, &named)],
    );
    // A root image whose zstd top layer holds a root-only folder.
    let root = zstd_layer(&[
        Entry::Dir("secret/", 0o700, 0),
        Entry::File("secret/key", b"k", 0o600, 0),
    ]);
    registry.push_image(
        "khtest/root-zstd",
        "1",
        &config("amd64", serde_json::json!({})),
        &[(OCI_LAYER, &base), (OCI_ZSTD_LAYER, &root)],
    );
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let deployment = |name: &str, image: &str| {
        format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {host}/{image}\n")
    };
    std::fs::write(
        dir.path().join("named.yaml"),
        deployment("named", "khtest/named-zstd:1"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("root.yaml"),
        deployment("root", "khtest/root-zstd:1"),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let diff = run(dir.path(), cache.path(), &["diff", "."], &[]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    let notes = format!("{}{}", text(&diff.stdout), text(&diff.stderr));
    assert!(!notes.contains("cannot be read"), "{notes}");
    assert!(
        notes.contains("/secret (0700)") && notes.contains("/secret/key (0600)"),
        "{notes}"
    );
    let out = run(dir.path(), cache.path(), &["fix", "."], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(pod_ids(&dir.path().join("named.yaml")), (2002, 2003, 2003));
    assert_eq!(pod_ids(&dir.path().join("root.yaml")), (1000, 1000, 1000));
}

#[test]
#[ignore = "needs docker-registry: .ci/run installs it (scripts/registry-deps.sh)"]
fn kustomize_overlays_that_ship_different_users_and_an_inline_patch() {
    let registry = Registry::start();
    push_some_test_images(&registry, &["root-port80", "uid101-cache", "volume-data"]);
    let host = registry.host();
    let dir = tree_copy("kustomize-two-overlays", &host);
    let cache = tempfile::tempdir().unwrap();

    let diff = run(dir.path(), cache.path(), &["diff", "."], &[]);
    let out = text(&diff.stdout).replace(&host, "REGISTRY");
    assert_eq!(diff.status.code(), Some(0), "{out}{}", text(&diff.stderr));
    // web-image ships as root in dev and as 101 in prod: one base cannot take both users.
    assert!(
        out.contains("`web-image` is planned without one image's facts (it ships as `REGISTRY/khtest/root-port80:1` (dev) and `REGISTRY/khtest/uid101-cache:1` (prod), which run as different users"),
        "{out}"
    );
    // data-image ships as volume-data (USER 1000, VOLUME /data) in both: an emptyDir there,
    // which the render check takes as the tool's own.
    assert!(
        out.contains("declares VOLUME /data: adds an emptyDir volume `data`"),
        "{out}"
    );
    // The sidecar the inline patch adds runs as its image's 101.
    assert!(
        out.contains("the container this patch adds runs as 101:101, not as the pod's 1000:1000"),
        "{out}"
    );
    let fix = run(dir.path(), cache.path(), &["fix", "."], &[]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix.stderr));
    let base = |name: &str| deployment_in_file(&dir.path().join("base").join(name));
    assert_eq!(ids_of(&base("web.yaml"), None), (1000, 1000, 1000));
    assert_eq!(ids_of(&base("data.yaml"), None), (1000, 1000, 1000));
    let data_mount = |deployment: &serde_json::Value| {
        let pod = &deployment["spec"]["template"]["spec"];
        let containers = pod["containers"].as_array().unwrap();
        let data = containers.iter().find(|c| c["name"] == "data").unwrap();
        let mounted = data["volumeMounts"].as_array().is_some_and(|m| {
            m.iter()
                .any(|m| m["mountPath"] == "/data" && m["name"] == "data")
        });
        let volume = pod["volumes"].as_array().is_some_and(|v| {
            v.iter()
                .any(|v| v["name"] == "data" && v["emptyDir"].is_object())
        });
        mounted && volume
    };
    assert!(data_mount(&base("data.yaml")));
    for (root, ships) in [("dev", "root-port80:1"), ("prod", "uid101-cache:1")] {
        let built = kustomize_build(&dir.path().join(root));
        let object = |name: &str| {
            built
                .iter()
                .find(|o| o["metadata"]["name"] == name)
                .unwrap()
        };
        let web = object("web");
        assert_eq!(ids_of(web, None), (1000, 1000, 1000));
        assert_eq!(
            web["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("{host}/khtest/{ships}")
        );
        assert!(data_mount(object("data")), "{root}");
        if root == "prod" {
            assert_eq!(ids_of(object("data"), Some("warmer")), (101, 101, -1));
        }
    }
}
