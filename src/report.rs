//! What every source shares: the settings that shape each file's processing, and the report of
//! what happened to one file (its status, workloads, findings, notes). Sources fill reports in;
//! rendering and delivery read them. This module sits below all of them and uses none.

use std::path::{Path, PathBuf};

pub use crate::config::RenderMode;
use crate::policy::{Finding, Note, Rules, SkippedPod, Workload};
use yaml_splice::EngineError;

/// Settings that shape every file's processing.
#[derive(Clone, Debug)]
pub struct Settings {
    pub rules: Rules,
    /// Paths to leave out: the repository root they are relative to, and the globs.
    pub exclude: Option<(PathBuf, crate::config::ExcludeMatcher)>,
    /// The repository's Dockerfiles, to find an image's by name.
    pub dockerfiles: crate::dockerfile::DockerfileIndex,
    /// Files larger than this are skipped with a message.
    pub max_file_bytes: u64,
    /// The render check of Kustomize trees and Helm charts.
    pub render: RenderSettings,
    /// The repository being fixed, as GitOps releases refer to it.
    pub repository: RepositoryInfo,
}

/// The repository a run is in: its root folder and its `origin` URL (a GitOps release whose
/// chart path is in this repository names it by that URL), and where fetched charts are kept.
#[derive(Clone, Debug, Default)]
pub struct RepositoryInfo {
    pub root: Option<PathBuf>,
    pub origin: Option<String>,
    /// `--chart-cache`: where charts from chart repositories are kept.
    pub chart_cache: Option<PathBuf>,
    /// `--no-post-renderers`: a Flux release whose values cannot express the baseline gets no
    /// `spec.postRenderers` patches (only the notes).
    pub no_post_renderers: bool,
    /// `--insecure-registry` and `insecureRegistries`: registries spoken to over plain HTTP
    /// (loopback always is), for charts as for images.
    pub insecure_registries: Vec<String>,
    /// The environment variable whose token is offered to a chart's git server when it asks
    /// (`pr --token-env`; None: `GITHUB_TOKEN`).
    pub token_env: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules: Rules::default(),
            exclude: None,
            dockerfiles: Default::default(),
            max_file_bytes: 10 * 1024 * 1024,
            render: RenderSettings::default(),
            repository: RepositoryInfo::default(),
        }
    }
}

/// Why a file could not be handled, with a 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl From<EngineError> for FileError {
    fn from(e: EngineError) -> Self {
        FileError {
            line: e.line.max(1),
            col: e.col.max(1),
            message: e.message,
        }
    }
}

impl FileError {
    pub fn at_start(message: impl Into<String>) -> Self {
        FileError {
            line: 1,
            col: 1,
            message: message.into(),
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug)]
pub enum Status {
    /// Read and compliant (or holding no workload).
    Unchanged,
    /// Verified new content, not yet written.
    Changed { new_text: String },
    /// Left alone without error, as expected for such files (not Kubernetes, Helm, ...).
    Skipped(String),
    /// Left alone because it is larger than the size limit: said for each file, since the
    /// user may well have expected it to be fixed.
    TooLarge { bytes: u64, limit: u64 },
    /// Could not be handled; never written.
    Failed(FileError),
}

/// The outcome for one file.
#[derive(Clone, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub status: Status,
    /// The bytes as read (for the diff and the write-time check).
    pub original: Option<String>,
    pub workloads: Vec<Workload>,
    pub findings: Vec<Finding>,
    pub skipped_pods: Vec<SkippedPod>,
    /// What a reviewer should know: risks, overrides, additions, exemptions.
    pub notes: Vec<Note>,
    /// What the engine says about the edit (an anchored mapping that aliases see).
    pub edit_notes: Vec<String>,
    /// The service's Dockerfile, when its final stage runs as root.
    pub root_dockerfile: Option<PathBuf>,
    /// The folder whose service the file's changes go with in `pr`, when its source knows
    /// better than the file's own folder (a Kustomize overlay goes with its one base).
    pub service_dir: Option<PathBuf>,
    /// What the render check rendered before and after the file's changes, kept only when the
    /// run asks for it ([`RenderSettings::keep_streams`]: the start proof runs what ships).
    pub rendered: Vec<RenderedStreams>,
}

/// A render check's streams: what ships before and after a change, and the changed files that
/// make the difference.
#[derive(Clone, Debug)]
pub struct RenderedStreams {
    /// The release, root or chart, for messages.
    pub origin: String,
    /// The changed files it covers, as their reports name them.
    pub files: Vec<PathBuf>,
    pub before: String,
    pub after: String,
}

impl FileReport {
    pub fn new(path: &Path, status: Status) -> Self {
        FileReport {
            path: path.to_path_buf(),
            status,
            original: None,
            workloads: vec![],
            findings: vec![],
            skipped_pods: vec![],
            notes: vec![],
            edit_notes: vec![],
            root_dockerfile: None,
            service_dir: None,
            rendered: vec![],
        }
    }
}

/// How the render check runs (`--render`, `--kustomize-bin`, `--load-restrictor`,
/// `--helm-bin`), and what it may wait for and fetch (`--engine-timeout`, `--offline`).
#[derive(Clone, Debug)]
pub struct RenderSettings {
    pub mode: RenderMode,
    /// The engine to run: a `kustomize` binary, or `kubectl` (run as `kubectl kustomize`).
    pub kustomize_bin: Option<PathBuf>,
    /// Kustomize's `--load-restrictor` (default: `LoadRestrictionsNone`, which builds trees that
    /// read files outside a kustomization's folder, as many repositories do).
    pub load_restrictor: Option<String>,
    /// The `helm` binary that renders charts (default: `helm` on PATH).
    pub helm_bin: Option<PathBuf>,
    /// The time limit of each external run (a build, a render) and each chart download.
    pub timeout: std::time::Duration,
    /// `--offline`: nothing is fetched (no Kustomize remote resource, charts from the cache).
    pub offline: bool,
    /// Keep the streams the checks render in the reports (`prove`, `pr --prove`).
    pub keep_streams: bool,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            mode: RenderMode::default(),
            kustomize_bin: None,
            load_restrictor: None,
            helm_bin: None,
            timeout: crate::process::DEFAULT_TIMEOUT,
            offline: false,
            keep_streams: false,
        }
    }
}

impl FileReport {
    /// Adds a workload known only by its kind, name and line (a values path, a template's pod,
    /// a rendered object), and returns its index.
    pub fn add_workload(&mut self, kind: &str, name: &str, line: usize) -> usize {
        self.workloads.push(Workload {
            kind: kind.to_string(),
            name: name.to_string(),
            document: 0,
            line,
            app: None,
            images: vec![],
        });
        self.workloads.len() - 1
    }
}

/// A rendered pod that a release's render check finds short of the baseline or at risk: a
/// workload of its own in the report of the file that declares the release, so that each
/// shortfall is a finding of its pod, not only of the release.
#[derive(Clone, Debug)]
pub struct RenderedPod {
    pub workload: Workload,
    /// Its findings and notes (their `workload` is set when the pod is added).
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
}

impl FileReport {
    /// Adds a rendered pod as a workload, with its findings and notes.
    pub fn add_rendered_pod(&mut self, pod: RenderedPod) {
        let index = self.workloads.len();
        self.workloads.push(pod.workload);
        self.findings
            .extend(pod.findings.into_iter().map(|f| Finding {
                workload: index,
                ..f
            }));
        self.notes.extend(pod.notes.into_iter().map(|n| Note {
            workload: index,
            ..n
        }));
    }
}

/// Turns every changed file of a unit (a chart, a Kustomize app) into a failure with the
/// reason: nothing of it is written.
pub fn fail_changed(reports: &mut [FileReport], why: &str) {
    for report in reports.iter_mut() {
        if matches!(report.status, Status::Changed { .. }) {
            report.status = Status::Failed(FileError::at_start(format!("not written: {why}")));
        }
    }
}
