//! One file through the stages: read, gate, parse, plan, edit, verify. Pure: writes nothing.

use std::path::{Path, PathBuf};

use crate::policy::{self, Finding, Note, Rules, SkippedPod, Workload};
use crate::verify::{original_documents_load, verify_with, VerifyError};
use yaml_splice::{apply_changes, EngineError, Ref, Tree};

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules: Rules::default(),
            exclude: None,
            dockerfiles: Default::default(),
            max_file_bytes: 10 * 1024 * 1024,
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
        }
    }
}

/// Runs every stage up to verification for the file at `path`.
pub fn process_file(path: &Path, settings: &Settings) -> FileReport {
    use std::io::Read;
    let limit = settings.max_file_bytes;
    // One open: the size is checked on the open file, before anything is read.
    let read = std::fs::File::open(path).and_then(|file| {
        let bytes = file.metadata()?.len();
        if bytes > limit {
            return Ok(Err(bytes));
        }
        // Read through `take`: `File::read_to_end` would ask the size again (fstat, lseek).
        let mut content = Vec::with_capacity(bytes as usize + 1);
        file.take(limit + 1).read_to_end(&mut content)?;
        if content.len() as u64 > limit {
            return Ok(Err(content.len() as u64));
        }
        Ok(Ok(content))
    });
    let read = match read {
        Ok(Err(bytes)) => return FileReport::new(path, Status::TooLarge { bytes, limit }),
        Ok(Ok(content)) => Ok(content),
        Err(e) => Err(e),
    };
    match read {
        Ok(bytes) => match decode(bytes) {
            Ok(text) => process_text(path, text, settings),
            Err(e) => FileReport::new(path, Status::Failed(e)),
        },
        Err(e) => FileReport::new(
            path,
            Status::Failed(FileError::at_start(format!("cannot read: {e}"))),
        ),
    }
}

/// UTF-8 only: UTF-16 and Latin-1 are refused with the position of the first bad byte.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<String, FileError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::at_start(
            "the file is UTF-16; kube-harden reads UTF-8 only",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = valid.len() - valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        FileError {
            line,
            col,
            message: "the file is not valid UTF-8 (Latin-1?); kube-harden reads UTF-8 only".into(),
        }
    })
}

/// Stages after reading: gate, parse, plan, edit, verify.
pub fn process_text(path: &Path, text: String, settings: &Settings) -> FileReport {
    let mut report = FileReport::new(path, Status::Unchanged);
    report.status = match harden(&text, settings, &mut report) {
        Ok(status) => status,
        Err(e) => Status::Failed(e),
    };
    report.original = Some(text);
    report
}

fn harden(text: &str, settings: &Settings, report: &mut FileReport) -> Result<Status, FileError> {
    if text.contains("{{") {
        return Ok(Status::Skipped("Helm template syntax (`{{`)".into()));
    }
    if let Some(e) = tab_indentation(text) {
        return Err(e);
    }
    let (tree, original_loads) = parse(text)?;
    let is_object = |d: &yaml_splice::tree::Document| {
        d.root
            .is_some_and(|id| policy::is_kubernetes_object(&tree, Ref::root(id)))
    };
    if !tree.docs.iter().any(is_object) {
        if tree.docs.iter().any(|d| d.opaque) {
            // Large documents without a pod spec, left as text: nothing to change.
            return Ok(Status::Unchanged);
        }
        return Ok(Status::Skipped("not a Kubernetes object".into()));
    }
    let plan = policy::plan(&tree, &settings.rules);
    report.workloads = plan.workloads;
    report.findings = plan.findings;
    report.skipped_pods = plan.skipped;
    report.notes = plan.notes;
    note_root_dockerfile(report, &settings.dockerfiles);
    if let Some(refusal) = plan.refusals.into_iter().next() {
        return Err(refusal.into());
    }
    if plan.changes.is_empty() {
        return Ok(Status::Unchanged);
    }
    let outcome = apply_changes(&tree, plan.changes)?;
    report.edit_notes = outcome.notes;
    let (new, splices, ops) = (&outcome.text, &outcome.splices, &outcome.ops);
    verify_with(&tree, new, splices, ops, original_loads).map_err(|e| {
        let first_edit = outcome.splices.first().map_or(0, |s| s.start);
        let (line, col) = e
            .position
            .unwrap_or((text[..first_edit].matches('\n').count() + 1, 1));
        FileError {
            line,
            col,
            message: e.to_string(),
        }
    })?;
    Ok(Status::Changed {
        new_text: outcome.text,
    })
}

/// Parses `text` for the policy; for a large stream, also checks that its documents load with
/// yaml_serde (which verification needs), returned beside the tree.
///
/// A large stream is parsed while yaml_serde loads it, so the biggest document's two parses
/// are not one after the other on one core. Its documents that cannot hold a pod spec (see
/// [`policy::may_hold_pod_spec`]) are left as text: a stream of that size is usually CRDs with
/// one or two workloads. yaml_serde still reads them all; when it refuses one, the stream is
/// parsed in full after all, so a syntax error is reported as the engine sees it.
fn parse(text: &str) -> Result<(Tree<'_>, Option<Result<(), VerifyError>>), FileError> {
    if text.len() < yaml_splice::PARALLEL_PARSE_MIN {
        return Ok((Tree::parse(text)?, None));
    }
    let (tree, loads) = rayon::join(
        || Tree::parse_where(text, &policy::may_hold_pod_spec),
        || original_documents_load(text),
    );
    let tree = match loads {
        Ok(()) => tree?,
        Err(_) => Tree::parse(text)?,
    };
    Ok((tree, Some(loads)))
}

/// Notes the service's Dockerfile (beside the manifest, one folder up, or elsewhere in the
/// repository in a folder named like an image) when its final stage runs as root: the pod's
/// runAsUser overrides it, but files in the image still belong to root, and other deployments
/// of the image do not get the fix.
fn note_root_dockerfile(report: &mut FileReport, dockerfiles: &crate::dockerfile::DockerfileIndex) {
    use crate::dockerfile::{final_stage_user, find_for_image};
    if report.workloads.is_empty() {
        return;
    }
    let by_image = || {
        let mut images = report.workloads.iter().flat_map(|w| &w.images);
        images
            .find_map(|i| find_for_image(i, dockerfiles.get()))
            .cloned()
    };
    let Some(dockerfile) = dockerfiles
        .find_for_manifest(&report.path)
        .or_else(by_image)
    else {
        return;
    };
    let runs_as = std::fs::read_to_string(&dockerfile)
        .ok()
        .and_then(|t| final_stage_user(&t));
    if !runs_as.is_some_and(|r| r.is_root()) {
        return;
    }
    report.notes.push(Note {
        workload: 0,
        container: None,
        kind: policy::NoteKind::Risk,
        message: format!(
            "the image built from {} runs as root (no `USER`, or `USER root`, in its final stage): add `USER 1000` to it, or run `fix --fix-dockerfiles`",
            dockerfile.display()
        ),
        line: report.workloads[0].line,
    });
    report.root_dockerfile = Some(dockerfile);
}

/// YAML forbids tabs in indentation; a tab there means the file is not what it looks like.
/// Lines inside block scalars may start with tabs, so only lines that parse as structure count:
/// a tab before the first non-blank character of a line that is not in a block scalar.
pub(crate) fn tab_indentation(text: &str) -> Option<FileError> {
    // Most files hold no tab at all; one memchr pass says so.
    if !text.contains('\t') {
        return None;
    }
    let mut block_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let content = line.trim_start_matches([' ', '\t']);
        let spaces = line.len() - line.trim_start_matches(' ').len();
        if let Some(min) = block_indent {
            if content.is_empty() || spaces > min {
                continue;
            }
            block_indent = None;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let lead = &line[..line.len() - content.len()];
        if lead.contains('\t') {
            return Some(FileError {
                line: i + 1,
                col: lead.find('\t').unwrap_or(0) + 1,
                message: "tab used for indentation".into(),
            });
        }
        let trimmed = content.trim_end();
        let header = trimmed.rsplit(' ').next().unwrap_or_default();
        if header.starts_with('|') || header.starts_with('>') {
            block_indent = Some(spaces);
        }
    }
    None
}

/// Discovers the files under `roots` and processes them in parallel; reports sorted by path.
/// `deliver` sees each report as soon as it is ready, on the worker that made it (so writes
/// overlap with the processing of other files); it may turn a report into a failure.
pub fn scan(
    roots: &[PathBuf],
    settings: &Settings,
    deliver: &(dyn Fn(&mut FileReport) + Sync),
) -> Vec<FileReport> {
    use crate::discover::{Found, HELM_TEMPLATE, HELM_VALUES};
    use rayon::prelude::*;
    let mut found = discover_with_dockerfiles(roots, &settings.dockerfiles);
    if let Some((root, matcher)) = &settings.exclude {
        for (f, _) in &mut found {
            if let Found::Candidate(path) | Found::Skipped(path, HELM_VALUES | HELM_TEMPLATE) = f {
                let absolute = std::fs::canonicalize(&*path).unwrap_or_else(|_| path.clone());
                if absolute
                    .strip_prefix(root)
                    .is_ok_and(|rel| matcher.is_excluded(rel))
                {
                    *f = Found::Skipped(path.clone(), "excluded by the configuration");
                }
            }
        }
    }
    // Largest files first, so that one big stream does not start last and finish alone.
    found.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    let found = found.into_iter().map(|(f, _)| f).collect();
    let jobs = chart_jobs(found);
    let mut reports: Vec<FileReport> = jobs
        .into_par_iter()
        // One job per task: a worker that runs out of work can then take any job not started
        // (rayon would otherwise hand out runs of jobs, and the last run ends on one core).
        .with_max_len(1)
        .flat_map_iter(|job| {
            let mut reports = match job {
                Job::Chart(chart, listed) => chart_reports(&chart, &listed, settings),
                Job::File(found) => vec![match found {
                    Found::Candidate(path) => process_file(&path, settings),
                    Found::Skipped(path, reason) => {
                        FileReport::new(&path, Status::Skipped(reason.to_string()))
                    }
                    Found::Error(path, message) => {
                        FileReport::new(&path, Status::Failed(FileError::at_start(message)))
                    }
                }],
            };
            for report in &mut reports {
                deliver(report);
            }
            reports
        })
        .collect();
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    reports
}

/// Walks `roots`; the repository's Dockerfiles (images are matched by name) come from the same
/// walk when it covers the repository, else they are listed on another core meanwhile (a
/// worker that asked for them later would hold up the others waiting for the same list).
fn discover_with_dockerfiles(
    roots: &[PathBuf],
    index: &crate::dockerfile::DockerfileIndex,
) -> Vec<(crate::discover::Found, u64)> {
    use crate::discover::discover;
    match roots {
        [root] if index.is_rooted_at(root) => {
            let discovery = discover(roots);
            index.set_from_walk(root, discovery.dockerfiles);
            discovery.found
        }
        _ => rayon::join(|| discover(roots), || index.get()).0.found,
    }
}

/// A unit of work for [`scan`]: one file, or one Helm chart with the files of it that were found.
enum Job {
    File(crate::discover::Found),
    Chart(PathBuf, Vec<PathBuf>),
}

/// Gathers the values files and templates of each Helm chart into one job per chart.
fn chart_jobs(found: Vec<crate::discover::Found>) -> Vec<Job> {
    use crate::discover::{ChartFinder, Found, HELM_TEMPLATE, HELM_VALUES};
    let mut finder = ChartFinder::default();
    let mut charts: std::collections::BTreeMap<PathBuf, Vec<PathBuf>> = Default::default();
    let mut jobs = Vec::new();
    for f in found {
        let chart = match &f {
            Found::Skipped(path, HELM_VALUES | HELM_TEMPLATE) => {
                path.parent().and_then(|d| finder.chart_of(d))
            }
            _ => None,
        };
        match chart {
            Some(chart) => charts
                .entry(chart)
                .or_default()
                .push(crate::discover::path_of(&f).to_path_buf()),
            None => jobs.push(Job::File(f)),
        }
    }
    let mut chart_jobs: Vec<Job> = charts
        .into_iter()
        .map(|(chart, listed)| Job::Chart(chart, listed))
        .collect();
    chart_jobs.append(&mut jobs);
    chart_jobs
}

/// The reports of one chart's files; a listed file the chart support does not handle keeps
/// its reason for being skipped.
fn chart_reports(chart: &Path, listed: &[PathBuf], settings: &Settings) -> Vec<FileReport> {
    let mut reports = crate::chart::process_chart(chart, listed, settings);
    for path in listed {
        if !reports.iter().any(|r| &r.path == path) {
            let reason = if path.starts_with(chart.join("templates")) {
                crate::discover::HELM_TEMPLATE
            } else {
                crate::discover::HELM_VALUES
            };
            reports.push(FileReport::new(path, Status::Skipped(reason.into())));
        }
    }
    reports
}
