//! `kube-harden diff`: the unified diff of every change on stdout (a patch `git apply` takes),
//! the notes and the summary on stderr; writes nothing but, under Actions, the runner's files.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use kube_harden::render::{self, Summary};
use kube_harden::report::{FileReport, Settings, Status};

use super::args::Example;
use super::runner;
use super::shared::{report_problems, repository_root, runner_step, scan_with_progress};

#[derive(Args)]
pub struct DiffArgs {
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        what: "Show what would change under k8s/; write nothing",
        run: "kube-harden diff k8s/",
    },
    Example {
        what: "Save the change as a patch (`git apply harden.patch` takes it)",
        run: "kube-harden diff > harden.patch",
    },
    Example {
        what: "With the uid your images run as, and no emptyDir at /tmp",
        run: "kube-harden diff --uid 10001 --no-writable-tmp services/",
    },
    Example {
        what: "With a configuration file kept elsewhere",
        run: "kube-harden diff --config ci/kube-harden.yaml .",
    },
];

/// Runs `kube-harden diff` (and `fix --dry-run`); returns the exit code.
pub fn run(paths: &[PathBuf], settings: &Settings) -> u8 {
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
    if let Some(runner) = runner::Runner::from_env() {
        let root = repository_root(paths);
        code = code.max(runner_step(runner::finish_diff(
            &runner, &reports, &root, &diff,
        )));
    }
    eprintln!("{}", Summary::of(&reports).line("would change"));
    code
}
