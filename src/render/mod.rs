//! Rendering for people and machines: unified diffs (coloured on a terminal), the `check`
//! report in text or JSON, error lines, and the closing summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use console::style;
use serde::Serialize;
use similar::TextDiff;

use crate::policy::Control;
use crate::report::{FileReport, Status};

/// A unified diff of one file, with `a/` and `b/` headers like git's.
pub fn diff(path: &str, old: &str, new: &str) -> String {
    let clean: std::path::PathBuf = std::path::Path::new(path)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let clean = clean.display().to_string();
    let clean = clean.trim_start_matches('/');
    let text = TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{clean}"), &format!("b/{clean}"))
        .to_string();
    // Line by line with each line's own ending, so that a CRLF file's diff still applies.
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\r', '\n']);
            format!("{}{}", colour_diff_line(body), &line[body.len()..])
        })
        .collect()
}

fn colour_diff_line(line: &str) -> String {
    if line.starts_with("+++") || line.starts_with("---") {
        style(line).bold().to_string()
    } else if line.starts_with('+') {
        style(line).green().to_string()
    } else if line.starts_with('-') {
        style(line).red().to_string()
    } else if line.starts_with("@@") {
        style(line).cyan().to_string()
    } else {
        line.to_string()
    }
}

/// The `path:line:col: reason` line for a file that could not be handled.
pub fn error_line(report: &FileReport) -> Option<String> {
    match &report.status {
        Status::Failed(e) => Some(format!(
            "{}:{}:{}: {}",
            report.path.display(),
            e.line,
            e.col,
            e.message
        )),
        _ => None,
    }
}

/// Lines about pods left alone and edits that aliases see.
pub fn notes(report: &FileReport) -> Vec<String> {
    let path = report.path.display();
    let mut lines: Vec<String> = report
        .skipped_pods
        .iter()
        .map(|s| {
            let w = &report.workloads[s.workload];
            format!(
                "{path}:{}: {}/{} left unchanged: {}",
                w.line, w.kind, w.name, s.reason
            )
        })
        .collect();
    lines.extend(
        report
            .edit_notes
            .iter()
            .map(|n| format!("{path}: note: {n}")),
    );
    if let Status::TooLarge { bytes, limit } = report.status {
        lines.push(format!("{path}: skipped: {bytes} bytes is over the size limit of {limit} bytes (--max-file-size)"));
    }
    lines
}

/// The reviewer notes of a file (risks, overrides, additions, exemptions), one line each:
/// `path:line: Kind/name container c: risk: message`.
pub fn reviewer_notes(report: &FileReport) -> Vec<String> {
    report
        .notes
        .iter()
        .map(|n| {
            let scope = n
                .container
                .as_ref()
                .map(|c| format!(" container {c}"))
                .unwrap_or_default();
            let subject = match report.workloads.get(n.workload) {
                Some(w) => format!(" {}/{}{scope}:", w.kind, w.name),
                None => String::new(),
            };
            let kind = n.kind.name();
            format!(
                "{}:{}:{subject} {kind}: {}",
                report.path.display(),
                n.line,
                n.message
            )
        })
        .collect()
}

/// The notes that head a file's diff, as `#` lines (patch tools ignore text before `---`).
pub fn diff_heading(report: &FileReport) -> String {
    reviewer_notes(report)
        .iter()
        .map(|l| format!("{}\n", style(format!("# {l}")).yellow()))
        .collect()
}

/// One reviewer note, for JSON.
#[derive(Serialize)]
pub struct NoteRow<'a> {
    pub file: String,
    pub line: usize,
    pub kind: &'a str,
    pub name: &'a str,
    pub container: Option<&'a str>,
    #[serde(rename = "type")]
    pub note_type: crate::policy::NoteKind,
    pub message: &'a str,
}

pub fn note_rows(reports: &[FileReport]) -> Vec<NoteRow<'_>> {
    reports
        .iter()
        .flat_map(|r| {
            r.notes.iter().map(move |n| {
                let (kind, name) = r
                    .workloads
                    .get(n.workload)
                    .map_or(("", ""), |w| (w.kind.as_str(), w.name.as_str()));
                NoteRow {
                    file: r.path.display().to_string(),
                    line: n.line,
                    kind,
                    name,
                    container: n.container.as_deref(),
                    note_type: n.kind,
                    message: &n.message,
                }
            })
        })
        .collect()
}

/// One finding of `check`, for JSON.
#[derive(Serialize)]
pub struct FindingRow<'a> {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub kind: &'a str,
    pub name: &'a str,
    pub container: Option<&'a str>,
    pub control: Control,
    pub current: &'a str,
    pub fixable: bool,
}

pub fn finding_rows(reports: &[FileReport]) -> Vec<FindingRow<'_>> {
    reports
        .iter()
        .flat_map(|r| {
            r.findings.iter().map(move |f| {
                let w = &r.workloads[f.workload];
                FindingRow {
                    file: r.path.display().to_string(),
                    line: f.line,
                    col: f.col,
                    kind: &w.kind,
                    name: &w.name,
                    container: f.container.as_deref(),
                    control: f.control,
                    current: &f.current,
                    fixable: f.fixable,
                }
            })
        })
        .collect()
}

/// What a finding that `fix` does not change says after its value: ` (left to a person)` when
/// its pod is left alone, ` (kept: a person decides)` for a control `fix` only reports
/// (`capabilities.add`), nothing when `fix` makes the change.
pub fn unfixed(fixable: bool, control: Control) -> &'static str {
    if control.is_report_only() {
        " (kept: a person decides)"
    } else if fixable {
        ""
    } else {
        " (left to a person)"
    }
}

/// What the contract wants, as a finding's report says it: `the baseline sets true`, or for a
/// control `fix` only reports, what Pod Security `restricted` admits.
pub fn wanted_phrase(control: Control, wanted: &str) -> String {
    if control.is_report_only() {
        format!("Pod Security restricted admits {wanted}")
    } else {
        format!("the baseline sets {wanted}")
    }
}

/// `check` in text: one line per pod or container control that falls short.
pub fn check_text(rows: &[FindingRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let scope = match r.container {
            Some(c) => format!("container {c}"),
            None => "pod".to_string(),
        };
        let fix = unfixed(r.fixable, r.control);
        let _ = writeln!(
            out,
            "{}:{}:{}: {}/{} {}: {} is {}{}",
            r.file,
            r.line,
            r.col,
            r.kind,
            r.name,
            scope,
            style(r.control.name()).bold(),
            r.current,
            fix
        );
    }
    out
}

/// Counts for the closing summary.
#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct Summary {
    pub files_scanned: usize,
    pub workloads: usize,
    pub changed: usize,
    pub skipped: usize,
    pub skipped_reasons: BTreeMap<String, usize>,
    pub errors: usize,
    pub findings: usize,
}

impl Summary {
    pub fn of(reports: &[FileReport]) -> Summary {
        let mut s = Summary {
            files_scanned: reports.len(),
            ..Summary::default()
        };
        for r in reports {
            s.workloads += r.workloads.len();
            s.findings += r.findings.len();
            match &r.status {
                Status::Changed { .. } => s.changed += 1,
                Status::Skipped(reason) => {
                    s.skipped += 1;
                    *s.skipped_reasons.entry(reason.clone()).or_default() += 1;
                }
                Status::TooLarge { limit, .. } => {
                    s.skipped += 1;
                    let reason = format!("larger than the size limit ({limit} bytes)");
                    *s.skipped_reasons.entry(reason).or_default() += 1;
                }
                Status::Failed(_) => s.errors += 1,
                Status::Unchanged => {}
            }
        }
        s
    }

    /// One line, e.g. `12 files scanned, 9 workloads, 4 changed, 3 skipped (...), 0 errors`.
    pub fn line(&self, changed_word: &str) -> String {
        let reasons: Vec<String> = self
            .skipped_reasons
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        let skipped = if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        };
        format!(
            "{} files scanned, {} workloads, {} {changed_word}, {} skipped{skipped}, {} errors",
            self.files_scanned, self.workloads, self.changed, self.skipped, self.errors
        )
    }
}

/// `explain`: per workload, then per pod and container, what would change and why, the risks,
/// the overrides and the exemptions that applied.
pub fn explain(report: &FileReport) -> String {
    let mut out = String::new();
    // Notes about the file as a whole (a kustomization's remote resources, a render check).
    for n in report
        .notes
        .iter()
        .filter(|n| n.workload == crate::policy::Note::FILE)
    {
        let _ = writeln!(
            out,
            "{}:{}: {}: {}",
            report.path.display(),
            n.line,
            n.kind.name(),
            n.message
        );
    }
    for (index, w) in report.workloads.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}:{}: {}/{}",
            report.path.display(),
            w.line,
            style(&w.kind).bold(),
            style(&w.name).bold()
        );
        for skip in report.skipped_pods.iter().filter(|s| s.workload == index) {
            let _ = writeln!(out, "  left unchanged: {}", skip.reason);
        }
        let mut scopes: Vec<Option<&str>> = vec![None];
        for c in report
            .findings
            .iter()
            .filter(|f| f.workload == index)
            .filter_map(|f| f.container.as_deref())
            .chain(
                report
                    .notes
                    .iter()
                    .filter(|n| n.workload == index)
                    .filter_map(|n| n.container.as_deref()),
            )
        {
            if !scopes.contains(&Some(c)) {
                scopes.push(Some(c));
            }
        }
        for scope in scopes {
            explain_scope(report, index, scope, &mut out);
        }
    }
    out
}

fn explain_scope(report: &FileReport, workload: usize, scope: Option<&str>, out: &mut String) {
    let findings: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.workload == workload && f.container.as_deref() == scope)
        .collect();
    let notes: Vec<_> = report
        .notes
        .iter()
        .filter(|n| n.workload == workload && n.container.as_deref() == scope)
        .collect();
    if findings.is_empty() && notes.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  {}",
        scope.map_or("pod".to_string(), |c| format!("container {c}"))
    );
    for f in findings {
        let verb = unfixed(f.fixable, f.control);
        let _ = writeln!(
            out,
            "    {}: {}{verb} -> {}  # {}",
            f.control.name(),
            f.current,
            f.wanted,
            f.control.why()
        );
    }
    for n in notes {
        let kind = n.kind.name();
        let _ = writeln!(out, "    {kind}: {}", n.message);
    }
}

pub mod pr;
pub mod sarif;
