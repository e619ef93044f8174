//! `kube-harden check`: every pod and container control that falls short, as text, JSON or
//! SARIF 2.1.0 (also to a file), and under Actions the annotations; exit code 1 on findings.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use kube_harden::render::{self, Summary};
use kube_harden::report::Settings;

use super::args::Example;
use super::runner;
use super::shared::{
    error_code, report_problems, repository_root, runner_step, scan_with_progress,
};

#[derive(Args)]
pub struct CheckArgs {
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Also write the findings as SARIF 2.1.0 to this file.
    #[arg(long, value_name = "PATH")]
    pub sarif_file: Option<PathBuf>,
}

/// `check` can also write SARIF 2.1.0, for code scanning.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Sarif,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        what: "List what falls short under k8s/; exit code 1 if anything does",
        run: "kube-harden check k8s/",
    },
    Example {
        what: "SARIF 2.1.0 for code scanning, on stdout and in results.sarif",
        run: "kube-harden check --format sarif --sarif-file results.sarif",
    },
    Example {
        what: "The text report for the log, and SARIF beside it for the upload",
        run: "kube-harden check --sarif-file results.sarif deploy/",
    },
    Example {
        what: "The findings, notes and counts as JSON, for a script",
        run: "kube-harden check --format json > findings.json",
    },
];

/// Runs `kube-harden check`; returns the exit code.
pub fn run(args: &CheckArgs, settings: &Settings) -> u8 {
    let (format, sarif_file) = (args.format, args.sarif_file.as_deref());
    let reports = scan_with_progress(&args.paths, settings, &|_| {});
    let rows = render::finding_rows(&reports);
    let summary = Summary::of(&reports);
    let root = repository_root(&args.paths);
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
    if let Some(runner) = runner::Runner::from_env() {
        // Workflow commands go to stdout, unless stdout carries JSON or SARIF.
        let mut out: Box<dyn Write> = match format {
            CheckFormat::Text => Box::new(std::io::stdout()),
            _ => Box::new(std::io::stderr()),
        };
        let done = runner::finish_check(&runner, &reports, &root, sarif_file, &mut out);
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
