//! What the commands share: for those that read a repository, the settings (configuration file, then the
//! flags on top), the repository root, the scan with its progress bar, and how problems reach
//! stderr and the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use kube_harden::config::{self, Config, ConfigError};
use kube_harden::pipeline::scan;
use kube_harden::render;
use kube_harden::report::{
    FileReport, RenderMode, RenderSettings, RepositoryInfo, Settings, Status,
};

use super::args::{Cli, Images, Render};

/// Whether the command runs the start proof, which runs what the render checks render.
fn proves(cli: &Cli) -> bool {
    use super::args::{Command, RepoCommand};
    match &cli.command {
        Command::Repo(RepoCommand::Prove(_)) => true,
        Command::Repo(RepoCommand::Pr(args)) => args.prove,
        Command::Repo(RepoCommand::Explain(args)) => args.prove,
        _ => false,
    }
}

/// The settings from the configuration file, then the command line on top.
pub fn settings(cli: &Cli, paths: &[PathBuf]) -> Result<(Settings, Config), ConfigError> {
    let root = repository_root(paths);
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
    rules.ids_given |= cli.uid.is_some() || cli.gid.is_some() || cli.fs_group.is_some();
    // The last of `--writable-tmp` / `--no-writable-tmp` wins (each overrides the other).
    if cli.writable_tmp || cli.no_writable_tmp {
        rules.writable_tmp = cli.writable_tmp && !cli.no_writable_tmp;
    }
    if cli.harden_host_access_pods {
        rules.harden_host_access = true;
    }
    rules.images = image_lookup(cli, &config);
    let dockerfiles = kube_harden::dockerfile::DockerfileIndex::new(root.clone());
    let exclude = (!config.exclude.is_empty()).then(|| (root.clone(), config.exclude_matcher()));
    let render = RenderSettings {
        mode: match cli.render {
            Some(Render::Auto) => RenderMode::Auto,
            Some(Render::Always) => RenderMode::Always,
            Some(Render::Never) => RenderMode::Never,
            None => config.render,
        },
        kustomize_bin: cli.kustomize_bin.clone(),
        load_restrictor: cli.load_restrictor.clone(),
        helm_bin: cli.helm_bin.clone(),
        timeout: std::time::Duration::from_secs(
            cli.engine_timeout.unwrap_or(config.engine_timeout),
        ),
        offline: cli.offline,
        keep_streams: proves(cli),
    };
    let settings = Settings {
        rules,
        max_file_bytes: cli.max_file_size,
        exclude,
        dockerfiles,
        render,
        repository: RepositoryInfo {
            origin: kube_harden::deliver::git::Git::open(&root, None)
                .ok()
                .and_then(|g| g.origin_url()),
            root: Some(root.clone()),
            chart_cache: cli.chart_cache.clone(),
            no_post_renderers: cli.no_post_renderers,
            insecure_registries: insecure_registries(cli, &config),
            token_env: None,
        },
    };
    Ok((settings, config))
}

/// The image facts the policy plans with: the flags over the configuration file; one reader
/// (one registry client, one credential store: the user's own) for the run.
/// The registries spoken to over plain HTTP: the configuration's, then the command line's.
fn insecure_registries(cli: &Cli, config: &Config) -> Vec<String> {
    let mut registries = config.insecure_registries.clone();
    registries.extend(cli.insecure_registries.iter().cloned());
    registries
}

fn image_lookup(cli: &Cli, config: &Config) -> kube_harden::policy::ImageLookup {
    use kube_harden::images::{ImageReader, ImageSettings, ImagesMode};
    // The flag, else `KUBE_HARDEN_IMAGES` (a CI job without registry access sets `never`),
    // else the file.
    let from_env = std::env::var("KUBE_HARDEN_IMAGES").ok();
    let mode = match (cli.images, from_env.as_deref()) {
        (Some(Images::Auto), _) | (None, Some("auto")) => ImagesMode::Auto,
        (Some(Images::Always), _) | (None, Some("always")) => ImagesMode::Always,
        (Some(Images::Never), _) | (None, Some("never")) => ImagesMode::Never,
        (None, _) => config.images,
    };
    let platform = cli
        .platform
        .as_deref()
        .and_then(kube_harden::registry::Platform::parse)
        .unwrap_or_else(|| config.platform.clone());
    let insecure_registries = insecure_registries(cli, config);
    let limit = std::time::Duration::from_secs(cli.engine_timeout.unwrap_or(config.engine_timeout));
    let settings = ImageSettings {
        mode,
        platform,
        insecure_registries,
        cache_dir: cli
            .image_cache
            .clone()
            .unwrap_or_else(kube_harden::images::cache::default_root),
        offline: cli.offline,
        timeouts: kube_harden::registry::Timeouts::within(limit),
        credentials: kube_harden::registry::CredentialStore::from_env(),
        volumes_as_notes: config.image_volumes_as_notes,
    };
    let reader = std::sync::Arc::new(ImageReader::new(settings));
    let lookup = ImageReader::lookup(&reader);
    if !lookup.is_on() {
        return lookup;
    }
    // The lookup lives as long as the settings: when the run is over, it says once which
    // registries could not be reached.
    let notice = UnreachableNotice(reader);
    let inner = lookup.clone();
    let mut told = kube_harden::policy::ImageLookup::new(std::sync::Arc::new(move |image| {
        let _ = &notice;
        inner.facts(image).expect("the lookup is on")
    }));
    told.required = lookup.required;
    told.volumes_as_notes = lookup.volumes_as_notes;
    told
}

/// Says, when dropped, which registries could not be reached (once each, not per container).
struct UnreachableNotice(std::sync::Arc<kube_harden::images::ImageReader>);

impl Drop for UnreachableNotice {
    fn drop(&mut self) {
        print_lines(self.0.unreachable_registries().into_iter().map(|(registry, why)| {
            format!("image facts: {registry} cannot be reached ({why}), so its images were planned without them")
        }));
    }
}

/// The first of the paths a command was given (`.` when none).
pub fn first_path(paths: &[PathBuf]) -> &Path {
    paths.first().map_or(Path::new("."), |p| p.as_path())
}

/// The git work tree that holds the first path (the nearest folder with `.git`), else that
/// path's folder.
pub fn repository_root(paths: &[PathBuf]) -> PathBuf {
    let path = first_path(paths);
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

/// Processes all files with a progress bar on stderr (shown only on a terminal); `deliver`
/// sees each report as soon as it is ready.
pub fn scan_with_progress(
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
pub fn print_lines(lines: impl Iterator<Item = String>) {
    let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
    for line in lines {
        let _ = writeln!(stderr, "{line}");
    }
}

/// Prints error lines and notes to stderr; returns 2 if any file failed.
pub fn report_problems(reports: &[FileReport]) -> u8 {
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
    error_code(reports)
}

/// 2 if any file failed, else 0.
pub fn error_code(reports: &[FileReport]) -> u8 {
    if reports
        .iter()
        .any(|r| matches!(r.status, Status::Failed(_)))
    {
        2
    } else {
        0
    }
}

/// 0, or 2 after saying why the runner's files could not be written.
pub fn runner_step(result: std::io::Result<()>) -> u8 {
    written(result, "GitHub Actions outputs")
}

/// 0, or 2 after saying (in red) that `what` was not written, and why.
pub fn written(result: std::io::Result<()>, what: &str) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "{}",
                console::style(format!("{what} not written: {e}")).red()
            );
            2
        }
    }
}
