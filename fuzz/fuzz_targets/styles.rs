//! Fuzz target 2, structured: a workload manifest is built from the fuzzer's bytes in one of
//! many styles (indent 2 or 4, compact or indented lists, flow or block securityContexts,
//! comments, blank lines, CRLF, with or without a final newline, several documents), run
//! through the pipeline, and the lossless invariants of the core contract are checked.
#![no_main]

use std::path::Path;

use arbitrary::Arbitrary;
use kube_harden::report::{Settings, Status};
use kube_harden::sources::manifest::process_text;
use libfuzzer_sys::fuzz_target;
use yaml_serde::Value;

#[derive(Arbitrary, Debug)]
struct Model {
    docs: Vec<Doc>,
    indent4: bool,
    indented_lists: bool,
    crlf: bool,
    final_newline: bool,
    header_comment: bool,
}

#[derive(Arbitrary, Debug)]
struct Doc {
    pod: bool,
    containers: Vec<ContainerModel>,
    pod_sc: ScStyle,
    run_as_user_zero: bool,
    comment_before_containers: bool,
    blank_line: bool,
}

#[derive(Arbitrary, Debug)]
struct ContainerModel {
    sc: ScStyle,
    drop_net_raw: bool,
    trailing_comment: bool,
    flow: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ScStyle {
    Absent,
    EmptyFlow,
    Null,
    Block,
    Flow,
}

fn render(m: &Model) -> String {
    let unit = if m.indent4 { "    " } else { "  " };
    let dash = if m.indented_lists { unit } else { "" };
    let mut lines: Vec<String> = Vec::new();
    if m.header_comment {
        lines.push("# owned by the platform team".into());
    }
    for (i, d) in m.docs.iter().take(3).enumerate() {
        if i > 0 {
            lines.push("---".into());
        }
        let (kind, depth) = if d.pod { ("Pod", 1) } else { ("Deployment", 3) };
        lines.push(format!("apiVersion: {}", if d.pod { "v1" } else { "apps/v1" }));
        lines.push(format!("kind: {kind}"));
        lines.push(format!("metadata:\n{unit}name: w{i}"));
        let mut pad = String::new();
        for key in if d.pod { &["spec"][..] } else { &["spec", "template", "spec"][..] } {
            lines.push(format!("{pad}{key}:"));
            pad.push_str(unit);
        }
        let _ = depth;
        sc_lines(&mut lines, &pad, unit, d.pod_sc, d.run_as_user_zero, "runAsUser: 0");
        if d.comment_before_containers {
            lines.push(format!("{pad}# the containers"));
        }
        lines.push(format!("{pad}containers:"));
        for (j, c) in d.containers.iter().take(3).enumerate() {
            let item = format!("{pad}{dash}- ");
            let inner = format!("{pad}{dash}  ");
            if c.flow {
                lines.push(format!("{item}{{name: c{j}, image: x}}"));
                continue;
            }
            let tail = if c.trailing_comment { "  # pinned" } else { "" };
            lines.push(format!("{item}name: c{j}"));
            lines.push(format!("{inner}image: registry/c{j}:1{tail}"));
            let drop = if c.drop_net_raw { "capabilities: {drop: [NET_RAW]}" } else { "allowPrivilegeEscalation: true" };
            sc_lines(&mut lines, &inner, unit, c.sc, true, drop);
        }
        if d.blank_line {
            lines.push(String::new());
        }
    }
    let nl = if m.crlf { "\r\n" } else { "\n" };
    let mut text = lines.join("\n").replace('\n', nl);
    if m.final_newline {
        text.push_str(nl);
    }
    text
}

fn sc_lines(lines: &mut Vec<String>, pad: &str, unit: &str, style: ScStyle, with_field: bool, field: &str) {
    match style {
        ScStyle::Absent => {}
        ScStyle::EmptyFlow => lines.push(format!("{pad}securityContext: {{}}  # to do")),
        ScStyle::Null => lines.push(format!("{pad}securityContext:")),
        ScStyle::Block if with_field => lines.push(format!("{pad}securityContext:\n{pad}{unit}{field}")),
        ScStyle::Block => lines.push(format!("{pad}securityContext:\n{pad}{unit}runAsNonRoot: true")),
        ScStyle::Flow => lines.push(format!("{pad}securityContext: {{{field}}}")),
    }
}

/// Data with every pod and container securityContext removed.
fn strip(mut v: Value) -> Value {
    fn pods(v: &mut Value) -> Option<&mut Value> {
        let spec = v.get_mut("spec")?;
        if spec.get("containers").is_some() {
            return Some(spec);
        }
        spec.get_mut("template")?.get_mut("spec")
    }
    if let Some(Value::Mapping(pod)) = pods(&mut v) {
        pod.remove("securityContext");
        if let Some(Value::Sequence(cs)) = pod.get_mut("containers") {
            for c in cs {
                if let Value::Mapping(c) = c {
                    c.remove("securityContext");
                }
            }
        }
    }
    v
}

fuzz_target!(|m: Model| {
    if m.docs.is_empty() || m.docs.iter().any(|d| d.containers.is_empty()) {
        return;
    }
    let input = render(&m);
    // This target checks the securityContext-only invariant of the core contract, so the
    // writable /tmp (on by default, it adds volumes) is off; tests/styles_proptest.rs checks
    // the tmp additions exactly.
    let mut settings = Settings::default();
    settings.rules.writable_tmp = false;
    let report = process_text(Path::new("gen.yaml"), input.clone(), &settings);
    let output = match report.status {
        Status::Changed { new_text } => new_text,
        Status::Unchanged => input.clone(),
        other => panic!("{other:?} for\n{input}"),
    };
    let before = kube_harden::verify::load_all(&input).expect("generated input loads");
    let after = kube_harden::verify::load_all(&output).expect("output loads");
    assert_eq!(before.len(), after.len());
    for (b, a) in before.into_iter().zip(after) {
        assert_eq!(strip(b), strip(a), "data outside securityContext changed:\n{input}\n---\n{output}");
    }
    for line in input.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(output.contains(line), "comment {line:?} lost");
    }
    assert_eq!(input.ends_with('\n'), output.ends_with('\n'));
    assert_eq!(m.crlf, output.contains("\r\n"));
    if m.crlf {
        assert!(!output.replace("\r\n", "").contains('\n'), "bare LF in a CRLF file");
    }
    let again = process_text(Path::new("gen.yaml"), output, &settings);
    assert!(matches!(again.status, Status::Unchanged), "not idempotent: {:?}", again.status);
});
