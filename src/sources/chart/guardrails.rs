//! The chart's guardrails: what its templates' pod specs ([`super::pods`]) come to with its
//! values, so that a chart gets what a manifest gets. A pod with host access (a host namespace
//! that renders `true`, a `hostPath` volume in a template or in a values list it renders) is
//! left to a person: its securityContext values paths are not edited. A container that gets a
//! read-only root filesystem gets its writable `/tmp` through the values lists the templates
//! render into its pod's `volumes:` and its own `volumeMounts:`, or a risk note when there are
//! none. A `containerPort` below 1024 is reported where its number is written.
//!
//! The values are read as every release may render them: values.yaml alone, and values.yaml
//! with each override file merged in. A condition that none of them decides counts against
//! hardening a host-access pod and against adding a `/tmp` that might not render.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::policy::{
    host_access_reason_of, is_low_port, is_tmp_path, low_port_message, tmp_volume_name, Control,
    HostAccessKind, Level, NoteKind, Rules,
};

use super::actions::{lookup, Cond};
use super::pods::{ContainerText, ListText, PodText, PortSource, Rendered};
use super::{ChartWiring, Target};

/// The values one release renders with: values.yaml, or an override file merged into it.
#[derive(Debug)]
pub struct ValueSet {
    pub values: Value,
}

/// What the chart's guardrails ask of its values files and report on its templates.
#[derive(Debug, Default)]
pub struct Guardrails {
    /// securityContext values paths left to a person because a pod that renders them has
    /// access to its node, with the reason.
    pub left_alone: BTreeMap<String, String>,
    /// Notes on templates (relative to the chart).
    pub template_notes: BTreeMap<PathBuf, Vec<TemplateNote>>,
    /// Port numbers the templates take from values: each values file that sets one below 1024
    /// gets the note.
    pub ports: Vec<ValuesPort>,
    /// The writable /tmp added through values lists.
    pub tmp: Option<TmpAddition>,
    /// Container securityContext paths that get a read-only root filesystem and no writable
    /// /tmp, with the risk note that says why and how to give them one.
    pub no_tmp: BTreeMap<String, String>,
}

/// A note about a pod or container of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateNote {
    pub line: usize,
    /// The pod's kind and the container's name (or `pod`), as the templates write them.
    pub kind: String,
    pub name: String,
    pub container: Option<String>,
    pub note: NoteKind,
    pub message: String,
}

/// A port number taken from values, and the containers that listen on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValuesPort {
    pub source: PortSource,
    pub containers: Vec<String>,
}

/// The emptyDir `name` appended to the values lists `volumes` and a mount of it at /tmp
/// appended to the values lists `mounts`, for the container securityContext paths `contexts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmpAddition {
    pub name: &'static str,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub contexts: Vec<TmpFor>,
}

/// A container securityContext path that gets the writable /tmp, and the lists that give it
/// (volume lists first, then mount lists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmpFor {
    pub context: String,
    pub lists: Vec<String>,
}

/// The pods of every template, relative to the chart.
pub type ChartPods = [(PathBuf, Vec<PodText>)];

/// One pod of the chart: its template, its index there, and its text.
#[derive(Clone, Copy)]
struct PodAt<'a> {
    template: &'a Path,
    index: usize,
    pod: &'a PodText,
}

impl<'a> PodAt<'a> {
    fn key(&self) -> (&'a Path, usize) {
        (self.template, self.index)
    }
}

/// Plans the chart's guardrails. `privileged`: the securityContext paths already left to a
/// person (a privileged container); their pods get no writable /tmp either.
pub fn plan(
    pods: &ChartPods,
    wiring: &ChartWiring,
    sets: &[ValueSet],
    privileged: &BTreeMap<String, String>,
    rules: &Rules,
) -> Guardrails {
    let mut out = Guardrails::default();
    let all = every_pod(pods);
    let contexts = context_paths(wiring);
    let left_alone_pods = out.plan_host_access(&all, &contexts, sets, privileged, rules);
    out.plan_ports(&all, sets);
    if rules.writable_tmp && !rules.disabled.contains(&Control::ReadOnlyRootFilesystem) {
        let planner = TmpPlanner {
            all: &all,
            sets,
            contexts: &contexts,
            wiring,
            left_alone_pods: &left_alone_pods,
        };
        let needing: Vec<&Target> = wiring
            .targets
            .iter()
            .filter(|t| t.level == Level::Container)
            .filter(|t| !out.left_alone.contains_key(&t.path) && !privileged.contains_key(&t.path))
            .filter(|t| gets_read_only_root(t, sets))
            .collect();
        (out.tmp, out.no_tmp) = planner.plan(&needing);
    }
    out
}

fn every_pod(pods: &ChartPods) -> Vec<PodAt<'_>> {
    pods.iter()
        .flat_map(|(template, pods)| {
            pods.iter().enumerate().map(move |(index, pod)| PodAt {
                template,
                index,
                pod,
            })
        })
        .collect()
}

/// (template, line of the `securityContext:` key) -> the values paths it renders (several when
/// a helper renders it for each key of a mapping: one pod or container per controller).
type Contexts = BTreeMap<(PathBuf, usize), Vec<String>>;

fn context_paths(wiring: &ChartWiring) -> Contexts {
    let mut out = Contexts::new();
    for t in &wiring.targets {
        for (template, line) in &t.used_at {
            let paths = out.entry((template.clone(), *line)).or_default();
            if !paths.contains(&t.path) {
                paths.push(t.path.clone());
            }
        }
    }
    out
}

/// The values paths of a pod's and its containers' securityContexts.
fn pod_context_paths(at: &PodAt, contexts: &Contexts) -> Vec<String> {
    let lines = std::iter::once(at.pod.context_line)
        .chain(at.pod.containers.iter().map(|c| c.context_line))
        .flatten();
    let mut paths: Vec<String> = lines
        .filter_map(|line| contexts.get(&(at.template.to_path_buf(), line)))
        .flatten()
        .cloned()
        .collect();
    paths.dedup();
    paths
}

/// The ways a pod reaches into its node under some values set, each with its template line,
/// in the order the template writes them.
fn host_accesses(pod: &PodText, sets: &[ValueSet]) -> Vec<(usize, HostAccessKind)> {
    let may = |c: &Cond| sets.iter().any(|s| c.eval(&s.values) != Some(false));
    let mut accesses: Vec<(usize, HostAccessKind)> = pod
        .host
        .iter()
        .chain(&pod.volumes.host_paths)
        .filter(|h| may(&h.when))
        .map(|h| (h.line, h.kind.clone()))
        .collect();
    for rendered in &pod.volumes.from_values {
        for set in sets {
            if rendered
                .conditions
                .iter()
                .any(|c| c.eval(&set.values) == Some(false))
            {
                continue;
            }
            for kind in values_host_paths(&set.values, &rendered.path) {
                let line = pod.volumes.line.unwrap_or(pod.line);
                if !accesses.iter().any(|(_, k)| *k == kind) {
                    accesses.push((line, kind));
                }
            }
        }
    }
    accesses.sort_by_key(|(line, _)| *line);
    accesses
}

/// The `hostPath` volumes of a values list.
fn values_host_paths(values: &Value, path: &str) -> Vec<HostAccessKind> {
    let items = lookup(values, path).and_then(Value::as_array);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    items
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let host = item.get("hostPath")?;
            Some(HostAccessKind::Path {
                path: text(host.get("path")),
                name: text(item.get("name")),
            })
        })
        .collect()
}

/// Whether a container securityContext path will get `readOnlyRootFilesystem: true` from the
/// fix in some release: its mapping says otherwise, or it is empty and will be filled.
/// (`sets[0]` is values.yaml alone: a null there is filled; in an override it deletes.) A
/// Bitnami-style context whose `enabled` the fix turns on starts to apply its value then.
fn gets_read_only_root(target: &Target, sets: &[ValueSet]) -> bool {
    sets.iter()
        .enumerate()
        .any(|(i, set)| match lookup(&set.values, &target.path) {
            Some(Value::Object(m)) if m.is_empty() => !target.keeps_default(),
            Some(Value::Object(m)) => {
                let enabled = m.get("enabled") == Some(&Value::Bool(true));
                let rendered = !target.gated_by_enabled || enabled;
                !rendered || m.get("readOnlyRootFilesystem") != Some(&Value::Bool(true))
            }
            Some(Value::Null) => !target.keeps_default() && i == 0,
            // Added by the fix (a container a helper renders for a key values.yaml sets).
            None => target.create && i == 0,
            _ => false,
        })
}

impl Guardrails {
    /// Leaves the securityContext paths of pods with host access to a person (or, opted in,
    /// notes each access). Returns every pod left alone, those of privileged paths included.
    fn plan_host_access<'a>(
        &mut self,
        all: &[PodAt<'a>],
        contexts: &Contexts,
        sets: &[ValueSet],
        privileged: &BTreeMap<String, String>,
        rules: &Rules,
    ) -> BTreeSet<(&'a Path, usize)> {
        let mut left_alone_pods = BTreeSet::new();
        for at in all {
            let paths = pod_context_paths(at, contexts);
            if paths.iter().any(|p| privileged.contains_key(p)) {
                left_alone_pods.insert(at.key());
            }
            let accesses = host_accesses(at.pod, sets);
            let Some(reason) = host_access_reason_of(accesses.iter().map(|(_, kind)| kind)) else {
                continue;
            };
            if rules.harden_host_access {
                self.note_host_risks(at, &accesses);
                continue;
            }
            left_alone_pods.insert(at.key());
            for path in paths {
                self.left_alone
                    .entry(path)
                    .or_insert_with(|| reason.clone());
            }
        }
        left_alone_pods
    }

    /// With `--harden-host-access-pods`: a risk note per access, on the template line.
    fn note_host_risks(&mut self, at: &PodAt, accesses: &[(usize, HostAccessKind)]) {
        let notes = self
            .template_notes
            .entry(at.template.to_path_buf())
            .or_default();
        for (line, kind) in accesses {
            notes.push(TemplateNote {
                line: *line,
                kind: at.pod.kind.clone(),
                name: "pod".into(),
                container: None,
                note: NoteKind::Risk,
                message: kind.risk(),
            });
        }
    }

    /// Ports below 1024: written in a template (or its `default`) are noted there; taken from
    /// values, each values file that sets one is noted on its line.
    fn plan_ports(&mut self, all: &[PodAt], sets: &[ValueSet]) {
        let defaults = sets.first().map(|s| &s.values);
        for at in all {
            for c in &at.pod.containers {
                for port in &c.ports {
                    if let Some(n) =
                        written_port(&port.source, defaults).filter(|n| is_low_port(*n))
                    {
                        self.note_template_port(at, c, port.line, n);
                    }
                    if !matches!(port.source, PortSource::Literal(_)) {
                        self.add_values_port(&port.source, &c.name);
                    }
                }
            }
        }
    }

    fn note_template_port(&mut self, at: &PodAt, c: &ContainerText, line: usize, port: i64) {
        let notes = self
            .template_notes
            .entry(at.template.to_path_buf())
            .or_default();
        notes.push(TemplateNote {
            line,
            kind: at.pod.kind.clone(),
            name: c.name.clone(),
            container: Some(c.name.clone()),
            note: NoteKind::Risk,
            message: low_port_message(port),
        });
    }

    fn add_values_port(&mut self, source: &PortSource, container: &str) {
        match self.ports.iter_mut().find(|p| p.source == *source) {
            Some(p) if !p.containers.iter().any(|c| c == container) => {
                p.containers.push(container.to_string());
            }
            Some(_) => {}
            None => self.ports.push(ValuesPort {
                source: source.clone(),
                containers: vec![container.to_string()],
            }),
        }
    }
}

/// The port number the template itself gives: a literal, or its `| default N` when values.yaml
/// does not set the path.
fn written_port(source: &PortSource, defaults: Option<&Value>) -> Option<i64> {
    match source {
        PortSource::Literal(n) => Some(*n),
        PortSource::Values { path, default } => {
            let set = defaults
                .and_then(|v| lookup(v, path))
                .is_some_and(|v| !v.is_null());
            default.filter(|_| !set)
        }
        _ => None,
    }
}

/// A container of the chart and its pod.
#[derive(Clone, Copy)]
struct ContainerAt<'a> {
    pod: PodAt<'a>,
    container: &'a ContainerText,
}

impl ContainerAt<'_> {
    fn place(&self, wiring: &ChartWiring) -> String {
        wiring.place(self.pod.template, self.container.line)
    }
}

/// One container that needs the writable /tmp (by its securityContext path), and the values
/// lists that give it one.
struct Need {
    context: String,
    mounts: String,
    volumes: String,
}

/// Plans the writable /tmp through values lists.
struct TmpPlanner<'a> {
    all: &'a [PodAt<'a>],
    sets: &'a [ValueSet],
    contexts: &'a Contexts,
    /// The template's own line of a line of its expanded text, for messages.
    wiring: &'a ChartWiring,
    left_alone_pods: &'a BTreeSet<(&'a Path, usize)>,
}

impl<'a> TmpPlanner<'a> {
    fn plan(&self, needing: &[&Target]) -> (Option<TmpAddition>, BTreeMap<String, String>) {
        let mut no_tmp = BTreeMap::new();
        let mut needs: Vec<Need> = Vec::new();
        for target in needing {
            match self.needs_of(target) {
                Ok(n) => needs.extend(n),
                Err(why) => {
                    no_tmp.insert(target.path.clone(), no_tmp_message(&why));
                }
            }
        }
        // A list shared with a container or pod that may not get the addition makes every
        // container that relies on it go without.
        while let Some((context, why)) = needs
            .iter()
            .find_map(|n| self.conflict(n, &needs).map(|why| (n.context.clone(), why)))
        {
            needs.retain(|n| n.context != context);
            no_tmp.insert(context, no_tmp_message(&why));
        }
        if needs.is_empty() {
            return (None, no_tmp);
        }
        let mut addition = TmpAddition {
            name: "tmp",
            volumes: Vec::new(),
            mounts: Vec::new(),
            contexts: Vec::new(),
        };
        for n in &needs {
            push_new(&mut addition.volumes, &n.volumes);
            push_new(&mut addition.mounts, &n.mounts);
            let at = addition
                .contexts
                .iter()
                .position(|c| c.context == n.context);
            let at = at.unwrap_or_else(|| {
                addition.contexts.push(TmpFor {
                    context: n.context.clone(),
                    lists: Vec::new(),
                });
                addition.contexts.len() - 1
            });
            let lists = &mut addition.contexts[at].lists;
            push_new(lists, &n.volumes);
            push_new(lists, &n.mounts);
        }
        for c in &mut addition.contexts {
            c.lists.sort_by_key(|l| addition.mounts.contains(l));
        }
        addition.name = tmp_volume_name(&self.taken_names(&addition.volumes));
        (Some(addition), no_tmp)
    }

    /// The containers that render a target and lack a /tmp, with the lists that can give them
    /// one; Err with the reason when one of them has no such list.
    fn needs_of(&self, target: &Target) -> Result<Vec<Need>, String> {
        let mut needs = Vec::new();
        let containers = self.containers_of(target);
        if containers.is_empty() {
            return Err(format!(
                "the templates render `.Values.{}` into no container of a pod spec whose volumes the tool can read",
                target.path
            ));
        }
        for at in containers {
            if self.mounts_tmp(&at.container.mounts, None) {
                continue;
            }
            // A container a helper renders per key is named by an expression: its key is better.
            let name = match target.containers.as_slice() {
                [one] if at.container.name.contains("{{") => one,
                _ => &at.container.name,
            };
            let what = format!(
                "the `volumeMounts:` of container `{name}` ({})",
                at.place(self.wiring)
            );
            let mounts = self.usable_list(&at.container.mounts, &what, "mountPath")?;
            let what = format!(
                "the `volumes:` of its pod ({})",
                self.wiring.place(at.pod.template, at.pod.pod.line)
            );
            let volumes = self.usable_list(&at.pod.pod.volumes, &what, "name")?;
            needs.push(Need {
                context: target.path.clone(),
                mounts,
                volumes,
            });
        }
        Ok(needs)
    }

    /// Every container whose securityContext the target renders.
    fn containers_of(&self, target: &Target) -> Vec<ContainerAt<'a>> {
        self.containers()
            .filter(|at| {
                at.container.context_line.is_some_and(|line| {
                    let key = (at.pod.template.to_path_buf(), line);
                    self.contexts
                        .get(&key)
                        .is_some_and(|paths| paths.contains(&target.path))
                })
            })
            .collect()
    }

    fn containers(&self) -> impl Iterator<Item = ContainerAt<'a>> + '_ {
        self.all.iter().flat_map(|&pod| {
            pod.pod
                .containers
                .iter()
                .map(move |container| ContainerAt { pod, container })
        })
    }

    /// Whether a container's mounts hold a /tmp: written in the template, or an item of a
    /// values list it renders (other than `except`).
    fn mounts_tmp(&self, mounts: &ListText, except: Option<&str>) -> bool {
        let defaults = self.sets.first().map(|s| &s.values);
        mounts.mounts_tmp
            || mounts
                .from_values
                .iter()
                .filter(|r| Some(r.path.as_str()) != except)
                .filter_map(|r| defaults.and_then(|v| lookup(v, &r.path)))
                .filter_map(Value::as_array)
                .flatten()
                .any(|m| {
                    m.get("mountPath")
                        .and_then(Value::as_str)
                        .is_some_and(is_tmp_path)
                })
    }

    /// The first values list rendered into `list` that values.yaml holds as a list (or null)
    /// whose items all have the field `field`, and that renders in every release once it has
    /// an item.
    fn usable_list(&self, list: &ListText, what: &str, field: &str) -> Result<String, String> {
        let mut why = format!("the templates render no values list into {what}");
        for (i, rendered) in list.from_values.iter().enumerate() {
            match self.renders_with_an_item(rendered, field) {
                Ok(()) => return Ok(rendered.path.clone()),
                // The first list's reason is the one to give.
                Err(e) if i == 0 => why = format!("{e} ({what})"),
                Err(_) => {}
            }
        }
        Err(why)
    }

    fn renders_with_an_item(&self, rendered: &Rendered, field: &str) -> Result<(), String> {
        let path = &rendered.path;
        let defaults = self.sets.first().map(|s| &s.values);
        match defaults.and_then(|v| lookup(v, path)) {
            Some(Value::Array(items)) if items.iter().all(|i| i.get(field).is_some()) => {}
            Some(Value::Array(_)) => {
                return Err(format!(
                    "`.Values.{path}` holds items without `{field}` in values.yaml"
                ))
            }
            Some(Value::Null) => {}
            Some(_) => return Err(format!("`.Values.{path}` is not a list in values.yaml")),
            None => return Err(format!("values.yaml does not set `.Values.{path}`")),
        }
        let renders = self.sets.iter().all(|set| {
            let mut values = set.values.clone();
            let one_item = Value::Array(vec![Value::Object(Default::default())]);
            set_path(&mut values, path, one_item);
            rendered
                .conditions
                .iter()
                .all(|c| c.eval(&values) == Some(true))
        });
        if renders {
            Ok(())
        } else {
            Err(format!(
                "`.Values.{path}` is rendered only under a condition that its values do not make true"
            ))
        }
    }

    /// Why a need cannot be met with the lists the others use, if it cannot.
    fn conflict(&self, need: &Need, all: &[Need]) -> Option<String> {
        let volumes: Vec<&str> = all.iter().map(|n| n.volumes.as_str()).collect();
        for other in self
            .containers()
            .filter(|c| c.container.mounts.renders(&need.mounts))
        {
            let shared = format!(
                "`.Values.{}` is also rendered into container `{}` ({})",
                need.mounts,
                other.container.name,
                other.place(self.wiring)
            );
            if self.left_alone_pods.contains(&other.pod.key()) {
                return Some(format!("{shared}, whose pod is left to a person"));
            }
            if self.mounts_tmp(&other.container.mounts, Some(&need.mounts)) {
                return Some(format!("{shared}, which mounts /tmp already"));
            }
            if !volumes.iter().any(|v| other.pod.pod.volumes.renders(v)) {
                return Some(format!(
                    "{shared}, whose pod renders none of the volume lists that get the emptyDir"
                ));
            }
        }
        for pod in self
            .all
            .iter()
            .filter(|p| p.pod.volumes.renders(&need.volumes))
        {
            if self.left_alone_pods.contains(&pod.key()) {
                return Some(format!(
                    "`.Values.{}` is also rendered into the pod of {}, which is left to a person",
                    need.volumes,
                    self.wiring.place(pod.template, pod.pod.line)
                ));
            }
        }
        None
    }

    /// The volume names the pods that render these lists already use.
    fn taken_names(&self, lists: &[String]) -> Vec<String> {
        let defaults = self.sets.first().map(|s| &s.values);
        let mut names: Vec<String> = Vec::new();
        for list in lists {
            let items = defaults
                .and_then(|v| lookup(v, list))
                .and_then(Value::as_array);
            names.extend(
                items
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.get("name").and_then(Value::as_str))
                    .map(str::to_string),
            );
            for pod in self.all.iter().filter(|p| p.pod.volumes.renders(list)) {
                names.extend(pod.pod.volumes.names.iter().cloned());
            }
        }
        names
    }
}

fn push_new(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_string());
    }
}

/// Sets the value at a dotted path, creating mappings on the way.
fn set_path(values: &mut Value, path: &str, value: Value) {
    let mut node = values;
    for key in path.split('.') {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        node = node
            .as_object_mut()
            .expect("made an object above")
            .entry(key.to_string())
            .or_insert(Value::Null);
    }
    *node = value;
}

/// The risk note of a container that gets a read-only root filesystem and no writable /tmp.
fn no_tmp_message(why: &str) -> String {
    format!("this chart gets a read-only root filesystem with no writable /tmp: {why}. Give it one through values: render a list into the container's `volumeMounts:` and one into the pod's `volumes:` in the template (as `helm create` does with `.Values.volumeMounts` and `.Values.volumes`) and run the fix again, or mount an emptyDir at /tmp in the template")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::chart::{pods, resolve, templates, values};

    /// The guardrails of a one-template chart with these values (and override files).
    fn plan_for(template: &str, defaults: &str, overrides: &[&str], rules: &Rules) -> Guardrails {
        let path = PathBuf::from("templates/t.yaml");
        let wirings = vec![(path.clone(), templates::analyse(template))];
        let tree = yaml_splice::Tree::parse(defaults).unwrap();
        let wiring = resolve(&wirings, &|p| values::shape(&tree, p));
        let pods = vec![(path, pods::read(template))];
        let base = values::as_json(defaults).unwrap();
        let mut sets = vec![ValueSet {
            values: base.clone(),
        }];
        for text in overrides {
            let mut merged = base.clone();
            values::merge(&mut merged, &values::as_json(text).unwrap());
            sets.push(ValueSet { values: merged });
        }
        let privileged = values::privileged_targets(&tree, &wiring);
        plan(&pods, &wiring, &sets, &privileged, rules)
    }

    const POD: &str = r#"kind: Deployment
spec:
  template:
    spec:
      hostNetwork: {{ .Values.hostNetwork }}
      securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}
      containers:
        - name: app
          securityContext: {{- toYaml .Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: cache
              mountPath: /var/cache
            {{- if .Values.persistence.enabled }}
            {{- toYaml .Values.extraVolumeMounts | nindent 12 }}
            {{- end }}
        - name: sidecar
          volumeMounts:
            {{- toYaml .Values.sidecarMounts | nindent 12 }}
      volumes:
        - name: tmp
          configMap:
            name: scratch
        {{- with .Values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
"#;

    const VALUES: &str = "hostNetwork: false\npodSecurityContext: {}\nsecurityContext: {}\npersistence:\n  enabled: true\nextraVolumeMounts: []\nextraVolumes: []\nsidecarMounts: []\n";

    #[test]
    fn an_override_that_turns_on_a_host_namespace_leaves_the_pod_to_a_person() {
        let rules = Rules::default();
        let g = plan_for(POD, VALUES, &[], &rules);
        assert!(g.left_alone.is_empty(), "{:?}", g.left_alone);
        let g = plan_for(POD, VALUES, &["hostNetwork: true\n"], &rules);
        let paths: Vec<&String> = g.left_alone.keys().collect();
        assert_eq!(paths, vec!["podSecurityContext", "securityContext"]);
        assert!(g.left_alone["securityContext"]
            .starts_with("uses the node's network (hostNetwork: true): "));
        assert!(g.tmp.is_none(), "a pod left alone gets no /tmp");
    }

    #[test]
    fn the_tmp_goes_into_the_wired_lists_under_another_name_when_tmp_is_taken() {
        let g = plan_for(POD, VALUES, &[], &Rules::default());
        let tmp = g.tmp.expect("wired");
        assert_eq!(
            tmp.name, "kube-harden-tmp",
            "the template has a volume `tmp`"
        );
        assert_eq!(tmp.volumes, vec!["extraVolumes"]);
        assert_eq!(tmp.mounts, vec!["extraVolumeMounts"]);
        assert!(g.no_tmp.is_empty(), "{:?}", g.no_tmp);
    }

    #[test]
    fn a_list_that_renders_only_under_a_false_condition_is_not_used() {
        let values = VALUES.replace("  enabled: true", "  enabled: false");
        let g = plan_for(POD, &values, &[], &Rules::default());
        assert!(g.tmp.is_none());
        let why = &g.no_tmp["securityContext"];
        assert!(
            why.contains("`.Values.extraVolumeMounts` is rendered only under a condition that its values do not make true (the `volumeMounts:` of container `app` (templates/t.yaml:8))"),
            "{why}"
        );
        // The same when an override file turns it off: some release would lack the /tmp.
        let g = plan_for(
            POD,
            VALUES,
            &["persistence:\n  enabled: false\n"],
            &Rules::default(),
        );
        assert!(g.tmp.is_none() && g.no_tmp.contains_key("securityContext"));
    }

    #[test]
    fn a_mount_list_shared_with_a_container_that_mounts_tmp_is_not_used() {
        let template = POD.replace(
            "{{- toYaml .Values.sidecarMounts | nindent 12 }}",
            "- name: scratch\n              mountPath: /tmp\n            {{- toYaml .Values.extraVolumeMounts | nindent 12 }}",
        );
        let g = plan_for(&template, VALUES, &[], &Rules::default());
        assert!(g.tmp.is_none());
        assert!(
            g.no_tmp["securityContext"].contains("`.Values.extraVolumeMounts` is also rendered into container `sidecar` (templates/t.yaml:16), which mounts /tmp already"),
            "{:?}",
            g.no_tmp
        );
    }

    #[test]
    fn ports_from_literals_defaults_and_values() {
        let t = "kind: Pod\nspec:\n  containers:\n    - name: a\n      ports:\n        - containerPort: 443\n        - containerPort: {{ .Values.http | default 80 }}\n        - containerPort: {{ .Values.metrics }}\n";
        let g = plan_for(t, "metrics: 9090\n", &[], &Rules::default());
        let notes: Vec<(usize, &str)> = g.template_notes[Path::new("templates/t.yaml")]
            .iter()
            .map(|n| (n.line, n.message.split(':').next().unwrap()))
            .collect();
        assert_eq!(
            notes,
            vec![(6, "listens on port 443"), (7, "listens on port 80")]
        );
        let from_values: Vec<&PortSource> = g.ports.iter().map(|p| &p.source).collect();
        assert_eq!(from_values.len(), 2, "{from_values:?}");
    }
}
