//! Pull request text for one service: the title and the Markdown body, from the templates in
//! `templates/` (or a repository's own), within GitHub's 65,536-character limit, with a hidden
//! fingerprint of the change so that a rerun knows whether anything changed.

use minijinja::value::Serde;
use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::report::{FileReport, Status};

/// GitHub refuses a pull request body longer than this.
pub const BODY_LIMIT: usize = 65_536;

/// The default templates, built into the binary.
pub const DEFAULT_TITLE: &str = include_str!("../../templates/pr-title.txt.j2");
pub const DEFAULT_BODY: &str = include_str!("../../templates/pr-body.md.j2");

/// The marker that carries the fingerprint in a body.
pub const FINGERPRINT_MARKER: &str = "<!-- kube-harden:fingerprint=";

/// A rendered pull request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullRequestText {
    pub title: String,
    pub body: String,
    pub fingerprint: String,
}

#[derive(Serialize)]
struct WorkloadTable {
    kind: String,
    name: String,
    file: String,
    rows: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    scope: String,
    control: &'static str,
    current: String,
    wanted: String,
}

#[derive(Serialize)]
struct NoteLine {
    kind: String,
    place: String,
    message: String,
}

/// The fingerprint of a change: FNV-1a (64 bit) over each changed file's path and new text, in
/// path order. The same change gives the same fingerprint on every run and machine.
pub fn fingerprint(reports: &[&FileReport]) -> String {
    let mut files: Vec<(String, &str)> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Changed { new_text } => Some((r.path.display().to_string(), new_text.as_str())),
            _ => None,
        })
        .collect();
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, text) in files {
        for byte in path.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// The fingerprint found in a pull request body, if any.
pub fn fingerprint_in(body: &str) -> Option<&str> {
    let start = body.find(FINGERPRINT_MARKER)? + FINGERPRINT_MARKER.len();
    body[start..].split(" -->").next().filter(|f| !f.is_empty())
}

/// Renders the title and body for `service` from its file reports and its diff, with the
/// given templates (the defaults, or a repository's own).
pub fn render(
    service: &str,
    reports: &[&FileReport],
    diff: &str,
    title_template: &str,
    body_template: &str,
) -> Result<PullRequestText, minijinja::Error> {
    let fingerprint = fingerprint(reports);
    let mut env = Environment::new();
    env.add_template("title", title_template)?;
    env.add_template("body", body_template)?;
    let workloads = Value::from(Serde(workload_tables(reports)));
    let notes = Value::from(Serde(note_lines(reports)));
    let files = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Changed { .. }))
        .count();
    let body_with = |diff: &str, shortened: bool| {
        env.get_template("body")?.render(context! {
            service, workloads => workloads.clone(), notes => notes.clone(), files, diff,
            fence => fence_for(diff),
            diff_shortened => shortened, fingerprint => fingerprint.clone(),
        })
    };
    let mut body = body_with(diff.trim_end(), false)?;
    if body.chars().count() > BODY_LIMIT {
        let without_diff = body_with("", true)?.chars().count();
        let budget = BODY_LIMIT.saturating_sub(without_diff + 200);
        body = body_with(&shorten(diff, budget), true)?;
    }
    if body.chars().count() > BODY_LIMIT {
        body = hard_limit(&body, &fingerprint);
    }
    let title = env
        .get_template("title")?
        .render(context! { service })?
        .trim()
        .to_string();
    Ok(PullRequestText {
        title,
        body,
        fingerprint,
    })
}

fn workload_tables(reports: &[&FileReport]) -> Vec<WorkloadTable> {
    let mut tables = Vec::new();
    for r in reports {
        for (i, w) in r.workloads.iter().enumerate() {
            let rows: Vec<Row> = r
                .findings
                .iter()
                .filter(|f| f.workload == i && f.fixable)
                .map(|f| Row {
                    scope: f
                        .container
                        .as_ref()
                        .map_or("pod".to_string(), |c| format!("container `{c}`")),
                    control: f.control.name(),
                    current: cell(&f.current),
                    wanted: cell(&f.wanted),
                })
                .collect();
            if !rows.is_empty() {
                tables.push(WorkloadTable {
                    kind: w.kind.clone(),
                    name: w.name.clone(),
                    file: r.path.display().to_string(),
                    rows,
                });
            }
        }
    }
    tables
}

fn note_lines(reports: &[&FileReport]) -> Vec<NoteLine> {
    let mut lines = Vec::new();
    for r in reports {
        for s in &r.skipped_pods {
            let w = &r.workloads[s.workload];
            lines.push(NoteLine {
                kind: "left unchanged".into(),
                place: format!("{}/{}", w.kind, w.name),
                message: s.reason.clone(),
            });
        }
        for n in &r.notes {
            let scope = n
                .container
                .as_ref()
                .map(|c| format!(", container `{c}`"))
                .unwrap_or_default();
            let place = match r.workloads.get(n.workload) {
                Some(w) => format!("{}/{}{scope}", w.kind, w.name),
                None => r.path.display().to_string(),
            };
            let kind = n.kind.name();
            lines.push(NoteLine {
                kind: kind.to_string(),
                place,
                message: n.message.clone(),
            });
        }
    }
    lines
}

/// A code fence longer than any run of backticks in the diff, so the diff cannot close it.
fn fence_for(diff: &str) -> String {
    let longest = diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// A table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The first lines of `diff` that fit in `budget` characters, and a line saying what was cut.
fn shorten(diff: &str, budget: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    let total = diff.lines().count();
    let mut kept = 0;
    for line in diff.lines() {
        let len = line.chars().count() + 1;
        if used + len > budget {
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += len;
        kept += 1;
    }
    out.push_str(&format!(
        "... {} more lines: run `kube-harden diff` to see them all",
        total - kept
    ));
    out
}

/// `body` with `section` (the start proof's) before its fingerprint line, the diff shortened,
/// then the whole cut, as needed to stay within GitHub's limit.
pub fn with_section(body: &str, section: &str, fingerprint: &str) -> String {
    let at = body.find(FINGERPRINT_MARKER).unwrap_or(body.len());
    let mut out = format!("{}{section}\n{}", &body[..at], &body[at..]);
    let over = out.chars().count().saturating_sub(BODY_LIMIT);
    if over == 0 {
        return out;
    }
    if let Some((start, end)) = diff_span(&out) {
        let diff = out[start..end].to_string();
        let budget = diff.chars().count().saturating_sub(over + 200);
        out.replace_range(start..end, &shorten(&diff, budget));
    }
    if out.chars().count() > BODY_LIMIT {
        out = hard_limit(&out, fingerprint);
    }
    out
}

/// The byte range of the diff inside the body's fenced block (the fence is longer than any run
/// of backticks in the diff, so its closing line is the first line that is only the fence).
fn diff_span(body: &str) -> Option<(usize, usize)> {
    let details = body.find("<details><summary>Diff")?;
    let open = details + body[details..].find("diff\n")?;
    let fence_start = body[..open].rfind('\n')? + 1;
    let fence = &body[fence_start..open];
    let start = open + "diff\n".len();
    let end = start + body[start..].find(&format!("\n{fence}\n"))?;
    Some((start, end))
}

/// Cuts a body that is still too long, keeping the fingerprint marker at its end.
fn hard_limit(body: &str, fingerprint: &str) -> String {
    let marker = format!("\n\n{FINGERPRINT_MARKER}{fingerprint} -->\n");
    let keep = BODY_LIMIT - marker.chars().count() - 40;
    let cut: String = body.chars().take(keep).collect();
    format!("{cut}\n\n(shortened){marker}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::process_text;
    use crate::report::Settings;
    use std::path::Path;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx\n    ports:\n    - containerPort: 80\n";

    fn report(text: &str) -> FileReport {
        process_text(
            Path::new("services/web/pod.yaml"),
            text.to_string(),
            &Settings::default(),
        )
    }

    #[test]
    fn the_body_has_the_table_the_notes_the_diff_and_the_marker() {
        let r = report(POD);
        let pr = render(
            "web",
            &[&r],
            "--- a/x\n+++ b/x\n+y\n",
            DEFAULT_TITLE,
            DEFAULT_BODY,
        )
        .unwrap();
        assert_eq!(pr.title, "security: harden the securityContext of web");
        assert!(
            pr.body.contains("### Pod/web (`services/web/pod.yaml`)"),
            "{}",
            pr.body
        );
        assert!(
            pr.body
                .contains("| container `app` | `allowPrivilegeEscalation` | absent | `false` |"),
            "{}",
            pr.body
        );
        assert!(
            pr.body
                .contains("- **risk** (Pod/web, container `app`): listens on port 80"),
            "{}",
            pr.body
        );
        assert!(pr
            .body
            .contains("<details><summary>Diff (1 file)</summary>"));
        assert_eq!(fingerprint_in(&pr.body), Some(pr.fingerprint.as_str()));
    }

    #[test]
    fn pods_left_to_a_person_are_named_with_their_reason_and_kept_out_of_the_tables() {
        let agent = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent\nspec:\n  hostNetwork: true\n  containers:\n  - name: a\n    image: x\n---\n";
        let r = report(&format!("{agent}{POD}"));
        let pr = render("web", &[&r], "+y\n", DEFAULT_TITLE, DEFAULT_BODY).unwrap();
        assert!(
            pr.body.contains("(Pod/agent): uses the node's network (hostNetwork: true): a node agent's access to the host, so a person must decide"),
            "{}",
            pr.body
        );
        assert!(!pr.body.contains("### Pod/agent"), "{}", pr.body);
        assert!(pr.body.contains("### Pod/web"), "{}", pr.body);
    }

    #[test]
    fn backticks_in_the_diff_cannot_close_the_fence() {
        let r = report(POD);
        let pr = render(
            "web",
            &[&r],
            "+ run: ```echo```\n",
            DEFAULT_TITLE,
            DEFAULT_BODY,
        )
        .unwrap();
        assert!(
            pr.body.contains("````diff\n+ run: ```echo```\n````"),
            "{}",
            pr.body
        );
    }

    #[test]
    fn the_fingerprint_follows_the_change_only() {
        let a = report(POD);
        let b = report(&POD.replace("nginx", "nginx:1.27"));
        assert_eq!(fingerprint(&[&a]), fingerprint(&[&report(POD)]));
        assert_ne!(fingerprint(&[&a]), fingerprint(&[&b]));
        assert_eq!(
            fingerprint(&[&a, &b]),
            fingerprint(&[&b, &a]),
            "order does not matter"
        );
    }

    #[test]
    fn a_huge_diff_is_shortened_to_fit_and_the_marker_survives() {
        let r = report(POD);
        let diff: String = (0..20_000).map(|i| format!("+line {i}\n")).collect();
        let pr = render("web", &[&r], &diff, DEFAULT_TITLE, DEFAULT_BODY).unwrap();
        assert!(
            pr.body.chars().count() <= BODY_LIMIT,
            "{}",
            pr.body.chars().count()
        );
        assert!(pr
            .body
            .contains("more lines: run `kube-harden diff` to see them all"));
        assert!(pr.body.contains("shortened to fit a pull request"));
        assert_eq!(fingerprint_in(&pr.body), Some(pr.fingerprint.as_str()));
    }

    #[test]
    fn a_section_added_to_a_full_body_shortens_the_diff_and_keeps_the_section() {
        let r = report(POD);
        let diff: String = (0..20_000).map(|i| format!("+line {i}\n")).collect();
        let pr = render("web", &[&r], &diff, DEFAULT_TITLE, DEFAULT_BODY).unwrap();
        let section = format!("### Start proof\n\n{}\n", "| ok |\n".repeat(500));
        let body = with_section(&pr.body, &section, &pr.fingerprint);
        assert!(
            body.chars().count() <= BODY_LIMIT,
            "{}",
            body.chars().count()
        );
        assert!(body.contains(&section), "the section is whole");
        assert!(
            body.find(&section) > body.find("</details>"),
            "after the diff"
        );
        assert_eq!(fingerprint_in(&body), Some(pr.fingerprint.as_str()));
        assert!(body.contains("more lines: run `kube-harden diff`"));
        // A body with room takes the section as it is.
        let small = render("web", &[&r], "+y\n", DEFAULT_TITLE, DEFAULT_BODY).unwrap();
        let body = with_section(&small.body, &section, &small.fingerprint);
        assert!(body.contains("+y\n") && body.contains(&section));
    }

    #[test]
    fn a_repository_template_replaces_the_default() {
        let r = report(POD);
        let pr = render(
            "web",
            &[&r],
            "",
            "Harden {{ service }}",
            "{{ workloads | length }} workload\n<!-- kube-harden:fingerprint={{ fingerprint }} -->",
        )
        .unwrap();
        assert_eq!(pr.title, "Harden web");
        assert!(pr.body.starts_with("1 workload\n"));
    }
}
