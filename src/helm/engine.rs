//! Running Helm's engine: the `helm` binary the settings name (or the one on `PATH`),
//! `helm template` of a chart folder with values files over its own `values.yaml`, and what
//! the output says about where each object came from (its `# Source:` line). Renders run on a
//! scratch copy ([`ChartCopy`]): the user's files are never written to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

use crate::report::RenderSettings;

/// The release name and namespace every render uses (only names in messages depend on them).
const RELEASE: &str = "release";
const NAMESPACE: &str = "default";

/// How a render past the time limit begins its message (see [`timed_out`]).
const TIMED_OUT: &str = "helm template did not finish in";

/// Whether a render error is the time limit's: such a render proves nothing, so nothing it
/// was to prove is written.
pub fn timed_out(error: &str) -> bool {
    error.starts_with(TIMED_OUT)
}

/// A `helm` found on this machine.
pub struct Engine {
    program: PathBuf,
    /// How long one render may take (`--engine-timeout`).
    timeout: std::time::Duration,
}

impl Engine {
    /// The `helm` of `--helm-bin`, else `helm` on PATH.
    pub fn find(settings: &RenderSettings) -> Option<Engine> {
        let program = crate::verify::programs::find(settings.helm_bin.as_deref(), &["helm"])?;
        Some(Engine {
            program,
            timeout: settings.timeout,
        })
    }

    /// `helm template` of the chart folder `chart` with the values files `values` (in order,
    /// later ones win) over its values.yaml: the rendered stream, or Helm's error on one line.
    /// A render past the time limit is killed with everything it started.
    pub fn template(&self, chart: &Path, values: &[PathBuf]) -> Result<String, String> {
        self.template_as(chart, values, RELEASE)
    }

    /// [`Engine::template`] with the release name a GitOps tool installs it under (the names
    /// of the rendered objects depend on it).
    pub fn template_as(
        &self,
        chart: &Path,
        values: &[PathBuf],
        release: &str,
    ) -> Result<String, String> {
        let mut command = Command::new(&self.program);
        command
            .arg("template")
            .arg(release)
            .arg(chart)
            .args(["--namespace", NAMESPACE]);
        for file in values {
            command.arg("--values").arg(file);
        }
        command.env_remove("KUBECONFIG");
        let output = crate::process::output(&mut command, self.timeout).map_err(|e| match e {
            crate::process::RunError::TimedOut(limit) => format!(
                "{TIMED_OUT} {} (stopped; --engine-timeout)",
                crate::process::seconds(limit)
            ),
            crate::process::RunError::Spawn(e) => {
                format!("cannot run {}: {e}", self.program.display())
            }
            crate::process::RunError::Interrupted => "the run was interrupted".to_string(),
        })?;
        if output.status.success() {
            return String::from_utf8(output.stdout).map_err(|_| "the render is not UTF-8".into());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Err(match lines.join(" ") {
            m if m.is_empty() => "helm template failed".to_string(),
            m => m.trim_start_matches("Error: ").to_string(),
        })
    }
}

/// A library chart renders nothing (`helm template` refuses it).
pub fn is_library(chart: &Path) -> bool {
    std::fs::read_to_string(chart.join("Chart.yaml"))
        .ok()
        .and_then(|t| yaml_serde::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
        .is_some_and(|t| t == "library")
}

/// A temporary copy of a chart folder (with its vendored `charts/`).
pub struct ChartCopy {
    _dir: crate::process::ScratchDir,
    /// The copy's chart folder.
    pub chart: PathBuf,
}

impl ChartCopy {
    pub fn of(chart: &Path) -> std::io::Result<ChartCopy> {
        let dir = crate::process::scratch_dir("kube-harden-helm")?;
        let name = chart.file_name().unwrap_or_else(|| "chart".as_ref());
        let copy = dir.path().join(name);
        crate::verify::scratch::copy_tree(chart, &copy)?;
        Ok(ChartCopy {
            _dir: dir,
            chart: copy,
        })
    }

    /// Writes the new text of a file of the user's chart into the copy.
    pub fn write(&self, chart: &Path, file: &Path, text: &str) -> std::io::Result<()> {
        let rel = file.strip_prefix(chart).map_err(|_| {
            std::io::Error::other(format!("{} is outside the chart", file.display()))
        })?;
        std::fs::write(self.chart.join(rel), text)
    }
}

pub type ObjectKey = (String, String);

pub fn object_key(object: &Value) -> ObjectKey {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let meta = object.get("metadata");
    (
        text(object.get("kind")),
        text(meta.and_then(|m| m.get("name"))),
    )
}

/// The template each rendered object came from, by its `# Source: <chart>/templates/x.yaml`
/// line, relative to the chart (`templates/x.yaml`).
pub fn sources_by_object(stream: &str) -> BTreeMap<ObjectKey, String> {
    let mut out = BTreeMap::new();
    for document in &split_documents(stream) {
        // The last one: comments alone before it went with this document (see below).
        let Some(source) = document
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(|s| {
                s.trim()
                    .split_once('/')
                    .map_or(s, |(_, rest)| rest)
                    .to_string()
            })
        else {
            continue;
        };
        if let Ok(object) = yaml_serde::from_str::<Value>(document) {
            out.insert(object_key(&object), source);
        }
    }
    out
}

/// The documents of a rendered stream, split as Helm splits a template's output
/// (`releaseutil.SplitManifests`): a separator is `---` at the start of the text or right after
/// a line break, with the whitespace around it; whatever follows on its line (`---# comment`)
/// starts the next document. Pieces that hold only whitespace are dropped, as Helm drops them;
/// a piece of comments alone (a `# Source:` line before a template that starts with `---`)
/// goes with the document after it, which it describes.
pub fn split_documents(stream: &str) -> Vec<String> {
    static SEPARATOR: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let separator =
        SEPARATOR.get_or_init(|| regex::Regex::new(r"(?:^|\s*\n)---\s*").expect("a valid regex"));
    let mut out = Vec::new();
    let mut comments = String::new();
    for piece in separator.split(stream).filter(|p| !p.trim().is_empty()) {
        let only_comments = piece
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if only_comments {
            comments.push_str(piece.trim_end());
            comments.push('\n');
        } else {
            out.push(std::mem::take(&mut comments) + piece);
        }
    }
    if !comments.is_empty() {
        out.push(comments);
    }
    out
}

/// The rendered stream as plain YAML documents, each after a `---` line of its own: what
/// Helm itself prints for the documents it splits, so that a template starting with
/// `---# comment` loads as the one document Helm sees.
pub fn as_documents(stream: &str) -> String {
    split_documents(stream)
        .iter()
        .map(|piece| format!("---\n{}\n", piece.trim_end()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_traced_to_their_template() {
        let stream = "---\n# Source: web/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: release-web\n---\n# Source: web/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: release-web\n";
        let sources = sources_by_object(stream);
        assert_eq!(
            sources.get(&("Deployment".into(), "release-web".into())),
            Some(&"templates/deployment.yaml".to_string())
        );
        assert_eq!(
            sources.get(&("Service".into(), "release-web".into())),
            Some(&"templates/svc.yaml".to_string())
        );
    }

    #[test]
    fn streams_are_split_as_helm_splits_them() {
        // cert-manager 1.1x: a template whose text starts with `---# comment`.
        let stream = "---\n# Source: cm/templates/webhook.yaml\n---# a comment on the separator line\napiVersion: v1\nkind: Service\nmetadata:\n  name: webhook\n---   \n# Source: cm/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  text: |\n    a---b\n    --- not at the line start\n";
        let documents = split_documents(stream);
        assert_eq!(
            documents,
            vec![
                "# Source: cm/templates/webhook.yaml\n# a comment on the separator line\napiVersion: v1\nkind: Service\nmetadata:\n  name: webhook",
                "# Source: cm/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  text: |\n    a---b\n    --- not at the line start\n",
            ]
        );
        let loaded = crate::verify::load_all(&as_documents(stream)).unwrap();
        let kinds: Vec<&str> = loaded
            .iter()
            .filter_map(|d| d.get("kind").and_then(Value::as_str))
            .collect();
        assert_eq!(kinds, vec!["Service", "ConfigMap"]);
        assert_eq!(
            sources_by_object(stream).get(&("Service".into(), "webhook".into())),
            Some(&"templates/webhook.yaml".to_string())
        );
    }
}
