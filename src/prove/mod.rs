//! The start proof (`kube-harden prove`, `pr --prove`): each changed container is run twice with
//! a local container engine, once as the manifest had it and once as hardened, and the two runs
//! are compared. A **regression** is "as-is stays up, hardened exits", told with the error lines
//! of its log and their remedies. This module owns the translation of a container into engine
//! arguments ([`translate`], with the kubelet's `$(VAR)` expansion in [`expand`]), the choice of containers from parsed objects ([`pods`]) and from a
//! run's reports and renders ([`reports`]), the engine's command line ([`engine`]), the log's
//! reading ([`remedy`]), the verdicts and how they read ([`show`]). It knows nothing of YAML
//! bytes (documents are loaded whole) nor of delivery.
//!
//! Every container it starts is named `kube-harden-prove-<run>-…` and labelled with the run, and
//! removed when its case ends, or by the run's stop hook when a signal ends the run; each case's
//! host folders are scratch folders (see crate::process).

pub mod engine;
pub mod expand;
pub mod pods;
pub mod probe;
pub mod remedy;
pub mod reports;
pub mod show;
pub mod translate;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use pods::{changed_containers, Case};
use remedy::ErrorLine;
use translate::{Mount, RunSpec, Side};

/// The label every container of a run carries, its value the run's id.
pub const RUN_LABEL: &str = "io.kube-harden.prove";

/// How long each container is watched by default (`--prove-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The container engine, by its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Docker,
    Podman,
}

/// What of an image's config the proof reads (`docker image inspect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    /// `USER` as written: `101`, `app`, `65532:65532`, or empty (root).
    pub user: String,
    pub volumes: Vec<String>,
    pub exposed_ports: Vec<String>,
}

/// The verdict on one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Both runs stay up (or the hardened one does as well as the first).
    Ok,
    /// As-is stays up, hardened exits.
    Regression,
    /// The proof says nothing: as-is exits too, or the image or the engine is missing.
    CouldNotProve,
    /// The kubelet would refuse the hardened container (runAsNonRoot and the image's user).
    Refused,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Regression => "regression",
            Verdict::CouldNotProve => "could not prove",
            Verdict::Refused => "refused by runAsNonRoot",
        }
    }
}

/// How one run of a container went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The engine's arguments after `run`.
    pub arguments: Vec<String>,
    /// Up at the end of the watch (and ready, when the container has a readiness probe the
    /// proof can run).
    pub up: bool,
    /// The exit code, when it ended (`None` while it runs; -1 when it did not start).
    pub exit_code: Option<i64>,
    /// When the container has a readiness probe the proof runs: whether it passed.
    pub ready: Option<bool>,
    /// Why its readiness probe could not be run, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_not_run: Option<String>,
    /// The log's last lines.
    pub log_tail: Vec<String>,
}

/// The proof of one container.
#[derive(Clone, Debug, Serialize)]
pub struct Proof {
    pub origin: String,
    /// The changed files the container comes from.
    pub files: Vec<std::path::PathBuf>,
    pub workload: String,
    pub container: String,
    pub image: String,
    pub verdict: Verdict,
    /// Why, in a few words.
    pub reason: String,
    /// For a regression: its log's error lines, each with a remedy.
    pub errors: Vec<ErrorLine>,
    /// The remedies as sentences, one per error line.
    pub advice: Vec<String>,
    /// What the translation could not reproduce.
    pub gaps: Vec<String>,
    pub as_is: Option<Run>,
    pub hardened: Option<Run>,
    pub image_config: Option<ImageConfig>,
    pub seconds: f64,
}

impl Proof {
    /// The proof of `case`'s container running `image`, before anything is run: not proven.
    fn not_yet(case: &pods::Case, image: &str) -> Proof {
        Proof {
            origin: case.origin.clone(),
            files: case.files.clone(),
            workload: case.workload.clone(),
            container: case.container.clone(),
            image: image.to_string(),
            verdict: Verdict::CouldNotProve,
            reason: String::new(),
            errors: vec![],
            advice: vec![],
            gaps: vec![],
            as_is: None,
            hardened: None,
            image_config: None,
            seconds: 0.0,
        }
    }
}

/// How a run proves.
#[derive(Clone, Debug)]
pub struct Options {
    pub engine: Engine,
    /// How long each container is watched.
    pub timeout: Duration,
    /// How long a pull may take.
    pub pull_limit: Duration,
    /// The run's id, in every container's name and label.
    pub run_id: String,
}

impl Options {
    pub fn new(engine: Engine, timeout: Duration) -> Options {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Options {
            engine,
            timeout,
            pull_limit: Duration::from_secs(300),
            run_id: format!("{}-{:x}", std::process::id(), nanos),
        }
    }
}

/// How many cases run at once: each mostly waits while its containers run.
const AT_ONCE: usize = 4;

/// Proves each case; the proofs in the cases' order. Whatever a signal interrupts is removed
/// by the stop hook this registers.
pub fn prove(cases: &[Case], options: &Options) -> Vec<Proof> {
    let engine = options.engine;
    let run_id = options.run_id.clone();
    let _hook = crate::process::on_stop(Box::new(move || {
        engine.remove_labelled(RUN_LABEL, &run_id);
    }));
    let mut proofs = Vec::with_capacity(cases.len());
    for (chunk_index, chunk) in cases.chunks(AT_ONCE).enumerate() {
        let done: Vec<Proof> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, case)| {
                    let number = chunk_index * AT_ONCE + i;
                    scope.spawn(move || prove_one(case, number, options))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a proof does not panic"))
                .collect()
        });
        proofs.extend(done);
    }
    proofs
}

/// Proves one case (numbered `number` in the run, for its containers' names).
pub fn prove_one(case: &Case, number: usize, options: &Options) -> Proof {
    let started = Instant::now();
    let image = case.after.container["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut proof = Proof::not_yet(case, &image);
    match options.engine.image_config(&image, options.pull_limit) {
        Err(why) => proof.reason = why,
        Ok(config) => {
            run_both(case, number, options, &config, &mut proof);
            proof.image_config = Some(config);
        }
    }
    proof.seconds = started.elapsed().as_secs_f64();
    proof
}

/// Runs the case as-is and hardened side by side, then judges.
fn run_both(case: &Case, number: usize, options: &Options, image: &ImageConfig, proof: &mut Proof) {
    if let Some(why) = translate::refused_by_run_as_non_root(&case.after, image) {
        proof.verdict = Verdict::Refused;
        proof.reason = format!("the kubelet would refuse it: {why}");
        return;
    }
    let scratch = match crate::process::scratch_dir("kube-harden-prove-") {
        Ok(dir) => dir,
        Err(e) => {
            proof.reason = format!("no scratch folder: {e}");
            return;
        }
    };
    let sides = [("as-is", &case.before), ("hardened", &case.after)];
    let mut specs = Vec::new();
    for (label, side) in sides {
        let folder = scratch.path().join(label);
        let spec = side_spec(side, options, image, &folder);
        if let Err(e) = make_mounts(&spec.mounts, &folder) {
            proof.reason = format!("cannot make the volume folders: {e}");
            return;
        }
        let name = format!("kube-harden-prove-{}-{number}-{label}", options.run_id);
        specs.push((name, spec, side));
    }
    proof.gaps = specs[1].1.gaps.clone();
    let runs = watch(&specs, options);
    let names: Vec<&str> = specs.iter().map(|(n, _, _)| n.as_str()).collect();
    options.engine.remove(&names);
    drop(scratch);
    let [as_is, hardened] = runs;
    judge(proof, as_is, hardened, image);
}

/// The engine arguments of one side, with the image's user filled in and the mounts under
/// `folder`.
fn side_spec(
    side: &Side,
    options: &Options,
    image: &ImageConfig,
    folder: &std::path::Path,
) -> RunSpec {
    let source = |m: &Mount| folder.join(&m.volume).display().to_string();
    let mut spec = translate::run_spec(side, options.engine, &source);
    let image_user = image.user.split(':').next().filter(|u| !u.is_empty());
    for option in &mut spec.options {
        if option.contains(translate::IMAGE_USER) {
            *option = option.replace(translate::IMAGE_USER, image_user.unwrap_or("0"));
        }
    }
    spec
}

/// Each mount's host folder, fresh and writable by anyone (as a kubelet makes an emptyDir).
fn make_mounts(mounts: &[Mount], folder: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for mount in mounts {
        let dir = folder.join(&mount.volume);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}

/// Starts both sides, then watches them until both have ended or the time is up; with a
/// readiness probe, runs it while the container is up and not yet ready.
fn watch(specs: &[(String, RunSpec, &Side)], options: &Options) -> [Run; 2] {
    let engine = options.engine;
    let mut runs: Vec<Run> = Vec::new();
    let mut probes = Vec::new();
    for (name, spec, side) in specs {
        let mut arguments = vec![
            "--name".to_string(),
            name.clone(),
            "--label".into(),
            format!("{RUN_LABEL}={}", options.run_id),
        ];
        arguments.extend(spec.options.iter().cloned());
        arguments.push(spec.image.clone());
        arguments.extend(spec.command_args.iter().cloned());
        let probe = probe::readiness(&side.container);
        let started = engine.start(&arguments);
        runs.push(Run {
            arguments,
            up: started.is_ok(),
            exit_code: started.as_ref().err().map(|_| -1),
            ready: probe.as_ref().map(|_| false),
            probe_not_run: None,
            log_tail: started.err().map(|e| vec![e]).unwrap_or_default(),
        });
        probes.push(probe);
    }
    let deadline = Instant::now() + options.timeout;
    loop {
        let running: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].up).collect();
        // As-is ended: nothing left to compare with.
        if running.is_empty() || !runs[0].up || Instant::now() >= deadline {
            break;
        }
        let names: Vec<&str> = running.iter().map(|&i| specs[i].0.as_str()).collect();
        if let Ok(states) = engine.states(&names) {
            for (&i, state) in running.iter().zip(states) {
                if let Some(code) = state {
                    runs[i].up = false;
                    runs[i].exit_code = Some(code);
                } else if runs[i].ready == Some(false) {
                    let probe = probes[i]
                        .as_ref()
                        .expect("a probe where readiness is asked");
                    match ask(engine, &specs[i].0, probe) {
                        Ok(ready) => runs[i].ready = Some(ready),
                        Err(why) => {
                            runs[i].ready = None;
                            runs[i].probe_not_run = Some(why);
                        }
                    }
                }
            }
        }
        std::thread::sleep(poll_interval(engine));
    }
    for (i, run) in runs.iter_mut().enumerate() {
        if run.exit_code != Some(-1) {
            let log = engine.logs(&specs[i].0);
            run.log_tail = tail(&log, 20);
        }
        // Up means ready too, where the pod says how to ask.
        run.up = run.up && run.ready != Some(false);
    }
    let hardened = runs.pop().expect("two runs");
    let as_is = runs.pop().expect("two runs");
    [as_is, hardened]
}

/// How often the containers' states are asked for: each ask is a process of the engine's, and
/// podman's take about half a second to start.
fn poll_interval(engine: Engine) -> Duration {
    match engine {
        Engine::Docker => Duration::from_millis(200),
        Engine::Podman => Duration::from_millis(500),
    }
}

/// Runs a readiness probe once: whether it passed, or why it cannot be run at all.
fn ask(engine: Engine, name: &str, probe: &probe::Probe) -> Result<bool, String> {
    let limit = Duration::from_secs(5);
    match probe {
        probe::Probe::Exec(command) => Ok(engine.exec_succeeds(name, command, limit)),
        probe::Probe::HttpGet { port, path } => {
            let pid = engine
                .pid(name)
                .ok_or("the container's process is not known")?;
            probe::http_get_in(pid, *port, path, limit)
                .map_err(|why| format!("httpGet readiness probe not run: {why}"))
        }
    }
}

fn tail(log: &str, lines: usize) -> Vec<String> {
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// The differential verdict: only "as-is up, hardened not" is a regression.
fn judge(proof: &mut Proof, as_is: Run, hardened: Run, image: &ImageConfig) {
    let ended = |run: &Run| match (run.exit_code, run.ready) {
        (Some(-1), _) => "did not start".to_string(),
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(false)) => "never passed its readiness probe".to_string(),
        (None, _) => "is up".to_string(),
    };
    (proof.verdict, proof.reason) = match (as_is.up, hardened.up) {
        (true, true) => (Verdict::Ok, "as-is and hardened both stay up".into()),
        (true, false) => (
            Verdict::Regression,
            format!("as-is stays up, hardened {}", ended(&hardened)),
        ),
        (false, _) => (
            Verdict::CouldNotProve,
            format!("as-is {} too", ended(&as_is)),
        ),
    };
    if proof.verdict == Verdict::Regression {
        proof.errors = remedy::error_lines(&hardened.log_tail.join("\n"));
        proof.advice = proof
            .errors
            .iter()
            .map(|e| e.remedy.advice(&image.user))
            .collect();
    }
    proof.as_is = Some(as_is);
    proof.hardened = Some(hardened);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(up: bool, code: Option<i64>, log: &[&str]) -> Run {
        Run {
            arguments: vec![],
            up,
            exit_code: code,
            ready: None,
            probe_not_run: None,
            log_tail: log.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn proof() -> Proof {
        let case = pods::Case {
            origin: "x".into(),
            workload: "Deployment/web".into(),
            container: "web".into(),
            ..Default::default()
        };
        Proof::not_yet(&case, "i")
    }

    #[test]
    fn only_as_is_up_and_hardened_down_is_a_regression() {
        let image = ImageConfig::default();
        let mut p = proof();
        let log = ["httpd: bind: Permission denied"];
        judge(
            &mut p,
            run(true, None, &[]),
            run(false, Some(1), &log),
            &image,
        );
        assert_eq!(p.verdict, Verdict::Regression);
        assert_eq!(p.reason, "as-is stays up, hardened exited with code 1");
        assert_eq!(p.errors.len(), 1);
        assert!(p.advice[0].contains("below 1024"), "{:?}", p.advice);

        let mut p = proof();
        judge(
            &mut p,
            run(false, Some(2), &[]),
            run(false, Some(1), &log),
            &image,
        );
        assert_eq!(p.verdict, Verdict::CouldNotProve);
        assert_eq!(p.reason, "as-is exited with code 2 too");
        assert!(p.errors.is_empty());

        let mut p = proof();
        judge(&mut p, run(true, None, &[]), run(true, None, &[]), &image);
        assert_eq!(p.verdict, Verdict::Ok);
    }
}
