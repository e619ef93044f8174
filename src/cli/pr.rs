//! `kube-harden pr`: the glue between the command line and [`kube_harden::pull_requests`]:
//! where the token, repository, API and base come from, the progress bar, and the output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kube_harden::config::Config;
use kube_harden::deliver::git::{Git, Identity};
use kube_harden::deliver::github::{GitHub, Pace, RepoName};
use kube_harden::group::GroupBy;
use kube_harden::pull_requests::{self as prs, Action, Options, ServicePlan, ServiceResult};
use kube_harden::render::pr::{DEFAULT_BODY, DEFAULT_TITLE};
use kube_harden::report::{FileReport, Settings};

use super::args::{Example, Format};
use super::runner;
use super::shared::{first_path, report_problems, runner_step, scan_with_progress};

/// Where a repository keeps its own pull request templates.
const TEMPLATE_DIR: &str = ".github/kube-harden";

/// The bot identity when neither `--author` nor git config gives one.
const DEFAULT_AUTHOR: &str = "kube-harden <kube-harden@users.noreply.github.com>";

#[derive(Args)]
pub struct PrArgs {
    #[arg(default_value = ".")]
    paths: Vec<PathBuf>,
    /// The GitHub repository (default: $GITHUB_REPOSITORY, else the `origin` URL).
    #[arg(long)]
    repo: Option<String>,
    /// The branch the pull requests go to (default: the remote's default branch).
    #[arg(long)]
    base: Option<String>,
    /// Print the plan and the diffs; push nothing, write nothing through the API.
    #[arg(long)]
    dry_run: bool,
    /// How files are grouped into services (one pull request each).
    #[arg(long, value_enum, default_value_t = GroupByArg::Auto)]
    group_by: GroupByArg,
    /// A label for new pull requests (repeatable); `--label ''` sets none.
    #[arg(long = "label", default_value = "security")]
    labels: Vec<String>,
    /// Open new pull requests as drafts.
    #[arg(long)]
    draft: bool,
    /// A user to ask for review on new pull requests (repeatable; best effort).
    #[arg(long = "reviewer")]
    reviewers: Vec<String>,
    /// A team (slug) to ask for review on new pull requests (repeatable; best effort).
    #[arg(long = "team-reviewer")]
    team_reviewers: Vec<String>,
    /// Open at most this many new pull requests in this run.
    #[arg(long)]
    max_prs: Option<usize>,
    /// Open a new pull request even where the same change was closed without merging.
    #[arg(long)]
    recreate_closed: bool,
    /// Commit author and committer, `Name <email>` (default: git config, else a bot identity).
    #[arg(long)]
    author: Option<String>,
    /// The environment variable that holds the token.
    #[arg(long, default_value = "GITHUB_TOKEN")]
    token_env: String,
    /// The REST API (default: $GITHUB_API_URL, else https://api.github.com).
    #[arg(long)]
    api_url: Option<String>,
    /// A table, or JSON (each service's action, reason and pull request, and the API request counts).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Prove that each changed container still starts hardened (see `kube-harden prove`): a
    /// "Start proof" section in each pull request body and in the step summary.
    #[arg(long)]
    pub prove: bool,
    #[command(flatten)]
    proof: super::prove::ProofArgs,
    /// Milliseconds between two write requests (GitHub asks for at least 1000).
    #[arg(long, default_value_t = 1000, hide = true)]
    write_interval_ms: u64,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        what: "The plan per service and its diff; no push, no API write",
        run: "kube-harden pr --dry-run",
    },
    Example {
        what: "Push the branches and open at most 5 new pull requests, labelled",
        run: "GITHUB_TOKEN=... kube-harden pr --label security --max-prs 5",
    },
    Example {
        what: "Drafts, one per folder, with a team asked for review",
        run: "kube-harden pr --draft --group-by dir --team-reviewer platform k8s/",
    },
    Example {
        what: "GitHub Enterprise Server, with the token in another variable",
        run: "kube-harden pr --api-url https://github.example.com/api/v3 --repo acme/fleet --token-env GHE_TOKEN",
    },
    Example {
        what: "The plan, each body with a start proof of its changed containers (docker)",
        run: "kube-harden pr --dry-run --prove --engine docker",
    },
    Example {
        what: "The plan as JSON (action, reason and files of each service)",
        run: "kube-harden pr --dry-run --format json",
    },
];

#[derive(Clone, Copy, clap::ValueEnum)]
enum GroupByArg {
    Auto,
    Dir,
    Label,
    File,
}

impl From<GroupByArg> for GroupBy {
    fn from(g: GroupByArg) -> Self {
        match g {
            GroupByArg::Auto => GroupBy::Auto,
            GroupByArg::Dir => GroupBy::Dir,
            GroupByArg::Label => GroupBy::Label,
            GroupByArg::File => GroupBy::File,
        }
    }
}

impl PrArgs {
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

/// A dry run does not need `origin` to answer: when it cannot be reached, the plan is made from
/// what the checkout fetched last (`fallback`), with a warning. A real run stops, since it
/// would push onto branches it has not seen.
fn or_last_fetch<T>(
    args: &PrArgs,
    asked: Result<T, kube_harden::deliver::git::GitError>,
    fallback: impl FnOnce() -> Option<T>,
) -> Result<T, String> {
    match asked {
        Ok(value) => Ok(value),
        Err(e) if args.dry_run => {
            let value = fallback().ok_or_else(|| format!("{e} (and no earlier fetch to use)"))?;
            eprintln!(
                "{}",
                console::style(format!(
                    "warning: {e}; the dry run goes on with `origin` as this checkout last fetched it"
                ))
                .yellow()
            );
            Ok(value)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `kube-harden pr`; returns the exit code.
pub fn run(args: &PrArgs, settings: &Settings, config: &Config) -> u8 {
    // A chart in another git repository of the same server is fetched with `pr`'s token.
    let mut settings = settings.clone();
    settings.repository.token_env = Some(args.token_env.clone());
    match run_inner(args, &settings, config) {
        Ok(code) => code,
        Err(message) => {
            eprintln!(
                "{}",
                console::style(format!("kube-harden pr: {message}")).red()
            );
            2
        }
    }
}

fn run_inner(args: &PrArgs, settings: &Settings, config: &Config) -> Result<u8, String> {
    let token = std::env::var(&args.token_env)
        .ok()
        .filter(|t| !t.trim().is_empty());
    if token.is_none() && !args.dry_run {
        return Err(format!(
            "no token: set {} (a token with contents: write and pull-requests: write), or use --dry-run",
            args.token_env
        ));
    }
    let offline = settings.render.offline;
    if offline && !args.dry_run {
        return Err("--offline: a real `pr` pushes branches and opens pull requests over the network; use --dry-run".into());
    }
    kube_harden::deliver::git::limit_network_waits(settings.render.timeout);
    // Offline, the dry run plans from what this checkout last fetched, and asks no API.
    let token = token.filter(|_| !offline);
    let git = Git::open(first_path(&args.paths), token.clone()).map_err(|e| e.to_string())?;
    let base = match &args.base {
        Some(b) => b.clone(),
        None if offline => git.last_seen_default_branch().ok_or(
            "--offline: this checkout has not seen `origin`'s default branch; pass --base",
        )?,
        None => or_last_fetch(args, git.default_branch(), || {
            git.last_seen_default_branch()
        })?,
    };
    if !offline {
        or_last_fetch(args, git.fetch(&base, prs::BRANCH_PREFIX), || Some(()))?;
    }
    let base_oid = git
        .remote_branch(&base)
        .ok_or_else(|| format!("`origin` has no branch `{base}`"))?;
    let options = options(args, &git, &base)?;

    let reports = scan_with_progress(&args.paths, settings, &|_| {});
    let reports = prs::plan_on_base(reports, &git, base_oid, &base, settings);
    let mut code = report_problems(&reports);
    let matchers = config.service_matchers();
    let named = |path: &Path| {
        matchers
            .iter()
            .find(|(_, m)| m.is_excluded(path))
            .map(|(name, _)| name.clone())
    };
    let services = prs::services(&reports, &git.workdir(), options.group_by, &named);
    let mut plans = prs::draft(&services, &reports, &options)?;
    let proof_summary = args
        .prove
        .then(|| add_start_proofs(args, settings, &mut plans, &reports));

    let mut github = match &token {
        Some(token) => Some(client(args, &git, token, settings.render.timeout)?),
        None => None,
    };
    let bar = progress("looking up");
    prs::decide_all(
        &mut plans,
        &git,
        github.as_mut(),
        base_oid,
        &options,
        &|s: &str| {
            bar.set_message(s.to_string());
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    if !args.dry_run {
        deliver(
            &mut plans,
            &reports,
            &git,
            github.as_mut(),
            base_oid,
            &options,
        );
    }
    print_outcome(args, &plans, github.as_ref());
    if let Some(runner) = runner::Runner::from_env() {
        let services: Vec<serde_json::Value> = plans
            .iter()
            .map(|p| serde_json::json!(ServiceResult::from(p)))
            .collect();
        let done = runner::finish_pr(&runner, &services, args.dry_run);
        code = code.max(runner_step(done));
        if let Some(markdown) = &proof_summary {
            code = code.max(runner_step(runner.append_summary(markdown)));
        }
    }
    if plans.iter().any(|p| p.action == Action::Failed) {
        code = 2;
    }
    Ok(code)
}

/// Runs the start proof over every changed container at once, then gives each plan's body the
/// "Start proof" section of its own files' containers (before the fingerprint line). Returns
/// the section of all of them, for the step summary.
fn add_start_proofs(
    args: &PrArgs,
    settings: &Settings,
    plans: &mut [ServicePlan],
    reports: &[FileReport],
) -> String {
    let proofs = match args.proof.options() {
        Ok(options) => super::prove::prove_reports(&args.paths, reports, settings, &options).0,
        Err(why) => {
            eprintln!("{}", console::style(format!("warning: {why}")).yellow());
            let section = format!("### Start proof\n\nNot run: {why}.\n");
            for plan in plans.iter_mut() {
                insert_section(plan, &section);
            }
            return section;
        }
    };
    for plan in plans.iter_mut() {
        let own: Vec<_> = proofs
            .iter()
            .filter(|p| plan.files.iter().any(|f| p.files.contains(f)))
            .cloned()
            .collect();
        insert_section(plan, &kube_harden::prove::show::markdown(&own));
    }
    eprintln!("{}", kube_harden::prove::show::counts(&proofs));
    kube_harden::prove::show::markdown(&proofs)
}

/// `section` into a pull request body, before its fingerprint line if it has one, the body
/// kept within GitHub's limit (its diff shortened first).
fn insert_section(plan: &mut ServicePlan, section: &str) {
    plan.body = kube_harden::render::pr::with_section(&plan.body, section, &plan.fingerprint);
}

/// Commits, one push, then the API writes.
fn deliver(
    plans: &mut [ServicePlan],
    reports: &[FileReport],
    git: &Git,
    github: Option<&mut GitHub>,
    base: git2::Oid,
    options: &Options,
) {
    let updates = prs::build_commits(plans, reports, git, base, options);
    let bar = progress("pushing");
    bar.set_message(format!("{} branches", updates.len()));
    let outcome = git.push(&updates).map_err(|e| e.to_string());
    bar.finish_and_clear();
    prs::apply_push(plans, outcome);
    if let Some(github) = github {
        let bar = progress("pull request");
        prs::open_or_update(plans, github, options, &|s: &str| {
            bar.set_message(s.to_string());
            bar.inc(1);
        });
        bar.finish_and_clear();
    }
}

fn options(args: &PrArgs, git: &Git, base: &str) -> Result<Options, String> {
    let identity = match &args.author {
        Some(text) => Identity::parse(text)
            .ok_or_else(|| format!("--author `{text}`: expected `Name <email>`"))?,
        None => git
            .configured_identity()
            .unwrap_or_else(|| Identity::parse(DEFAULT_AUTHOR).expect("valid default")),
    };
    let template = |name: &str, default: &str| -> Result<String, String> {
        let path = git.workdir().join(TEMPLATE_DIR).join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default.to_string()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    };
    Ok(Options {
        base: base.to_string(),
        group_by: args.group_by.into(),
        labels: args
            .labels
            .iter()
            .filter(|l| !l.trim().is_empty())
            .cloned()
            .collect(),
        draft: args.draft,
        reviewers: args.reviewers.clone(),
        team_reviewers: args.team_reviewers.clone(),
        max_prs: args.max_prs,
        recreate_closed: args.recreate_closed,
        identity,
        title_template: template("pr-title.txt.j2", DEFAULT_TITLE)?,
        body_template: template("pr-body.md.j2", DEFAULT_BODY)?,
    })
}

/// The API client: repository from `--repo`, `GITHUB_REPOSITORY`, or the `origin` URL.
fn client(args: &PrArgs, git: &Git, token: &str, limit: Duration) -> Result<GitHub, String> {
    let from_env = std::env::var("GITHUB_REPOSITORY").ok();
    let repo = match (&args.repo, &from_env) {
        (Some(r), _) | (None, Some(r)) => {
            RepoName::parse(r).ok_or_else(|| format!("repository `{r}`: expected OWNER/NAME"))?
        }
        (None, None) => git
            .origin_url()
            .as_deref()
            .and_then(RepoName::from_remote_url)
            .ok_or("cannot tell the GitHub repository from `origin`; pass --repo OWNER/NAME")?,
    };
    let api = args
        .api_url
        .clone()
        .or_else(|| {
            std::env::var("GITHUB_API_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "https://api.github.com".into());
    let pace = Pace {
        write_interval: Duration::from_millis(args.write_interval_ms),
        answer_within: limit.min(Duration::from_secs(60)),
        ..Pace::default()
    };
    GitHub::new(&api, token, repo, pace).map_err(|e| e.to_string())
}

fn progress(what: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let template = format!("{{spinner}} {what} {{pos}} {{msg}} {{elapsed}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
    bar
}

fn print_outcome(args: &PrArgs, plans: &[ServicePlan], github: Option<&GitHub>) {
    let (reads, writes) = github.map_or((0, 0), |g| (g.reads, g.writes));
    for p in plans {
        if matches!(
            p.action,
            Action::Failed | Action::SkipModified | Action::SkipClosed
        ) {
            eprintln!("{}: {}: {}", p.branch, p.action.name(), p.reason);
        }
        for w in &p.warnings {
            eprintln!("{}: warning: {w}", p.branch);
        }
    }
    if args.format == Format::Json {
        let services: Vec<ServiceResult> = plans
            .iter()
            .map(|p| ServiceResult {
                diff: args.dry_run.then(|| p.diff.clone()),
                body: args.dry_run.then(|| p.body.clone()),
                ..ServiceResult::from(p)
            })
            .collect();
        let count = |name: &str| services.iter().filter(|s| s.action == name).count();
        let json = serde_json::json!({
            "dry_run": args.dry_run,
            "services": services,
            "created": count("create"),
            "updated": count("update"),
            "skipped": services.iter().filter(|s| s.action.starts_with("skip")).count(),
            "failed": count("failed"),
            "pushed": services.iter().filter(|s| s.pushed).count(),
            "api_requests": { "reads": reads, "writes": writes, "total": reads + writes },
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("serialisable")
        );
        return;
    }
    if args.dry_run {
        for p in plans {
            println!(
                "{} {} ({} file{}): {}\n  title: {}",
                p.action.name(),
                p.branch,
                p.files.len(),
                if p.files.len() == 1 { "" } else { "s" },
                p.reason,
                p.title
            );
        }
        println!();
        for p in plans {
            print!("{}", p.diff);
        }
    } else {
        print!("{}", prs::table(plans));
    }
    let (create, update) = if args.dry_run {
        ("to create", "to update")
    } else {
        ("created", "updated")
    };
    let pushed = plans.iter().filter(|p| p.pushed).count();
    eprintln!(
        "{} services: {} {create}, {} {update}, {} skipped, {} failed; {pushed} branches pushed; {} API requests ({reads} reads, {writes} writes)",
        plans.len(),
        plans.iter().filter(|p| p.action == Action::Create).count(),
        plans.iter().filter(|p| p.action == Action::Update).count(),
        plans.iter().filter(|p| p.action.name().starts_with("skip")).count(),
        plans.iter().filter(|p| p.action == Action::Failed).count(),
        reads + writes,
    );
}
