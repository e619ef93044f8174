//! Values a planner asks to write, and their text in block or flow style.

/// A value to be written into a file.
#[derive(Clone, Debug, PartialEq)]
pub enum NewValue {
    Bool(bool),
    Int(i64),
    Str(String),
    Map(Vec<(String, NewValue)>),
    Seq(Vec<NewValue>),
}

impl NewValue {
    pub fn str(s: &str) -> NewValue {
        NewValue::Str(s.to_string())
    }

    pub fn map(entries: Vec<(&str, NewValue)>) -> NewValue {
        NewValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

/// How new block lines are laid out where they go.
#[derive(Clone, Copy, Debug)]
pub struct BlockLayout {
    /// Spaces per nesting level of mappings.
    pub step: usize,
    /// Column of a list's dash relative to its key (0 = compact, `- x` under `key:`).
    pub seq_offset: usize,
}

/// Renders `key: value` entries as block lines (without line endings) at column `col`.
pub fn block_entries(
    entries: &[(String, NewValue)],
    col: usize,
    layout: BlockLayout,
    out: &mut Vec<String>,
) {
    let pad = " ".repeat(col);
    for (key, value) in entries {
        let key = scalar_text(&NewValue::Str(key.clone()), false);
        match value {
            NewValue::Map(inner) if !inner.is_empty() => {
                out.push(format!("{pad}{key}:"));
                block_entries(inner, col + layout.step, layout, out);
            }
            NewValue::Seq(items) if !items.is_empty() => {
                out.push(format!("{pad}{key}:"));
                block_items(items, col + layout.seq_offset, layout, out);
            }
            NewValue::Str(text) if literal_lines(text).is_some() => {
                let (header, lines) = literal_lines(text).unwrap_or_default();
                out.push(format!("{pad}{key}: {header}"));
                let inner = " ".repeat(col + layout.step.max(2));
                out.extend(lines.into_iter().map(|l| match l.is_empty() {
                    true => String::new(),
                    false => format!("{inner}{l}"),
                }));
            }
            other => out.push(format!("{pad}{key}: {}", flow_text(other, false))),
        }
    }
}

/// A multi-line string as a literal block scalar: its header (`|`, `|-` or `|+` by how many
/// line breaks end it) and its lines. None for a string a literal block cannot hold exactly
/// (one line, a first line that starts with a space, control characters, trailing blanks).
fn literal_lines(text: &str) -> Option<(&'static str, Vec<&str>)> {
    let body = text.trim_end_matches('\n');
    let breaks = text.len() - body.len();
    let printable = |c: char| c == '\n' || c == '\t' || !c.is_control();
    let clean = |l: &str| !l.ends_with([' ', '\t']);
    if !body.contains('\n')
        || body.starts_with([' ', '\t', '\n'])
        || !text.chars().all(printable)
        || !body.split('\n').all(clean)
    {
        return None;
    }
    let header = match breaks {
        0 => "|-",
        1 => "|",
        _ => "|+",
    };
    let mut lines: Vec<&str> = body.split('\n').collect();
    lines.extend(std::iter::repeat_n("", breaks.saturating_sub(1)));
    Some((header, lines))
}

/// Renders list items as block lines with their dash at column `dash_col`.
pub fn block_items(
    items: &[NewValue],
    dash_col: usize,
    layout: BlockLayout,
    out: &mut Vec<String>,
) {
    for item in items {
        match item {
            NewValue::Map(entries) if !entries.is_empty() => {
                let first = out.len();
                block_entries(entries, dash_col + 2, layout, out);
                // The first entry shares the dash's line: `- key: value`.
                let line = &out[first][dash_col + 2..];
                out[first] = format!("{}- {}", " ".repeat(dash_col), line);
            }
            other => out.push(format!(
                "{}- {}",
                " ".repeat(dash_col),
                flow_text(other, false)
            )),
        }
    }
}

/// Renders the inside of a flow mapping: `k: v, k2: v2`.
pub fn flow_entries(entries: &[(String, NewValue)], json: bool) -> Vec<String> {
    entries
        .iter()
        .map(|(k, v)| {
            format!(
                "{}: {}",
                scalar_text(&NewValue::Str(k.clone()), json),
                flow_text(v, json)
            )
        })
        .collect()
}

/// Renders a value in flow style (`{a: 1}`, `[x, y]`, scalars).
pub fn flow_text(value: &NewValue, json: bool) -> String {
    match value {
        NewValue::Map(entries) => format!("{{{}}}", flow_entries(entries, json).join(", ")),
        NewValue::Seq(items) => {
            let inner: Vec<String> = items.iter().map(|i| flow_text(i, json)).collect();
            format!("[{}]", inner.join(", "))
        }
        scalar => scalar_text(scalar, json),
    }
}

/// Renders a scalar, quoting strings that YAML (1.1 or 1.2) would read as something else.
pub fn scalar_text(value: &NewValue, json: bool) -> String {
    match value {
        NewValue::Bool(b) => b.to_string(),
        NewValue::Int(i) => i.to_string(),
        NewValue::Str(s) if !json && is_safe_plain(s) => s.clone(),
        NewValue::Str(s) => double_quoted(s),
        collection => flow_text(collection, json),
    }
}

/// Re-renders `value` in the quoting of the scalar it replaces.
pub fn scalar_text_like(value: &NewValue, quoting: super::tree::Quoting) -> String {
    use super::tree::Quoting;
    match (value, quoting) {
        (NewValue::Str(s), Quoting::Double) => double_quoted(s),
        (NewValue::Str(s), Quoting::Single) => format!("'{}'", s.replace('\'', "''")),
        _ => scalar_text(value, false),
    }
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string that every YAML reader takes as that same string when written plain.
fn is_safe_plain(s: &str) -> bool {
    const AMBIGUOUS: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    (first.is_ascii_alphabetic() || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !AMBIGUOUS.contains(&lower.as_str())
        && !looks_numeric(s)
}

fn looks_numeric(s: &str) -> bool {
    s.parse::<f64>().is_ok() || s.eq_ignore_ascii_case(".inf") || s.eq_ignore_ascii_case(".nan")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_string_is_a_literal_block_that_loads_as_itself() {
        let layout = BlockLayout {
            step: 2,
            seq_offset: 0,
        };
        for text in [
            "kind: A\nspec:\n  x: 1\n",
            "a\nb",
            "a\n\nb\n\n",
            "a: '#'\n# c\n",
        ] {
            let mut out = Vec::new();
            block_entries(
                &[("patch".into(), NewValue::str(text))],
                0,
                layout,
                &mut out,
            );
            assert!(out[0].starts_with("patch: |"), "{out:?}");
            let yaml = out.join("\n") + "\n";
            let loaded: std::collections::BTreeMap<String, String> =
                yaml_serde::from_str(&yaml).unwrap();
            assert_eq!(loaded["patch"], text, "{yaml}");
        }
        for text in [
            "one line",
            " starts with a space\nx",
            "trailing \nx",
            "bell\u{7}\nx",
        ] {
            let mut out = Vec::new();
            block_entries(&[("k".into(), NewValue::str(text))], 0, layout, &mut out);
            assert!(!out[0].contains('|'), "{out:?}");
        }
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "yes", "on", "0755", "1e3", "~", "null", "True", "", "a b", "-x",
        ] {
            assert!(
                scalar_text(&NewValue::str(s), false).starts_with('"'),
                "{s}"
            );
        }
        assert_eq!(
            scalar_text(&NewValue::str("RuntimeDefault"), false),
            "RuntimeDefault"
        );
        assert_eq!(scalar_text(&NewValue::str("ALL"), true), "\"ALL\"");
    }

    #[test]
    fn block_items_put_first_map_entry_on_the_dash_line() {
        let mut out = Vec::new();
        let item = NewValue::map(vec![
            ("name", NewValue::str("tmp")),
            ("emptyDir", NewValue::Map(vec![])),
        ]);
        block_items(
            &[item],
            2,
            BlockLayout {
                step: 2,
                seq_offset: 0,
            },
            &mut out,
        );
        assert_eq!(out, vec!["  - name: tmp", "    emptyDir: {}"]);
    }
}
