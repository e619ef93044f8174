//! The container engine's command line (docker, or podman which takes the same words): which
//! one answers, an image's config, start, state, exec, logs, removal. Every call is a child in a
//! process group of its own with a time limit (see crate::process).

use std::process::Command;
use std::time::Duration;

use crate::process::{self, RunError};

use super::{Engine, ImageConfig};

/// The limit of one engine call (a pull may take longer: the run's own limit).
const CALL_LIMIT: Duration = Duration::from_secs(60);

impl Engine {
    pub fn program(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// Whether the engine answers (its client runs and reaches its daemon).
    pub fn answers(self) -> bool {
        call(self, &["version"], Duration::from_secs(20)).is_ok()
    }

    /// The first engine that answers, docker first.
    pub fn detect() -> Option<Engine> {
        [Engine::Docker, Engine::Podman]
            .into_iter()
            .find(|e| e.answers())
    }

    /// The image's config, pulling the image first when the engine does not have it.
    pub fn image_config(self, image: &str, pull_limit: Duration) -> Result<ImageConfig, String> {
        let inspect = || {
            call(
                self,
                &["image", "inspect", "--format", "{{json .Config}}", image],
                CALL_LIMIT,
            )
        };
        let json = match inspect() {
            Ok(json) => json,
            Err(_) => {
                call(self, &["pull", "--quiet", image], pull_limit)
                    .map_err(|e| format!("image {image} is not there and cannot be pulled: {e}"))?;
                inspect()?
            }
        };
        let config: serde_json::Value =
            serde_json::from_str(json.trim()).map_err(|e| format!("image config: {e}"))?;
        let keys = |field: &str| -> Vec<String> {
            config[field]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        Ok(ImageConfig {
            user: config["User"].as_str().unwrap_or_default().to_string(),
            volumes: keys("Volumes"),
            exposed_ports: keys("ExposedPorts"),
        })
    }

    /// Starts a container in the background; its id, or what the engine said.
    pub fn start(self, arguments: &[String]) -> Result<String, String> {
        let mut words = vec![
            "run".to_string(),
            "-d".into(),
            "--pull".into(),
            "never".into(),
        ];
        words.extend(arguments.iter().cloned());
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        call(self, &words, CALL_LIMIT).map(|id| id.trim().to_string())
    }

    /// Each container's state: `Some(exit code)` once it has ended, `None` while it runs.
    pub fn states(self, names: &[&str]) -> Result<Vec<Option<i64>>, String> {
        let mut words = vec![
            "inspect",
            "--format",
            "{{.State.Running}} {{.State.ExitCode}}",
        ];
        words.extend(names);
        let out = call(self, &words, CALL_LIMIT)?;
        Ok(out
            .lines()
            .map(|line| match line.split_once(' ') {
                Some(("true", _)) => None,
                Some((_, code)) => Some(code.trim().parse().unwrap_or(-1)),
                None => Some(-1),
            })
            .collect())
    }

    /// Runs a probe command in the container: whether it succeeded.
    pub fn exec_succeeds(self, name: &str, command: &[String], limit: Duration) -> bool {
        let mut words = vec!["exec", name];
        words.extend(command.iter().map(String::as_str));
        call(self, &words, limit).is_ok()
    }

    /// The process id of the container's first process, as the host sees it.
    pub fn pid(self, name: &str) -> Option<i32> {
        let out = call(
            self,
            &["inspect", "--format", "{{.State.Pid}}", name],
            CALL_LIMIT,
        )
        .ok()?;
        out.trim().parse().ok().filter(|&pid| pid > 0)
    }

    /// What the container printed (stdout and stderr).
    pub fn logs(self, name: &str) -> String {
        let mut cmd = Command::new(self.program());
        cmd.args(["logs", name]);
        match process::output(&mut cmd, CALL_LIMIT) {
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                text
            }
            Err(_) => String::new(),
        }
    }

    /// Removes containers with their anonymous volumes (gone ones are fine).
    pub fn remove(self, names: &[&str]) {
        let mut cmd = Command::new(self.program());
        cmd.args(["rm", "-f", "-v"]).args(names);
        let _ = process::output(&mut cmd, CALL_LIMIT);
    }

    /// Removes every container labelled with `label=value`. Not through crate::process (it
    /// also runs while a signal stops the run, when nothing new may start there).
    pub fn remove_labelled(self, label: &str, value: &str) {
        let listed = Command::new(self.program())
            .args(["ps", "-aq", "--filter", &format!("label={label}={value}")])
            .output();
        let Ok(listed) = listed else { return };
        let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new(self.program())
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
    }
}

/// Runs the engine with `words`; its stdout, or why it failed (its stderr's last line).
fn call(engine: Engine, words: &[&str], limit: Duration) -> Result<String, String> {
    let mut cmd = Command::new(engine.program());
    cmd.args(words);
    let out = process::output(&mut cmd, limit).map_err(|e| match e {
        RunError::Spawn(e) => format!("{} cannot be run: {e}", engine.program()),
        RunError::TimedOut(limit) => format!(
            "{} {} took longer than {}",
            engine.program(),
            words.first().unwrap_or(&""),
            process::seconds(limit)
        ),
        RunError::Interrupted => "interrupted".into(),
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("failed")
        .trim()
        .to_string())
}
