//! `kube-harden fix`: the changes written in place (verified, atomic), with `--fix-dockerfiles`
//! the `USER` line in the Dockerfiles of services that run as root; `--dry-run` is `diff`.

use std::path::PathBuf;

use clap::Args;

use kube_harden::deliver::FileWriter;
use kube_harden::render::{self, Summary};
use kube_harden::report::{FileError, FileReport, Settings, Status};

use super::args::Example;
use super::diff;
use super::shared::{print_lines, report_problems, scan_with_progress};

#[derive(Args)]
pub struct FixArgs {
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Show the diff instead of writing (same as `diff`).
    #[arg(long)]
    pub dry_run: bool,
    /// Flush each file to disk before replacing it (slower; survives a power cut).
    #[arg(long)]
    pub fsync: bool,
    /// Add `USER <uid>:<gid>` to the final stage of a service's Dockerfile that runs as root.
    #[arg(long)]
    pub fix_dockerfiles: bool,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        what: "Harden every manifest under the current folder, in place",
        run: "kube-harden fix",
    },
    Example {
        what: "Show the diff instead of writing (same as `kube-harden diff`)",
        run: "kube-harden fix --dry-run",
    },
    Example {
        what: "Set the uid, gid and fsGroup your images use where none (or 0) is set",
        run: "kube-harden fix --uid 10001 --gid 10001 --fs-group 10001 deploy/",
    },
    Example {
        what: "Also add `USER <uid>:<gid>` to the Dockerfiles of services that run as root",
        run: "kube-harden fix --fix-dockerfiles services/",
    },
    Example {
        what: "Flush each file to disk before it replaces the original",
        run: "kube-harden fix --fsync k8s/",
    },
];

/// Runs `kube-harden fix`; returns the exit code.
pub fn run(args: &FixArgs, settings: &Settings) -> u8 {
    if args.dry_run {
        return diff::run(&args.paths, settings);
    }
    let writer = FileWriter::new(args.fsync);
    let reports = scan_with_progress(&args.paths, settings, &|r: &mut FileReport| {
        if let (Status::Changed { new_text }, Some(old)) = (&r.status, &r.original) {
            if let Err(e) = writer.write(&r.path, old, new_text) {
                r.status = Status::Failed(FileError::at_start(format!("not written: {e}")));
            }
        }
    });
    print_lines(reports.iter().flat_map(render::reviewer_notes));
    let mut code = report_problems(&reports);
    if args.fix_dockerfiles {
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
