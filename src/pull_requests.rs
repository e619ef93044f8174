//! One pull request per service (`kube-harden pr`): plans each changed file against the base
//! branch, groups the files into services, decides per service what to do from the remote
//! state (create, update, or skip and why), builds the commits, pushes them in one push, and
//! opens or updates the pull requests.
//!
//! The glue of the last stages: [`crate::group`] names the services, [`crate::render::pr`]
//! writes their text, [`crate::deliver::git`] and [`crate::deliver::github`] deliver them.
//! Identity follows Renovate and Dependabot: the branch `kube-harden/<service>` is the key, a
//! hidden marker in the body holds the change's fingerprint and the commit the tool pushed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use git2::Oid;
use serde::Serialize;

use crate::deliver::git::{BranchUpdate, Git, Identity, PushOutcome};
use crate::deliver::github::{Created, GitHub, PullRequest};
use crate::group::{group_named, ChangedFile, GroupBy, Service};
use crate::pipeline::process_text;
use crate::render::pr::{fingerprint_in, render, FINGERPRINT_MARKER};
use crate::report::{FileReport, Settings, Status};

/// The prefix of every branch the tool owns.
pub const BRANCH_PREFIX: &str = "kube-harden/";

/// The marker that records the commit the tool last pushed to a pull request's branch.
const HEAD_MARKER: &str = "<!-- kube-harden:head=";

/// How the pull requests are made.
#[derive(Clone, Debug)]
pub struct Options {
    pub base: String,
    pub group_by: GroupBy,
    pub labels: Vec<String>,
    pub draft: bool,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    /// New pull requests per run, at most.
    pub max_prs: Option<usize>,
    pub recreate_closed: bool,
    pub identity: Identity,
    pub title_template: String,
    pub body_template: String,
}

/// What the tool does (or did) for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    /// Open, and nothing changed since the tool last pushed.
    SkipUnchanged,
    /// Closed without merging, and the change is the same one.
    SkipClosed,
    /// Someone else pushed to the branch: never overwritten.
    SkipModified,
    /// Over `--max-prs`: left for the next run.
    SkipLimit,
    Failed,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::SkipUnchanged => "skip-unchanged",
            Action::SkipClosed => "skip-closed",
            Action::SkipModified => "skip-modified",
            Action::SkipLimit => "skip-limit",
            Action::Failed => "failed",
        }
    }
}

/// One service's plan, then its result.
#[derive(Clone, Debug)]
pub struct ServicePlan {
    pub service: String,
    pub branch: String,
    pub files: Vec<PathBuf>,
    pub title: String,
    pub body: String,
    pub fingerprint: String,
    pub diff: String,
    pub action: Action,
    pub reason: String,
    /// The pull request this run found or made.
    pub pr: Option<PullRequest>,
    /// Where the remote branch was at the fetch.
    pub remote_head: Option<Oid>,
    /// The commit the branch should point at.
    pub commit: Option<Oid>,
    /// Whether this run pushed the branch.
    pub pushed: bool,
    pub warnings: Vec<String>,
}

/// A service's line in the summary (and in `--format json`).
#[derive(Clone, Debug, Serialize)]
pub struct ServiceResult {
    pub service: String,
    pub branch: String,
    pub action: &'static str,
    pub reason: String,
    pub title: String,
    pub number: Option<u64>,
    pub url: Option<String>,
    pub files: Vec<String>,
    pub pushed: bool,
    pub warnings: Vec<String>,
    /// The change as a patch (in the JSON of a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The pull request body as it would be sent (in the JSON of a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl From<&ServicePlan> for ServiceResult {
    fn from(p: &ServicePlan) -> Self {
        ServiceResult {
            service: p.service.clone(),
            branch: p.branch.clone(),
            action: p.action.name(),
            reason: p.reason.clone(),
            title: p.title.clone(),
            number: p.pr.as_ref().map(|pr| pr.number),
            url: p.pr.as_ref().map(|pr| pr.url.clone()),
            files: p.files.iter().map(|f| f.display().to_string()).collect(),
            pushed: p.pushed,
            warnings: p.warnings.clone(),
            diff: None,
            body: None,
        }
    }
}

/// Makes every report's path relative to the repository root, and plans each file again from
/// its content on the base commit where the working tree differs: the pull requests change
/// the base, not the checkout. A file the base does not have is skipped with the reason.
pub fn plan_on_base(
    reports: Vec<FileReport>,
    git: &Git,
    base: Oid,
    base_name: &str,
    settings: &Settings,
) -> Vec<FileReport> {
    let root = std::fs::canonicalize(git.workdir()).unwrap_or_else(|_| git.workdir());
    reports
        .into_iter()
        .map(|mut r| {
            let relative = std::fs::canonicalize(&r.path)
                .ok()
                .and_then(|p| p.strip_prefix(&root).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| r.path.clone());
            r.path = relative.clone();
            let Some(original) = r.original.as_deref() else {
                return r;
            };
            match git.file_at(base, &relative) {
                Ok(Some(bytes)) if bytes == original.as_bytes() => r,
                // A chart's values are planned with its templates, a Kustomize app's files
                // with the app and its render check, and a GitOps release with its chart and
                // the objects it names, as the checkout has them.
                Ok(Some(_))
                    if chart_of(&root, &relative).is_some()
                        || r.service_dir.is_some()
                        || crate::pipeline::planned_with_the_checkout(original) =>
                {
                    if matches!(r.status, Status::Changed { .. }) {
                        r.status = Status::Skipped(format!(
                            "differs from `{base_name}` in the checkout: pull (or push) first"
                        ));
                    }
                    r
                }
                Ok(Some(bytes)) => match String::from_utf8(bytes) {
                    Ok(text) => process_text(&relative, text, settings),
                    Err(_) => {
                        r.status = Status::Skipped(format!("not UTF-8 on {base_name}"));
                        r
                    }
                },
                Ok(None) => {
                    if matches!(r.status, Status::Changed { .. }) {
                        r.status = Status::Skipped(format!(
                            "not on `{base_name}` yet: commit and push it first"
                        ));
                    }
                    r
                }
                Err(e) => {
                    r.status = Status::Failed(crate::report::FileError::at_start(format!(
                        "cannot read it on `{base_name}`: {e}"
                    )));
                    r
                }
            }
        })
        .collect()
}

/// Groups the changed files into services; `named` gives a file the name of the configured
/// service it belongs to, if any.
pub fn services(
    reports: &[FileReport],
    root: &Path,
    by: GroupBy,
    named: &dyn Fn(&Path) -> Option<String>,
) -> Vec<Service> {
    let changed: Vec<ChangedFile> = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Changed { .. }))
        .map(|r| ChangedFile {
            path: r.path.clone(),
            apps: r.workloads.iter().filter_map(|w| w.app.clone()).collect(),
            unit: chart_of(root, &r.path).or_else(|| service_dir_of(root, r)),
        })
        .collect();
    group_named(&changed, by, named)
}

/// The Kustomize service folder a source gave the file, relative to `root`.
fn service_dir_of(root: &Path, report: &FileReport) -> Option<PathBuf> {
    let dir = report.service_dir.as_ref()?;
    let absolute = std::fs::canonicalize(dir).ok()?;
    absolute.strip_prefix(root).ok().map(Path::to_path_buf)
}

/// The Helm chart (folder with `Chart.yaml`, relative to `root`) that holds `path`.
fn chart_of(root: &Path, path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|dir| root.join(dir).join("Chart.yaml").is_file())
        .map(Path::to_path_buf)
}

/// The title, body, fingerprint and diff of each service (no remote state yet).
pub fn draft(
    services: &[Service],
    reports: &[FileReport],
    options: &Options,
) -> Result<Vec<ServicePlan>, String> {
    let by_path: HashMap<&Path, &FileReport> =
        reports.iter().map(|r| (r.path.as_path(), r)).collect();
    services
        .iter()
        .map(|s| {
            let own: Vec<&FileReport> = s
                .files
                .iter()
                .filter_map(|f| by_path.get(f.as_path()).copied())
                .collect();
            let diff: String = own
                .iter()
                .filter_map(|r| match (&r.status, &r.original) {
                    (Status::Changed { new_text }, Some(old)) => Some(
                        console::strip_ansi_codes(&crate::render::diff(
                            &r.path.display().to_string(),
                            old,
                            new_text,
                        ))
                        .to_string(),
                    ),
                    _ => None,
                })
                .collect();
            let text = render(
                &s.name,
                &own,
                &diff,
                &options.title_template,
                &options.body_template,
            )
            .map_err(|e| format!("pull request template: {e:#}"))?;
            let mut body = text.body;
            if fingerprint_in(&body) != Some(text.fingerprint.as_str()) {
                body.push_str(&format!(
                    "\n\n{FINGERPRINT_MARKER}{} -->\n",
                    text.fingerprint
                ));
            }
            Ok(ServicePlan {
                service: s.name.clone(),
                branch: s.branch(),
                files: s.files.clone(),
                title: text.title,
                body,
                fingerprint: text.fingerprint,
                diff,
                action: Action::Create,
                reason: String::new(),
                pr: None,
                remote_head: None,
                commit: None,
                pushed: false,
                warnings: vec![],
            })
        })
        .collect()
}

/// The commit a pull request body says the tool pushed.
pub fn head_in(body: &str) -> Option<&str> {
    let start = body.find(HEAD_MARKER)? + HEAD_MARKER.len();
    body[start..].split(" -->").next().filter(|h| !h.is_empty())
}

/// What the remote holds for one service.
#[derive(Debug, Default)]
pub struct RemoteState<'a> {
    pub prs: &'a [PullRequest],
    pub branch_head: Option<Oid>,
    /// Authors of commits on the branch (since the base) other than the tool's identity.
    pub foreign_authors: Vec<String>,
}

/// Decides what to do for a service whose change has `fingerprint`; returns the action, the
/// reason, and the pull request it concerns.
pub fn decide(
    remote: &RemoteState,
    fingerprint: &str,
    recreate_closed: bool,
) -> (Action, String, Option<PullRequest>) {
    let open = remote.prs.iter().find(|p| p.open);
    let closed = remote
        .prs
        .iter()
        .filter(|p| !p.open && !p.merged)
        .max_by_key(|p| p.number);
    let modified = |what: String| (Action::SkipModified, what, open.cloned());
    if let Some(open) = open {
        if fingerprint_in(&open.body) == Some(fingerprint) {
            return (
                Action::SkipUnchanged,
                "open, and nothing changed".into(),
                Some(open.clone()),
            );
        }
    }
    if !remote.foreign_authors.is_empty() {
        return modified(format!(
            "the branch has commits by {}; not overwritten",
            remote.foreign_authors.join(", ")
        ));
    }
    if let Some(open) = open {
        let pushed = head_in(&open.body);
        let head = remote.branch_head.map(|h| h.to_string());
        if pushed.is_some() && pushed != head.as_deref() {
            return modified(
                "the branch moved since kube-harden pushed it; not overwritten".into(),
            );
        }
        return (
            Action::Update,
            "the change is new (new findings, or the base changed these files)".into(),
            Some(open.clone()),
        );
    }
    if let Some(closed) = closed {
        if fingerprint_in(&closed.body) == Some(fingerprint) {
            if !recreate_closed {
                return (
                    Action::SkipClosed,
                    format!(
                        "#{} was closed without merging; --recreate-closed opens it again",
                        closed.number
                    ),
                    Some(closed.clone()),
                );
            }
            return (
                Action::Create,
                format!("#{} was closed; --recreate-closed", closed.number),
                None,
            );
        }
    }
    (Action::Create, "no pull request yet".into(), None)
}

/// Looks at the remote (pull requests and branches) and decides for each service. Without a
/// client (dry run, no token) no API call is made and every service is planned from the
/// branches alone.
pub fn decide_all(
    plans: &mut [ServicePlan],
    git: &Git,
    github: Option<&mut GitHub>,
    base: Oid,
    options: &Options,
    progress: &dyn Fn(&str),
) {
    let mut github = github;
    let mut creates = 0;
    // A failed lookup (network, token, repository name) would fail for every service alike,
    // each after its retries: the first one stops the lookups.
    let mut lookup_failed: Option<String> = None;
    for plan in plans.iter_mut() {
        progress(&plan.service);
        plan.remote_head = git.remote_branch(&plan.branch);
        if let Some(first) = &lookup_failed {
            plan.action = Action::Failed;
            plan.reason = format!("not looked up: {first}");
            continue;
        }
        let prs = match github.as_deref_mut() {
            Some(gh) => match gh.pull_requests_for(&plan.branch) {
                Ok(prs) => prs,
                Err(e) => {
                    plan.action = Action::Failed;
                    plan.reason = e.to_string();
                    lookup_failed = Some(e.to_string());
                    continue;
                }
            },
            None => vec![],
        };
        let foreign = match plan.remote_head {
            Some(head) => git
                .foreign_authors(base, head, &options.identity.email)
                .unwrap_or_else(|e| vec![format!("(unreadable history: {e})")]),
            None => vec![],
        };
        let remote = RemoteState {
            prs: &prs,
            branch_head: plan.remote_head,
            foreign_authors: foreign,
        };
        let (action, reason, pr) = decide(&remote, &plan.fingerprint, options.recreate_closed);
        plan.action = action;
        plan.reason = reason;
        plan.pr = pr;
        if github.is_none() && plan.action == Action::Create {
            plan.reason = "no token: existing pull requests were not looked up".into();
        }
        if plan.action == Action::Create {
            creates += 1;
            if options.max_prs.is_some_and(|max| creates > max) {
                plan.action = Action::SkipLimit;
                plan.reason = "--max-prs reached; left for the next run".into();
            }
        }
    }
}

/// Builds the commit of every service that needs one, on the base; a branch that already
/// holds exactly this change on this base is reused, not pushed again.
pub fn build_commits(
    plans: &mut [ServicePlan],
    reports: &[FileReport],
    git: &Git,
    base: Oid,
    options: &Options,
) -> Vec<BranchUpdate> {
    let new_text: HashMap<&Path, &str> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Changed { new_text } => Some((r.path.as_path(), new_text.as_str())),
            _ => None,
        })
        .collect();
    let mut updates = Vec::new();
    for plan in plans
        .iter_mut()
        .filter(|p| matches!(p.action, Action::Create | Action::Update))
    {
        let files: Vec<(PathBuf, Vec<u8>)> = plan
            .files
            .iter()
            .filter_map(|f| {
                new_text
                    .get(f.as_path())
                    .map(|t| (f.clone(), t.as_bytes().to_vec()))
            })
            .collect();
        let built = git.tree_with(base, &files).and_then(|tree| {
            if let Some(head) = plan.remote_head {
                if git.tree_and_parent(head)? == (tree, Some(base)) {
                    return Ok((head, false));
                }
            }
            let message = format!(
                "{}\n\nkube-harden: {} file(s) of {}.\n",
                plan.title,
                files.len(),
                plan.service
            );
            git.commit(base, tree, &message, &options.identity)
                .map(|c| (c, true))
        });
        match built {
            Ok((commit, needs_push)) => {
                plan.commit = Some(commit);
                if needs_push {
                    updates.push(BranchUpdate {
                        branch: plan.branch.clone(),
                        new: commit,
                        expected: plan.remote_head,
                    });
                }
            }
            Err(e) => {
                plan.action = Action::Failed;
                plan.reason = format!("cannot build the commit: {e}");
            }
        }
    }
    updates
}

/// Records the push's outcome per branch.
pub fn apply_push(
    plans: &mut [ServicePlan],
    outcome: Result<HashMap<String, PushOutcome>, String>,
) {
    for plan in plans.iter_mut() {
        let pending = matches!(plan.action, Action::Create | Action::Update)
            && plan.commit.is_some()
            && plan.commit != plan.remote_head;
        if !pending {
            continue;
        }
        match &outcome {
            Err(e) => {
                plan.action = Action::Failed;
                plan.reason = e.clone();
            }
            Ok(results) => {
                match results.get(&plan.branch) {
                    Some(PushOutcome::Pushed) => plan.pushed = true,
                    Some(PushOutcome::Stale { .. }) => {
                        plan.action = Action::SkipModified;
                        plan.reason = "the remote branch moved since it was fetched; not overwritten (run again)".into();
                    }
                    Some(PushOutcome::Rejected(message)) => {
                        plan.action = Action::Failed;
                        plan.reason = format!("the remote refused the branch: {message}");
                    }
                    None => {
                        plan.action = Action::Failed;
                        plan.reason = "the branch was not pushed".into();
                    }
                }
            }
        }
    }
}

/// Opens or updates each pull request (after the push). Labels and reviewers are best
/// effort: a failure is a warning.
pub fn open_or_update(
    plans: &mut [ServicePlan],
    github: &mut GitHub,
    options: &Options,
    progress: &dyn Fn(&str),
) {
    for plan in plans
        .iter_mut()
        .filter(|p| matches!(p.action, Action::Create | Action::Update))
    {
        progress(&plan.service);
        let head = plan.commit.map(|c| c.to_string()).unwrap_or_default();
        let body = format!("{}\n{HEAD_MARKER}{head} -->\n", plan.body.trim_end());
        let result = match (&plan.action, plan.pr.clone()) {
            (Action::Update, Some(pr)) => github
                .update(pr.number, &plan.title, &body, false)
                .map(|pr| (pr, false)),
            _ => create(github, plan, &body, options),
        };
        match result {
            Ok((pr, raced)) => {
                if raced {
                    plan.action = Action::Update;
                    plan.reason = "another run opened it first; updated".into();
                }
                plan.pr = Some(pr);
            }
            Err(e) => {
                plan.action = Action::Failed;
                plan.reason = e.to_string();
            }
        }
    }
}

/// Creates the pull request, then labels and reviewers; a 422 "already exists" means another
/// run won the race: the open one is found and updated instead.
fn create(
    github: &mut GitHub,
    plan: &mut ServicePlan,
    body: &str,
    options: &Options,
) -> Result<(PullRequest, bool), crate::deliver::github::ApiError> {
    match github.create(
        &plan.title,
        &plan.branch,
        &options.base,
        body,
        options.draft,
    )? {
        Created::New(pr) => {
            if !options.labels.is_empty() {
                if let Err(e) = github.add_labels(pr.number, &options.labels) {
                    plan.warnings.push(format!("labels not set: {e}"));
                }
            }
            if !options.reviewers.is_empty() || !options.team_reviewers.is_empty() {
                if let Err(e) =
                    github.request_reviewers(pr.number, &options.reviewers, &options.team_reviewers)
                {
                    plan.warnings.push(format!("reviewers not requested: {e}"));
                }
            }
            Ok((pr, false))
        }
        Created::AlreadyExists => {
            let open = github
                .pull_requests_for(&plan.branch)?
                .into_iter()
                .find(|p| p.open)
                .ok_or_else(|| {
                    crate::deliver::github::ApiError(
                        "GitHub says a pull request exists, but none is open".into(),
                    )
                })?;
            let pr = github.update(open.number, &plan.title, body, false)?;
            Ok((pr, true))
        }
    }
}

/// The summary table: service, branch, action, pull request.
pub fn table(plans: &[ServicePlan]) -> String {
    let rows: Vec<[String; 4]> = plans
        .iter()
        .map(|p| {
            let link = p.pr.as_ref().map_or(String::from("-"), |pr| {
                if pr.url.is_empty() {
                    format!("#{}", pr.number)
                } else {
                    pr.url.clone()
                }
            });
            [
                p.service.clone(),
                p.branch.clone(),
                p.action.name().to_string(),
                link,
            ]
        })
        .collect();
    let header = ["SERVICE", "BRANCH", "ACTION", "PULL REQUEST"].map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(number: u64, open: bool, merged: bool, fingerprint: &str, head: &str) -> PullRequest {
        PullRequest {
            number,
            url: format!("https://github.com/acme/shop/pull/{number}"),
            open,
            merged,
            body: format!("text\n{FINGERPRINT_MARKER}{fingerprint} -->\n{HEAD_MARKER}{head} -->\n"),
            head_sha: head.into(),
        }
    }

    fn oid(hex: &str) -> Oid {
        Oid::from_str(hex).unwrap()
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn no_pull_request_means_create() {
        let remote = RemoteState::default();
        assert_eq!(decide(&remote, "fp", false).0, Action::Create);
    }

    #[test]
    fn an_open_pull_request_with_the_same_change_is_left_alone() {
        let prs = [pr(7, true, false, "fp", A)];
        let remote = RemoteState {
            prs: &prs,
            branch_head: Some(oid(A)),
            ..Default::default()
        };
        let (action, _, found) = decide(&remote, "fp", false);
        assert_eq!(action, Action::SkipUnchanged);
        assert_eq!(found.unwrap().number, 7);
    }

    #[test]
    fn an_open_pull_request_with_a_new_change_is_updated() {
        let prs = [pr(7, true, false, "old", A)];
        let remote = RemoteState {
            prs: &prs,
            branch_head: Some(oid(A)),
            ..Default::default()
        };
        assert_eq!(decide(&remote, "new", false).0, Action::Update);
    }

    #[test]
    fn a_branch_someone_else_pushed_to_is_never_overwritten() {
        let prs = [pr(7, true, false, "old", A)];
        let moved = RemoteState {
            prs: &prs,
            branch_head: Some(oid(B)),
            ..Default::default()
        };
        assert_eq!(decide(&moved, "new", false).0, Action::SkipModified);
        let foreign = RemoteState {
            prs: &prs,
            branch_head: Some(oid(A)),
            foreign_authors: vec!["Jo <jo@example.com>".into()],
        };
        let (action, reason, _) = decide(&foreign, "new", false);
        assert_eq!(action, Action::SkipModified);
        assert!(reason.contains("Jo <jo@example.com>"), "{reason}");
        let no_pr = RemoteState {
            prs: &[],
            branch_head: Some(oid(A)),
            foreign_authors: vec!["Jo <jo@x>".into()],
        };
        assert_eq!(decide(&no_pr, "new", false).0, Action::SkipModified);
    }

    #[test]
    fn a_closed_pull_request_is_respected_until_the_change_changes() {
        let prs = [pr(3, false, false, "fp", A)];
        let remote = RemoteState {
            prs: &prs,
            ..Default::default()
        };
        assert_eq!(decide(&remote, "fp", false).0, Action::SkipClosed);
        assert_eq!(
            decide(&remote, "fp", true).0,
            Action::Create,
            "--recreate-closed"
        );
        assert_eq!(
            decide(&remote, "other", false).0,
            Action::Create,
            "a new change"
        );
    }

    #[test]
    fn a_merged_pull_request_does_not_block_a_new_change() {
        let prs = [pr(3, false, true, "fp", A)];
        let remote = RemoteState {
            prs: &prs,
            ..Default::default()
        };
        assert_eq!(decide(&remote, "fp", false).0, Action::Create);
    }

    #[test]
    fn the_open_pull_request_wins_over_older_closed_ones() {
        let prs = [pr(3, false, false, "fp", A), pr(9, true, false, "fp", A)];
        let remote = RemoteState {
            prs: &prs,
            branch_head: Some(oid(A)),
            ..Default::default()
        };
        let (action, _, found) = decide(&remote, "fp", false);
        assert_eq!(action, Action::SkipUnchanged);
        assert_eq!(found.unwrap().number, 9);
    }

    #[test]
    fn the_head_marker_is_read_back() {
        let body = format!("x\n{HEAD_MARKER}{A} -->\n");
        assert_eq!(head_in(&body), Some(A));
        assert_eq!(head_in("nothing"), None);
    }
}
