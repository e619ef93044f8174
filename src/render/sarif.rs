//! `check --format sarif`: a SARIF 2.1.0 log for code scanning (`github/codeql-action/upload-sarif`)
//! and other SARIF viewers. One rule per control (its help text is the control's `why`), one
//! result per finding with the file relative to the repository root (`uriBaseId` `SRCROOT`)
//! and the line and column of the field that falls short. Files that could not be handled
//! become tool execution notifications, so a broken file is not mistaken for a clean one.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use crate::policy::Control;
use crate::report::{FileReport, Status};

/// The SARIF version written, and the schema it follows.
pub const SARIF_VERSION: &str = "2.1.0";
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The base every result's file is relative to.
pub const SRCROOT: &str = "SRCROOT";

/// The tool's home page: the package's repository (Cargo.toml).
pub const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

/// What the baseline wants, in a few words, per control (for the rule's short description).
fn wanted(control: Control) -> &'static str {
    match control {
        Control::RunAsNonRoot => "runAsNonRoot: true",
        Control::RunAsUser => "a non-zero runAsUser",
        Control::RunAsGroup => "a non-zero runAsGroup",
        Control::FsGroup => "a non-zero fsGroup",
        Control::SeccompProfile => "seccompProfile RuntimeDefault or Localhost",
        Control::AllowPrivilegeEscalation => "allowPrivilegeEscalation: false",
        Control::ReadOnlyRootFilesystem => "readOnlyRootFilesystem: true",
        Control::CapabilitiesDrop => "capabilities.drop: [ALL]",
        Control::CapabilitiesAdd => "no capabilities.add but NET_BIND_SERVICE",
    }
}

/// GitHub's `security-severity` (0.0 to 10.0; 7.0 and up is "high", 4.0 and up "medium"):
/// running as root and escalating privileges rank highest, the group ids lowest.
fn security_severity(control: Control) -> &'static str {
    match control {
        Control::RunAsNonRoot | Control::AllowPrivilegeEscalation => "7.0",
        Control::RunAsUser | Control::CapabilitiesDrop => "6.0",
        Control::SeccompProfile | Control::ReadOnlyRootFilesystem | Control::CapabilitiesAdd => {
            "5.0"
        }
        Control::RunAsGroup => "4.0",
        Control::FsGroup => "3.0",
    }
}

/// The rule's id: `KH` and the control's place in the contract (`KH1001` is runAsNonRoot).
pub fn rule_id(control: Control) -> String {
    let index = Control::ALL
        .iter()
        .position(|c| *c == control)
        .expect("every control is in ALL");
    format!("KH{}", 1001 + index)
}

/// `RunAsNonRoot` for `runAsNonRoot`, `CapabilitiesDrop` for `capabilities.drop`.
fn pascal_name(control: Control) -> String {
    let mut out = String::new();
    let mut upper = true;
    for c in control.name().chars() {
        if c == '.' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn rule(control: Control) -> Value {
    let name = control.name();
    let (short, full, help_text, help_markdown) = if control.is_report_only() {
        report_only_texts(control)
    } else {
        texts(control)
    };
    json!({
        "id": rule_id(control),
        "name": pascal_name(control),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": help_text, "markdown": help_markdown },
        "helpUri": format!("{INFORMATION_URI}#what-it-changes-the-contract"),
        "defaultConfiguration": { "level": "error" },
        "properties": {
            "tags": ["security", "kubernetes", name],
            "precision": "very-high",
            "problem.severity": "error",
            "security-severity": security_severity(control),
        },
    })
}

/// The texts of a rule: what to set, why, and that `fix` sets it.
fn texts(control: Control) -> (String, String, String, String) {
    let (name, why) = (control.name(), control.why());
    let short = format!("The securityContext should set {}.", wanted(control));
    let full = format!("{}: {why}.", wanted(control));
    let help_text = format!(
        "Set {} in the pod or container securityContext: {why}. `kube-harden fix` makes the change; \
         to opt a workload out, annotate it with kube-harden.io/skip: {name}, or add an exemption \
         with a reason to .kube-harden.yaml.",
        wanted(control)
    );
    let help_markdown = format!(
        "Set `{}` in the pod or container `securityContext`: {why}.\n\n\
         `kube-harden fix` makes the change, keeping every other byte of the file. To opt a \
         workload out, annotate it with `kube-harden.io/skip: {name}`, or add an exemption with a \
         reason to `.kube-harden.yaml`.",
        wanted(control)
    );
    (short, full, help_text, help_markdown)
}

/// The texts of a rule whose field `fix` keeps as written (`capabilities.add`): what to remove by
/// hand, and why the tool does not.
fn report_only_texts(control: Control) -> (String, String, String, String) {
    let (name, why) = (control.name(), control.why());
    let short = "A container should add no capability but NET_BIND_SERVICE.".to_string();
    let full = format!("{}: {why}.", wanted(control));
    let help_text = format!(
        "Remove every capability but NET_BIND_SERVICE from the container's securityContext \
         capabilities.add: {why}. `kube-harden fix` keeps the list as written (the app may need \
         what it adds) and names each such capability in a risk note; to opt a workload out, \
         annotate it with kube-harden.io/skip: {name}, or add an exemption with a reason to \
         .kube-harden.yaml."
    );
    let help_markdown = format!(
        "Remove every capability but `NET_BIND_SERVICE` from the container's \
         `securityContext.capabilities.add`: {why}.\n\n`kube-harden fix` keeps the list as \
         written (the app may need what it adds) and names each such capability in a risk note. \
         To opt a workload out, annotate it with `kube-harden.io/skip: {name}`, or add an \
         exemption with a reason to `.kube-harden.yaml`."
    );
    (short, full, help_text, help_markdown)
}

/// A path as the repository sees it: relative to `root`, `/`-separated, without `.` parts.
/// `None` when the file is not inside `root`.
pub fn relative_path(path: &Path, root: &Path) -> Option<String> {
    let absolute = std::fs::canonicalize(path).ok().or_else(|| {
        std::env::current_dir()
            .ok()
            .map(|cwd| normalise(&cwd.join(path)))
    })?;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let rel = absolute.strip_prefix(&root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes a path for a URI reference: unreserved characters and `/` stay.
pub fn encode_uri_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The artifact location of a file: relative to `SRCROOT` when inside the root, else an
/// absolute `file:` URI.
fn artifact_location(path: &Path, root: &Path) -> Value {
    match relative_path(path, root) {
        Some(rel) => json!({ "uri": encode_uri_path(&rel), "uriBaseId": SRCROOT }),
        None => {
            let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            json!({ "uri": file_uri(&absolute, false) })
        }
    }
}

/// `file:///abs/path` (with a trailing `/` for a folder).
fn file_uri(path: &Path, folder: bool) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = if text.starts_with('/') {
        text
    } else {
        format!("/{text}")
    };
    let mut uri = format!("file://{}", encode_uri_path(&text));
    if folder && !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The SARIF log for `check`: `root` is the repository root that file URIs are relative to.
pub fn sarif(reports: &[FileReport], root: &Path) -> Value {
    let rules: Vec<Value> = Control::ALL.into_iter().map(rule).collect();
    let mut results = Vec::new();
    for r in reports {
        let location = artifact_location(&r.path, root);
        for f in &r.findings {
            let w = &r.workloads[f.workload];
            let scope = match &f.container {
                Some(c) => format!("container '{c}'"),
                None => "pod".to_string(),
            };
            let person = if f.fixable {
                ""
            } else {
                " This pod is left to a person: kube-harden does not change it."
            };
            let text = if f.control.is_report_only() {
                format!(
                    "{}/{} {scope}: '{}' is {}; Pod Security \"restricted\" admits {}. kube-harden keeps the list as written: a person decides.",
                    w.kind,
                    w.name,
                    f.control.name(),
                    f.current,
                    f.wanted
                )
            } else {
                format!(
                    "{}/{} {scope}: '{}' is {}; the baseline sets {}.{person}",
                    w.kind,
                    w.name,
                    f.control.name(),
                    f.current,
                    f.wanted
                )
            };
            // Stable when lines move; the document index separates same-named workloads.
            let fingerprint = format!(
                "{}|{}|{}/{}|{}|{}",
                location["uri"].as_str().unwrap_or_default(),
                w.document,
                w.kind,
                w.name,
                f.container.as_deref().unwrap_or(""),
                f.control.name()
            );
            let index = Control::ALL
                .iter()
                .position(|c| *c == f.control)
                .expect("every control is in ALL");
            results.push(json!({
                "ruleId": rule_id(f.control),
                "ruleIndex": index,
                "level": "error",
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": location.clone(),
                        "region": { "startLine": f.line, "startColumn": f.col },
                    },
                }],
                "partialFingerprints": { "kubeHardenFinding/v1": fingerprint },
            }));
        }
    }
    let notifications: Vec<Value> = reports
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed(e) => Some(json!({
                "level": "error",
                "message": { "text": format!("The file could not be handled: {}.", e.message.trim_end_matches('.')) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact_location(&r.path, root),
                        "region": { "startLine": e.line, "startColumn": e.col },
                    },
                }],
            })),
            _ => None,
        })
        .collect();
    let root_abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {
                "driver": {
                    "name": env!("CARGO_PKG_NAME"),
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                },
            },
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": {
                SRCROOT: { "uri": file_uri(&root_abs, true) },
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_and_names_follow_the_contract_order() {
        assert_eq!(rule_id(Control::RunAsNonRoot), "KH1001");
        assert_eq!(rule_id(Control::CapabilitiesDrop), "KH1008");
        assert_eq!(rule_id(Control::CapabilitiesAdd), "KH1009");
        assert_eq!(pascal_name(Control::CapabilitiesAdd), "CapabilitiesAdd");
        assert_eq!(pascal_name(Control::CapabilitiesDrop), "CapabilitiesDrop");
        assert_eq!(pascal_name(Control::RunAsNonRoot), "RunAsNonRoot");
    }

    #[test]
    fn uri_paths_are_percent_encoded() {
        assert_eq!(encode_uri_path("a b/c#d%.yaml"), "a%20b/c%23d%25.yaml");
        assert_eq!(encode_uri_path("ä.yaml"), "%C3%A4.yaml");
    }

    #[test]
    fn relative_paths_drop_dot_parts_and_use_slashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("k8s")).unwrap();
        std::fs::write(dir.path().join("k8s/app.yaml"), "").unwrap();
        let path = dir.path().join("./k8s/../k8s/app.yaml");
        assert_eq!(
            relative_path(&path, dir.path()).as_deref(),
            Some("k8s/app.yaml")
        );
        let other = tempfile::tempdir().unwrap();
        assert_eq!(relative_path(other.path(), dir.path()), None);
    }
}
