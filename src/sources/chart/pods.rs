//! The pod specs a template writes, read as text like [`super::templates`] reads their
//! securityContexts: for each pod, the values lists rendered whole into its `volumes:` and into
//! each container's `volumeMounts:`, the items written literally there (names, a mount at
//! `/tmp`, `hostPath` volumes), the host namespaces it asks for, and each container's
//! `containerPort`s. Each comes with the conditions of the template blocks around it; what the
//! chart's values make of them is [`super::guardrails`]'s business.

use crate::policy::{is_tmp_path, HostAccessKind};

use super::actions::{renders_true, Action, Blocks, Cond};
use super::templates::{
    block_end, container_name, kind_at, lines, parent, structural, value_refs, Line,
    CONTAINER_LISTS,
};

/// A pod spec written by a template, or by a helper's `define`.
#[derive(Clone, Debug)]
pub struct PodText {
    /// 1-based line of its `containers:` key.
    pub line: usize,
    pub kind: String,
    /// 1-based line of its `securityContext:` key, if it has one.
    pub context_line: Option<usize>,
    pub volumes: ListText,
    /// Host namespaces it may share (`hostNetwork: true`, `hostPID: {{ .Values.hostPID }}`).
    pub host: Vec<HostText>,
    pub containers: Vec<ContainerText>,
}

/// A container item of a pod's `containers`, `initContainers` or `ephemeralContainers`.
#[derive(Clone, Debug)]
pub struct ContainerText {
    /// As the template writes it (`{{ .Chart.Name }}`).
    pub name: String,
    /// 1-based line of its item.
    pub line: usize,
    /// 1-based line of its `securityContext:` key, if it has one.
    pub context_line: Option<usize>,
    pub mounts: ListText,
    pub ports: Vec<PortText>,
}

/// What a template writes into a `volumes:` or `volumeMounts:` list.
#[derive(Clone, Debug, Default)]
pub struct ListText {
    /// 1-based line of the key; None when the template writes no such key.
    pub line: Option<usize>,
    /// The values lists rendered whole into it.
    pub from_values: Vec<Rendered>,
    /// The names of the items written literally.
    pub names: Vec<String>,
    /// An item written literally with `mountPath: /tmp`.
    pub mounts_tmp: bool,
    /// The `hostPath` volumes written literally.
    pub host_paths: Vec<HostText>,
}

impl ListText {
    /// Whether the values list at `path` is rendered whole into this list.
    pub fn renders(&self, path: &str) -> bool {
        self.from_values.iter().any(|r| r.path == path)
    }
}

/// A values list rendered whole (`toYaml .Values.x`, `{{- with .Values.x }}` + `toYaml .`,
/// Bitnami's `tplvalues.render`), and the conditions of the blocks around it beyond those of
/// its pod (for `volumes:`) or its container (for `volumeMounts:`).
#[derive(Clone, Debug)]
pub struct Rendered {
    pub path: String,
    pub conditions: Vec<Cond>,
}

/// One way the pod may reach into its node, and when it does.
#[derive(Clone, Debug)]
pub struct HostText {
    /// 1-based line in the template.
    pub line: usize,
    pub kind: HostAccessKind,
    /// When the pod renders it: the blocks around it, and for a field written by an action,
    /// that the action renders `true`.
    pub when: Cond,
}

/// A `containerPort:` and where its number comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortText {
    /// 1-based line in the template.
    pub line: usize,
    pub source: PortSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSource {
    /// Written in the template.
    Literal(i64),
    /// `{{ .Values.x }}`, with the template's `| default N`.
    Values { path: String, default: Option<i64> },
    /// Each item of the list or mapping at `path` (`range $k, $v := .Values.x` and `$v`), or
    /// the field `field` of each item (`range .Values.x` and `.containerPort`).
    Items { path: String, field: Option<String> },
    /// Each key of the mapping at `path` (`range $k, $v := .Values.x` and `$k`).
    Keys { path: String },
}

/// Every pod spec of a template.
pub fn read(text: &str) -> Vec<PodText> {
    let ls = lines(text);
    let blocks = Blocks::read(ls.iter().map(|l| l.text));
    let reader = Reader {
        ls: &ls,
        blocks: &blocks,
    };
    (0..ls.len())
        .filter(|&i| structural(&ls[i]) && !ls[i].dash && ls[i].key == Some("containers"))
        .map(|i| reader.pod(i))
        .collect()
}

struct Reader<'a, 't> {
    ls: &'a [Line<'t>],
    blocks: &'a Blocks,
}

impl Reader<'_, '_> {
    /// The pod whose `containers:` key is line `i`.
    fn pod(&self, i: usize) -> PodText {
        let mut pod = PodText {
            line: i + 1,
            kind: kind_at(self.ls, i),
            context_line: None,
            volumes: ListText::default(),
            host: Vec::new(),
            containers: Vec::new(),
        };
        for j in self.siblings(i) {
            match self.ls[j].key.unwrap_or_default() {
                "securityContext" => pod.context_line = Some(j + 1),
                "volumes" => pod.volumes = self.list(j, i, "volume"),
                field @ ("hostNetwork" | "hostPID" | "hostIPC") => {
                    pod.host.extend(self.host_field(field, j, i));
                }
                key if CONTAINER_LISTS.contains(&key) => {
                    let items = self.items(j);
                    pod.containers
                        .extend(items.into_iter().map(|item| self.container(item)));
                }
                _ => {}
            }
        }
        pod
    }

    /// The keys beside line `i` in the same mapping (line `i` included). Without a parent
    /// line, the mapping is the body of a helper's `define`.
    fn siblings(&self, i: usize) -> Vec<usize> {
        let ls = self.ls;
        let col = ls[i].indent;
        let up = parent(ls, i, col);
        let defines = |j: &usize| {
            self.blocks
                .on_line(*j)
                .any(|a| a.text.starts_with("define"))
        };
        let (start, end) = match up {
            Some(p) => (p + 1, block_end(ls, p, ls[p].indent)),
            None => (
                (0..i).rev().find(defines).map_or(0, |d| d + 1),
                (i + 1..ls.len()).find(defines).unwrap_or(ls.len()),
            ),
        };
        (start..end)
            .filter(|&j| {
                structural(&ls[j]) && !ls[j].dash && ls[j].indent == col && parent(ls, j, col) == up
            })
            .collect()
    }

    /// The item lines (`- ...`) of the list under key line `k`.
    fn items(&self, k: usize) -> Vec<usize> {
        let ls = self.ls;
        let region = self.region(k);
        let Some(first) = region.clone().find(|&j| structural(&ls[j]) && ls[j].dash) else {
            return vec![];
        };
        let indent = ls[first].indent;
        region
            .filter(|&j| structural(&ls[j]) && ls[j].dash && ls[j].indent == indent)
            .collect()
    }

    /// The lines below key line `k` that belong to its value: up to the next line at its column
    /// that is not an item of a list written at that column.
    fn region(&self, k: usize) -> std::ops::Range<usize> {
        let ls = self.ls;
        let col = ls[k].key_col;
        let end = (k + 1..ls.len())
            .find(|&j| {
                structural(&ls[j]) && (ls[j].indent < col || (ls[j].indent == col && !ls[j].dash))
            })
            .unwrap_or(ls.len());
        k + 1..end
    }

    fn container(&self, item: usize) -> ContainerText {
        let ls = self.ls;
        let col = ls[item].key_col;
        let end = block_end(ls, item, ls[item].indent);
        let key_at = |key: &str| {
            (item..end)
                .find(|&j| structural(&ls[j]) && ls[j].key_col == col && ls[j].key == Some(key))
        };
        ContainerText {
            name: container_name(ls, item),
            line: item + 1,
            context_line: key_at("securityContext").map(|j| j + 1),
            mounts: key_at("volumeMounts")
                .map_or_else(ListText::default, |k| self.list(k, item, "mount")),
            ports: (item..end)
                .filter(|&j| structural(&ls[j]) && ls[j].key == Some("containerPort"))
                .filter_map(|j| self.port(j))
                .collect(),
        }
    }

    /// The list under key line `k`; `outer` is the line of what holds it (the pod's
    /// `containers:` key, or the container's item), whose blocks are not its conditions. A
    /// values list counts when its name says what it holds (`noun`: `volume` or `mount`).
    fn list(&self, k: usize, outer: usize, noun: &str) -> ListText {
        let ls = self.ls;
        let region = self.region(k);
        let mut list = ListText {
            line: Some(k + 1),
            ..ListText::default()
        };
        for action in self
            .blocks
            .actions
            .iter()
            .filter(|a| a.line == k || region.contains(&a.line))
        {
            let path = self
                .rendered_path(action)
                .filter(|p| names(p, noun) && self.render_col(action) >= ls[k].key_col);
            if let Some(path) = path {
                let conditions = self
                    .blocks
                    .conditions_between(action, outer)
                    .into_iter()
                    .cloned()
                    .collect();
                list.from_values.push(Rendered { path, conditions });
            }
        }
        let item_col = region
            .clone()
            .find(|&j| structural(&ls[j]) && ls[j].dash)
            .map(|j| ls[j].key_col);
        let Some(item_col) = item_col else {
            return list;
        };
        for j in region.filter(|&j| structural(&ls[j]) && ls[j].key_col == item_col) {
            let value = literal(ls[j].rest);
            match (ls[j].key, value) {
                (Some("name"), Some(name)) => list.names.push(name.to_string()),
                (Some("mountPath"), Some(path)) if is_tmp_path(path) => list.mounts_tmp = true,
                (Some("hostPath"), _) => list.host_paths.push(self.host_path(j, outer)),
                _ => {}
            }
        }
        list
    }

    /// The values list an action renders whole, if it does.
    fn rendered_path(&self, action: &Action) -> Option<String> {
        let text = &action.text;
        let renders = text.contains("toYaml")
            || text.contains("tplvalues.render")
            || text.starts_with("tpl ");
        if !renders {
            return None;
        }
        match value_refs(text).as_slice() {
            [one] => Some(one.clone()),
            [] if text.split_whitespace().any(|t| t == ".") => self
                .blocks
                .dot(action)
                .filter(|d| !d.contains("[]"))
                .map(str::to_string),
            _ => None,
        }
    }

    /// The column an action renders at: its `nindent`/`indent` argument, else its line's
    /// indentation. What renders left of a list's key (the next containers, `toYaml
    /// .Values.extraContainers | nindent 8`) is not part of the list.
    fn render_col(&self, action: &Action) -> usize {
        let words: Vec<&str> = action.text.split_whitespace().collect();
        let argument = words
            .windows(2)
            .find(|w| matches!(w[0], "nindent" | "indent"))
            .and_then(|w| w[1].trim_end_matches(')').parse().ok());
        argument.unwrap_or(self.ls[action.line].indent)
    }

    /// A `hostPath:` key of a volume item at line `j`.
    fn host_path(&self, j: usize, outer: usize) -> HostText {
        let ls = self.ls;
        let item_col = ls[j].key_col;
        let item = (0..=j)
            .rev()
            .find(|&i| ls[i].dash && ls[i].key_col == item_col)
            .unwrap_or(j);
        let item_end = block_end(self.ls, item, ls[item].indent);
        let name = (item..item_end)
            .find(|&i| structural(&ls[i]) && ls[i].key_col == item_col && ls[i].key == Some("name"))
            .and_then(|i| literal(ls[i].rest))
            .map(str::to_string);
        let path = (j + 1..block_end(ls, j, ls[j].indent))
            .find(|&i| structural(&ls[i]) && ls[i].key == Some("path"))
            .and_then(|i| literal(ls[i].rest))
            .map(str::to_string);
        HostText {
            line: j + 1,
            kind: HostAccessKind::Path { path, name },
            when: Cond::All(self.line_conditions(j, outer)),
        }
    }

    /// `hostNetwork: true`, or `hostNetwork: {{ ... }}`, at line `j` of the pod whose
    /// `containers:` key is line `outer`.
    fn host_field(&self, field: &str, j: usize, outer: usize) -> Option<HostText> {
        let kind = HostAccessKind::namespace(field)?;
        let mut when = self.line_conditions(j, outer);
        match self.blocks.on_line(j).next() {
            Some(action) => {
                let ranges: Vec<_> = self.blocks.ranges(action).into_iter().cloned().collect();
                when.push(renders_true(&action.text, self.blocks.dot(action), &ranges));
            }
            None if literal(self.ls[j].rest) == Some("true") => {}
            None => return None,
        }
        Some(HostText {
            line: j + 1,
            kind,
            when: Cond::All(when),
        })
    }

    /// The conditions of the blocks open at line `j` and not at line `outer`.
    fn line_conditions(&self, j: usize, outer: usize) -> Vec<Cond> {
        self.blocks
            .line_conditions_between(j, outer)
            .into_iter()
            .cloned()
            .collect()
    }

    /// A `containerPort:` at line `j`.
    fn port(&self, j: usize) -> Option<PortText> {
        let rest = self.ls[j].rest.trim();
        let source = match self.blocks.on_line(j).next() {
            None => PortSource::Literal(literal(rest)?.parse().ok()?),
            Some(action) => self.port_source(action)?,
        };
        Some(PortText {
            line: j + 1,
            source,
        })
    }

    fn port_source(&self, action: &Action) -> Option<PortSource> {
        let words: Vec<&str> = action.text.split_whitespace().collect();
        let first = *words.first()?;
        let default = words
            .iter()
            .position(|w| *w == "default")
            .and_then(|i| words.get(i + 1))
            .and_then(|n| n.parse().ok());
        if let [path] = value_refs(first).as_slice() {
            let path = path.clone();
            return Some(PortSource::Values { path, default });
        }
        if let Some(var) = first.strip_prefix('$').filter(|v| !v.is_empty()) {
            let var = format!("${var}");
            let range = self
                .blocks
                .ranges(action)
                .into_iter()
                .rev()
                .find(|r| r.key.as_deref() == Some(&var) || r.value.as_deref() == Some(&var))?;
            let path = range.path.clone();
            return Some(if range.key.as_deref() == Some(&var) {
                PortSource::Keys { path }
            } else {
                PortSource::Items { path, field: None }
            });
        }
        let dot = self.blocks.dot(action)?;
        let field = first.strip_prefix('.')?;
        let field = (!field.is_empty()).then(|| field.to_string());
        Some(match dot.strip_suffix("[]") {
            Some(path) => PortSource::Items {
                path: path.to_string(),
                field,
            },
            None => PortSource::Values {
                path: field.map_or_else(|| dot.to_string(), |f| format!("{dot}.{f}")),
                default,
            },
        })
    }
}

/// Whether a values path's last name says that it holds volumes (`extraVolumes`) or mounts
/// (`volumeMounts`, `extraVolumeMounts`): a list of something else rendered nearby is not one.
fn names(path: &str, noun: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    match noun {
        "volume" => last.contains("volume") && !last.contains("mount"),
        _ => last.contains("mount"),
    }
}

/// A plain scalar written in the template (no action), without quotes or a comment.
fn literal(rest: &str) -> Option<&str> {
    let value = rest.split(" #").next().unwrap_or_default().trim();
    let value = value.trim_matches(['"', '\'']);
    (!value.is_empty() && !value.contains("{{")).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCAFFOLD: &str = r#"apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      {{- with .Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .Chart.Name }}
          {{- with .Values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .Values.service.port }}
          {{- with .Values.volumeMounts }}
          volumeMounts:
            {{- toYaml . | nindent 12 }}
          {{- end }}
      {{- with .Values.volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
"#;

    #[test]
    fn the_scaffold_renders_its_volume_lists_from_values() {
        let pods = read(SCAFFOLD);
        assert_eq!(pods.len(), 1);
        let pod = &pods[0];
        assert_eq!((pod.line, pod.context_line), (10, Some(7)));
        let volumes: Vec<(&str, &[Cond])> = pod
            .volumes
            .from_values
            .iter()
            .map(|r| (r.path.as_str(), r.conditions.as_slice()))
            .collect();
        assert_eq!(
            volumes,
            vec![("volumes", &[Cond::Truthy("volumes".into())][..])]
        );
        let c = &pod.containers[0];
        assert_eq!(c.context_line, Some(13));
        assert_eq!(c.mounts.from_values[0].path, "volumeMounts");
        assert_eq!(
            c.ports,
            vec![PortText {
                line: 18,
                source: PortSource::Values {
                    path: "service.port".into(),
                    default: None
                }
            }]
        );
    }

    #[test]
    fn literal_mounts_host_paths_and_host_fields() {
        let t = r#"kind: DaemonSet
spec:
  template:
    spec:
      hostNetwork: true
      {{- if .Values.agent.hostPID }}
      hostPID: true
      {{- end }}
      hostIPC: {{ .Values.hostIPC }}
      containers:
      - name: agent
        ports:
        - containerPort: 80
        {{- range $name, $port := .Values.extraPorts }}
        - containerPort: {{ $port }}
        {{- end }}
        volumeMounts:
        - name: empty-dir
          mountPath: /tmp
          subPath: tmp-dir
        {{- if .Values.extraVolumeMounts }}
        {{- include "common.tplvalues.render" (dict "value" .Values.extraVolumeMounts "context" $) | nindent 8 }}
        {{- end }}
      volumes:
      - name: empty-dir
        emptyDir: {}
      - name: logs
        hostPath:
          path: /var/log
"#;
        let pod = &read(t)[0];
        let lines: Vec<usize> = pod.host.iter().map(|h| h.line).collect();
        assert_eq!(lines, vec![5, 7, 9]);
        let values = serde_json::json!({"agent": {"hostPID": false}, "hostIPC": true});
        let on: Vec<Option<bool>> = pod.host.iter().map(|h| h.when.eval(&values)).collect();
        assert_eq!(on, vec![Some(true), Some(false), Some(true)]);
        assert_eq!(pod.volumes.names, vec!["empty-dir", "logs"]);
        assert_eq!(
            pod.volumes.host_paths[0].kind,
            HostAccessKind::Path {
                path: Some("/var/log".into()),
                name: Some("logs".into())
            }
        );
        let c = &pod.containers[0];
        assert!(c.mounts.mounts_tmp);
        assert_eq!(c.mounts.from_values[0].path, "extraVolumeMounts");
        let ports: Vec<&PortSource> = c.ports.iter().map(|p| &p.source).collect();
        assert_eq!(
            ports,
            vec![
                &PortSource::Literal(80),
                &PortSource::Items {
                    path: "extraPorts".into(),
                    field: None
                }
            ]
        );
    }

    #[test]
    fn what_renders_left_of_a_list_or_under_another_name_is_not_its_values_list() {
        let t = r#"kind: StatefulSet
spec:
  template:
    spec:
      containers:
        - name: app
          volumeMounts:
            - name: data
              mountPath: /data
            {{- if .Values.extraVolumeMounts }}
            {{- toYaml .Values.extraVolumeMounts | nindent 12 }}
            {{- end }}
        {{- with .Values.extraContainers }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      volumes:
        {{- toYaml .Values.extraVolumes | nindent 8 }}
        {{- toYaml .Values.extraSecrets | nindent 8 }}
"#;
        let pod = &read(t)[0];
        let mounts: Vec<&str> = pod.containers[0]
            .mounts
            .from_values
            .iter()
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(mounts, vec!["extraVolumeMounts"]);
        let volumes: Vec<&str> = pod
            .volumes
            .from_values
            .iter()
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(volumes, vec!["extraVolumes"]);
    }

    #[test]
    fn a_pod_spec_written_by_a_helper() {
        let t = "{{- define \"x.pod\" -}}\nsecurityContext: {}\ncontainers:\n  - name: a\n    volumeMounts: {{- toYaml .Values.a.mounts | nindent 6 }}\nvolumes: {{- toYaml .Values.a.volumes | nindent 2 }}\n{{- end }}\n";
        let pod = &read(t)[0];
        assert_eq!(pod.context_line, Some(2));
        assert_eq!(pod.volumes.from_values[0].path, "a.volumes");
        assert_eq!(pod.containers[0].mounts.from_values[0].path, "a.mounts");
    }
}
