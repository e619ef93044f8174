//! The proofs as people read them: plain text for `prove` and `explain`, Markdown for the PR
//! body and the step summary.

use super::{Proof, Verdict};

/// One proof as text lines: the verdict, then for a regression its error lines and remedies.
pub fn text(proof: &Proof) -> String {
    let mut out = format!(
        "{} ({}) container {} [{}]: {}: {} ({:.1} s)\n",
        proof.workload,
        proof.origin,
        proof.container,
        proof.image,
        proof.verdict.label(),
        proof.reason,
        proof.seconds
    );
    for (error, advice) in proof.errors.iter().zip(&proof.advice) {
        out.push_str(&format!("    {}\n      -> {advice}\n", error.line));
    }
    if proof.verdict == Verdict::Regression && proof.errors.is_empty() {
        let last = proof.hardened.as_ref().and_then(|r| r.log_tail.last());
        out.push_str(&format!(
            "    no known error line{}\n",
            last.map(|l| format!("; the log ends with: {l}"))
                .unwrap_or_default()
        ));
    }
    let not_run = [&proof.as_is, &proof.hardened]
        .into_iter()
        .flatten()
        .find_map(|run| run.probe_not_run.as_ref());
    if let Some(why) = not_run {
        out.push_str(&format!("    ({why})\n"));
    }
    for gap in &proof.gaps {
        out.push_str(&format!("    (not reproduced: {gap})\n"));
    }
    out
}

/// The counts line: `4 containers proven: 2 ok, 1 regression, ...`.
pub fn counts(proofs: &[Proof]) -> String {
    let count = |v: Verdict| proofs.iter().filter(|p| p.verdict == v).count();
    format!(
        "{} containers proven: {} ok, {} regressions, {} refused by runAsNonRoot, {} could not prove",
        proofs.len(),
        count(Verdict::Ok),
        count(Verdict::Regression),
        count(Verdict::Refused),
        count(Verdict::CouldNotProve),
    )
}

/// The "Start proof" section of a PR body or step summary: a table, then each regression's
/// error lines and remedies.
pub fn markdown(proofs: &[Proof]) -> String {
    let mut out = String::from("### Start proof\n\n");
    if proofs.is_empty() {
        out.push_str("No changed container to prove.\n");
        return out;
    }
    out.push_str("| workload | container | image | verdict | why |\n|---|---|---|---|---|\n");
    for p in proofs {
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | **{}** | {} |\n",
            p.workload,
            p.container,
            p.image,
            p.verdict.label(),
            p.reason.replace('|', "\\|")
        ));
    }
    for p in proofs.iter().filter(|p| !p.errors.is_empty()) {
        out.push_str(&format!(
            "\n`{}` container `{}`:\n",
            p.workload, p.container
        ));
        for (error, advice) in p.errors.iter().zip(&p.advice) {
            out.push_str(&format!("- `{}`: {advice}\n", error.line.replace('`', "'")));
        }
    }
    out.push_str(&format!("\n{}\n", counts(proofs)));
    out
}
