//! `kube-harden prove`: plans the change as `diff` does, then runs each changed container twice
//! with a local container engine (as the manifest had it, and hardened) and says whether the
//! hardened one still starts. Writes no manifest and pushes nothing; exit code 1 on a regression
//! or a container the kubelet would refuse.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use kube_harden::prove::{self, show, Case, Engine, Options, Proof, Verdict};
use kube_harden::report::{FileReport, Settings};

use super::args::{Example, Format};
use super::shared::{report_problems, scan_with_progress};

#[derive(Args)]
pub struct ProveArgs {
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub proof: ProofArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The flags of the start proof, shared with `pr --prove`.
#[derive(Args, Clone)]
pub struct ProofArgs {
    /// The container engine to run the images with [default: auto: docker if it answers, else
    /// podman].
    #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
    pub engine: EngineChoice,
    /// How many seconds each container is watched: up at the end (and ready, with an exec
    /// readiness probe) counts as started.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub prove_timeout: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    Auto,
    Docker,
    Podman,
}

pub const EXAMPLES: &[Example] = &[
    Example {
        what: "Prove that each changed container under k8s/ still starts hardened",
        run: "kube-harden prove k8s/",
    },
    Example {
        what: "With podman, watching each container for 20 seconds, as JSON",
        run: "kube-harden prove --engine podman --prove-timeout 20 --format json deploy/",
    },
];

impl ProofArgs {
    /// The engine to use, or why there is none.
    pub fn options(&self) -> Result<Options, String> {
        let engine = match self.engine {
            EngineChoice::Docker => Some(Engine::Docker).filter(|e| e.answers()),
            EngineChoice::Podman => Some(Engine::Podman).filter(|e| e.answers()),
            EngineChoice::Auto => Engine::detect(),
        };
        let engine = engine.ok_or_else(|| {
            let which = match self.engine {
                EngineChoice::Auto => "docker or podman",
                EngineChoice::Docker => "docker",
                EngineChoice::Podman => "podman",
            };
            format!("could not prove: no container engine answers ({which}; for docker, is DOCKER_HOST right?)")
        })?;
        Ok(Options::new(
            engine,
            Duration::from_secs(self.prove_timeout),
        ))
    }
}

/// The changed containers of `reports` (of a run over `paths`; rendered where a Kustomize root,
/// a chart or a GitOps release renders), and the changed files that gave none.
pub fn changed_cases(
    paths: &[PathBuf],
    reports: &[FileReport],
    settings: &Settings,
) -> (Vec<Case>, Vec<PathBuf>) {
    let mut rendered = if settings.render.mode == kube_harden::report::RenderMode::Never {
        vec![]
    } else {
        kube_harden::pipeline::rendered_changes(paths, reports, settings)
    };
    // A GitOps release's render check kept what its chart renders before and after.
    rendered.extend(reports.iter().flat_map(|r| r.rendered.iter().cloned()));
    prove::reports::cases_of(reports, &rendered)
}

/// The proofs of the changed containers of `reports`, and the changed files that gave none.
pub fn prove_reports(
    paths: &[PathBuf],
    reports: &[FileReport],
    settings: &Settings,
    options: &Options,
) -> (Vec<Proof>, Vec<PathBuf>) {
    let (cases, unproven) = changed_cases(paths, reports, settings);
    (prove::prove(&cases, options), unproven)
}

/// Runs `kube-harden prove`; returns the exit code.
pub fn run(args: &ProveArgs, settings: &Settings) -> u8 {
    let reports = scan_with_progress(&args.paths, settings, &|_| {});
    let problems = report_problems(&reports);
    let (cases, unproven) = changed_cases(&args.paths, &reports, settings);
    // An engine is needed only when there is something to run.
    let options = match cases.is_empty() {
        true => None,
        false => match args.proof.options() {
            Ok(options) => Some(options),
            Err(why) => {
                eprintln!("{}", console::style(why).red());
                return 2;
            }
        },
    };
    let proofs = options
        .as_ref()
        .map_or_else(Vec::new, |options| prove::prove(&cases, options));
    if args.format == Format::Json {
        let json = serde_json::json!({
            "engine": options.map(|o| o.engine),
            "proofs": proofs,
            "not_proven": unproven,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("serialisable")
        );
    } else {
        for proof in &proofs {
            print!("{}", show::text(proof));
        }
    }
    for path in &unproven {
        eprintln!(
            "{}: changed, not proven: it holds no workload, and no render of it was made",
            path.display()
        );
    }
    eprintln!("{}", show::counts(&proofs));
    problems.max(exit_code(&proofs))
}

/// 1 when a container regresses or would be refused, else 0.
pub fn exit_code(proofs: &[Proof]) -> u8 {
    u8::from(
        proofs
            .iter()
            .any(|p| matches!(p.verdict, Verdict::Regression | Verdict::Refused)),
    )
}
