//! The command line's shape: the top command, its global options and its subcommands (each
//! command's own flags are in its file), and the examples that end each command's `--help` and
//! man page. [`parse`] reads the arguments; [`command`] is the same tree for the completions and
//! the man pages.

use std::path::PathBuf;

use clap::builder::{StyledStr, Styles};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use super::{check, completions, diff, explain, fix, man, pr, prove};

#[derive(Parser)]
#[command(
    name = "kube-harden",
    version,
    about = "Add the securityContext baseline to Kubernetes manifests, keeping every other byte"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour the output.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// The runAsUser to set where none (or 0) is set [default: 1000, or the config's].
    #[arg(long, global = true, help_heading = "Global options", value_parser = clap::value_parser!(i64).range(1..=2147483647))]
    pub uid: Option<i64>,
    /// The runAsGroup to set where none (or 0) is set [default: 1000, or the config's].
    #[arg(long, global = true, help_heading = "Global options", value_parser = clap::value_parser!(i64).range(1..=2147483647))]
    pub gid: Option<i64>,
    /// The fsGroup to set where none (or 0) is set [default: 1000, or the config's].
    #[arg(long = "fs-group", global = true, help_heading = "Global options", value_parser = clap::value_parser!(i64).range(1..=2147483647))]
    pub fs_group: Option<i64>,
    /// The configuration file (default: `.kube-harden.yaml` at the repository root).
    #[arg(long, global = true, help_heading = "Global options")]
    pub config: Option<PathBuf>,
    /// Add an emptyDir mounted at /tmp to containers that get a read-only root filesystem (the
    /// default; this flag turns it back on over a config file that turns it off).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        overrides_with = "no_writable_tmp"
    )]
    pub writable_tmp: bool,
    /// Do not add the writable /tmp.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        overrides_with = "writable_tmp"
    )]
    pub no_writable_tmp: bool,
    /// Harden pods with hostPID/hostNetwork/hostIPC or a hostPath volume too (by default they
    /// are left unchanged and reported, like privileged pods).
    #[arg(long, global = true, help_heading = "Global options")]
    pub harden_host_access_pods: bool,
    /// Skip files larger than this many bytes.
    #[arg(long, global = true, help_heading = "Global options", default_value_t = 10 * 1024 * 1024)]
    pub max_file_size: u64,
    /// When to render Kustomize trees and Helm charts before and after the edits to check
    /// what they ship [default: auto, or the config's `render`].
    #[arg(long, global = true, help_heading = "Global options", value_enum)]
    pub render: Option<Render>,
    /// The Kustomize engine to build with: a `kustomize` binary, or `kubectl` [default:
    /// `kustomize` on PATH, else `kubectl kustomize`].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub kustomize_bin: Option<PathBuf>,
    /// Kustomize's --load-restrictor for the render check [default: LoadRestrictionsNone].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "RESTRICTOR"
    )]
    pub load_restrictor: Option<String>,
    /// The `helm` binary that renders charts for the render check [default: `helm` on PATH].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "PATH"
    )]
    pub helm_bin: Option<PathBuf>,
    /// Where charts downloaded from chart repositories for GitOps releases are kept
    /// [default: kube-harden/charts in the user's cache folder].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub chart_cache: Option<PathBuf>,
    /// Do not give a Flux HelmRelease `spec.postRenderers` patches where its chart's values
    /// cannot express the baseline (only the notes)
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_post_renderers: bool,
    /// The most seconds one run of an external program (kustomize, kubectl, helm) or one
    /// chart download may take: past it, it is stopped with everything it started, and its
    /// root or release is reported and not written [default: 120, or the config's
    /// `engineTimeout`].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86400)
    )]
    pub engine_timeout: Option<u64>,
    /// Fetch nothing: Kustomize roots with remote resources are not built (they are named),
    /// charts come only from the chart cache, and `pr --dry-run` does not fetch `origin`.
    #[arg(long, global = true, help_heading = "Global options")]
    pub offline: bool,
    /// Read each container image's facts (user, volumes, ports) from its registry to plan
    /// with: `auto` (an image that cannot be read is a note), `always` (it is an error for its
    /// file), `never` (fetch nothing) [default: auto, or the config's `images`].
    #[arg(long, global = true, help_heading = "Global options", value_enum)]
    pub images: Option<Images>,
    /// The platform an image index is followed to [default: linux/amd64, or the config's
    /// `platform`].
    #[arg(long, global = true, help_heading = "Global options", value_name = "OS/ARCH", value_parser = platform)]
    pub platform: Option<String>,
    /// A registry spoken to over plain HTTP (loopback ones always are); repeatable.
    #[arg(
        long = "insecure-registry",
        global = true,
        help_heading = "Global options",
        value_name = "HOST[:PORT]"
    )]
    pub insecure_registries: Vec<String>,
    /// Where image facts are kept, by digest [default: kube-harden/images in the user's
    /// cache folder].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub image_cache: Option<PathBuf>,
}

/// `--platform`: `os/arch[/variant]`.
fn platform(text: &str) -> Result<String, String> {
    kube_harden::registry::Platform::parse(text)
        .map(|_| text.to_string())
        .ok_or_else(|| "expected OS/ARCH or OS/ARCH/VARIANT, e.g. linux/arm64".to_string())
}

/// `--images`: when image facts are read.
#[derive(Clone, Copy, ValueEnum)]
pub enum Images {
    Auto,
    Always,
    Never,
}

/// `--render`: `auto` builds when an engine is found, `always` makes a missing one an error.
#[derive(Clone, Copy, ValueEnum)]
pub enum Render {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
pub enum Command {
    // The commands that read a repository (its configuration file first).
    #[command(flatten)]
    Repo(RepoCommand),
    /// Print the shell completion script for SHELL to stdout.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) to stdout, or write one page per command to a folder.
    Man(man::ManArgs),
}

/// The commands that work on manifests, with the settings of the repository they are in.
#[derive(Subcommand)]
pub enum RepoCommand {
    /// Print a unified diff of every change; write nothing.
    Diff(diff::DiffArgs),
    /// Make the changes in place (verified, atomic writes).
    Fix(fix::FixArgs),
    /// Per workload and container: what would change, why, the risks, and the exemptions.
    Explain(explain::ExplainArgs),
    /// List every pod and container that falls short of the baseline; exit 1 if any does.
    Check(check::CheckArgs),
    /// Open or update one pull request per service, from commits on the base branch.
    Pr(Box<pr::PrArgs>),
    /// Run each changed container as it was and hardened with docker or podman; exit 1 if a
    /// hardened one no longer starts. Writes nothing.
    Prove(prove::ProveArgs),
}

impl RepoCommand {
    /// The paths given (`.` by default); the first one names the repository.
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            RepoCommand::Diff(args) => &args.paths,
            RepoCommand::Fix(args) => &args.paths,
            RepoCommand::Explain(args) => &args.paths,
            RepoCommand::Check(args) => &args.paths,
            RepoCommand::Pr(args) => args.paths(),
            RepoCommand::Prove(args) => &args.paths,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// One example invocation: shown under "Examples:" in `--help` and in the man page.
pub struct Example {
    /// What it does, in one line.
    pub what: &'static str,
    /// The command line as typed in a POSIX shell (its flags are checked by a test).
    pub run: &'static str,
}

/// The top command's examples: a first tour.
const TOP_EXAMPLES: &[Example] = &[
    Example {
        what: "Show what would change under k8s/; write nothing",
        run: "kube-harden diff k8s/",
    },
    Example {
        what: "Make the changes in place, with the uid and gid your images use",
        run: "kube-harden fix --uid 10001 --gid 10001 --fs-group 10001 deploy/",
    },
    Example {
        what: "Fail (exit code 1) when something falls short; SARIF for code scanning",
        run: "kube-harden check --format sarif --sarif-file results.sarif",
    },
    Example {
        what: "Plan one pull request per service; push nothing",
        run: "kube-harden pr --dry-run",
    },
];

/// Each command's examples, by name (the top command's under its own).
pub const EXAMPLES: &[(&str, &[Example])] = &[
    ("kube-harden", TOP_EXAMPLES),
    ("diff", diff::EXAMPLES),
    ("fix", fix::EXAMPLES),
    ("explain", explain::EXAMPLES),
    ("check", check::EXAMPLES),
    ("pr", pr::EXAMPLES),
    ("prove", prove::EXAMPLES),
    ("completions", completions::EXAMPLES),
    ("man", man::EXAMPLES),
];

/// The examples of a command by its name (`kube-harden` for the top command); none if unknown.
pub fn examples(name: &str) -> &'static [Example] {
    EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, examples)| examples)
}

/// The command tree with each command's examples after its help.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let styles = cmd.get_styles().clone();
    for &(name, examples) in EXAMPLES {
        let text = examples_help(examples, &styles);
        cmd = if name == cmd.get_name() {
            cmd.after_help(text)
        } else {
            cmd.mut_subcommand(name, |sub| sub.after_help(text))
        };
    }
    cmd
}

/// The command line's arguments; on an error or `--help`, the message and exit, as clap does.
pub fn parse() -> Cli {
    let mut cmd = command();
    let matches = cmd.get_matches_mut();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// The "Examples:" section: a heading as clap styles its own, then each example's comment line
/// and command line (clap drops the styles where colours are off).
fn examples_help(examples: &[Example], styles: &Styles) -> StyledStr {
    let (header, literal) = (styles.get_header(), styles.get_literal());
    let mut text = format!("{header}Examples:{header:#}\n");
    for (i, e) in examples.iter().enumerate() {
        let gap = if i == 0 { "" } else { "\n" };
        text.push_str(&format!(
            "{gap}  # {}\n  {literal}{}{literal:#}\n",
            e.what, e.run
        ));
    }
    text.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of an example's command line, as a POSIX shell passes them: without the
    /// leading `NAME=value` assignments and from the first redirection or pipe on; quotes
    /// removed.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c == ' ' {
                chars.next();
                continue;
            }
            if matches!(c, '>' | '|' | '&' | ';') {
                break;
            }
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                match c {
                    ' ' => break,
                    '\'' | '"' => {
                        chars.next();
                        word.extend(chars.by_ref().take_while(|&q| q != c));
                    }
                    _ => {
                        word.push(c);
                        chars.next();
                    }
                }
            }
            let assignment = word.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !(assignment && words.is_empty()) {
                words.push(word);
            }
        }
        words
    }

    #[test]
    fn example_lines_split_like_a_shell_would() {
        assert_eq!(
            words("GITHUB_TOKEN=... kube-harden pr --label '' --author \"A B <a@b>\" > out"),
            ["kube-harden", "pr", "--label", "", "--author", "A B <a@b>"]
        );
        assert_eq!(words("kube-harden man | man -l -"), ["kube-harden", "man"]);
    }

    #[test]
    fn every_example_parses_as_the_command_it_is_shown_for() {
        for &(name, examples) in EXAMPLES {
            assert!(!examples.is_empty(), "{name} has no examples");
            for e in examples {
                let words = words(e.run);
                assert_eq!(words[0], "kube-harden", "{}", e.run);
                if name != "kube-harden" {
                    assert_eq!(words[1], name, "{} is shown for {name}", e.run);
                }
                let matches = command()
                    .try_get_matches_from(&words)
                    .unwrap_or_else(|err| panic!("{}:\n{err}", e.run));
                Cli::from_arg_matches(&matches).unwrap_or_else(|err| panic!("{}: {err}", e.run));
            }
        }
    }

    #[test]
    fn a_misspelt_flag_in_an_example_would_fail() {
        let words = words("kube-harden fix --dry-rn");
        let err = command().try_get_matches_from(words).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        let mut cmd = command();
        assert!(cmd.render_help().to_string().contains("\nExamples:\n"));
        // (All but clap's own `help`.)
        for sub in cmd.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("\nExamples:\n  # "),
                "{}:\n{help}",
                sub.get_name()
            );
            assert!(
                help.contains(&format!("  kube-harden {} ", sub.get_name())),
                "{help}"
            );
        }
    }
}
