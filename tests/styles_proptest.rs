//! Property test: Kubernetes workload manifests written in random styles (indentation, sequence
//! style, flow/block collections, comments, blank lines, document markers, CRLF, missing final
//! newline, pre-existing securityContexts) go through `sources::manifest::process_text`, and the output
//! must keep the tool's invariants (see docs/edit-style.md):
//!
//! 1. a workload file is Changed or Unchanged (never Failed/Skipped);
//! 2. the output re-loads with yaml_serde, with the same number of documents;
//! 3. with every pod/container `securityContext` removed, after equals before plus exactly the
//!    writable-/tmp additions (on by default; `common::with_tmp_additions`), in key order too;
//! 4. every pod and container securityContext meets the baseline exactly as the contract says;
//! 5. lossless: comments survive in order, and every line that has no reason to change is still
//!    in the output, byte for byte, in order;
//! 6. line endings and the final newline are unchanged;
//! 7. a second run changes nothing;
//! 8. cut at its document markers (how streams from 256 KiB on are parsed, in parallel), the
//!    input and the output parse to the same tree as in a single pass.
//!
//! The YAML text is written by hand from a small random model (never by a YAML serialiser), so
//! the generator knows which input lines the tool is allowed to rewrite.

use std::fmt::Write as _;
use std::path::Path;

use kube_harden::report::{Settings, Status};
use kube_harden::sources::manifest::process_text;
use kube_harden::verify::load_all;
use proptest::prelude::*;
use yaml_serde::{Mapping, Value};

mod common;

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    Pod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SecType {
    Unconfined,
    RuntimeDefault,
    Localhost,
}

impl SecType {
    fn text(self) -> &'static str {
        match self {
            SecType::Unconfined => "Unconfined",
            SecType::RuntimeDefault => "RuntimeDefault",
            SecType::Localhost => "Localhost",
        }
    }
}

/// How a securityContext is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScForm {
    /// A block mapping with the model's fields.
    Block,
    /// `securityContext: {a: 1, ...}` on one line.
    Flow,
    /// `securityContext: {}`
    EmptyFlow,
    /// `securityContext:` with nothing after it.
    Null,
    /// `securityContext: ~`
    Tilde,
}

#[derive(Clone, Debug)]
struct Seccomp {
    ty: SecType,
    flow: bool,
    /// 0: plain, 1: 'single', 2: "double" quoted type.
    quote: u8,
}

impl Seccomp {
    fn text(&self) -> String {
        let t = self.ty.text();
        match self.quote % 3 {
            0 => t.to_string(),
            1 => format!("'{t}'"),
            _ => format!("\"{t}\""),
        }
    }
}

#[derive(Clone, Debug)]
struct PodSc {
    form: ScForm,
    non_root: Option<bool>,
    user: Option<i64>,
    group: Option<i64>,
    fs_group: Option<i64>,
    seccomp: Option<Seccomp>,
    rotate: u8,
}

#[derive(Clone, Debug)]
struct Drop {
    items: Vec<&'static str>,
    flow: bool,
}

#[derive(Clone, Debug)]
struct Caps {
    flow: bool,
    drop: Option<Drop>,
    add: bool,
}

#[derive(Clone, Debug)]
struct ContainerSc {
    form: ScForm,
    ape: Option<bool>,
    rorf: Option<bool>,
    user: Option<i64>,
    non_root: Option<bool>,
    caps: Option<Caps>,
    seccomp: Option<Seccomp>,
    rotate: u8,
}

#[derive(Clone, Debug)]
struct Container {
    flow: bool,
    image: usize,
    ports: Vec<u16>,
    ports_flow: bool,
    /// (index into ENV, value written as a literal block scalar)
    env: Vec<(usize, bool)>,
    pull_policy: bool,
    sc: Option<ContainerSc>,
    sc_pos: u8,
}

#[derive(Clone, Debug)]
struct Workload {
    kind: Kind,
    name: usize,
    pod_sc: Option<PodSc>,
    sc_pos: u8,
    init: Vec<Container>,
    containers: Vec<Container>,
    volumes: bool,
    node_selector: bool,
    service_account: bool,
}

#[derive(Clone, Debug)]
enum Body {
    Workload(Workload),
    ConfigMap(bool),
    Service(u16),
}

/// Per-document layout style.
#[derive(Clone, Copy, Debug)]
struct Style {
    indent: usize,
    compact: bool,
    /// `{ a: 1 }` instead of `{a: 1}`.
    spaced: bool,
    /// Some nested collections use the other indentation step / sequence style.
    mixed: bool,
    /// Flow maps with double-quoted keys (JSON style).
    json: bool,
}

/// How flow collections are written.
#[derive(Clone, Copy, Debug)]
struct FlowLook {
    spaced: bool,
    json: bool,
}

#[derive(Clone, Debug)]
struct Doc {
    style: Style,
    body: Body,
}

#[derive(Clone, Debug)]
struct FileModel {
    header: bool,
    leading_sep: bool,
    end_markers: bool,
    docs: Vec<Doc>,
    trailing_comment: bool,
    crlf: bool,
    final_newline: bool,
    /// Drives comments, blank lines and trailing comments; all zeros means none.
    decor: Vec<u8>,
}

const NAMES: &[&str] = &["web", "api", "worker", "db", "cache"];
const IMAGES: &[&str] = &[
    "nginx:1.25",
    "busybox",
    "\"ghcr.io/acme/app:v1\"",
    "'redis:7'",
    "registry.local:5000/app@sha256:abc123",
];
const ENV: &[(&str, &str)] = &[
    ("MODE", "prod"),
    ("DEBUG", "\"false\""),
    ("GREETING", "hello world"),
    ("RUN_AS_USER", "\"0\""),
];

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn id_value() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(1234i64)]
}

fn sc_form() -> impl Strategy<Value = ScForm> {
    prop_oneof![
        5 => Just(ScForm::Block),
        2 => Just(ScForm::Flow),
        2 => Just(ScForm::EmptyFlow),
        1 => Just(ScForm::Null),
        1 => Just(ScForm::Tilde),
    ]
}

fn seccomp() -> impl Strategy<Value = Seccomp> {
    (
        prop_oneof![
            Just(SecType::Unconfined),
            Just(SecType::RuntimeDefault),
            Just(SecType::Localhost)
        ],
        any::<bool>(),
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(ty, flow, quote)| Seccomp { ty, flow, quote })
}

fn pod_sc() -> impl Strategy<Value = PodSc> {
    (
        sc_form(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(id_value()),
        proptest::option::of(id_value()),
        proptest::option::of(id_value()),
        proptest::option::of(seccomp()),
        any::<u8>(),
    )
        .prop_map(
            |(form, non_root, user, group, fs_group, seccomp, rotate)| PodSc {
                form,
                non_root,
                user,
                group,
                fs_group,
                seccomp,
                rotate,
            },
        )
}

fn drop_list() -> impl Strategy<Value = Drop> {
    (
        prop_oneof![
            3 => Just(vec!["NET_RAW"]),
            1 => Just(vec!["NET_RAW", "MKNOD"]),
            1 => Just(vec![]),
            1 => Just(vec!["ALL"]),
            1 => Just(vec!["NET_RAW", "ALL"]),
        ],
        any::<bool>(),
    )
        .prop_map(|(items, flow)| Drop {
            flow: flow || items.is_empty(),
            items,
        })
}

fn caps() -> impl Strategy<Value = Caps> {
    (
        prop_oneof![3 => Just(false), 1 => Just(true)],
        proptest::option::weighted(0.8, drop_list()),
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(flow, drop, add)| Caps { flow, drop, add })
}

fn container_sc() -> impl Strategy<Value = ContainerSc> {
    (
        sc_form(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(id_value()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(caps()),
        proptest::option::weighted(0.3, seccomp()),
        any::<u8>(),
    )
        .prop_map(
            |(form, ape, rorf, user, non_root, caps, seccomp, rotate)| ContainerSc {
                form,
                ape,
                rorf,
                user,
                non_root,
                caps,
                seccomp,
                rotate,
            },
        )
}

fn container() -> impl Strategy<Value = Container> {
    (
        prop_oneof![4 => Just(false), 1 => Just(true)],
        0..IMAGES.len(),
        proptest::collection::vec(
            prop_oneof![Just(80u16), Just(8080u16), Just(9090u16)],
            0..=2,
        ),
        any::<bool>(),
        proptest::collection::vec(
            (0..ENV.len(), prop_oneof![4 => Just(false), 1 => Just(true)]),
            0..=2,
        ),
        any::<bool>(),
        proptest::option::weighted(0.6, container_sc()),
        any::<u8>(),
    )
        .prop_map(
            |(flow, image, ports, ports_flow, env, pull_policy, sc, sc_pos)| Container {
                flow,
                image,
                ports,
                ports_flow,
                env,
                pull_policy,
                sc,
                sc_pos,
            },
        )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Deployment),
        Just(Kind::StatefulSet),
        Just(Kind::DaemonSet),
        Just(Kind::Job),
        Just(Kind::CronJob),
        Just(Kind::Pod),
    ]
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        kind(),
        0..NAMES.len(),
        proptest::option::weighted(0.6, pod_sc()),
        any::<u8>(),
        proptest::collection::vec(container(), 0..=2),
        proptest::collection::vec(container(), 1..=3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(kind, name, pod_sc, sc_pos, init, containers, volumes, node_selector, sa)| Workload {
                kind,
                name,
                pod_sc,
                sc_pos,
                init,
                containers,
                volumes,
                node_selector,
                service_account: sa,
            },
        )
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop_oneof![Just(2usize), Just(4usize)],
        any::<bool>(),
        prop_oneof![3 => Just(false), 1 => Just(true)],
        prop_oneof![3 => Just(false), 1 => Just(true)],
        prop_oneof![4 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(indent, compact, spaced, mixed, json)| Style {
            indent,
            compact,
            spaced,
            mixed,
            json,
        })
}

fn file_model() -> impl Strategy<Value = FileModel> {
    let workload_doc = (style(), workload()).prop_map(|(style, w)| Doc {
        style,
        body: Body::Workload(w),
    });
    let other_doc = (
        style(),
        prop_oneof![
            any::<bool>().prop_map(Body::ConfigMap),
            prop_oneof![Just(80u16), Just(443u16)].prop_map(Body::Service),
        ],
    )
        .prop_map(|(style, body)| Doc { style, body });
    (
        any::<bool>(),
        any::<bool>(),
        prop_oneof![3 => Just(false), 1 => Just(true)],
        proptest::collection::vec(workload_doc, 1..=3),
        proptest::option::weighted(0.3, (other_doc, any::<u8>())),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(prop_oneof![2 => Just(0u8), 1 => any::<u8>()], 0..48),
    )
        .prop_map(
            |(
                header,
                leading_sep,
                end_markers,
                mut docs,
                other,
                trailing_comment,
                crlf,
                final_newline,
                decor,
            )| {
                if let Some((doc, at)) = other {
                    let at = at as usize % (docs.len() + 1);
                    docs.insert(at, doc);
                }
                FileModel {
                    header,
                    leading_sep,
                    end_markers,
                    docs,
                    trailing_comment,
                    crlf,
                    final_newline,
                    decor,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Model -> text
// ---------------------------------------------------------------------------------------------

/// A node of the text to write. `bool` fields say whether the tool may rewrite the line.
#[derive(Clone, Debug)]
enum Node {
    /// A plain or quoted scalar on the key's line.
    Scalar(String, bool),
    /// A one-line flow collection on the key's line (or the dash's line).
    Flow(String, bool),
    /// An empty value the tool fills: "" (`key:`), "{}" or "~"; may be followed by hint comments.
    Empty(&'static str),
    /// A literal block scalar (`key: |`) with these content lines.
    Block(Vec<&'static str>),
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

fn s(text: impl Into<String>) -> Node {
    Node::Scalar(text.into(), false)
}

fn entry(key: &str, node: Node) -> (String, Node) {
    (key.to_string(), node)
}

/// Joins flow entries as `{a, b}` or `{ a, b }`.
fn flow_map(entries: &[String], look: FlowLook) -> String {
    if entries.is_empty() {
        return "{}".into();
    }
    let entries: Vec<String> = entries
        .iter()
        .map(|e| match e.split_once(": ") {
            Some((k, v)) if look.json => format!("\"{k}\": {v}"),
            _ => e.clone(),
        })
        .collect();
    if look.spaced {
        format!("{{ {} }}", entries.join(", "))
    } else {
        format!("{{{}}}", entries.join(", "))
    }
}

fn flow_seq(items: &[&str], look: FlowLook) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    if look.spaced {
        format!("[ {} ]", items.join(", "))
    } else {
        format!("[{}]", items.join(", "))
    }
}

fn seccomp_flow(sc: &Seccomp, look: FlowLook) -> String {
    let mut e = vec![format!("type: {}", sc.text())];
    if sc.ty == SecType::Localhost {
        e.push("localhostProfile: profiles/audit.json".into());
    }
    flow_map(&e, look)
}

fn seccomp_node(sc: &Seccomp, look: FlowLook) -> Node {
    let changes = sc.ty == SecType::Unconfined;
    if sc.flow {
        return Node::Flow(seccomp_flow(sc, look), changes);
    }
    let mut e = vec![entry("type", Node::Scalar(sc.text(), changes))];
    if sc.ty == SecType::Localhost {
        e.push(entry("localhostProfile", s("profiles/audit.json")));
    }
    Node::Map(e)
}

fn id_text(v: i64) -> Node {
    Node::Scalar(v.to_string(), v == 0)
}

fn pod_sc_node(sc: &PodSc, look: FlowLook) -> Node {
    match sc.form {
        ScForm::EmptyFlow => return Node::Empty("{}"),
        ScForm::Null => return Node::Empty(""),
        ScForm::Tilde => return Node::Empty("~"),
        ScForm::Block | ScForm::Flow => {}
    }
    let mut block: Vec<(String, Node)> = vec![];
    let mut flow: Vec<String> = vec![];
    if let Some(v) = sc.non_root {
        block.push(entry("runAsNonRoot", Node::Scalar(v.to_string(), !v)));
        flow.push(format!("runAsNonRoot: {v}"));
    }
    for (key, v) in [
        ("runAsUser", sc.user),
        ("runAsGroup", sc.group),
        ("fsGroup", sc.fs_group),
    ] {
        if let Some(v) = v {
            block.push(entry(key, id_text(v)));
            flow.push(format!("{key}: {v}"));
        }
    }
    if let Some(sec) = &sc.seccomp {
        block.push(entry("seccompProfile", seccomp_node(sec, look)));
        flow.push(format!("seccompProfile: {}", seccomp_flow(sec, look)));
    }
    if !block.is_empty() {
        let r = sc.rotate as usize % block.len();
        block.rotate_left(r);
        flow.rotate_left(r);
    }
    match sc.form {
        ScForm::Flow => Node::Flow(flow_map(&flow, look), true),
        _ if block.is_empty() => Node::Empty(""),
        _ => Node::Map(block),
    }
}

/// The flow text of a container securityContext.
fn container_sc_flow(sc: &ContainerSc, look: FlowLook) -> String {
    if matches!(sc.form, ScForm::EmptyFlow | ScForm::Null | ScForm::Tilde) {
        return "{}".into();
    }
    let mut flow: Vec<String> = vec![];
    if let Some(v) = sc.ape {
        flow.push(format!("allowPrivilegeEscalation: {v}"));
    }
    if let Some(v) = sc.rorf {
        flow.push(format!("readOnlyRootFilesystem: {v}"));
    }
    if let Some(v) = sc.user {
        flow.push(format!("runAsUser: {v}"));
    }
    if let Some(v) = sc.non_root {
        flow.push(format!("runAsNonRoot: {v}"));
    }
    if let Some(c) = &sc.caps {
        flow.push(format!("capabilities: {}", caps_flow(c, look)));
    }
    if let Some(sec) = &sc.seccomp {
        flow.push(format!("seccompProfile: {}", seccomp_flow(sec, look)));
    }
    if !flow.is_empty() {
        let r = sc.rotate as usize % flow.len();
        flow.rotate_left(r);
    }
    flow_map(&flow, look)
}

fn caps_flow(c: &Caps, look: FlowLook) -> String {
    let mut e = vec![];
    if let Some(d) = &c.drop {
        e.push(format!("drop: {}", flow_seq(&d.items, look)));
    }
    if c.add {
        e.push(format!("add: {}", flow_seq(&["NET_BIND_SERVICE"], look)));
    }
    flow_map(&e, look)
}

fn container_sc_node(sc: &ContainerSc, look: FlowLook) -> Node {
    match sc.form {
        ScForm::EmptyFlow => return Node::Empty("{}"),
        ScForm::Null => return Node::Empty(""),
        ScForm::Tilde => return Node::Empty("~"),
        ScForm::Flow => return Node::Flow(container_sc_flow(sc, look), true),
        ScForm::Block => {}
    }
    let mut block: Vec<(String, Node)> = vec![];
    if let Some(v) = sc.ape {
        block.push(entry(
            "allowPrivilegeEscalation",
            Node::Scalar(v.to_string(), v),
        ));
    }
    if let Some(v) = sc.rorf {
        block.push(entry(
            "readOnlyRootFilesystem",
            Node::Scalar(v.to_string(), !v),
        ));
    }
    if let Some(v) = sc.user {
        block.push(entry("runAsUser", id_text(v)));
    }
    if let Some(v) = sc.non_root {
        block.push(entry("runAsNonRoot", Node::Scalar(v.to_string(), !v)));
    }
    if let Some(c) = &sc.caps {
        let node = if c.flow {
            let lacks_all = !c.drop.as_ref().is_some_and(|d| d.items.contains(&"ALL"));
            Node::Flow(caps_flow(c, look), lacks_all)
        } else {
            let mut e = vec![];
            if let Some(d) = &c.drop {
                let lacks_all = !d.items.contains(&"ALL");
                let node = if d.flow {
                    Node::Flow(flow_seq(&d.items, look), lacks_all)
                } else {
                    Node::Seq(d.items.iter().map(|i| s(*i)).collect())
                };
                e.push(entry("drop", node));
            }
            if c.add {
                e.push(entry("add", Node::Seq(vec![s("NET_BIND_SERVICE")])));
            }
            if e.is_empty() {
                Node::Empty("")
            } else {
                Node::Map(e)
            }
        };
        block.push(entry("capabilities", node));
    }
    if let Some(sec) = &sc.seccomp {
        block.push(entry("seccompProfile", seccomp_node(sec, look)));
    }
    if block.is_empty() {
        return Node::Empty("");
    }
    let r = sc.rotate as usize % block.len();
    block.rotate_left(r);
    Node::Map(block)
}

fn container_node(c: &Container, name: &str, look: FlowLook) -> Node {
    if c.flow {
        let mut e = vec![
            format!("name: {name}"),
            format!("image: {}", IMAGES[c.image]),
        ];
        if !c.ports.is_empty() {
            let ports: Vec<String> = c
                .ports
                .iter()
                .map(|p| flow_map(&[format!("containerPort: {p}")], look))
                .collect();
            let refs: Vec<&str> = ports.iter().map(String::as_str).collect();
            e.push(format!("ports: {}", flow_seq(&refs, look)));
        }
        if let Some(sc) = &c.sc {
            e.push(format!("securityContext: {}", container_sc_flow(sc, look)));
        }
        // The tool inserts or extends a securityContext inside this line.
        return Node::Flow(flow_map(&e, look), true);
    }
    let mut rest: Vec<(String, Node)> = vec![entry("image", s(IMAGES[c.image]))];
    if c.pull_policy {
        rest.push(entry("imagePullPolicy", s("IfNotPresent")));
    }
    if !c.ports.is_empty() {
        let node = if c.ports_flow {
            let ports: Vec<String> = c
                .ports
                .iter()
                .map(|p| flow_map(&[format!("containerPort: {p}")], look))
                .collect();
            let refs: Vec<&str> = ports.iter().map(String::as_str).collect();
            Node::Flow(flow_seq(&refs, look), false)
        } else {
            Node::Seq(
                c.ports
                    .iter()
                    .map(|p| {
                        Node::Map(vec![
                            entry("containerPort", s(p.to_string())),
                            entry("protocol", s("TCP")),
                        ])
                    })
                    .collect(),
            )
        };
        rest.push(entry("ports", node));
    }
    if !c.env.is_empty() {
        let items = c
            .env
            .iter()
            .map(|&(i, block)| {
                let value = if block {
                    Node::Block(vec!["first line", "runAsUser: 0"])
                } else {
                    s(ENV[i].1)
                };
                Node::Map(vec![entry("name", s(ENV[i].0)), entry("value", value)])
            })
            .collect();
        rest.push(entry("env", Node::Seq(items)));
    }
    if let Some(sc) = &c.sc {
        let at = c.sc_pos as usize % (rest.len() + 1);
        rest.insert(at, entry("securityContext", container_sc_node(sc, look)));
    }
    let mut all = vec![entry("name", s(name))];
    all.extend(rest);
    Node::Map(all)
}

fn pod_spec_node(w: &Workload, look: FlowLook) -> Node {
    let mut e: Vec<(String, Node)> = vec![];
    if w.service_account {
        e.push(entry("serviceAccountName", s("app")));
    }
    if matches!(w.kind, Kind::Job | Kind::CronJob) {
        e.push(entry("restartPolicy", s("Never")));
    }
    if w.node_selector {
        e.push(entry(
            "nodeSelector",
            Node::Map(vec![entry("kubernetes.io/os", s("linux"))]),
        ));
    }
    if !w.init.is_empty() {
        let items = w
            .init
            .iter()
            .enumerate()
            .map(|(i, c)| container_node(c, &format!("init{i}"), look))
            .collect();
        e.push(entry("initContainers", Node::Seq(items)));
    }
    let items = w
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| container_node(c, &format!("app{i}"), look))
        .collect();
    e.push(entry("containers", Node::Seq(items)));
    if w.volumes {
        e.push(entry(
            "volumes",
            Node::Seq(vec![Node::Map(vec![
                entry("name", s("tmp")),
                entry("emptyDir", Node::Flow("{}".into(), false)),
            ])]),
        ));
    }
    if let Some(sc) = &w.pod_sc {
        let at = w.sc_pos as usize % (e.len() + 1);
        e.insert(at, entry("securityContext", pod_sc_node(sc, look)));
    }
    Node::Map(e)
}

fn labels(name: &str) -> Node {
    Node::Map(vec![entry("app", s(name))])
}

fn doc_node(body: &Body, look: FlowLook) -> Node {
    match body {
        Body::ConfigMap(block) => {
            let mut data = vec![entry("runAsUser", s("\"0\""))];
            if *block {
                data.push(entry(
                    "pod.yaml",
                    Node::Block(vec!["securityContext: {}", "runAsNonRoot: false"]),
                ));
            }
            Node::Map(vec![
                entry("apiVersion", s("v1")),
                entry("kind", s("ConfigMap")),
                entry("metadata", Node::Map(vec![entry("name", s("settings"))])),
                entry("data", Node::Map(data)),
            ])
        }
        Body::Service(port) => Node::Map(vec![
            entry("apiVersion", s("v1")),
            entry("kind", s("Service")),
            entry(
                "metadata",
                Node::Flow(flow_map(&["name: svc".into()], look), false),
            ),
            entry(
                "spec",
                Node::Map(vec![
                    entry("selector", labels("web")),
                    entry(
                        "ports",
                        Node::Seq(vec![Node::Map(vec![
                            entry("port", s(port.to_string())),
                            entry("targetPort", s("8080")),
                        ])]),
                    ),
                ]),
            ),
        ]),
        Body::Workload(w) => {
            let name = NAMES[w.name];
            let pod = pod_spec_node(w, look);
            let template = Node::Map(vec![
                entry("metadata", Node::Map(vec![entry("labels", labels(name))])),
                entry("spec", pod),
            ]);
            let (api, kind, spec) = match w.kind {
                Kind::Pod => ("v1", "Pod", pod_spec_node(w, look)),
                Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => {
                    let mut e = vec![];
                    if w.kind != Kind::DaemonSet {
                        e.push(entry("replicas", s("2")));
                    }
                    if w.kind == Kind::StatefulSet {
                        e.push(entry("serviceName", s(name)));
                    }
                    e.push(entry(
                        "selector",
                        Node::Map(vec![entry("matchLabels", labels(name))]),
                    ));
                    e.push(entry("template", template));
                    let kind = match w.kind {
                        Kind::Deployment => "Deployment",
                        Kind::StatefulSet => "StatefulSet",
                        _ => "DaemonSet",
                    };
                    ("apps/v1", kind, Node::Map(e))
                }
                Kind::Job => (
                    "batch/v1",
                    "Job",
                    Node::Map(vec![
                        entry("backoffLimit", s("2")),
                        entry("template", template),
                    ]),
                ),
                Kind::CronJob => (
                    "batch/v1",
                    "CronJob",
                    Node::Map(vec![
                        entry("schedule", s("\"*/5 * * * *\"")),
                        entry(
                            "jobTemplate",
                            Node::Map(vec![entry(
                                "spec",
                                Node::Map(vec![entry("template", template)]),
                            )]),
                        ),
                    ]),
                ),
            };
            Node::Map(vec![
                entry("apiVersion", s(api)),
                entry("kind", s(kind)),
                entry(
                    "metadata",
                    Node::Map(vec![entry("name", s(name)), entry("labels", labels(name))]),
                ),
                entry("spec", spec),
            ])
        }
    }
}

/// One line of the generated file (without its line ending).
#[derive(Clone, Debug)]
struct Line {
    text: String,
    /// The tool may rewrite this line (it holds a value to replace or a flow collection that
    /// grows).
    mutable: bool,
}

struct Writer<'a> {
    lines: Vec<Line>,
    decor: &'a [u8],
    pos: usize,
    comments: usize,
    /// Trailing comment markers, in order.
    tails: Vec<String>,
    style: Style,
}

fn pad(col: usize) -> String {
    " ".repeat(col)
}

impl Writer<'_> {
    fn byte(&mut self) -> u8 {
        if self.decor.is_empty() {
            return 0;
        }
        let b = self.decor[self.pos % self.decor.len()];
        self.pos += 1;
        b
    }

    fn push(&mut self, text: String, mutable: bool) {
        self.lines.push(Line { text, mutable });
    }

    fn comment(&mut self, col: usize) {
        self.comments += 1;
        let n = self.comments;
        let text = match n % 3 {
            0 => format!("{}# note {n}", pad(col)),
            1 => format!("{}#note {n}: runAsUser: 0", pad(col)),
            _ => format!("{}## note {n} -- keep", pad(col)),
        };
        self.push(text, false);
    }

    /// Blank lines and comment lines before an entry at `col`.
    fn before_entry(&mut self, col: usize) {
        match self.byte() % 8 {
            1 => self.comment(col),
            2 => self.push(String::new(), false),
            3 => {
                self.push(String::new(), false);
                self.comment(col);
            }
            4 => {
                self.comment(col);
                self.comment(col);
            }
            _ => {}
        }
    }

    /// A comment after the last entry of a collection at `col`.
    fn after_collection(&mut self, col: usize) {
        if self.byte() % 8 == 5 {
            self.comment(col);
        }
    }

    /// A trailing ` # comment` for a scalar line, or nothing.
    fn trailing(&mut self) -> String {
        if self.byte() % 6 == 1 {
            self.comments += 1;
            let tail = format!("# tail {} end", self.comments);
            self.tails.push(tail.clone());
            format!("  {tail}")
        } else {
            String::new()
        }
    }

    /// The indentation step for the content under a key (sometimes the other one in a mixed
    /// style document).
    fn step(&mut self) -> usize {
        let other = if self.style.indent == 2 { 4 } else { 2 };
        if self.style.mixed && self.byte() % 5 == 4 {
            other
        } else {
            self.style.indent
        }
    }

    /// Whether a block list under a key is compact (sometimes the other style in a mixed
    /// style document).
    fn compact(&mut self) -> bool {
        if self.style.mixed && self.byte() % 4 == 3 {
            !self.style.compact
        } else {
            self.style.compact
        }
    }

    fn map(&mut self, entries: &[(String, Node)], col: usize, first_lead: Option<String>) {
        for (i, (key, node)) in entries.iter().enumerate() {
            let lead = match (&first_lead, i) {
                (Some(lead), 0) => lead.clone(),
                _ => {
                    self.before_entry(col);
                    pad(col)
                }
            };
            match node {
                Node::Scalar(text, mutable) | Node::Flow(text, mutable) => {
                    let t = self.trailing();
                    self.push(format!("{lead}{key}: {text}{t}"), *mutable);
                }
                Node::Empty(text) => {
                    let indent = self.step();
                    let t = self.trailing();
                    let sep = if text.is_empty() { "" } else { " " };
                    self.push(format!("{lead}{key}:{sep}{text}{t}"), !text.is_empty());
                    // Helm-style commented hints after the key.
                    if self.byte() % 3 == 1 {
                        self.comment(col + indent);
                        self.comment(col + indent);
                    }
                }
                Node::Block(content) => {
                    let indent = self.step();
                    self.push(format!("{lead}{key}: |"), false);
                    for l in content {
                        self.push(format!("{}{l}", pad(col + indent)), false);
                    }
                }
                Node::Map(inner) => {
                    let indent = self.step();
                    self.push(format!("{lead}{key}:"), false);
                    self.map(inner, col + indent, None);
                }
                Node::Seq(items) => {
                    self.push(format!("{lead}{key}:"), false);
                    let dash = if self.compact() {
                        col
                    } else {
                        col + self.step()
                    };
                    self.seq(items, dash);
                }
            }
        }
        self.after_collection(col);
    }

    fn seq(&mut self, items: &[Node], dash: usize) {
        for item in items {
            self.before_entry(dash);
            match item {
                Node::Scalar(text, mutable) => {
                    let t = self.trailing();
                    self.push(format!("{}- {text}{t}", pad(dash)), *mutable);
                }
                Node::Flow(text, mutable) => {
                    self.push(format!("{}- {text}", pad(dash)), *mutable);
                }
                Node::Map(entries) => {
                    self.map(entries, dash + 2, Some(format!("{}- ", pad(dash))));
                }
                other => unreachable!("not generated as a list item: {other:?}"),
            }
        }
        self.after_collection(dash);
    }
}

/// A generated file: its text, its lines with their mutability, and the trailing comments.
struct Generated {
    text: String,
    lines: Vec<Line>,
    tails: Vec<String>,
}

fn render(m: &FileModel) -> Generated {
    let mut w = Writer {
        lines: vec![],
        decor: &m.decor,
        pos: 0,
        comments: 0,
        tails: vec![],
        style: m.docs[0].style,
    };
    if m.header {
        w.push("# Generated manifests; edit with care.".into(), false);
        w.push("#   (header comment, line 2)".into(), false);
    }
    for (i, doc) in m.docs.iter().enumerate() {
        if i > 0 || m.leading_sep {
            w.push("---".into(), false);
        }
        w.style = doc.style;
        let look = FlowLook {
            spaced: doc.style.spaced,
            json: doc.style.json,
        };
        let Node::Map(entries) = doc_node(&doc.body, look) else {
            unreachable!()
        };
        w.map(&entries, 0, None);
        if m.end_markers {
            w.push("...".into(), false);
        }
    }
    if m.trailing_comment {
        w.push("# end of file".into(), false);
    }
    let eol = if m.crlf { "\r\n" } else { "\n" };
    let mut text = String::new();
    for l in &w.lines {
        text.push_str(&l.text);
        text.push_str(eol);
    }
    if !m.final_newline {
        text.truncate(text.len() - eol.len());
    }
    Generated {
        text,
        lines: w.lines,
        tails: w.tails,
    }
}

// ---------------------------------------------------------------------------------------------
// Oracles
// ---------------------------------------------------------------------------------------------

fn pod_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => Some(&["spec", "template", "spec"]),
        _ => None,
    }
}

fn kind_of(doc: &Value) -> String {
    doc.get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn pod_spec(doc: &Value) -> Option<&Value> {
    let path = pod_path(&kind_of(doc))?;
    path.iter().try_fold(doc, |v, k| v.get(*k))
}

fn pod_spec_mut(doc: &mut Value) -> Option<&mut Value> {
    let path = pod_path(&kind_of(doc))?;
    path.iter().try_fold(doc, |v, k| v.get_mut(*k))
}

const CONTAINER_LISTS: &[&str] = &["initContainers", "containers", "ephemeralContainers"];

/// The documents with every pod and container `securityContext` removed.
fn strip(docs: &[Value]) -> Vec<Value> {
    let mut docs = docs.to_vec();
    for doc in &mut docs {
        let Some(Value::Mapping(pod)) = pod_spec_mut(doc) else {
            continue;
        };
        pod.shift_remove("securityContext");
        for list in CONTAINER_LISTS {
            if let Some(Value::Sequence(items)) = pod.get_mut(*list) {
                for c in items {
                    if let Value::Mapping(c) = c {
                        c.shift_remove("securityContext");
                    }
                }
            }
        }
    }
    docs
}

fn key(k: &str) -> Value {
    Value::String(k.to_string())
}

fn int(v: i64) -> Value {
    Value::Number(v.into())
}

/// The mapping at `v`, or an empty one for a missing/null/empty value.
fn base(v: Option<&Value>) -> Mapping {
    match v {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    }
}

/// Sets `k` in place if present, else appends it.
fn set(m: &mut Mapping, k: &str, v: Value) {
    if let Some(slot) = m.get_mut(k) {
        *slot = v;
    } else {
        m.insert(key(k), v);
    }
}

fn fixed_seccomp(v: Option<&Value>) -> Value {
    let mut m = base(v);
    let ok = matches!(
        m.get("type").and_then(Value::as_str),
        Some("RuntimeDefault" | "Localhost")
    );
    if !ok {
        set(&mut m, "type", key("RuntimeDefault"));
    }
    Value::Mapping(m)
}

/// The pod securityContext the contract asks for, given the one before.
fn expected_pod_sc(before: Option<&Value>) -> Value {
    let mut m = base(before);
    set(&mut m, "runAsNonRoot", Value::Bool(true));
    for k in ["runAsUser", "runAsGroup", "fsGroup"] {
        let keep = m.get(k).and_then(Value::as_i64).filter(|v| *v != 0);
        set(&mut m, k, int(keep.unwrap_or(1000)));
    }
    let sec = fixed_seccomp(m.get("seccompProfile"));
    set(&mut m, "seccompProfile", sec);
    Value::Mapping(m)
}

/// The container securityContext the contract asks for, given the one before.
fn expected_container_sc(before: Option<&Value>) -> Value {
    let mut m = base(before);
    set(&mut m, "allowPrivilegeEscalation", Value::Bool(false));
    set(&mut m, "readOnlyRootFilesystem", Value::Bool(true));
    let mut caps = base(m.get("capabilities"));
    let mut drop = match caps.get("drop") {
        Some(Value::Sequence(items)) => items.clone(),
        _ => vec![],
    };
    if !drop.iter().any(|i| i.as_str() == Some("ALL")) {
        drop.push(key("ALL"));
    }
    set(&mut caps, "drop", Value::Sequence(drop));
    set(&mut m, "capabilities", Value::Mapping(caps));
    if m.contains_key("runAsNonRoot") {
        set(&mut m, "runAsNonRoot", Value::Bool(true));
    }
    for k in ["runAsUser", "runAsGroup"] {
        if m.get(k).and_then(Value::as_i64) == Some(0) {
            set(&mut m, k, int(1000));
        }
    }
    if m.contains_key("seccompProfile") {
        let sec = fixed_seccomp(m.get("seccompProfile"));
        set(&mut m, "seccompProfile", sec);
    }
    Value::Mapping(m)
}

/// Checks property 4 for one document pair; returns what is wrong.
fn check_contract(doc: usize, before: &Value, after: &Value) -> Result<(), String> {
    let (Some(bp), Some(ap)) = (pod_spec(before), pod_spec(after)) else {
        if pod_spec(before).is_some() != pod_spec(after).is_some() {
            return Err(format!(
                "document {}: the pod spec appeared or vanished",
                doc + 1
            ));
        }
        return Ok(());
    };
    let at = |what: &str| format!("document {} {what}", doc + 1);
    let bsc = bp.get("securityContext");
    let asc = ap
        .get("securityContext")
        .ok_or_else(|| at("pod: no securityContext after"))?;
    if asc.get("runAsNonRoot") != Some(&Value::Bool(true)) {
        return Err(at(&format!(
            "pod: runAsNonRoot is {:?}",
            asc.get("runAsNonRoot")
        )));
    }
    for k in ["runAsUser", "runAsGroup", "fsGroup"] {
        let was = bsc.and_then(|s| s.get(k)).and_then(Value::as_i64);
        let want = was.filter(|v| *v != 0).unwrap_or(1000);
        let got = asc.get(k).and_then(Value::as_i64);
        if got != Some(want) {
            return Err(at(&format!(
                "pod: {k} is {got:?}, expected {want} (was {was:?})"
            )));
        }
    }
    let ty = asc
        .get("seccompProfile")
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str);
    if !matches!(ty, Some("RuntimeDefault" | "Localhost")) {
        return Err(at(&format!("pod: seccompProfile.type is {ty:?}")));
    }
    let want = expected_pod_sc(bsc);
    if format!("{want:?}") != format!("{asc:?}") {
        return Err(at(&format!(
            "pod: securityContext is\n  {asc:?}\nexpected (in this key order)\n  {want:?}"
        )));
    }
    for list in CONTAINER_LISTS {
        let items = |p: &Value| match p.get(*list) {
            Some(Value::Sequence(items)) => items.clone(),
            _ => vec![],
        };
        let (bi, ai) = (items(bp), items(ap));
        if bi.len() != ai.len() {
            return Err(at(&format!("{list}: the number of items changed")));
        }
        for (i, (bc, ac)) in bi.iter().zip(&ai).enumerate() {
            let at = |what: &str| at(&format!("{list}[{i}]: {what}"));
            let bsc = bc.get("securityContext");
            let asc = ac
                .get("securityContext")
                .ok_or_else(|| at("no securityContext after"))?;
            if asc.get("allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
                return Err(at(&format!(
                    "allowPrivilegeEscalation is {:?}",
                    asc.get("allowPrivilegeEscalation")
                )));
            }
            if asc.get("readOnlyRootFilesystem") != Some(&Value::Bool(true)) {
                return Err(at(&format!(
                    "readOnlyRootFilesystem is {:?}",
                    asc.get("readOnlyRootFilesystem")
                )));
            }
            let drop_of = |sc: Option<&Value>| -> Vec<String> {
                sc.and_then(|s| s.get("capabilities"))
                    .and_then(|c| c.get("drop"))
                    .and_then(Value::as_sequence)
                    .map(|d| {
                        d.iter()
                            .map(|i| i.as_str().unwrap_or("?").to_string())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (was, got) = (drop_of(bsc), drop_of(Some(asc)));
            if !got.iter().any(|d| d == "ALL") || !got.starts_with(&was) {
                return Err(at(&format!(
                    "capabilities.drop is {got:?} (was {was:?}): must keep the old items in order and contain ALL"
                )));
            }
            if asc.get("runAsUser").and_then(Value::as_i64) == Some(0) {
                return Err(at("runAsUser is still 0"));
            }
            let want = expected_container_sc(bsc);
            if format!("{want:?}") != format!("{asc:?}") {
                return Err(at(&format!(
                    "securityContext is\n  {asc:?}\nexpected (in this key order)\n  {want:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Whether `needles` appear in `hay` in order (as a subsequence).
fn subsequence<'a>(needles: impl IntoIterator<Item = &'a str>, hay: &[&str]) -> Result<(), String> {
    let mut it = hay.iter();
    for n in needles {
        if !it.any(|h| *h == n) {
            return Err(n.to_string());
        }
    }
    Ok(())
}

fn show(model: &FileModel, input: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n==== input (crlf={}, final newline={}) ====\n{}\n==== end of input; exact: {:?}",
        model.crlf, model.final_newline, input, input
    );
    out
}

fn run(text: &str) -> Status {
    process_text(
        Path::new("gen.yaml"),
        text.to_string(),
        &Settings::default(),
    )
    .status
}

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig {
        // No regression files are written next to the tests.
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    #[test]
    fn random_styles_keep_the_invariants(model in file_model()) {
        let generated = render(&model);
        let input = generated.text.clone();
        let ctx = show(&model, &input);

        // The generator's own sanity: the input is valid YAML with the planned documents.
        let before = load_all(&input)
            .unwrap_or_else(|e| panic!("generator wrote invalid YAML ({e}):{ctx}"));
        prop_assert_eq!(before.len(), model.docs.len(), "generator: document count{}", ctx);

        // 1. Changed or Unchanged.
        let output = match run(&input) {
            Status::Changed { new_text } => new_text,
            Status::Unchanged => input.clone(),
            other => {
                prop_assert!(false, "property 1: status is {:?}, expected Changed or Unchanged{}", other, ctx);
                unreachable!()
            }
        };
        let out_ctx = format!("{ctx}\n==== output ====\n{output}\n==== end of output; exact: {output:?}");

        // 2. Re-loads, same number of documents.
        let after = match load_all(&output) {
            Ok(a) => a,
            Err(e) => {
                prop_assert!(false, "property 2: the output does not load: {}{}", e, out_ctx);
                unreachable!()
            }
        };
        prop_assert_eq!(after.len(), before.len(), "property 2: document count changed{}", out_ctx);

        // 3. Nothing but securityContexts and the writable /tmp changed (key order included).
        let (sb, sa) = (strip(&common::with_tmp_additions(before.clone())), strip(&after));
        prop_assert!(
            sb == sa && format!("{sb:?}") == format!("{sa:?}"),
            "property 3: data outside securityContext changed (beyond the writable /tmp)\nbefore + tmp: {:?}\nafter:  {:?}{}",
            sb, sa, out_ctx
        );

        // 4. The contract holds for every pod spec and container.
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if let Err(e) = check_contract(i, b, a) {
                prop_assert!(false, "property 4: {}{}", e, out_ctx);
            }
        }

        // 5. Lossless: comments in order; untouched lines byte for byte, in order.
        let out_lines: Vec<&str> = output.split('\n').collect();
        let out_trimmed: Vec<&str> = out_lines.iter().map(|l| l.trim()).collect();
        let comments: Vec<&str> = generated
            .lines
            .iter()
            .map(|l| l.text.trim())
            .filter(|t| t.starts_with('#'))
            .collect();
        if let Err(missing) = subsequence(comments.iter().copied(), &out_trimmed) {
            prop_assert!(false, "property 5: comment line {:?} is missing or out of order{}", missing, out_ctx);
        }
        let mut rest = output.as_str();
        for tail in &generated.tails {
            match rest.find(tail.as_str()) {
                Some(at) => rest = &rest[at + tail.len()..],
                None => prop_assert!(false, "property 5: trailing comment {:?} is missing or out of order{}", tail, out_ctx),
            }
        }
        let in_lines: Vec<&str> = input.split('\n').collect();
        let last = generated.lines.len() - 1;
        // Without a final newline, a block scalar that ends the file gets strip chomping
        // (`|` becomes `|-`) so that lines added after it leave its value alone.
        let last_header = generated.lines.iter().rposition(|l| l.text.trim_end().ends_with(['|', '>']));
        let stable: Vec<&str> = generated
            .lines
            .iter()
            .enumerate()
            .filter(|(i, l)| !l.mutable && (model.final_newline || (*i != last && Some(*i) != last_header)))
            .map(|(i, _)| in_lines[i])
            .collect();
        if let Err(missing) = subsequence(stable.iter().copied(), &out_lines) {
            prop_assert!(false, "property 5: input line {:?} is not in the output (byte for byte, in order){}", missing, out_ctx);
        }

        // 6. Line endings and the final newline.
        if model.crlf {
            let bare = output.replace("\r\n", "");
            prop_assert!(!bare.contains('\n') && !bare.contains('\r'), "property 6: CRLF file got a bare LF or CR{}", out_ctx);
        } else {
            prop_assert!(!output.contains('\r'), "property 6: LF file got a CR{}", out_ctx);
        }
        prop_assert_eq!(output.ends_with('\n'), input.ends_with('\n'), "property 6: final newline presence changed{}", out_ctx);

        // 7. Idempotence.
        match run(&output) {
            Status::Unchanged => {}
            Status::Changed { new_text } => prop_assert!(false, "property 7: a second run changed the output again:\n{}{}", new_text, out_ctx),
            other => prop_assert!(false, "property 7: a second run gave {:?}{}", other, out_ctx),
        }

        // 8. Cut at its document markers (as large streams are), the input and the output
        //    parse to the tree of a single pass.
        for text in [&input, &output] {
            if let Some((whole, chunked)) = yaml_splice::Tree::parse_both_ways(text, 1) {
                prop_assert!(whole.ok() == chunked, "property 8: the chunked parse differs{}", out_ctx);
            }
        }
    }
}
