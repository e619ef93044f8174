//! `kube-harden explain`: per workload, pod and container, what would change (old -> new), why,
//! the risks, the overrides and the exemptions that applied; as text or JSON.

use std::path::PathBuf;

use clap::Args;

use kube_harden::render;
use kube_harden::report::Settings;

use super::args::{Example, Format};
use super::shared::{error_code, scan_with_progress};

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also run each changed container as-is and hardened (see `kube-harden prove`) and show
    /// the verdicts.
    #[arg(long)]
    pub prove: bool,
    #[command(flatten)]
    pub proof: super::prove::ProofArgs,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        what: "What would change in one manifest, why, and the risks",
        run: "kube-harden explain k8s/billing-api.yaml",
    },
    Example {
        what: "The same for a whole service, as JSON",
        run: "kube-harden explain --format json services/billing",
    },
    Example {
        what: "With the start proof: does each changed container still start hardened?",
        run: "kube-harden explain --prove --engine docker k8s/",
    },
    Example {
        what: "Including pods with host namespaces or hostPath volumes",
        run: "kube-harden explain --harden-host-access-pods k8s/",
    },
];

/// Runs `kube-harden explain`; returns the exit code.
pub fn run(args: &ExplainArgs, settings: &Settings) -> u8 {
    let reports = scan_with_progress(&args.paths, settings, &|_| {});
    let proofs = match args.prove.then(|| args.proof.options()) {
        None => None,
        Some(Ok(options)) => {
            Some(super::prove::prove_reports(&args.paths, &reports, settings, &options).0)
        }
        Some(Err(why)) => {
            eprintln!("{}", console::style(why).red());
            return 2;
        }
    };
    if args.format == Format::Json {
        let mut json = serde_json::json!({
            "findings": render::finding_rows(&reports),
            "notes": render::note_rows(&reports),
            "left_unchanged": reports.iter().flat_map(render::notes).collect::<Vec<_>>(),
        });
        if let Some(proofs) = &proofs {
            json["proofs"] = serde_json::json!(proofs);
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("serialisable")
        );
    } else {
        for r in &reports {
            print!("{}", render::explain(r));
        }
        if let Some(proofs) = &proofs {
            println!("Start proof:");
            for proof in proofs {
                print!("  {}", kube_harden::prove::show::text(proof));
            }
        }
    }
    let code = error_code(&reports);
    for line in reports.iter().filter_map(render::error_line) {
        eprintln!("{line}");
    }
    code
}
