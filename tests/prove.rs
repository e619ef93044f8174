//! `kube-harden prove` against a real dockerd the test starts, with images it builds itself
//! (busybox + umoci, loaded with skopeo): each known breakage is found with its remedy, the
//! well-behaved app is not flagged, a root image under runAsNonRoot is refused, and nothing the
//! proof started or made is left behind, even when a signal stops it. These tests need dockerd,
//! umoci, skopeo and busybox-static (scripts/runtime-deps.sh; `.ci/run` runs them); they fail,
//! never skip, when those are missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::engine::Dockerd;
use serde_json::Value;

/// One daemon at a time: two would race for the machine's 2 cores and make the watch unfair.
static ONE_DAEMON: Mutex<()> = Mutex::new(());

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/prove")
}

/// The tool with the daemon as DOCKER_HOST and its own empty temporary folder.
fn tool(daemon: &Dockerd, tmp: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-harden"));
    cmd.env("DOCKER_HOST", &daemon.host)
        .env("TMPDIR", tmp)
        .env_remove("GITHUB_ACTIONS")
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `prove --format json` of `path` with a 3 s watch: the output and its JSON.
fn prove_json(daemon: &Dockerd, tmp: &Path, path: &Path) -> (Output, Value) {
    let out = tool(daemon, tmp)
        .args(["prove", "--format", "json", "--prove-timeout", "3"])
        .arg(path)
        .output()
        .unwrap();
    let json = json_of(&out);
    (out, json)
}

/// The proof of the workload named `workload` (`Deployment/good`).
fn proof<'a>(json: &'a Value, workload: &str) -> &'a Value {
    json["proofs"]
        .as_array()
        .expect("proofs")
        .iter()
        .find(|p| p["workload"] == workload)
        .unwrap_or_else(|| panic!("no proof of {workload} in {json:#}"))
}

fn remedies(proof: &Value) -> Vec<Value> {
    proof["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["remedy"].clone())
        .collect()
}

fn empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

#[test]
#[ignore = "needs dockerd, umoci, skopeo, busybox-static: .ci/run installs them"]
fn each_breakage_is_found_with_its_remedy_and_the_good_app_is_not_flagged() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|p| p.into_inner());
    let daemon = Dockerd::with_images();
    let tmp = tempfile::tempdir().unwrap();
    let apps = fixtures().join("apps");
    let started = Instant::now();
    let out = tool(&daemon, tmp.path())
        .args(["prove", "--engine", "docker", "--prove-timeout", "3"])
        .args(["--format", "json"])
        .arg(&apps)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let json = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "a regression exits 1: {json:#}");
    assert_eq!(json["engine"], "docker");
    assert_eq!(json["proofs"].as_array().unwrap().len(), 5, "{json:#}");

    let port = proof(&json, "Deployment/web-port80");
    assert_eq!(port["verdict"], "regression", "{port:#}");
    assert_eq!(port["as_is"]["up"], true);
    // Its httpGet readiness probe (named port) was asked in the container's own network
    // namespace, and root's httpd on port 80 answered.
    assert_eq!(port["as_is"]["ready"], true, "{port:#}");
    assert_eq!(port["hardened"]["up"], false);
    assert_eq!(remedies(port), [serde_json::json!({"kind": "low-port"})]);
    assert!(port["errors"][0]["line"]
        .as_str()
        .unwrap()
        .contains("bind: Permission denied"));

    let cache = proof(&json, "Deployment/cache-writer");
    assert_eq!(cache["verdict"], "regression", "{cache:#}");
    assert_eq!(
        remedies(cache),
        [serde_json::json!({"kind": "empty-dir", "path": "/var/cache/app"})]
    );

    let named = proof(&json, "Deployment/named-user");
    assert_eq!(named["verdict"], "regression", "{named:#}");
    assert_eq!(
        remedies(named),
        [serde_json::json!({"kind": "image-user", "path": "/app/config"})]
    );
    assert!(named["advice"][0].as_str().unwrap().contains("USER app"));

    // Docker mounts a writable copy of an image VOLUME (as containerd does): no regression,
    // and the volume is told.
    let volume = proof(&json, "Deployment/volume-data");
    assert_eq!(volume["verdict"], "ok", "{volume:#}");
    assert_eq!(
        volume["image_config"]["volumes"],
        serde_json::json!(["/data"])
    );
    assert_eq!(volume["hardened"]["ready"], true, "{volume:#}");

    // The control: hardened as the tool plans it, it stays up and its exec probe passes; the
    // Secret's value is a placeholder.
    let good = proof(&json, "Deployment/good");
    assert_eq!(good["verdict"], "ok", "{good:#}");
    assert_eq!(good["hardened"]["ready"], true, "{good:#}");
    let hardened_args: Vec<&str> = good["hardened"]["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for expected in [
        "--read-only",
        "--user",
        "1000:1000",
        "no-new-privileges",
        "TOKEN=kube-harden-placeholder",
        "MODE=production",
    ] {
        assert!(
            hardened_args.contains(&expected),
            "{expected} in {hardened_args:?}"
        );
    }
    assert!(
        hardened_args.iter().any(|a| a.ends_with(":/tmp")),
        "the tool's /tmp emptyDir is a bind mount: {hardened_args:?}"
    );

    assert!(daemon
        .containers_labelled("io.kube-harden.prove")
        .is_empty());
    assert!(
        empty_dir(tmp.path()),
        "scratch folders left in {:?}",
        tmp.path()
    );
    eprintln!("5 containers proven in {elapsed:?} (watch 3 s each, 4 at once)");

    // Refused: runAsUser left to the image (config), runAsNonRoot meets a root image.
    let out = tool(&daemon, tmp.path())
        .args([
            "prove",
            "--format",
            "json",
            "--prove-timeout",
            "3",
            "--config",
        ])
        .arg(fixtures().join("refused/kube-harden.yaml"))
        .arg(fixtures().join("refused"))
        .output()
        .unwrap();
    let json = json_of(&out);
    let root = proof(&json, "Deployment/root-app");
    assert_eq!(root["verdict"], "refused", "{root:#}");
    assert!(root["reason"]
        .as_str()
        .unwrap()
        .contains("image runs as root (no USER)"));
    assert_eq!(out.status.code(), Some(1));

    // The well-behaved app alone: exit 0, and the text says ok.
    let out = tool(&daemon, tmp.path())
        .args(["prove", "--prove-timeout", "2"])
        .arg(apps.join("good.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("container good [kube-harden-test/good:1]: ok: "),
        "{text}"
    );

    // An app that exits as-is too (its command fails, as without its database): could not
    // prove, never a regression; exit 0. Its command and args replace the image's, with
    // `$(VAR)` expanded from its env as the kubelet does (`$$(VAR)` and an undefined name stay
    // references).
    let (out, json) = prove_json(&daemon, tmp.path(), &fixtures().join("exits"));
    let exits = proof(&json, "Deployment/needs-database");
    assert_eq!(exits["verdict"], "could-not-prove", "{exits:#}");
    assert_eq!(exits["reason"], "as-is exited with code 3 too", "{exits:#}");
    assert_eq!(
        exits["as_is"]["log_tail"],
        serde_json::json!(["cannot reach db:5432 [$(DB_HOST) $(UNDEFINED)]"])
    );
    assert_eq!(out.status.code(), Some(0), "{json:#}");

    // `explain --prove`: the explanation, then the verdicts.
    let out = tool(&daemon, tmp.path())
        .args(["explain", "--prove", "--prove-timeout", "2"])
        .arg(apps.join("good.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let proof_at = text.find("Start proof:\n  Deployment/good ").expect(&text);
    assert!(
        text[proof_at..].contains(": ok: as-is and hardened both stay up"),
        "{text}"
    );
    assert!(
        text[..proof_at].contains("readOnlyRootFilesystem"),
        "{text}"
    );

    // A Kustomize app: the overlay sets the image, so only the build knows what runs; the
    // proof runs the rendered pod (prefix and image of the overlay).
    let (_, json) = prove_json(&daemon, tmp.path(), &fixtures().join("kustomize"));
    let rendered = proof(&json, "Deployment/prod-cache");
    assert_eq!(
        rendered["image"], "kube-harden-test/uid101-cache:1",
        "{json:#}"
    );
    assert_eq!(rendered["verdict"], "regression", "{rendered:#}");
    assert!(rendered["origin"]
        .as_str()
        .unwrap()
        .ends_with("overlay/kustomization.yaml"));
    assert_eq!(json["proofs"].as_array().unwrap().len(), 1, "{json:#}");
    assert_eq!(json["not_proven"], serde_json::json!([]), "{json:#}");

    // A Helm chart: the values file changes, the render (Helm's engine through the test shim)
    // says what runs: the named-user image as uid 1000.
    let out = tool(&daemon, tmp.path())
        .env("KUBE_HARDEN_HELM_PYTHON", common::helm::python())
        .args([
            "prove",
            "--format",
            "json",
            "--prove-timeout",
            "3",
            "--helm-bin",
        ])
        .arg(common::helm::shim())
        .arg(fixtures().join("chart"))
        .output()
        .unwrap();
    let json = json_of(&out);
    let chart = proof(&json, "Deployment/release-reports");
    assert_eq!(chart["image"], "kube-harden-test/named-user:1", "{json:#}");
    assert_eq!(chart["verdict"], "regression", "{chart:#}");
    assert_eq!(
        remedies(chart),
        [serde_json::json!({"kind": "image-user", "path": "/app/config"})]
    );
    assert_eq!(json["not_proven"], serde_json::json!([]), "{json:#}");

    // A Flux release of that chart: its values change, and what its chart renders under the
    // release's name (the render check's own streams) is what runs.
    let fleet = tempfile::tempdir().unwrap();
    common::copy_dir(&fixtures().join("gitops"), fleet.path());
    common::copy_dir(
        &fixtures().join("chart"),
        &fleet.path().join("charts/reports"),
    );
    common::init_with_origin(fleet.path(), "https://github.com/acme/fleet.git");
    let out = tool(&daemon, tmp.path())
        .current_dir(fleet.path())
        .env("KUBE_HARDEN_HELM_PYTHON", common::helm::python())
        .args(["prove", "--format", "json", "--prove-timeout", "3"])
        .arg("--helm-bin")
        .arg(common::helm::shim())
        .arg("apps")
        .output()
        .unwrap();
    let json = json_of(&out);
    let release = proof(&json, "Deployment/reports-reports");
    assert_eq!(
        release["image"], "kube-harden-test/named-user:1",
        "{json:#}"
    );
    assert_eq!(release["verdict"], "regression", "{release:#}");
    assert_eq!(
        remedies(release),
        [serde_json::json!({"kind": "image-user", "path": "/app/config"})]
    );
    assert_eq!(json["not_proven"], serde_json::json!([]), "{json:#}");

    pr_bodies_and_summary_carry_the_start_proof(&daemon, tmp.path());
    assert!(daemon
        .containers_labelled("io.kube-harden.prove")
        .is_empty());
    assert!(
        empty_dir(tmp.path()),
        "scratch folders left in {:?}",
        tmp.path()
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "git {args:?}: {stderr}");
}

/// `pr --dry-run --prove` under Actions: two services (the port-80 web app, the good app), each
/// body with the proof of its own container before the fingerprint line, and the step summary
/// with both.
fn pr_bodies_and_summary_carry_the_start_proof(daemon: &Dockerd, tmp: &Path) {
    let repos = tempfile::tempdir().unwrap();
    let work = repos.path().join("work");
    git(
        repos.path(),
        &["init", "-q", "--bare", "-b", "main", "origin.git"],
    );
    git(repos.path(), &["clone", "-q", "origin.git", "work"]);
    for (service, app) in [("web", "web-port80"), ("good", "good")] {
        let dir = work.join("services").join(service);
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = fixtures().join(format!("apps/{app}.yaml"));
        std::fs::copy(fixture, dir.join("deployment.yaml")).unwrap();
    }
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "services"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let runner = tempfile::tempdir().unwrap();
    let summary = runner.path().join("summary.md");
    let out = tool(daemon, tmp)
        .current_dir(&work)
        .env_remove("GITHUB_TOKEN")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", runner.path().join("output"))
        .args(["pr", "--dry-run", "--format", "json", "--base", "main"])
        .args(["--author", "T <t@example.com>"])
        .args(["--prove", "--prove-timeout", "3"])
        .output()
        .unwrap();
    let json = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    let body = |service: &str| -> String {
        let services = json["services"].as_array().unwrap();
        let found = services.iter().find(|s| s["service"] == service);
        let found = found.unwrap_or_else(|| panic!("no service {service}: {json:#}"));
        found["body"].as_str().unwrap().to_string()
    };
    let web = body("web");
    let section = web.find("### Start proof").expect("a Start proof section");
    assert!(section < web.find("<!-- kube-harden:fingerprint=").unwrap());
    let row = "| `Deployment/web-port80` | `web-port80` | `kube-harden-test/root-port80:1` | **regression** |";
    assert!(web.contains(row), "{web}");
    let remedy = "- `httpd: bind: Permission denied`: the app binds a port below 1024";
    assert!(web.contains(remedy), "{web}");
    assert!(
        !web.contains("Deployment/good"),
        "only its own containers: {web}"
    );
    let good = body("good");
    let row = "| `Deployment/good` | `good` | `kube-harden-test/good:1` | **ok** |";
    assert!(good.contains(row), "{good}");
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("### Start proof"), "{summary}");
    assert!(
        summary.contains("2 containers proven: 1 ok, 1 regressions"),
        "{summary}"
    );
}

#[test]
#[ignore = "needs dockerd, umoci, skopeo, busybox-static: .ci/run installs them"]
fn a_signal_leaves_no_container_and_no_folder_behind() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|p| p.into_inner());
    let daemon = Dockerd::with_images();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = tool(&daemon, tmp.path())
        .args(["prove", "--prove-timeout", "120"])
        .arg(fixtures().join("apps/good.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.containers_labelled("io.kube-harden.prove").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the proof never started its containers"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!empty_dir(tmp.path()), "a scratch folder while it runs");
    // SAFETY: a plain system call on the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        daemon
            .containers_labelled("io.kube-harden.prove")
            .is_empty(),
        "containers left after SIGTERM"
    );
    assert!(empty_dir(tmp.path()), "scratch folders left after SIGTERM");
}

#[test]
#[ignore = "needs dockerd, umoci, skopeo, busybox-static, docker-registry: .ci/run installs them"]
fn an_image_the_engine_lacks_is_pulled_from_a_loopback_registry() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|p| p.into_inner());
    let daemon = Dockerd::with_images();
    let registry = common::engine::Registry::start();
    let image = registry.push(&daemon.layout(), "uid101-cache");
    let work = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(fixtures().join("apps/cache-writer.yaml"))
        .unwrap()
        .replace("kube-harden-test/uid101-cache:1", &image);
    std::fs::write(work.path().join("cache-writer.yaml"), manifest).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (_, json) = prove_json(&daemon, tmp.path(), work.path());
    let cache = proof(&json, "Deployment/cache-writer");
    assert_eq!(cache["image"], image.as_str());
    assert_eq!(cache["verdict"], "regression", "{cache:#}");
    assert_eq!(cache["image_config"]["user"], "101");
    let pulled = daemon
        .docker()
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(pulled.status.success(), "the engine pulled {image}");
    eprintln!("proof with a pull: {} s", cache["seconds"]);
}

/// Not behind the daemon: an engine that does not answer is an error (exit 2), not a pass.
#[test]
fn no_engine_is_an_error_that_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-harden"))
        .env(
            "DOCKER_HOST",
            format!("unix://{}/none.sock", tmp.path().display()),
        )
        .args(["prove", "--engine", "docker"])
        .arg(fixtures().join("apps/good.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no container engine answers (docker"),
        "{stderr}"
    );
}
