//! A dockerd of the test's own (scripts/dockerd.sh: own socket and data root, no bridge, no
//! iptables) holding the start proof's images, built here with busybox and umoci
//! (scripts/prove-images.sh) and loaded with skopeo. Dropping it stops the daemon, even when the
//! test fails. A missing engine or tool fails the test: it never passes by skipping its work.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The images scripts/prove-images.sh builds, loaded as `kube-harden-test/<tag>:1`.
pub const IMAGES: &[&str] = &[
    "root-port80",
    "uid101-cache",
    "named-user",
    "volume-data",
    "good",
];

pub struct Dockerd {
    dir: tempfile::TempDir,
    /// `unix://…/docker.sock`: the DOCKER_HOST for the tool and the checks.
    pub host: String,
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    repository().join("scripts").join(name)
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run: {e} (scripts/runtime-deps.sh installs it)")
    });
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Dockerd {
    /// Starts the daemon and loads every image of [`IMAGES`].
    pub fn with_images() -> Dockerd {
        // Short path: a unix socket's path has at most 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("khd")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let host = run_ok(
            Command::new(script("dockerd.sh"))
                .arg("start")
                .arg(dir.path()),
            "scripts/dockerd.sh start",
        )
        .trim()
        .to_string();
        let daemon = Dockerd { dir, host };
        let layout = daemon.dir.path().join("oci");
        run_ok(
            Command::new(script("prove-images.sh")).arg(&layout),
            "scripts/prove-images.sh",
        );
        for tag in IMAGES {
            run_ok(
                Command::new("skopeo").args([
                    "copy",
                    "--quiet",
                    "--dest-daemon-host",
                    &daemon.host,
                    &format!("oci:{}:{tag}", layout.display()),
                    &format!("docker-daemon:kube-harden-test/{tag}:1"),
                ]),
                "skopeo copy into the daemon",
            );
        }
        daemon
    }

    /// The `docker` client against this daemon.
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", &self.host);
        cmd
    }

    /// The ids of the containers (running or not) that carry `label`.
    pub fn containers_labelled(&self, label: &str) -> Vec<String> {
        let out = run_ok(
            self.docker()
                .args(["ps", "-aq", "--filter", &format!("label={label}")]),
            "docker ps",
        );
        out.split_whitespace().map(str::to_string).collect()
    }

    /// The OCI layout the images were built into.
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("oci")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new(script("dockerd.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// Debian's docker-registry serving plain HTTP on a free port of 127.0.0.1, its storage in a
/// temporary folder; dropping it kills its process group.
pub struct Registry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Registry {
    pub fn start() -> Registry {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\nhttp:\n  addr: {address}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/runtime-deps.sh installs it)");
        let registry = Registry {
            child,
            _dir: dir,
            address,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&registry.address).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not listen on {}",
                registry.address
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        registry
    }

    /// Pushes the tag `tag` of the OCI layout at `layout` as `kube-harden-test/<tag>:1`.
    pub fn push(&self, layout: &Path, tag: &str) -> String {
        let image = format!("{}/kube-harden-test/{tag}:1", self.address);
        run_ok(
            Command::new("skopeo").args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker://{image}"),
            ]),
            "skopeo copy to the registry",
        );
        image
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        super::processes::stop_group(group);
        let _ = self.child.wait();
    }
}
