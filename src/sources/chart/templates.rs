//! Reads a chart's templates as text (never as YAML: they are Go templates) and finds where a
//! pod or container `securityContext:` key is written, which `.Values` paths feed it, and which
//! pods and containers have none.
//!
//! Whether a key is at pod or container level comes from the text's indentation: a key whose
//! parent is `spec:` is a pod's, a key inside an item of `containers:`, `initContainers:` or
//! `ephemeralContainers:` is a container's. Template actions (`{{ ... }}` lines) are not
//! structure; those that open a block right above the key (`with .Values.x`, `if .Values.x`)
//! feed it, as do the actions on the key's line and on the lines below it. The line model is
//! shared with [`super::pods`], which reads the rest of the pod specs the same way.

use crate::policy::Level;

/// A `securityContext:` key written by a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    /// 1-based line of the key in the template.
    pub line: usize,
    pub level: Level,
    /// The dotted `.Values` paths referred to around the key (`podSecurityContext`,
    /// `controller.podSecurityContext.enabled`, ...), in order of appearance.
    pub refs: Vec<String>,
    /// The template has another branch or a `default` for this key: an empty value may be a
    /// sentinel that selects the template's own default.
    pub has_default: bool,
    /// When the template's own default applies, as the template says it (`` `or
    /// .Values.service.hostPort .Values.tls.hostPort` ``, `` `.Values.securityContext` is
    /// empty``), if it could be read.
    pub default_when: Option<String>,
    /// The key is in an `else` branch (the template's own default of a key above it, or the
    /// values' branch below a default).
    pub in_else: bool,
    /// The kind of the object (`Deployment`), when the template says it literally.
    pub kind: String,
    /// The container's name as written (`{{ .Chart.Name }}`), or `pod`.
    pub name: String,
    /// Fields of the context written one by one from a values key (`runAsUser: {{
    /// .Values.image.runAsUser }}`), as a helper may build a context from image-level keys.
    pub fields: Vec<Field>,
    /// Fields written literally with a value that falls short of the baseline
    /// (`readOnlyRootFilesystem: false`): `path` holds the value as written.
    pub literals: Vec<Field>,
}

/// A securityContext field that a template writes from one values key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field (`runAsUser`).
    pub key: String,
    /// The values path (`controller.image.runAsUser`).
    pub path: String,
    /// 1-based line where it is written.
    pub line: usize,
}

/// The securityContext fields a values key may write one by one (the contract's scalars).
const SCALAR_FIELDS: [&str; 7] = [
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "privileged",
];

/// `key: value` written literally with a value that falls short of the baseline.
fn short_literal(l: &Line) -> Option<(String, String)> {
    let key = l.key?;
    let value = l.rest.split(" #").next().unwrap_or_default().trim();
    let short = matches!(
        (key, value),
        ("runAsUser" | "runAsGroup" | "fsGroup", "0")
            | ("runAsNonRoot" | "readOnlyRootFilesystem", "false")
            | ("allowPrivilegeEscalation", "true")
    );
    short.then(|| (key.to_string(), value.to_string()))
}

/// `key: {{ .Values.x }}` (a trailing `| quote`-like pipe is not allowed: the value must be
/// the key's own): the field and the path.
fn field_of(l: &Line) -> Option<(String, String)> {
    let key = l.key.filter(|k| SCALAR_FIELDS.contains(k))?;
    let rest = l.rest.trim();
    let inner = rest.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim_matches('-').trim();
    let path = inner
        .strip_prefix(".Values.")
        .or_else(|| inner.strip_prefix("$.Values."))?;
    path.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
        .then(|| (key.to_string(), path.to_string()))
}

/// A pod or container the template gives no securityContext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    pub line: usize,
    pub kind: String,
    pub name: String,
    pub message: String,
    /// Set when the pod or container has no `securityContext` key at all.
    pub missing: Option<Level>,
}

/// What one template says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wiring {
    pub uses: Vec<Use>,
    pub gaps: Vec<Gap>,
    /// Values paths a helper's `merge` layers: (the path whose keys win, the path under it),
    /// `*` for any key.
    pub layers: Vec<(String, String)>,
}

pub(super) const CONTAINER_LISTS: [&str; 3] =
    ["containers", "initContainers", "ephemeralContainers"];

/// One line of a template, as far as its indentation and its key tell.
pub(super) struct Line<'t> {
    pub text: &'t str,
    pub indent: usize,
    /// A template action line (`{{ ... }}` and nothing else).
    pub action: bool,
    /// A YAML comment or blank line.
    pub blank: bool,
    /// `- ` item: the column of its first key; else the indent.
    pub key_col: usize,
    pub dash: bool,
    pub key: Option<&'t str>,
    /// The text after `key:`.
    pub rest: &'t str,
}

pub(super) fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .map(|text| {
            let text = text.trim_end_matches('\r');
            let content = text.trim_start_matches(' ');
            let indent = text.len() - content.len();
            let trimmed = content.trim_end();
            let action = trimmed.starts_with("{{") && trimmed.ends_with("}}");
            let blank = trimmed.is_empty() || trimmed.starts_with('#');
            let (dash, after_dash) = match content.strip_prefix('-') {
                Some(r) if r.starts_with(' ') => (true, r.trim_start_matches(' ')),
                _ => (false, content),
            };
            let key_col = indent + (content.len() - after_dash.len());
            let (key, rest) = split_key(after_dash);
            Line {
                text,
                indent,
                action,
                blank,
                key_col,
                dash,
                key,
                rest,
            }
        })
        .collect()
}

/// `key: rest` with a plain key, or None.
fn split_key(s: &str) -> (Option<&str>, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
        .unwrap_or(s.len());
    if end == 0 {
        return (None, "");
    }
    let after = &s[end..];
    match after.strip_prefix(':') {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => (Some(&s[..end]), rest),
        _ => (None, ""),
    }
}

pub(super) fn structural(l: &Line) -> bool {
    !l.action && !l.blank
}

/// The nearest structural line above `i` whose column is below `col`.
pub(super) fn parent(ls: &[Line], i: usize, col: usize) -> Option<usize> {
    (0..i)
        .rev()
        .find(|&j| structural(&ls[j]) && ls[j].indent < col)
}

/// The `kind:` of the document that holds line `i`.
pub(super) fn kind_at(ls: &[Line], i: usize) -> String {
    (0..=i)
        .rev()
        .find_map(|j| {
            let l = &ls[j];
            (l.indent == 0 && l.key == Some("kind")).then(|| l.rest.trim().to_string())
        })
        .unwrap_or_else(|| "object".into())
}

/// The container item (its dash line) that line `i` at column `col` belongs to, if it is a
/// container's key.
pub(super) fn container_item(ls: &[Line], i: usize, col: usize) -> Option<usize> {
    let item = if ls[i].dash {
        i
    } else {
        let p = parent(ls, i, col)?;
        (ls[p].dash && ls[p].key_col == col).then_some(p)?
    };
    let list = parent(ls, item, ls[item].indent + 1)?;
    let list = if ls[list].indent == ls[item].indent && !ls[list].dash {
        Some(list) // compact list: `containers:` then `- name` at the same column
    } else {
        parent(ls, item, ls[item].indent)
    }?;
    CONTAINER_LISTS
        .contains(&ls[list].key.unwrap_or_default())
        .then_some(item)
}

/// The lines of a container item or a mapping under line `i` (column `col`): up to the next
/// structural line at or left of `col`.
pub(super) fn block_end(ls: &[Line], i: usize, col: usize) -> usize {
    (i + 1..ls.len())
        .find(|&j| structural(&ls[j]) && ls[j].indent <= col)
        .unwrap_or(ls.len())
}

pub(super) fn container_name(ls: &[Line], item: usize) -> String {
    let col = ls[item].key_col;
    let end = block_end(ls, item, ls[item].indent);
    (item..end)
        .find(|&j| structural(&ls[j]) && ls[j].key_col == col && ls[j].key == Some("name"))
        .map(|j| ls[j].rest.trim().trim_matches(['"', '\'']).to_string())
        .unwrap_or_else(|| "<unnamed>".into())
}

/// The first word of each `{{ ... }}` action of a line (`if`, `with`, `end`, `toYaml`, ...).
fn actions(text: &str) -> Vec<&str> {
    text.split("{{")
        .skip(1)
        .map(|a| {
            a.trim_start_matches('-')
                .trim_start()
                .split(|c: char| c.is_whitespace() || c == '}')
                .next()
                .unwrap_or_default()
        })
        .collect()
}

/// The text of each `{{ ... }}` action of a line, without its delimiters and trim markers.
fn bodies(text: &str) -> Vec<&str> {
    text.split("{{")
        .skip(1)
        .map(|a| {
            let inner = a.split("}}").next().unwrap_or_default();
            inner.trim_start_matches('-').trim_end_matches('-').trim()
        })
        .collect()
}

/// The condition of an `if`, `else if` or `with` action's body, without outer parentheses.
fn condition(body: &str) -> Option<&str> {
    let cond = ["else if ", "if ", "else with ", "with "]
        .iter()
        .find_map(|p| body.strip_prefix(p))?
        .trim();
    Some(
        match cond.strip_prefix('(').and_then(|c| c.strip_suffix(')')) {
            Some(inner) if balanced(inner) => inner.trim(),
            _ => cond,
        },
    )
}

/// Every `(` in `text` is closed before its end (so outer parentheses may be dropped).
fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// When the `else` branch of a block opened by `opener` (an `if` or `with` body) applies.
fn else_condition(opener: &str) -> Option<String> {
    let cond = condition(opener)?;
    let single = cond.starts_with(".Values.") && !cond.contains(' ');
    Some(match single || opener.starts_with("with ") {
        true => format!("`{cond}` is empty"),
        false => format!("`{cond}` does not hold"),
    })
}

/// A `default` in an action of `text`: when it applies (its values path is empty).
fn default_condition(text: &str) -> Option<String> {
    bodies(text).into_iter().find_map(|body| {
        let at = body.find("default ")?;
        let after = value_refs(&body[at..]).pop();
        let path = after.or_else(|| value_refs(&body[..at]).into_iter().next())?;
        Some(format!("`.Values.{path}` is empty"))
    })
}

/// Whether a line's actions use `default` (`| default x`, `(default x .Values.y)`).
fn uses_default(text: &str) -> bool {
    bodies(text)
        .iter()
        .any(|b| b.starts_with("default ") || b.contains(" default ") || b.contains("(default "))
}

/// The condition of the `if` that opens the block holding line `j` (an `else` line),
/// looking up through the lines of its first branch.
fn if_above(ls: &[Line], j: usize) -> Option<String> {
    let mut depth = 0usize;
    for l in ls[..j]
        .iter()
        .rev()
        .filter(|l| l.action || l.text.contains("{{"))
    {
        for body in bodies(l.text).into_iter().rev() {
            match first_word(body) {
                "end" => depth += 1,
                "if" | "with" | "range" if depth > 0 => depth -= 1,
                "if" | "with" => return condition(body).map(|c| format!("`{c}`")),
                _ => {}
            }
        }
    }
    None
}

fn first_word(body: &str) -> &str {
    body.split(|c: char| c.is_whitespace() || c == '}')
        .next()
        .unwrap_or_default()
}

/// Every `.Values.a.b` path in `text` (also `$.Values`), as `a.b`.
pub fn value_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".Values.") {
        let tail = &rest[at + ".Values.".len()..];
        // `*` stands for any key (an item of a `range` in a helper, see super::helpers).
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '*')))
            .unwrap_or(tail.len());
        let path = tail[..end].trim_end_matches('.');
        if !path.is_empty() && !refs.iter().any(|r| r == path) {
            refs.push(path.to_string());
        }
        rest = &tail[end..];
    }
    refs
}

/// Every `.a.b` field path relative to `.` inside the actions of `text` (not `.Values`,
/// `.Release` and the like: those are not fields of a values mapping).
fn relative_refs(text: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for action in text.split("{{").skip(1) {
        let action = action.split("}}").next().unwrap_or_default();
        let bytes = action.as_bytes();
        for (i, _) in action.match_indices('.') {
            let before = if i == 0 { b' ' } else { bytes[i - 1] };
            if !matches!(before, b' ' | b'(' | b'\t') {
                continue;
            }
            let tail = &action[i + 1..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(tail.len());
            let path = tail[..end].trim_end_matches('.');
            let first = path.split('.').next().unwrap_or_default();
            let builtin = matches!(
                first,
                "Values" | "Release" | "Chart" | "Capabilities" | "Template" | "Files"
            );
            if !path.is_empty()
                && !builtin
                && first.starts_with(|c: char| c.is_ascii_alphabetic())
                && !refs.iter().any(|r| r == path)
            {
                refs.push(path.to_string());
            }
        }
    }
    refs
}

/// Reads one template.
pub fn analyse(text: &str) -> Wiring {
    analyse_expanded(text, &[])
}

/// Reads one template whose includes are expanded ([`super::helpers`]); `unfollowed`: the
/// 0-based lines with an `include` that could not be followed, and its name. A pod or container
/// with such a line and no `securityContext:` key may get one from that helper: it is reported
/// for a person to check, never with the advice to add a key the helper may already write.
pub fn analyse_expanded(text: &str, unfollowed: &[(usize, String)]) -> Wiring {
    let ls = lines(text);
    let mut wiring = Wiring::default();
    for i in 0..ls.len() {
        let l = &ls[i];
        if !structural(l) {
            continue;
        }
        match l.key {
            Some("securityContext") => {
                if let Some(u) = security_context_use(&ls, i) {
                    wiring.uses.push(u);
                }
            }
            Some("spec") if !l.dash => pod_gap(&ls, i, unfollowed, &mut wiring.gaps),
            _ => {}
        }
        if l.dash {
            if let Some(item) = container_item(&ls, i, l.key_col) {
                container_gap(&ls, item, unfollowed, &mut wiring.gaps);
            }
        }
    }
    wiring
}

fn security_context_use(ls: &[Line], i: usize) -> Option<Use> {
    let col = ls[i].key_col;
    let level = if let Some(item) = container_item(ls, i, col) {
        let name = container_name(ls, item);
        (Level::Container, name)
    } else {
        let p = parent(ls, i, col);
        let under_spec = p.is_some_and(|p| ls[p].key == Some("spec") && !ls[p].dash);
        if !under_spec && !beside_containers(ls, i, p) {
            return None;
        }
        (Level::Pod, "pod".to_string())
    };
    let mut refs = Vec::new();
    let mut has_default = false;
    // The innermost `with .Values.x` around the key: `.y` inside it is `.Values.x.y`.
    let mut with_path: Option<String> = None;
    // Blocks opened right above the key (`with`, `if`) and not closed before it.
    let mut depth = 0usize;
    // The `if` or `with` that opens the block the key is in (an `else` below it is the
    // template's default for when its condition fails).
    let mut opener: Option<&str> = None;
    let mut default_when: Option<String> = None;
    let mut in_else = false;
    for j in (0..i).rev() {
        let l = &ls[j];
        if l.blank && !l.action {
            continue;
        }
        if !l.action {
            break;
        }
        for body in bodies(l.text).into_iter().rev() {
            match first_word(body) {
                "end" => depth += 1,
                "if" | "with" | "range" if depth > 0 => depth -= 1,
                "with" => {
                    let opened = value_refs(l.text);
                    if with_path.is_none() {
                        with_path = opened.first().cloned();
                    }
                    refs.extend(opened);
                    opener = opener.or(Some(body));
                }
                "if" | "range" => {
                    refs.extend(value_refs(l.text));
                    if first_word(body) == "if" {
                        opener = opener.or(Some(body));
                    }
                }
                "else" if depth == 0 => {
                    has_default = true;
                    in_else = true;
                    // The key is in a later branch: the default is the branch above it.
                    default_when = default_when.or_else(|| if_above(ls, j));
                }
                _ => {}
            }
        }
    }
    // The key's own line and what follows it: its value's lines, and actions that write into
    // it, up to the next structural line at or left of its column.
    let mut region = vec![ls[i].rest];
    if uses_default(ls[i].text) {
        has_default = true;
        default_when = default_when.or_else(|| default_condition(ls[i].text));
    }
    let mut nested = 0usize;
    let mut fields = Vec::new();
    let mut literals = Vec::new();
    for (j, l) in ls.iter().enumerate().skip(i + 1) {
        if l.blank && !l.action {
            continue;
        }
        if structural(l) {
            if l.indent <= col && !(l.dash && ls[i].dash && l.indent > ls[i].indent) {
                break;
            }
            if let Some((key, path)) = field_of(l) {
                fields.push(Field {
                    key,
                    path,
                    line: j + 1,
                });
            }
            if let Some((key, value)) = short_literal(l) {
                literals.push(Field {
                    key,
                    path: value,
                    line: j + 1,
                });
            }
            region.push(l.text);
            continue;
        }
        let acts = actions(l.text);
        let opens = acts.iter().any(|a| matches!(*a, "if" | "with" | "range"));
        let closes = acts.iter().filter(|a| **a == "end").count();
        if opens && l.indent <= col && nested == 0 {
            break; // a block for the next key
        }
        if acts.contains(&"else") && nested == 0 {
            has_default = true;
            let body = bodies(l.text).into_iter().find(|b| first_word(b) == "else");
            let when = match body.and_then(condition) {
                Some(cond) => Some(format!("`{cond}`")),
                None => opener.and_then(else_condition),
            };
            default_when = default_when.or(when);
        }
        if closes > nested {
            // Closes a block opened above the key: the value's actions are over.
            if !opens {
                break;
            }
        }
        nested += acts
            .iter()
            .filter(|a| matches!(**a, "if" | "with" | "range"))
            .count();
        nested = nested.saturating_sub(closes);
        if uses_default(l.text) {
            has_default = true;
            default_when = default_when.or_else(|| default_condition(l.text));
        }
        region.push(l.text);
    }
    for text in region {
        refs.extend(value_refs(text));
        if let Some(with) = &with_path {
            refs.extend(
                relative_refs(text)
                    .into_iter()
                    .map(|r| format!("{with}.{r}")),
            );
        }
    }
    let mut unique = Vec::new();
    for r in refs {
        if !unique.contains(&r) {
            unique.push(r);
        }
    }
    Some(Use {
        line: i + 1,
        level: level.0,
        refs: unique,
        has_default,
        default_when,
        in_else,
        kind: kind_at(ls, i),
        name: level.1,
        fields,
        literals,
    })
}

/// True when line `i` has a sibling `containers:` key: a pod spec whose `spec:` is not in this
/// text (a helper's `define` that writes a pod spec, included under the pod's `spec:`).
fn beside_containers(ls: &[Line], i: usize, parent: Option<usize>) -> bool {
    let col = ls[i].key_col;
    // Without a parent line, the siblings are those of the same `define` block.
    let defines = |j: &usize| actions(ls[*j].text).contains(&"define");
    let start = parent.map_or_else(
        || (0..i).rev().find(defines).map_or(0, |d| d + 1),
        |p| p + 1,
    );
    let end = parent.map_or_else(
        || (i + 1..ls.len()).find(defines).unwrap_or(ls.len()),
        |p| block_end(ls, p, ls[p].indent),
    );
    (start..end).any(|j| {
        structural(&ls[j])
            && !ls[j].dash
            && ls[j].indent == col
            && ls[j].key == Some("containers")
            && parent_is(ls, j, parent)
    })
}

fn parent_is(ls: &[Line], j: usize, expected: Option<usize>) -> bool {
    parent(ls, j, ls[j].indent) == expected
}

/// The helper an unfollowed `include` in lines `range` (direct children at `col` only) names.
fn unfollowed_in(
    ls: &[Line],
    range: std::ops::Range<usize>,
    col: usize,
    unfollowed: &[(usize, String)],
) -> Option<String> {
    unfollowed
        .iter()
        .find(|(j, _)| range.contains(j) && ls[*j].indent == col)
        .map(|(_, name)| name.clone())
}

fn helper_gap(what: &str, helper: &str) -> String {
    format!("{what} has no `securityContext:` in the template, and `include \"{helper}\"` beside its keys may write one: that helper is not one kube-harden can read (not in this chart or a dependency vendored in charts/), so check it by hand")
}

/// A `spec:` that holds `containers:` and no `securityContext:` is a pod without one.
fn pod_gap(ls: &[Line], i: usize, unfollowed: &[(usize, String)], gaps: &mut Vec<Gap>) {
    let col = ls[i].indent;
    let end = block_end(ls, i, col);
    let child_col = (i + 1..end)
        .find(|&j| structural(&ls[j]))
        .map(|j| ls[j].indent);
    let Some(child_col) = child_col.filter(|&c| c > col) else {
        return;
    };
    let children = || {
        (i + 1..end)
            .filter(move |&j| structural(&ls[j]) && !ls[j].dash && ls[j].indent == child_col)
    };
    let has = |key: &str| children().any(|j| ls[j].key == Some(key));
    if !has("containers") || has("securityContext") {
        return;
    }
    if let Some(helper) = unfollowed_in(ls, i + 1..end, child_col, unfollowed) {
        gaps.push(Gap {
            line: i + 1,
            kind: kind_at(ls, i),
            name: "pod".into(),
            missing: None,
            message: helper_gap("the pod", &helper),
        });
        return;
    }
    gaps.push(Gap {
        line: i + 1,
        kind: kind_at(ls, i),
        name: "pod".into(),
        missing: Some(Level::Pod),
        message: format!(
            "the pod has no securityContext; add `securityContext: {{{{- toYaml .Values.podSecurityContext | nindent {} }}}}` under `spec:`",
            child_col + 2
        ),
    });
}

fn container_gap(ls: &[Line], item: usize, unfollowed: &[(usize, String)], gaps: &mut Vec<Gap>) {
    let col = ls[item].key_col;
    let end = block_end(ls, item, ls[item].indent);
    let has = (item..end).any(|j| {
        structural(&ls[j]) && ls[j].key_col == col && ls[j].key == Some("securityContext")
    });
    if has {
        return;
    }
    let name = container_name(ls, item);
    if let Some(helper) = unfollowed_in(ls, item + 1..end, col, unfollowed) {
        gaps.push(Gap {
            line: item + 1,
            kind: kind_at(ls, item),
            missing: None,
            message: helper_gap(&format!("container `{name}`"), &helper),
            name,
        });
        return;
    }
    gaps.push(Gap {
        line: item + 1,
        kind: kind_at(ls, item),
        missing: Some(Level::Container),
        message: format!(
            "container `{name}` has no securityContext; add `securityContext: {{{{- toYaml .Values.securityContext | nindent {} }}}}`",
            col + 2
        ),
        name,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCAFFOLD: &str = r#"apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
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
          image: "x"
          {{- with .Values.volumeMounts }}
          volumeMounts:
            {{- toYaml . | nindent 12 }}
          {{- end }}
"#;

    #[test]
    fn scaffold_with_blocks() {
        let w = analyse(SCAFFOLD);
        assert_eq!(w.gaps, vec![]);
        assert_eq!(w.uses.len(), 2);
        assert_eq!(w.uses[0].level, Level::Pod);
        assert_eq!(w.uses[0].refs, vec!["podSecurityContext"]);
        assert_eq!(w.uses[0].kind, "Deployment");
        assert_eq!(w.uses[1].level, Level::Container);
        assert_eq!(w.uses[1].refs, vec!["securityContext"]);
        assert_eq!(w.uses[1].name, "{{ .Chart.Name }}");
        assert!(!w.uses[1].has_default);
    }

    #[test]
    fn bitnami_include_and_omit_and_column_zero_actions() {
        let t = r#"kind: StatefulSet
spec:
  template:
    spec:
      {{- if .Values.server.podSecurityContext.enabled }}
      securityContext: {{- include "common.compatibility.renderSecurityContext" (dict "secContext" $.Values.server.podSecurityContext "context" $) | nindent 8 }}
      {{- end }}
      initContainers:
      - name: init
{{- if .Values.init.containerSecurityContext }}
        securityContext:
{{ toYaml .Values.init.containerSecurityContext | indent 10 }}
{{- end }}
      containers:
      - name: app
        securityContext: {{- omit .Values.server.containerSecurityContext "enabled" | toYaml | nindent 10 }}
        image: x
"#;
        let w = analyse(t);
        assert_eq!(w.gaps, vec![]);
        let got: Vec<(Level, Vec<String>)> =
            w.uses.iter().map(|u| (u.level, u.refs.clone())).collect();
        assert_eq!(
            got,
            vec![
                (
                    Level::Pod,
                    vec![
                        "server.podSecurityContext.enabled".to_string(),
                        "server.podSecurityContext".to_string()
                    ]
                ),
                (
                    Level::Container,
                    vec!["init.containerSecurityContext".to_string()]
                ),
                (
                    Level::Container,
                    vec!["server.containerSecurityContext".to_string()]
                ),
            ]
        );
        assert_eq!(w.uses[2].name, "app");
    }

    #[test]
    fn gaps_name_the_pod_and_container() {
        let t = "kind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - name: migrate\n          image: x\n";
        let w = analyse(t);
        assert!(w.uses.is_empty());
        let msgs: Vec<&str> = w.gaps.iter().map(|g| g.message.as_str()).collect();
        assert_eq!(msgs, vec![
            "the pod has no securityContext; add `securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}` under `spec:`",
            "container `migrate` has no securityContext; add `securityContext: {{- toYaml .Values.securityContext | nindent 12 }}`",
        ]);
        assert_eq!(w.gaps[1].line, 6);
    }

    #[test]
    fn a_helper_that_writes_a_pod_spec() {
        let t = r#"{{- define "x.pod" -}}
serviceAccountName: {{ .Values.sa }}
securityContext: {{- toYaml .Values.agent.podSecurityContext | nindent 2 }}
containers:
  - name: agent
    securityContext: {{- toYaml .Values.agent.securityContext | nindent 6 }}
{{- end }}
{{- define "x.labels" -}}
securityContext: not a pod
{{- end }}
"#;
        let w = analyse(t);
        let got: Vec<(Level, Vec<String>)> =
            w.uses.iter().map(|u| (u.level, u.refs.clone())).collect();
        assert_eq!(
            got,
            vec![
                (Level::Pod, vec!["agent.podSecurityContext".to_string()]),
                (Level::Container, vec!["agent.securityContext".to_string()]),
            ]
        );
    }

    #[test]
    fn a_field_of_the_with_value() {
        let t = "kind: Job\nspec:\n  template:\n    spec:\n      containers:\n        - name: create\n          {{- with .Values.webhooks.createJob }}\n          securityContext:\n          {{ toYaml .securityContext | nindent 12 }}\n          {{- end }}\n";
        let w = analyse(t);
        assert_eq!(
            w.uses[0].refs,
            vec!["webhooks.createJob", "webhooks.createJob.securityContext"]
        );
        assert_eq!(w.uses[0].level, Level::Container);
    }

    #[test]
    fn an_include_that_is_not_followed_is_no_advice_to_add_a_key() {
        let t = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: x\n          {{- include \"vendor.securityContext\" . | nindent 10 }}\n        - name: other\n          image: y\n";
        let w = analyse_expanded(t, &[(7, "vendor.securityContext".to_string())]);
        let got: Vec<(&str, Option<Level>, &str)> = w
            .gaps
            .iter()
            .map(|g| (g.name.as_str(), g.missing, g.message.as_str()))
            .collect();
        assert_eq!(got, vec![
            ("pod", Some(Level::Pod), "the pod has no securityContext; add `securityContext: {{- toYaml .Values.podSecurityContext | nindent 8 }}` under `spec:`"),
            ("app", None, "container `app` has no `securityContext:` in the template, and `include \"vendor.securityContext\"` beside its keys may write one: that helper is not one kube-harden can read (not in this chart or a dependency vendored in charts/), so check it by hand"),
            ("other", Some(Level::Container), "container `other` has no securityContext; add `securityContext: {{- toYaml .Values.securityContext | nindent 12 }}`"),
        ]);
    }

    #[test]
    fn fields_written_from_values_keys() {
        let t = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          securityContext:\n            runAsUser: {{ .Values.image.uid }}\n            readOnlyRootFilesystem: {{ .Values.image.readOnly | quote }}\n            allowPrivilegeEscalation: false\n";
        let w = analyse(t);
        assert_eq!(
            w.uses[0].fields,
            vec![Field {
                key: "runAsUser".into(),
                path: "image.uid".into(),
                line: 8
            }],
            "a piped value is not the key's own"
        );
    }

    #[test]
    fn else_branch_is_a_default() {
        let t = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        {{- if .Values.c.sc }}\n        securityContext: {{ toYaml .Values.c.sc | nindent 10 }}\n        {{- else }}\n        securityContext:\n          runAsUser: 101\n        {{- end }}\n";
        let w = analyse(t);
        assert!(w.uses[0].has_default, "{:?}", w.uses);
        assert_eq!(w.uses[0].refs, vec!["c.sc"]);
    }

    #[test]
    fn the_condition_of_the_default_is_read() {
        let t = "kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: c
          {{- if .Values.c.sc }}
          securityContext: {{ toYaml .Values.c.sc | nindent 12 }}
          {{- else if (or .Values.service.hostPort .Values.tls.hostPort) }}
          securityContext:
            runAsUser: 101
          {{- end }}
        - name: d
          securityContext: {{- toYaml (default (dict \"runAsUser\" 1001) .Values.d.sc) | nindent 12 }}
        - name: e
          {{- with .Values.e.sc }}
          securityContext: {{ toYaml . | nindent 12 }}
          {{- else }}
          securityContext: {runAsUser: 7}
          {{- end }}
";
        let w = analyse(t);
        let got: Vec<(Vec<String>, bool, Option<&str>)> = w
            .uses
            .iter()
            .map(|u| (u.refs.clone(), u.has_default, u.default_when.as_deref()))
            .collect();
        let refs = |r: &[&str]| r.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (
                    refs(&["c.sc", "service.hostPort", "tls.hostPort"]),
                    true,
                    Some("`or .Values.service.hostPort .Values.tls.hostPort`")
                ),
                (vec![], true, Some("`.Values.c.sc`"),),
                (refs(&["d.sc"]), true, Some("`.Values.d.sc` is empty")),
                (refs(&["e.sc"]), true, Some("`.Values.e.sc` is empty")),
                (vec![], true, Some("`.Values.e.sc`")),
            ]
        );
    }
}
