//! GitHub Actions runner integration: what `kube-harden` does when it runs as a step of a
//! workflow (`GITHUB_ACTIONS=true`).
//!
//! - [`Annotation`]: `::error file=...,line=...::message` workflow commands, escaped as the
//!   runner expects (`%`, `\r`, `\n` in the message; also `:` and `,` in properties);
//! - [`Runner::set_outputs`]: step outputs appended to the file in `$GITHUB_OUTPUT`
//!   (`name=value`, or a heredoc with a random delimiter for values with line breaks, JSON);
//! - [`Runner::append_summary`]: Markdown appended to the file in `$GITHUB_STEP_SUMMARY`;
//! - [`GitHubEnv`]: the repository and the API and web addresses of the run (GHES included).
//!
//! `check` and `diff` write `findings`, `files-changed`, `errors`, `files` (JSON) and, with
//! `--sarif-file`, `sarif-file`; the `pr` command adds `prs`, `created`, `updated`, `skipped`
//! through the same [`Outputs`].

use std::collections::hash_map::RandomState;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use kube_harden::render::{self, FindingRow, Summary};
use kube_harden::report::{FileReport, Status};

/// Markdown summaries are capped below GitHub's 1 MiB per step.
pub const SUMMARY_LIMIT: usize = 900 * 1024;

/// Rows of the findings table in a summary; the rest are counted.
pub const SUMMARY_ROWS: usize = 300;

/// GitHub shows this many error annotations of one step (and 50 of a job); the rest are
/// printed all the same, and a notice points to the summary.
pub const STEP_ANNOTATIONS: usize = 10;

/// True when running as a step of a GitHub Actions workflow.
pub fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escapes a workflow command's message (`%`, CR, LF), as the runner's toolkit does.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value: the message escapes, plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The level of an annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    #[expect(
        dead_code,
        reason = "a level the runner knows; `check` annotates errors only"
    )]
    Warning,
    #[expect(
        dead_code,
        reason = "a level the runner knows; `check` annotates errors only"
    )]
    Notice,
}

/// A workflow command that annotates a file's line: `::error file=f,line=1,col=2,title=t::msg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    /// Relative to the repository root, `/`-separated.
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub title: String,
    pub message: String,
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        };
        write!(
            f,
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&self.file),
            self.line,
            self.col,
            escape_property(&self.title),
            escape_data(&self.message)
        )
    }
}

/// A file's path as the repository (and so GitHub) names it: relative to `root` when inside
/// it, else as given.
pub fn repo_path(path: &Path, root: &Path) -> String {
    render::sarif::relative_path(path, root).unwrap_or_else(|| path.display().to_string())
}

/// One annotation per finding of `check`, and one per file that could not be handled.
pub fn check_annotations(reports: &[FileReport], root: &Path) -> Vec<Annotation> {
    let mut out = Vec::new();
    for r in reports {
        let file = repo_path(&r.path, root);
        for f in &r.findings {
            let w = &r.workloads[f.workload];
            let scope = match &f.container {
                Some(c) => format!("container {c}"),
                None => "pod".to_string(),
            };
            let person = render::unfixed(f.fixable, f.control);
            out.push(Annotation {
                level: Level::Error,
                file: file.clone(),
                line: f.line,
                col: f.col,
                title: format!("kube-harden: {}", f.control.name()),
                message: format!(
                    "{}/{} {scope}: {} is {}, {}{person}: {}",
                    w.kind,
                    w.name,
                    f.control.name(),
                    f.current,
                    render::wanted_phrase(f.control, &f.wanted),
                    f.control.why()
                ),
            });
        }
        if let Status::Failed(e) = &r.status {
            out.push(Annotation {
                level: Level::Error,
                file: file.clone(),
                line: e.line,
                col: e.col,
                title: "kube-harden: file not handled".to_string(),
                message: e.message.clone(),
            });
        }
    }
    out
}

/// Step outputs, in the order they were set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs(pub Vec<(String, String)>);

impl Outputs {
    pub fn set(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.0.push((name.to_string(), value.to_string()));
        self
    }

    /// A value as compact JSON (always written with the multiline syntax).
    pub fn set_json(&mut self, name: &str, value: &serde_json::Value) -> &mut Self {
        self.0.push((name.to_string(), format!("{value}\n")));
        self
    }

    /// The text appended to `$GITHUB_OUTPUT`: `name=value` lines, and for a value with a line
    /// break (every JSON value) `name<<delimiter`, the value, the delimiter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.0 {
            if value.contains(['\n', '\r']) {
                let delimiter = delimiter_for(name, value);
                let value = value.strip_suffix('\n').unwrap_or(value);
                let _ = write!(out, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
            } else {
                let _ = writeln!(out, "{name}={value}");
            }
        }
        out
    }
}

/// A random heredoc delimiter that occurs in neither the name nor the value.
fn delimiter_for(name: &str, value: &str) -> String {
    loop {
        let state = RandomState::new();
        let mut hasher = state.build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        hasher.write_u32(std::process::id());
        let a = hasher.finish();
        hasher.write_u64(a);
        let b = hasher.finish();
        let delimiter = format!("ghadelimiter_{a:016x}{b:016x}");
        if !name.contains(&delimiter) && !value.contains(&delimiter) {
            return delimiter;
        }
    }
}

/// The files the runner gave the step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Runner {
    /// `$GITHUB_OUTPUT`
    pub output: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`
    pub summary: Option<PathBuf>,
}

impl Runner {
    /// The runner's files when running under Actions (`GITHUB_ACTIONS=true`), else `None`.
    pub fn from_env() -> Option<Runner> {
        if !in_actions() {
            return None;
        }
        let file = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Some(Runner {
            output: file("GITHUB_OUTPUT"),
            summary: file("GITHUB_STEP_SUMMARY"),
        })
    }

    /// Appends the outputs to `$GITHUB_OUTPUT` (nothing when it is not set).
    pub fn set_outputs(&self, outputs: &Outputs) -> std::io::Result<()> {
        match &self.output {
            Some(path) => append(path, &outputs.render()),
            None => Ok(()),
        }
    }

    /// Appends Markdown to `$GITHUB_STEP_SUMMARY` (nothing when it is not set).
    pub fn append_summary(&self, markdown: &str) -> std::io::Result<()> {
        match &self.summary {
            Some(path) => append(path, &cap(markdown, SUMMARY_LIMIT)),
            None => Ok(()),
        }
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
}

/// Cuts Markdown at a line boundary to at most `limit` bytes, saying so.
fn cap(markdown: &str, limit: usize) -> String {
    if markdown.len() <= limit {
        return markdown.to_string();
    }
    let note = "\n\n_(summary shortened to fit the step summary limit)_\n";
    let mut end = limit.saturating_sub(note.len());
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    let end = markdown[..end].rfind('\n').map_or(end, |i| i + 1);
    format!("{}{note}", &markdown[..end])
}

/// The repository and the addresses of the run, from the variables the runner sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitHubEnv {
    /// `owner/name` (`GITHUB_REPOSITORY`).
    pub repository: Option<String>,
    /// The REST API base without a trailing `/` (`GITHUB_API_URL`, default `https://api.github.com`).
    pub api_url: String,
    /// The web base without a trailing `/` (`GITHUB_SERVER_URL`, default `https://github.com`).
    pub server_url: String,
    /// The commit the run is for (`GITHUB_SHA`).
    pub sha: Option<String>,
}

impl GitHubEnv {
    pub fn from_env() -> GitHubEnv {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> GitHubEnv {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let url = |name: &str, default: &str| {
            get(name)
                .map(|v| v.trim().trim_end_matches('/').to_string())
                .unwrap_or_else(|| default.to_string())
        };
        GitHubEnv {
            repository: get("GITHUB_REPOSITORY"),
            api_url: url("GITHUB_API_URL", "https://api.github.com"),
            server_url: url("GITHUB_SERVER_URL", "https://github.com"),
            sha: get("GITHUB_SHA"),
        }
    }

    /// A link to a file's line at the run's commit, when the repository and commit are known.
    pub fn blob_url(&self, path: &str, line: usize) -> Option<String> {
        let repository = self.repository.as_ref()?;
        let sha = self.sha.as_ref()?;
        let path = render::sarif::encode_uri_path(path);
        Some(format!(
            "{}/{repository}/blob/{sha}/{path}#L{line}",
            self.server_url
        ))
    }
}

/// Escapes text for a Markdown table cell or line (GitHub Flavored Markdown).
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// The outputs of `pr`: `prs` (JSON, multiline-safe), `created`, `updated`, `skipped`.
pub fn pr_outputs(
    prs: &serde_json::Value,
    created: usize,
    updated: usize,
    skipped: usize,
) -> Outputs {
    let mut outputs = Outputs::default();
    outputs
        .set_json("prs", prs)
        .set("created", created)
        .set("updated", updated)
        .set("skipped", skipped);
    outputs
}

/// Under Actions, after `pr`: the outputs and a step summary with one row per service.
/// `services` are the services as `pr --format json` lists them (`service`, `action`,
/// `number`, `url`, `files`, `reason`, ...); `prs` is that list without the long fields a dry
/// run adds (`diff`, `body`), since a step output is capped at 1 MB.
pub fn finish_pr(
    runner: &Runner,
    services: &[serde_json::Value],
    dry_run: bool,
) -> std::io::Result<()> {
    let action = |s: &serde_json::Value| s["action"].as_str().unwrap_or_default().to_string();
    let count = |f: &dyn Fn(&str) -> bool| services.iter().filter(|s| f(&action(s))).count();
    let created = count(&|a| a == "create");
    let updated = count(&|a| a == "update");
    let skipped = count(&|a| a.starts_with("skip"));
    let failed = count(&|a| a == "failed");
    let listed: Vec<serde_json::Value> = services
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(map) = s.as_object_mut() {
                map.remove("diff");
                map.remove("body");
            }
            s
        })
        .collect();
    let mut outputs = pr_outputs(&serde_json::json!(listed), created, updated, skipped);
    outputs.set("failed", failed);
    runner.append_summary(&pr_summary(
        services,
        dry_run,
        [created, updated, skipped, failed],
    ))?;
    runner.set_outputs(&outputs)
}

/// The step summary of `pr`.
fn pr_summary(
    services: &[serde_json::Value],
    dry_run: bool,
    [created, updated, skipped, failed]: [usize; 4],
) -> String {
    let mut md = String::from("## kube-harden pr\n\n");
    let (create, update) = if dry_run {
        ("to create", "to update")
    } else {
        ("created", "updated")
    };
    if dry_run {
        md.push_str("Dry run: nothing was pushed and no pull request was opened.\n\n");
    }
    let _ = writeln!(
        md,
        "{} services: {created} {create}, {updated} {update}, {skipped} skipped, {failed} failed\n",
        services.len()
    );
    if !services.is_empty() {
        md.push_str(
            "| service | action | pull request | files | reason |\n|---|---|---|---|---|\n",
        );
        for s in services.iter().take(SUMMARY_ROWS) {
            let text = |key: &str| s[key].as_str().unwrap_or_default().to_string();
            let url = text("url");
            let link = match s["number"].as_u64() {
                Some(n) if !url.is_empty() => format!("[#{n}]({url})"),
                Some(n) => format!("#{n}"),
                None => "-".to_string(),
            };
            let files = s["files"].as_array().map_or(0, Vec::len);
            let _ = writeln!(
                md,
                "| {} | {} | {link} | {files} | {} |",
                markdown_escape(&text("service")),
                markdown_escape(&text("action")),
                markdown_escape(&text("reason"))
            );
        }
        if services.len() > SUMMARY_ROWS {
            let _ = writeln!(md, "\n_…and {} more._", services.len() - SUMMARY_ROWS);
        }
        md.push('\n');
    }
    md
}

/// The outputs of `check` and `diff`.
pub fn scan_outputs(reports: &[FileReport], root: &Path, sarif_file: Option<&Path>) -> Outputs {
    let summary = Summary::of(reports);
    let files: Vec<String> = changed_files(reports, root);
    let mut outputs = Outputs::default();
    outputs
        .set("findings", summary.findings)
        .set("files-changed", summary.changed)
        .set("errors", summary.errors)
        .set_json("files", &serde_json::json!(files));
    if let Some(path) = sarif_file {
        outputs.set("sarif-file", path.display());
    }
    outputs
}

fn changed_files(reports: &[FileReport], root: &Path) -> Vec<String> {
    reports
        .iter()
        .filter(|r| matches!(r.status, Status::Changed { .. }))
        .map(|r| repo_path(&r.path, root))
        .collect()
}

fn counts_line(summary: &Summary) -> String {
    format!(
        "{} files scanned · {} workloads · {} files would change · {} skipped · {} errors",
        summary.files_scanned, summary.workloads, summary.changed, summary.skipped, summary.errors
    )
}

/// The step summary of `check`: the counts, a table of findings (linked to the file's line
/// when the run's commit is known), the files that could not be handled.
pub fn check_summary(
    reports: &[FileReport],
    rows: &[FindingRow],
    root: &Path,
    env: &GitHubEnv,
    sarif_file: Option<&Path>,
) -> String {
    let summary = Summary::of(reports);
    let mut md = String::from("## kube-harden check\n\n");
    if rows.is_empty() && summary.errors == 0 {
        md.push_str("Every workload meets the securityContext baseline.\n\n");
    } else {
        let _ = writeln!(
            md,
            "**{} finding{}** fall short of the securityContext baseline; `kube-harden fix` changes what it can.\n",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(md, "{}\n", counts_line(&summary));
    if !rows.is_empty() {
        md.push_str("| file | workload | where | control | current | wanted |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        for (row, finding) in rows.iter().zip(findings(reports)).take(SUMMARY_ROWS) {
            let file = repo_path(Path::new(&row.file), root);
            let place = format!("{}:{}", markdown_escape(&file), row.line);
            let place = match env.blob_url(&file, row.line) {
                Some(url) => format!("[{place}]({url})"),
                None => place,
            };
            let scope = row.container.map_or("pod".to_string(), |c| {
                format!("container {}", markdown_escape(c))
            });
            let person = render::unfixed(row.fixable, row.control);
            let _ = writeln!(
                md,
                "| {place} | {}/{} | {scope} | `{}` | {}{person} | {} |",
                markdown_escape(row.kind),
                markdown_escape(row.name),
                row.control.name(),
                markdown_escape(row.current),
                markdown_escape(&finding.wanted),
            );
        }
        if rows.len() > SUMMARY_ROWS {
            let _ = writeln!(
                md,
                "\n_…and {} more (see the log or the SARIF file)._",
                rows.len() - SUMMARY_ROWS
            );
        }
        md.push('\n');
    }
    errors_section(reports, root, &mut md);
    if let Some(path) = sarif_file {
        let _ = writeln!(
            md,
            "SARIF written to `{}`.\n",
            markdown_escape(&path.display().to_string())
        );
    }
    md
}

fn findings(reports: &[FileReport]) -> impl Iterator<Item = &kube_harden::policy::Finding> {
    reports.iter().flat_map(|r| r.findings.iter())
}

fn errors_section(reports: &[FileReport], root: &Path, md: &mut String) {
    let errors: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed(e) => Some(format!(
                "- {}:{}:{}: {}",
                markdown_escape(&repo_path(&r.path, root)),
                e.line,
                e.col,
                markdown_escape(&e.message)
            )),
            _ => None,
        })
        .collect();
    if !errors.is_empty() {
        md.push_str("### Files that could not be handled\n\n");
        md.push_str(&errors.join("\n"));
        md.push_str("\n\n");
    }
}

/// The step summary of `diff`: the counts, the files that would change, and the diff itself
/// (folded) while it fits.
pub fn diff_summary(reports: &[FileReport], root: &Path, diff: &str) -> String {
    let summary = Summary::of(reports);
    let mut md = String::from("## kube-harden diff\n\n");
    let _ = writeln!(md, "{}\n", counts_line(&summary));
    let files = changed_files(reports, root);
    if files.is_empty() {
        md.push_str("Nothing to change.\n\n");
    } else {
        for f in &files {
            let _ = writeln!(md, "- {}", markdown_escape(f));
        }
        md.push('\n');
        if diff.len() < SUMMARY_LIMIT / 2 {
            let fence = fence_for(diff);
            let _ = write!(
                md,
                "<details><summary>Diff</summary>\n\n{fence}diff\n{diff}{}{fence}\n\n</details>\n\n",
                if diff.ends_with('\n') { "" } else { "\n" }
            );
        }
    }
    errors_section(reports, root, &mut md);
    md
}

/// A backtick fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// Under Actions, after `check`: the annotations (to `annotations`), the step summary and the
/// outputs.
pub fn finish_check(
    runner: &Runner,
    reports: &[FileReport],
    root: &Path,
    sarif_file: Option<&Path>,
    annotations: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let all = check_annotations(reports, root);
    for a in &all {
        writeln!(annotations, "{a}")?;
    }
    if all.len() > STEP_ANNOTATIONS {
        writeln!(
            annotations,
            "::notice title={}::{}",
            escape_property("kube-harden"),
            escape_data(&format!(
                "{} annotations: GitHub shows the first {STEP_ANNOTATIONS} of a step. The job summary lists every finding, and uploaded SARIF makes each a code scanning alert.",
                all.len()
            ))
        )?;
    }
    let rows = render::finding_rows(reports);
    let env = GitHubEnv::from_env();
    runner.append_summary(&check_summary(reports, &rows, root, &env, sarif_file))?;
    runner.set_outputs(&scan_outputs(reports, root, sarif_file))
}

/// Under Actions, after `diff`: the step summary (with the diff, colours removed) and the
/// outputs.
pub fn finish_diff(
    runner: &Runner,
    reports: &[FileReport],
    root: &Path,
    diff: &str,
) -> std::io::Result<()> {
    let plain = console::strip_ansi_codes(diff);
    runner.append_summary(&diff_summary(reports, root, &plain))?;
    runner.set_outputs(&scan_outputs(reports, root, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_properties_are_escaped_like_the_toolkit() {
        assert_eq!(escape_data("50% a\r\nb: c, d"), "50%25 a%0D%0Ab: c, d");
        assert_eq!(
            escape_property("50% a\r\nb: c, d"),
            "50%25 a%0D%0Ab%3A c%2C d"
        );
        let a = Annotation {
            level: Level::Error,
            file: "k8s/a,b:c.yaml".into(),
            line: 7,
            col: 9,
            title: "kube-harden: runAsUser".into(),
            message: "line one\nline two, 100%".into(),
        };
        assert_eq!(
            a.to_string(),
            "::error file=k8s/a%2Cb%3Ac.yaml,line=7,col=9,title=kube-harden%3A runAsUser::line one%0Aline two, 100%25"
        );
    }

    #[test]
    fn outputs_use_a_heredoc_for_values_with_line_breaks() {
        let mut o = Outputs::default();
        o.set("findings", 3)
            .set_json("files", &serde_json::json!(["a.yaml", "b\nc.yaml"]));
        let text = o.render();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("findings=3"));
        let head = lines.next().unwrap();
        let delimiter = head.strip_prefix("files<<").unwrap();
        assert!(delimiter.starts_with("ghadelimiter_") && delimiter.len() > 20);
        assert_eq!(lines.next(), Some(r#"["a.yaml","b\nc.yaml"]"#));
        assert_eq!(lines.next(), Some(delimiter));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn a_raw_multiline_value_keeps_its_lines_and_the_delimiter_is_not_in_it() {
        let mut o = Outputs::default();
        o.set("text", "a\nghadelimiter_x\nb");
        let text = o.render();
        let delimiter = text.lines().next().unwrap().strip_prefix("text<<").unwrap();
        assert_ne!(delimiter, "ghadelimiter_x");
        let body: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(body, ["a", "ghadelimiter_x", "b", delimiter]);
    }

    #[test]
    fn pr_outputs_carry_the_json_and_the_counts() {
        let prs = serde_json::json!([{"service": "cart", "number": 7, "title": "a\nb"}]);
        let text = pr_outputs(&prs, 1, 2, 3).render();
        let lines: Vec<&str> = text.lines().collect();
        let delimiter = lines[0].strip_prefix("prs<<").unwrap();
        assert_eq!(
            lines[1..],
            [
                r#"[{"number":7,"service":"cart","title":"a\nb"}]"#,
                delimiter,
                "created=1",
                "updated=2",
                "skipped=3"
            ]
        );
    }

    #[test]
    fn pr_summary_links_the_pull_requests_and_says_dry_run() {
        let service = |name: &str, action: &str, number: Option<u64>, url: Option<&str>| {
            serde_json::json!({
                "service": name,
                "branch": format!("kube-harden/{name}"),
                "action": action,
                "reason": "new | findings",
                "title": format!("Harden {name}"),
                "number": number,
                "url": url,
                "files": ["a.yaml"],
                "pushed": true,
                "warnings": [],
                "diff": "--- a/a.yaml\n",
                "body": "## Harden",
            })
        };
        let services = [
            service(
                "cart",
                "create",
                Some(7),
                Some("https://github.com/acme/fleet/pull/7"),
            ),
            service("orders", "skip-closed", Some(3), Some("")),
            service("auth", "create", None, None),
        ];
        let md = pr_summary(&services, false, [2, 0, 1, 0]);
        assert!(md.contains("3 services: 2 created, 0 updated, 1 skipped, 0 failed\n"));
        assert!(md.contains(
            "| cart | create | [#7](https://github.com/acme/fleet/pull/7) | 1 | new \\| findings |"
        ));
        assert!(md.contains("| orders | skip-closed | #3 | 1 |"));
        assert!(md.contains("| auth | create | - | 1 |"));
        assert!(!md.contains("Dry run"));
        let md = pr_summary(&services, true, [2, 0, 1, 0]);
        assert!(md.contains("Dry run: nothing was pushed"));
        assert!(md.contains("2 to create, 0 to update"));

        // The outputs count the actions and leave the diffs out (outputs are capped at 1 MB).
        let dir = tempfile::tempdir().unwrap();
        let runner = Runner {
            output: Some(dir.path().join("output")),
            summary: Some(dir.path().join("summary")),
        };
        finish_pr(&runner, &services, true).unwrap();
        let output = std::fs::read_to_string(dir.path().join("output")).unwrap();
        assert!(
            output.contains("\ncreated=2\nupdated=0\nskipped=1\nfailed=0\n"),
            "{output}"
        );
        assert!(output.contains(r#""branch":"kube-harden/cart""#));
        assert!(!output.contains("--- a/a.yaml") && !output.contains("## Harden"));
        let summary = std::fs::read_to_string(dir.path().join("summary")).unwrap();
        assert!(summary.starts_with("## kube-harden pr\n\nDry run"));
    }

    #[test]
    fn urls_lose_trailing_slashes_and_default_to_github_com() {
        let env = GitHubEnv::from_lookup(|n| match n {
            "GITHUB_API_URL" => Some("https://ghe.example.com/api/v3/".into()),
            "GITHUB_REPOSITORY" => Some("acme/fleet".into()),
            "GITHUB_SHA" => Some("abc123".into()),
            _ => None,
        });
        assert_eq!(env.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(env.server_url, "https://github.com");
        assert_eq!(
            env.blob_url("k8s/my app.yaml", 4).as_deref(),
            Some("https://github.com/acme/fleet/blob/abc123/k8s/my%20app.yaml#L4")
        );
        let bare = GitHubEnv::from_lookup(|_| None);
        assert_eq!(bare.repository, None);
        assert_eq!(bare.blob_url("a.yaml", 1), None);
    }

    #[test]
    fn long_summaries_are_cut_at_a_line() {
        let text = "line\n".repeat(100);
        let cut = cap(&text, 200);
        assert!(cut.len() <= 200, "{}", cut.len());
        assert!(cut.starts_with("line\nline\n"));
        assert!(cut.ends_with("summary limit)_\n"));
        assert_eq!(cap("short", 200), "short");
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(markdown_escape("a|b\n<x>`y`"), r"a\|b \<x\>\`y\`");
        assert_eq!(fence_for("no ticks"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }
}
