//! The `kube-harden` command line, a part of the binary (the library knows nothing of it).
//!
//! - [`args`]: the command tree (global options, the subcommands) and each command's examples;
//! - one file per command, holding its flags, its examples and its body: [`diff`], [`fix`],
//!   [`check`], [`explain`], [`pr`], [`prove`]; and the two that describe the command line itself and need
//!   no repository: [`completions`], [`man`];
//! - [`shared`]: what the commands that read a repository share (settings from the
//!   configuration file and the flags, the repository root, the scan with a progress bar, the
//!   exit code of problems);
//! - [`runner`]: the GitHub Actions integration (annotations, step summary, outputs).
//!
//! A new command is a file here, a variant in [`args::Command`] (or [`args::RepoCommand`] when it
//! reads a repository), its examples in [`args::EXAMPLES`], and a line in `main`'s dispatch.

pub mod args;
pub mod check;
pub mod completions;
pub mod diff;
pub mod explain;
pub mod fix;
pub mod man;
pub mod pr;
pub mod prove;
pub mod runner;
pub mod shared;
