//! The command line's shape: the top command, its global options and its subcommands (each
//! command's own flags are in its file).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use super::{check, diff, explain, fix, pr};

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
}

#[derive(Subcommand)]
pub enum Command {
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
}

impl Command {
    /// The paths given (`.` by default); the first one names the repository.
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            Command::Diff(args) => &args.paths,
            Command::Fix(args) => &args.paths,
            Command::Explain(args) => &args.paths,
            Command::Check(args) => &args.paths,
            Command::Pr(args) => args.paths(),
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
