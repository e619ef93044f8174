//! Running Kustomize's own engine: which binary (`kustomize`, else `kubectl kustomize`, or the
//! one the user names), a temporary copy of what an app's builds read (the user's tree is
//! never written to), and one build per root with origin annotations turned on in the copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::forest::{App, Forest};
use super::model::Resource;
use crate::report::RenderSettings;

/// An engine found on this machine.
#[derive(Clone, Debug)]
pub struct Engine {
    program: PathBuf,
    /// `kubectl` needs the `kustomize` subcommand; the `kustomize` binary `build`.
    subcommand: &'static str,
    load_restrictor: String,
    /// How long one build may take (`--engine-timeout`).
    timeout: Duration,
}

/// Why a build gave no stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The engine's own error (or why it could not run), on one line.
    Failed(String),
    /// It ran past the time limit and was stopped.
    TimedOut(Duration),
    /// Not run: `--offline`, and the build reads these remote resources (each with the
    /// kustomization and line that names it).
    Offline(Vec<String>),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Failed(message) => f.write_str(message),
            BuildError::TimedOut(limit) => write!(
                f,
                "kustomize build did not finish in {} (stopped; --engine-timeout)",
                crate::process::seconds(*limit)
            ),
            BuildError::Offline(remotes) => write!(
                f,
                "not built with --offline: it reads remote resources ({})",
                remotes.join(", ")
            ),
        }
    }
}

impl Engine {
    /// The engine the settings name, else `kustomize` on PATH, else `kubectl`.
    pub fn find(settings: &RenderSettings) -> Option<Engine> {
        let load_restrictor = settings
            .load_restrictor
            .clone()
            .unwrap_or_else(|| "LoadRestrictionsNone".into());
        let subcommand_of = |program: &Path| {
            let name = program
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with("kubectl") {
                "kustomize"
            } else {
                "build"
            }
        };
        let program = crate::verify::programs::find(
            settings.kustomize_bin.as_deref(),
            &["kustomize", "kubectl"],
        )?;
        Some(Engine {
            subcommand: subcommand_of(&program),
            program,
            load_restrictor,
            timeout: settings.timeout,
        })
    }

    /// What it is, for messages: `kubectl kustomize` or the binary's path.
    pub fn describe(&self) -> String {
        match self.subcommand {
            "kustomize" => format!("{} kustomize", self.program.display()),
            _ => self.program.display().to_string(),
        }
    }

    /// Builds the kustomization folder `dir`: the rendered stream, or the engine's error. A
    /// build past the time limit is killed with everything it started (a `git fetch` of a
    /// remote base that never answers, say). The engine's own temporary files (the clone of a
    /// remote base) go in `tmp`, which is removed with the copy even when the engine is killed.
    pub fn build(&self, dir: &Path, tmp: &Path) -> Result<String, BuildError> {
        use crate::process::RunError;
        let mut command = Command::new(&self.program);
        command
            .arg(self.subcommand)
            .arg("--load-restrictor")
            .arg(&self.load_restrictor)
            .arg(dir)
            .env("TMPDIR", tmp)
            .env_remove("KUBECONFIG");
        let output = crate::process::output(&mut command, self.timeout).map_err(|e| match e {
            RunError::TimedOut(limit) => BuildError::TimedOut(limit),
            RunError::Spawn(e) => {
                BuildError::Failed(format!("cannot run {}: {e}", self.describe()))
            }
            RunError::Interrupted => BuildError::Failed("the run was interrupted".into()),
        })?;
        if output.status.success() {
            String::from_utf8(output.stdout)
                .map_err(|_| BuildError::Failed("the build is not UTF-8".to_string()))
        } else {
            Err(BuildError::Failed(engine_message(
                &String::from_utf8_lossy(&output.stderr),
            )))
        }
    }
}

/// Applies strategic-merge patches (target kind, name, patch text) to a rendered stream with
/// the engine, as a Helm post-renderer does: the patched stream, or the engine's error.
pub fn apply_patches(
    engine: &Engine,
    stream: &str,
    patches: &[(String, String, String)],
) -> Result<String, String> {
    let dir = crate::process::scratch_dir("kube-harden-post-render-")
        .map_err(|e| format!("no temporary folder: {e}"))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write("rendered.yaml", stream)?;
    let mut kustomization = String::from("resources:\n  - rendered.yaml\n");
    if !patches.is_empty() {
        kustomization.push_str("patches:\n");
    }
    for (i, (kind, name, text)) in patches.iter().enumerate() {
        let file = format!("patch-{i}.yaml");
        write(&file, text)?;
        kustomization.push_str(&format!(
            "  - path: {file}\n    target:\n      kind: {}\n      name: {}\n",
            quoted(kind),
            quoted(name)
        ));
    }
    write("kustomization.yaml", &kustomization)?;
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| format!("no temporary folder: {e}"))?;
    engine
        .build(&dir.path().join("."), &tmp)
        .map_err(|e| e.to_string())
}

/// A string as a JSON (so YAML) double-quoted scalar.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// The engine's error without kubectl's log header (`E1203 ... "command failed" err=`), on
/// one line.
fn engine_message(stderr: &str) -> String {
    let text = stderr.trim();
    let message = text
        .split_once("err=")
        .map_or(text, |(_, m)| m)
        .trim_start_matches(['"', '<'])
        .trim_end_matches(['"', '>'])
        .trim();
    let one_line: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match one_line.join(" ") {
        m if m.is_empty() => "the build failed".to_string(),
        m => m,
    }
}

/// A temporary copy of everything an app's builds read, laid out as in the user's tree below
/// their common folder (in `tree/` of a scratch folder, beside `tmp/` for the engine's own
/// temporary files).
pub struct Copy {
    dir: crate::process::ScratchDir,
    /// The user's folder that the copy's root stands for.
    common: PathBuf,
}

impl Copy {
    /// Copies each kustomization's folder (with what is below it: generator inputs, nested
    /// resources) and every file the app names elsewhere.
    pub fn of(app: &App, forest: &Forest) -> std::io::Result<Copy> {
        let mut sources: BTreeSet<PathBuf> = BTreeSet::new();
        for path in &app.kustomizations {
            let Some(k) = forest.kustomizations.get(path) else {
                continue;
            };
            sources.insert(absolute(k.dir())?);
            for entry in k.resources.iter().chain(&k.components) {
                if let Resource::File(f) | Resource::Folder(f) = &entry.item {
                    sources.insert(absolute(f)?);
                }
            }
            for file in k.brought_in_files() {
                sources.insert(absolute(&file)?);
            }
        }
        let common = common_ancestor(&sources);
        let dir = crate::process::scratch_dir("kube-harden-render-")?;
        let copy = Copy { dir, common };
        std::fs::create_dir_all(copy.engine_tmp())?;
        for source in &sources {
            crate::verify::scratch::copy_tree(
                source,
                &copy
                    .tree()
                    .join(source.strip_prefix(&copy.common).unwrap_or(source)),
            )?;
        }
        Ok(copy)
    }

    /// The copy of the user's tree.
    fn tree(&self) -> PathBuf {
        self.dir.path().join("tree")
    }

    /// Where the engine keeps its own temporary files.
    pub fn engine_tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// `message` with the copy's paths written as the user's.
    pub fn in_user_terms(&self, message: &str) -> String {
        let copy = self.tree().display().to_string();
        message.replace(&copy, &self.common.display().to_string())
    }

    /// Where a file of the user's tree is in the copy.
    pub fn path_of(&self, path: &Path) -> std::io::Result<PathBuf> {
        let absolute = absolute(path)?;
        Ok(self
            .tree()
            .join(absolute.strip_prefix(&self.common).unwrap_or(&absolute)))
    }

    /// Puts `text` in the copy of `path`.
    pub fn write(&self, path: &Path, text: &str) -> std::io::Result<()> {
        std::fs::write(self.path_of(path)?, text)
    }

    /// Turns on origin annotations in the copy of the root kustomization `root`, so that each
    /// rendered object says which file it came from.
    pub fn annotate_origins(&self, root: &Path, has_build_metadata: bool) -> std::io::Result<()> {
        if has_build_metadata {
            return Ok(());
        }
        let copy = self.path_of(root)?;
        let mut text = std::fs::read_to_string(&copy)?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("buildMetadata: [originAnnotations]\n");
        std::fs::write(copy, text)
    }

    /// The user's file an origin annotation's `path` names, given the root it was built from.
    pub fn origin_file(&self, root_dir: &Path, origin: &str) -> Option<PathBuf> {
        let in_copy = super::model::normalise(&self.path_of(root_dir).ok()?.join(origin));
        let relative = in_copy.strip_prefix(self.tree()).ok()?;
        Some(self.common.join(relative))
    }
}

/// The folder a root's build runs on.
pub fn root_dir(root: &Path) -> PathBuf {
    match root.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(path)
}

fn common_ancestor(paths: &BTreeSet<PathBuf>) -> PathBuf {
    let mut iter = paths.iter();
    let Some(first) = iter.next() else {
        return PathBuf::from("/");
    };
    let mut common = if first.is_dir() {
        first.clone()
    } else {
        first.parent().unwrap_or(Path::new("/")).to_path_buf()
    };
    for path in iter {
        while !path.starts_with(&common) {
            if !common.pop() {
                break;
            }
        }
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_log_headers_are_left_out() {
        let multi = "E1203 04:40:26.799279   17166 run.go:72] \"command failed\" err=<\n\taccumulating resources: no such host\n\t: exit status 128\n >\n";
        assert_eq!(
            engine_message(multi),
            "accumulating resources: no such host : exit status 128"
        );
        let single =
            "E1203 04:36:53.608226    5204 run.go:72] \"command failed\" err=\"missing value\"\n";
        assert_eq!(engine_message(single), "missing value");
        assert_eq!(
            engine_message("Error: plain kustomize\n"),
            "Error: plain kustomize"
        );
    }
}
