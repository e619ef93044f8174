//! The `kube-harden` command line: `diff`, `fix`, `check`, `explain` and `pr`.

mod pr_command;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kube_harden::actions;
use kube_harden::config;
use kube_harden::deliver::FileWriter;
use kube_harden::pipeline::scan;
use kube_harden::render::{self, Summary};
use kube_harden::report::{FileError, FileReport, Settings, Status};

#[derive(Parser)]
#[command(
    name = "kube-harden",
    version,
    about = "Add the securityContext baseline to Kubernetes manifests, keeping every other byte"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// When to colour the output.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// The runAsUser to set where none (or 0) is set [default: 1000, or the config's].
    #[arg(long, global = true, help_heading = "Global options", value_parser = clap::value_parser!(i64).range(1..=2147483647))]
    uid: Option<i64>,
    /// The runAsGroup to set where none (or 0) is set [default: 1000, or the config's].
    #[arg(long, global = true, help_heading = "Global options", value_parser = clap::value_parser!(i64).range(1..=2147483647))]
    gid: Option<i64>,
    /// The fsGroup to set where none (or 0) is set [default: 1000, or the config's].
    #[arg(long = "fs-group", global = true, help_heading = "Global options", value_parser = clap::value_parser!(i64).range(1..=2147483647))]
    fs_group: Option<i64>,
    /// The configuration file (default: `.kube-harden.yaml` at the repository root).
    #[arg(long, global = true, help_heading = "Global options")]
    config: Option<PathBuf>,
    /// Add an emptyDir mounted at /tmp to containers that get a read-only root filesystem (the
    /// default; this flag turns it back on over a config file that turns it off).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        overrides_with = "no_writable_tmp"
    )]
    writable_tmp: bool,
    /// Do not add the writable /tmp.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        overrides_with = "writable_tmp"
    )]
    no_writable_tmp: bool,
    /// Harden pods with hostPID/hostNetwork/hostIPC or a hostPath volume too (by default they
    /// are left unchanged and reported, like privileged pods).
    #[arg(long, global = true, help_heading = "Global options")]
    harden_host_access_pods: bool,
    /// Skip files larger than this many bytes.
    #[arg(long, global = true, help_heading = "Global options", default_value_t = 10 * 1024 * 1024)]
    max_file_size: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Print a unified diff of every change; write nothing.
    Diff {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
    },
    /// Make the changes in place (verified, atomic writes).
    Fix {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Show the diff instead of writing (same as `diff`).
        #[arg(long)]
        dry_run: bool,
        /// Flush each file to disk before replacing it (slower; survives a power cut).
        #[arg(long)]
        fsync: bool,
        /// Add `USER <uid>:<gid>` to the final stage of a service's Dockerfile that runs as root.
        #[arg(long)]
        fix_dockerfiles: bool,
    },
    /// Per workload and container: what would change, why, the risks, and the exemptions.
    Explain {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List every pod and container that falls short of the baseline; exit 1 if any does.
    Check {
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// Also write the findings as SARIF 2.1.0 to this file.
        #[arg(long, value_name = "PATH")]
        sarif_file: Option<PathBuf>,
    },
    /// Open or update one pull request per service, from commits on the base branch.
    Pr(Box<pr_command::PrArgs>),
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// `check` can also write SARIF 2.1.0, for code scanning.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Sarif,
}

/// Parsing allocates per scalar and per node on every core; mimalloc's per-thread pages beat
/// glibc's malloc at that (see the `mimalloc` line in Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    set_colours(cli.color);
    let (settings, config) = match settings(&cli) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{}", console::style(e).red());
            return ExitCode::from(2);
        }
    };
    let code = match cli.command {
        Command::Diff { paths }
        | Command::Fix {
            paths,
            dry_run: true,
            ..
        } => run_diff(&paths, &settings),
        Command::Fix {
            paths,
            dry_run: false,
            fsync,
            fix_dockerfiles,
        } => run_fix(&paths, &settings, fsync, fix_dockerfiles),
        Command::Check {
            paths,
            format,
            sarif_file,
        } => run_check(&paths, &settings, format, sarif_file.as_deref()),
        Command::Explain { paths, format } => run_explain(&paths, &settings, format),
        Command::Pr(args) => pr_command::run(&args, &settings, &config),
    };
    ExitCode::from(code)
}

impl Command {
    fn paths(&self) -> &[PathBuf] {
        match self {
            Command::Diff { paths } | Command::Fix { paths, .. } => paths,
            Command::Check { paths, .. } | Command::Explain { paths, .. } => paths,
            Command::Pr(args) => args.paths(),
        }
    }
}

/// The settings from the configuration file, then the command line on top.
fn settings(cli: &Cli) -> Result<(Settings, config::Config), kube_harden::config::ConfigError> {
    let root = repository_root(
        cli.command
            .paths()
            .first()
            .map_or(Path::new("."), |p| p.as_path()),
    );
    let file = cli.config.clone().or_else(|| config::find(&root));
    let config = file
        .as_deref()
        .map(config::load)
        .transpose()?
        .unwrap_or_default();
    let mut rules = config.rules();
    rules.baseline.uid = cli.uid.unwrap_or(rules.baseline.uid);
    rules.baseline.gid = cli.gid.unwrap_or(rules.baseline.gid);
    rules.baseline.fs_group = cli.fs_group.unwrap_or(rules.baseline.fs_group);
    // The last of `--writable-tmp` / `--no-writable-tmp` wins (each overrides the other).
    if cli.writable_tmp || cli.no_writable_tmp {
        rules.writable_tmp = cli.writable_tmp && !cli.no_writable_tmp;
    }
    if cli.harden_host_access_pods {
        rules.harden_host_access = true;
    }
    let dockerfiles = kube_harden::dockerfile::DockerfileIndex::new(root.clone());
    let exclude = (!config.exclude.is_empty()).then(|| (root, config.exclude_matcher()));
    let settings = Settings {
        rules,
        max_file_bytes: cli.max_file_size,
        exclude,
        dockerfiles,
        render: Default::default(),
    };
    Ok((settings, config))
}

/// The git work tree that holds `path` (the nearest folder with `.git`), else the folder itself.
fn repository_root(path: &Path) -> PathBuf {
    let start = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = if start.is_dir() {
        start.clone()
    } else {
        start
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or(start.clone())
    };
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or(dir)
}

fn set_colours(color: Color) {
    let on = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    };
    console::set_colors_enabled(on);
    console::set_colors_enabled_stderr(
        on && std::io::stderr().is_terminal() || matches!(color, Color::Always),
    );
}

/// Processes all files with a progress bar on stderr (shown only on a terminal); `deliver`
/// sees each report as soon as it is ready.
fn scan_with_progress(
    paths: &[PathBuf],
    settings: &Settings,
    deliver: &(dyn Fn(&mut FileReport) + Sync),
) -> Vec<FileReport> {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} files {elapsed}").expect("valid template"),
    );
    let reports = scan(paths, settings, &|report| {
        deliver(report);
        bar.inc(1);
    });
    bar.finish_and_clear();
    reports
}

/// Writes lines to stderr in one go: stderr is unbuffered, and a run over a fleet has a
/// thousand notes.
fn print_lines(lines: impl Iterator<Item = String>) {
    let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
    for line in lines {
        let _ = writeln!(stderr, "{line}");
    }
}

/// Prints error lines and notes to stderr; returns 2 if any file failed.
fn report_problems(reports: &[FileReport]) -> u8 {
    // Buffered: stderr writes each line at once otherwise (see `print_lines`).
    let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
    for r in reports {
        for line in render::notes(r) {
            let _ = writeln!(stderr, "{line}");
        }
        if let Some(line) = render::error_line(r) {
            let _ = writeln!(stderr, "{}", console::style(line).red());
        }
    }
    if reports
        .iter()
        .any(|r| matches!(r.status, Status::Failed(_)))
    {
        2
    } else {
        0
    }
}

fn run_diff(paths: &[PathBuf], settings: &Settings) -> u8 {
    // Each file's diff is rendered by the worker that checked it, while the others work on.
    let rendered = std::sync::Mutex::new(std::collections::HashMap::new());
    let reports = scan_with_progress(paths, settings, &|r: &mut FileReport| {
        if let (Status::Changed { new_text }, Some(old)) = (&r.status, &r.original) {
            let text = render::diff(&r.path.display().to_string(), old, new_text);
            if let Ok(mut rendered) = rendered.lock() {
                rendered.insert(r.path.clone(), text);
            }
        }
    });
    let mut rendered = rendered.into_inner().unwrap_or_default();
    // Rust's stdout flushes at every line end, even into a pipe or a file: one write per
    // buffer instead.
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut diff = String::new();
    for r in &reports {
        if let Some(text) = rendered.remove(&r.path) {
            let _ = stdout.write_all(render::diff_heading(r).as_bytes());
            let _ = stdout.write_all(text.as_bytes());
            diff.push_str(&text);
        }
    }
    drop(stdout);
    let mut code = report_problems(&reports);
    if let Some(runner) = actions::Runner::from_env() {
        let root = repository_root(paths.first().map_or(Path::new("."), |p| p.as_path()));
        code = code.max(runner_step(actions::finish_diff(
            &runner, &reports, &root, &diff,
        )));
    }
    eprintln!("{}", Summary::of(&reports).line("would change"));
    code
}

/// 0, or 2 after saying why the runner's files could not be written.
fn runner_step(result: std::io::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "{}",
                console::style(format!("GitHub Actions outputs not written: {e}")).red()
            );
            2
        }
    }
}

fn run_fix(paths: &[PathBuf], settings: &Settings, fsync: bool, fix_dockerfiles: bool) -> u8 {
    let writer = FileWriter::new(fsync);
    let reports = scan_with_progress(paths, settings, &|r: &mut FileReport| {
        if let (Status::Changed { new_text }, Some(old)) = (&r.status, &r.original) {
            if let Err(e) = writer.write(&r.path, old, new_text) {
                r.status = Status::Failed(FileError::at_start(format!("not written: {e}")));
            }
        }
    });
    print_lines(reports.iter().flat_map(render::reviewer_notes));
    let mut code = report_problems(&reports);
    if fix_dockerfiles {
        let user = format!(
            "{}:{}",
            settings.rules.baseline.uid, settings.rules.baseline.gid
        );
        code = code.max(add_users_to_dockerfiles(&reports, &user, &writer));
    }
    // The files are in place: the command need not wait for the disk to free the originals.
    writer.finish_in_background();
    eprintln!("{}", Summary::of(&reports).line("changed"));
    code
}

/// Adds `USER uid:gid` to each flagged Dockerfile once, verified; returns 2 if one failed.
fn add_users_to_dockerfiles(reports: &[FileReport], user: &str, writer: &FileWriter) -> u8 {
    use kube_harden::dockerfile::{add_user, verify_added_user};
    let mut dockerfiles: Vec<&PathBuf> = reports
        .iter()
        .filter_map(|r| r.root_dockerfile.as_ref())
        .collect();
    dockerfiles.sort();
    dockerfiles.dedup();
    let mut code = 0;
    for path in dockerfiles {
        let result = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|old| {
                let new = add_user(&old, user);
                verify_added_user(&old, &new, user)?;
                writer.write(path, &old, &new).map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => eprintln!("{}: added `USER {user}` to the final stage", path.display()),
            Err(e) => {
                eprintln!(
                    "{}",
                    console::style(format!("{}:1:1: not written: {e}", path.display())).red()
                );
                code = 2;
            }
        }
    }
    code
}

fn run_check(
    paths: &[PathBuf],
    settings: &Settings,
    format: CheckFormat,
    sarif_file: Option<&Path>,
) -> u8 {
    let reports = scan_with_progress(paths, settings, &|_| {});
    let rows = render::finding_rows(&reports);
    let summary = Summary::of(&reports);
    let root = repository_root(paths.first().map_or(Path::new("."), |p| p.as_path()));
    let sarif = || {
        let log = render::sarif::sarif(&reports, &root);
        serde_json::to_string_pretty(&log).expect("serialisable") + "\n"
    };
    if format == CheckFormat::Sarif {
        print!("{}", sarif());
    } else if format == CheckFormat::Json {
        let errors: Vec<String> = reports.iter().filter_map(render::error_line).collect();
        let skipped: Vec<String> = reports.iter().flat_map(render::notes).collect();
        let notes = render::note_rows(&reports);
        let json = serde_json::json!({ "findings": rows, "notes": notes, "left_unchanged": skipped, "errors": errors, "summary": summary });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("serialisable")
        );
    } else {
        print!("{}", render::check_text(&rows));
        for line in reports.iter().flat_map(render::reviewer_notes) {
            println!("{line}");
        }
    }
    let mut code = if format == CheckFormat::Text {
        report_problems(&reports)
    } else {
        error_code(&reports)
    };
    if let Some(path) = sarif_file {
        if let Err(e) = std::fs::write(path, sarif()) {
            eprintln!("{}: SARIF not written: {e}", path.display());
            code = 2;
        }
    }
    if let Some(runner) = actions::Runner::from_env() {
        // Workflow commands go to stdout, unless stdout carries JSON or SARIF.
        let mut out: Box<dyn Write> = match format {
            CheckFormat::Text => Box::new(std::io::stdout()),
            _ => Box::new(std::io::stderr()),
        };
        let done = actions::finish_check(&runner, &reports, &root, sarif_file, &mut out);
        code = code.max(runner_step(done));
    }
    if format == CheckFormat::Text {
        eprintln!("{}", summary.line("would change"));
    }
    match (code, rows.is_empty()) {
        (2, _) => 2,
        (_, false) => 1,
        _ => 0,
    }
}

fn run_explain(paths: &[PathBuf], settings: &Settings, format: Format) -> u8 {
    let reports = scan_with_progress(paths, settings, &|_| {});
    if format == Format::Json {
        let json = serde_json::json!({
            "findings": render::finding_rows(&reports),
            "notes": render::note_rows(&reports),
            "left_unchanged": reports.iter().flat_map(render::notes).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("serialisable")
        );
    } else {
        for r in &reports {
            print!("{}", render::explain(r));
        }
    }
    let code = error_code(&reports);
    for line in reports.iter().filter_map(render::error_line) {
        eprintln!("{line}");
    }
    code
}

fn error_code(reports: &[FileReport]) -> u8 {
    if reports
        .iter()
        .any(|r| matches!(r.status, Status::Failed(_)))
    {
        2
    } else {
        0
    }
}
