//! The block structure of a template's actions: which `if`/`with`/`range` blocks are open at
//! each action, under which condition each block renders, and what `.` and the variables of a
//! `range` stand for inside it. Conditions are understood when they are made of `.Values` paths
//! (`if .Values.x`, `and`/`or`/`not` of paths, `with`, `range`, the `else` of any of them);
//! anything else (`eq`, `include`, a local variable) is unknown, and stays unknown when it is
//! evaluated against a chart's values.

use super::templates::value_refs;

/// When a block, or a value written by an action, holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// The values path is set to something Go templates call true (not missing, null, false,
    /// 0, "" or an empty list or mapping).
    Truthy(String),
    /// The values path renders as `true` (a boolean, or the string "true").
    IsTrue(String),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Unknown,
}

impl Cond {
    /// Whether it holds for these values; None when that cannot be told from the values alone.
    pub fn eval(&self, values: &serde_json::Value) -> Option<bool> {
        match self {
            // An item of a list (`x[]`) differs from item to item.
            Cond::Truthy(path) | Cond::IsTrue(path) if path.contains("[]") => None,
            Cond::Truthy(path) => Some(lookup(values, path).is_some_and(truthy)),
            Cond::IsTrue(path) => Some(lookup(values, path).is_some_and(|v| {
                v == &serde_json::Value::Bool(true) || v.as_str() == Some("true")
            })),
            Cond::All(all) => {
                let results: Vec<Option<bool>> = all.iter().map(|c| c.eval(values)).collect();
                combine(&results, false)
            }
            Cond::Any(any) => {
                let results: Vec<Option<bool>> = any.iter().map(|c| c.eval(values)).collect();
                combine(&results, true)
            }
            Cond::Not(c) => c.eval(values).map(|b| !b),
            Cond::Unknown => None,
        }
    }
}

/// `and` (decided by any false) or `or` (decided by any true) of results; unknown when an
/// unknown result could decide it.
fn combine(results: &[Option<bool>], deciding: bool) -> Option<bool> {
    if results.contains(&Some(deciding)) {
        Some(deciding)
    } else if results.contains(&None) {
        None
    } else {
        Some(!deciding)
    }
}

/// The value at a dotted path of a values document.
pub fn lookup<'v>(values: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(values, |v, key| v.get(key))
}

/// Go templates' truth: false, 0, nil, and empty strings, lists and mappings are false.
fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// One `if`/`with`/`range`/`define` block.
#[derive(Clone, Debug)]
pub struct Frame {
    /// When the branch open at this point renders: its own condition, and after an `else`, that
    /// no earlier branch of the block did.
    pub cond: Cond,
    /// The own conditions of the block's branches up to this one (`if A`, `else if B`, ...).
    pub branches: Vec<Cond>,
    /// The values path `.` stands for inside: `with .Values.x` gives `x`, `range .Values.x`
    /// gives `x[]` (one item of the list or mapping).
    pub dot: Option<String>,
    /// `range $key, $value := .Values.x`: the two variables and `x`.
    pub range: Option<RangeVars>,
}

/// The variables a `range` binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeVars {
    pub path: String,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// One `{{ ... }}` action and the blocks open around it.
#[derive(Clone, Debug)]
pub struct Action {
    /// 0-based line.
    pub line: usize,
    /// The text between the delimiters, without trim markers.
    pub text: String,
    /// Indexes into [`Blocks::frames`], outermost first.
    pub open: Vec<usize>,
}

/// The blocks of a template.
#[derive(Debug, Default)]
pub struct Blocks {
    pub frames: Vec<Frame>,
    pub actions: Vec<Action>,
    /// The frames open at the start of each line.
    at_line: Vec<Vec<usize>>,
}

impl Blocks {
    /// Reads the actions of a template's lines in order.
    pub fn read<'a>(lines: impl IntoIterator<Item = &'a str>) -> Blocks {
        let mut blocks = Blocks::default();
        let mut stack: Vec<usize> = Vec::new();
        for (line, text) in lines.into_iter().enumerate() {
            blocks.at_line.push(stack.clone());
            for action in action_texts(text) {
                blocks.actions.push(Action {
                    line,
                    text: action.to_string(),
                    open: stack.clone(),
                });
                blocks.step(action, &mut stack);
            }
        }
        blocks
    }

    /// Opens, switches or closes a block for one action.
    fn step(&mut self, action: &str, stack: &mut Vec<usize>) {
        let (word, rest) = split_word(action);
        let dot = stack.last().and_then(|&f| self.frames[f].dot.clone());
        let ranges: Vec<RangeVars> = stack
            .iter()
            .filter_map(|&f| self.frames[f].range.clone())
            .collect();
        let scope = Scope {
            dot: dot.as_deref(),
            ranges: &ranges,
        };
        match word {
            "if" | "with" | "range" | "define" | "block" => {
                let frame = open_frame(word, rest, &scope);
                self.frames.push(frame);
                stack.push(self.frames.len() - 1);
            }
            "else" => {
                let Some(&top) = stack.last() else { return };
                // Inside the else branch `.` is what it is around the block.
                let outer_dot = stack
                    .len()
                    .checked_sub(2)
                    .and_then(|i| self.frames[stack[i]].dot.clone());
                let scope = Scope {
                    dot: outer_dot.as_deref(),
                    ranges: &ranges,
                };
                let (word, rest) = split_word(rest);
                let branch = match word {
                    "if" | "with" => condition(rest, &scope),
                    _ => Cond::All(vec![]),
                };
                let earlier = self.frames[top].branches.clone();
                let mut all: Vec<Cond> = earlier
                    .iter()
                    .map(|b| Cond::Not(Box::new(b.clone())))
                    .collect();
                all.push(branch.clone());
                // A new frame: actions already read keep the branch they were in.
                let frame = Frame {
                    cond: Cond::All(all),
                    branches: earlier.into_iter().chain([branch]).collect(),
                    dot: outer_dot,
                    range: None,
                };
                self.frames.push(frame);
                *stack.last_mut().expect("checked above") = self.frames.len() - 1;
            }
            "end" => {
                stack.pop();
            }
            _ => {}
        }
    }

    /// The frames open at the start of a line (0-based).
    pub fn open_at(&self, line: usize) -> &[usize] {
        self.at_line.get(line).map_or(&[], Vec::as_slice)
    }

    /// The actions of a line (0-based).
    pub fn on_line(&self, line: usize) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(move |a| a.line == line)
    }

    /// The conditions of the blocks open at `action` that are not open at the start of
    /// `outer` (0-based): what must hold, beyond what renders `outer`, for the action to render.
    pub fn conditions_between(&self, action: &Action, outer: usize) -> Vec<&Cond> {
        let base = self.open_at(outer);
        action
            .open
            .iter()
            .filter(|f| !base.contains(f))
            .map(|&f| &self.frames[f].cond)
            .collect()
    }

    /// The same for a line's start.
    pub fn line_conditions_between(&self, line: usize, outer: usize) -> Vec<&Cond> {
        let base = self.open_at(outer);
        self.open_at(line)
            .iter()
            .filter(|f| !base.contains(f))
            .map(|&f| &self.frames[f].cond)
            .collect()
    }

    /// What `.` stands for at an action: the innermost `with`/`range` path.
    pub fn dot(&self, action: &Action) -> Option<&str> {
        action
            .open
            .last()
            .and_then(|&f| self.frames[f].dot.as_deref())
    }

    /// The `range` variables in scope at an action.
    pub fn ranges(&self, action: &Action) -> Vec<&RangeVars> {
        action
            .open
            .iter()
            .filter_map(|&f| self.frames[f].range.as_ref())
            .collect()
    }
}

/// What names resolve to at a point of the template.
struct Scope<'a> {
    dot: Option<&'a str>,
    ranges: &'a [RangeVars],
}

fn open_frame(word: &str, rest: &str, scope: &Scope) -> Frame {
    match word {
        "if" => {
            let cond = condition(rest, scope);
            Frame {
                branches: vec![cond.clone()],
                cond,
                dot: scope.dot.map(str::to_string),
                range: None,
            }
        }
        "with" => {
            let path = single_path(rest, scope);
            let cond = path.clone().map_or(Cond::Unknown, Cond::Truthy);
            Frame {
                branches: vec![cond.clone()],
                cond,
                dot: path,
                range: None,
            }
        }
        "range" => {
            let (vars, over) = match rest.split_once(":=") {
                Some((vars, over)) => (vars.trim(), over.trim()),
                None => ("", rest),
            };
            let path = single_path(over, scope);
            let mut names = vars.split(',').map(str::trim).filter(|v| !v.is_empty());
            let (first, second) = (names.next(), names.next());
            let (key, value) = match (first, second) {
                (Some(k), Some(v)) => (Some(k.to_string()), Some(v.to_string())),
                (Some(v), None) => (None, Some(v.to_string())),
                _ => (None, None),
            };
            let cond = path.clone().map_or(Cond::Unknown, Cond::Truthy);
            Frame {
                branches: vec![cond.clone()],
                cond,
                dot: path.as_ref().map(|p| format!("{p}[]")),
                range: path.map(|path| RangeVars { path, key, value }),
            }
        }
        // A helper's body is a scope of its own: it renders wherever it is included.
        _ => Frame {
            cond: Cond::All(vec![]),
            branches: vec![],
            dot: None,
            range: None,
        },
    }
}

/// The text inside each `{{ ... }}` of a line, without trim markers and comments.
pub fn action_texts(line: &str) -> Vec<&str> {
    line.split("{{")
        .skip(1)
        .filter_map(|a| a.split("}}").next())
        .map(|a| a.trim_start_matches('-').trim_end_matches('-').trim())
        .filter(|a| !a.starts_with("/*"))
        .collect()
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim()),
        None => (text, ""),
    }
}

/// Tokens of an expression: parentheses, pipes and words.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let special = matches!(c, '(' | ')' | '|');
        if c.is_whitespace() || special {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            if special {
                out.push(&text[i..i + 1]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// The values path a single operand names: `.Values.a.b`, `$.Values.a.b`, `.` or `.field`
/// inside a `with`/`range`.
fn operand_path(token: &str, scope: &Scope) -> Option<String> {
    if let [path] = value_refs(token).as_slice() {
        let prefix = token.split(".Values.").next().unwrap_or_default();
        return matches!(prefix, "" | "$").then(|| path.clone());
    }
    if token.starts_with('$') && token != "$" {
        // The value variable of a `range` is one item of the list it ranges over.
        return scope
            .ranges
            .iter()
            .rev()
            .find(|r| r.value.as_deref() == Some(token))
            .map(|r| format!("{}[]", r.path));
    }
    let dot = scope.dot?;
    match token {
        "." => Some(dot.to_string()),
        t if t.starts_with('.') && t[1..].chars().all(|c| c.is_alphanumeric() || c == '_') => {
            Some(format!("{dot}.{}", &t[1..]))
        }
        _ => None,
    }
}

/// The one values path an expression is (`with .Values.x`), if it is exactly one.
fn single_path(text: &str, scope: &Scope) -> Option<String> {
    match tokens(text).as_slice() {
        [one] => operand_path(one, scope),
        ["(", one, ")"] => operand_path(one, scope),
        _ => None,
    }
}

/// The condition of an `if`: true when the expression is (Go's truth).
fn condition(text: &str, scope_dot: &Scope) -> Cond {
    let toks = tokens(text);
    if toks.contains(&"|") {
        return Cond::Unknown;
    }
    let mut at = 0;
    let cond = parse(&toks, &mut at, scope_dot, Cond::Truthy);
    if at == toks.len() {
        cond
    } else {
        Cond::Unknown
    }
}

/// What a value written by an action (`hostNetwork: {{ ... }}`) renders `true` for. A trailing
/// `| quote` or `| toString` does not change it; any other pipe is unknown.
pub fn renders_true(text: &str, dot: Option<&str>, ranges: &[RangeVars]) -> Cond {
    let scope = Scope { dot, ranges };
    let toks = tokens(text);
    let first_pipe = toks.iter().position(|t| *t == "|").unwrap_or(toks.len());
    let harmless = toks[first_pipe..]
        .iter()
        .all(|t| matches!(*t, "|" | "quote" | "toString"));
    if !harmless {
        return Cond::Unknown;
    }
    let toks = &toks[..first_pipe];
    let mut at = 0;
    let cond = parse(toks, &mut at, &scope, Cond::IsTrue);
    if at == toks.len() {
        cond
    } else {
        Cond::Unknown
    }
}

/// One operand or call, from `toks[*at]`. `leaf` makes the condition of a path.
fn parse(toks: &[&str], at: &mut usize, scope: &Scope, leaf: fn(String) -> Cond) -> Cond {
    let Some(&tok) = toks.get(*at) else {
        return Cond::Unknown;
    };
    *at += 1;
    match tok {
        "(" => {
            let inner = parse_call(toks, at, scope, leaf);
            if toks.get(*at) == Some(&")") {
                *at += 1;
                inner
            } else {
                Cond::Unknown
            }
        }
        "not" => Cond::Not(Box::new(parse(toks, at, scope, Cond::Truthy))),
        "and" | "or" => {
            let mut args = Vec::new();
            while toks.get(*at).is_some_and(|t| *t != ")") {
                args.push(parse(toks, at, scope, leaf));
            }
            if tok == "and" {
                Cond::All(args)
            } else {
                Cond::Any(args)
            }
        }
        "true" => Cond::All(vec![]),
        "false" => Cond::Any(vec![]),
        t => match operand_path(t, scope) {
            Some(path) => leaf(path),
            None => Cond::Unknown,
        },
    }
}

/// A parenthesised call: the same as a top-level expression.
fn parse_call(toks: &[&str], at: &mut usize, scope: &Scope, leaf: fn(String) -> Cond) -> Cond {
    let cond = parse(toks, at, scope, leaf);
    // A call with more operands than the grammar reads (`eq a b`) is unknown.
    if toks.get(*at).is_some_and(|t| *t != ")") {
        while toks.get(*at).is_some_and(|t| *t != ")") {
            *at += 1;
        }
        return Cond::Unknown;
    }
    cond
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blocks(text: &str) -> Blocks {
        Blocks::read(text.lines())
    }

    #[test]
    fn conditions_of_paths_and_their_combinations() {
        let scope = Scope {
            dot: None,
            ranges: &[],
        };
        let values = json!({"a": true, "b": [], "c": {"enabled": false}, "d": "x"});
        let eval = |t: &str| condition(t, &scope).eval(&values);
        assert_eq!(eval(".Values.a"), Some(true));
        assert_eq!(eval("$.Values.b"), Some(false));
        assert_eq!(eval("or .Values.b .Values.d"), Some(true));
        assert_eq!(eval("and .Values.a .Values.c.enabled"), Some(false));
        assert_eq!(eval("not .Values.c.enabled"), Some(true));
        assert_eq!(eval("(or .Values.missing .Values.a)"), Some(true));
        assert_eq!(eval("eq .Values.d \"x\""), None);
        assert_eq!(eval(".Values.d | quote"), None);
        assert_eq!(eval("and .Values.a (eq .Values.d \"x\")"), None);
        assert_eq!(eval("and .Values.b (eq .Values.d \"x\")"), Some(false));
    }

    #[test]
    fn a_value_that_renders_true() {
        let values = json!({"hostPID": false, "presets": {"profiling": {"enabled": true}}});
        let c = renders_true(
            "or .Values.hostPID .Values.presets.profiling.enabled",
            None,
            &[],
        );
        assert_eq!(c.eval(&values), Some(true));
        assert_eq!(
            renders_true(".Values.hostPID | quote", None, &[]).eval(&values),
            Some(false)
        );
        assert_eq!(
            renders_true("include \"x\" .", None, &[]).eval(&values),
            None
        );
    }

    #[test]
    fn the_last_else_of_a_chain_needs_every_earlier_branch_false() {
        let b = blocks(
            "{{- if .Values.a }}\na\n{{- else if .Values.b }}\nb\n{{- else }}\nc\n{{- end }}\n",
        );
        let at = |line: usize, values: serde_json::Value| -> Vec<Option<bool>> {
            b.line_conditions_between(line, 0)
                .iter()
                .map(|c| c.eval(&values))
                .collect()
        };
        assert_eq!(at(3, json!({"a": false, "b": true})), vec![Some(true)]);
        assert_eq!(at(5, json!({"a": false, "b": true})), vec![Some(false)]);
        assert_eq!(at(5, json!({"a": true, "b": false})), vec![Some(false)]);
        assert_eq!(at(5, json!({"a": false, "b": false})), vec![Some(true)]);
    }

    #[test]
    fn blocks_with_else_dot_and_range_variables() {
        let b = blocks(
            "{{- if .Values.x.enabled }}\na\n{{- else }}\nb\n{{- end }}\n{{- with .Values.volumes }}\n{{- toYaml . }}\n{{- end }}\n{{- range $k, $v := .Values.ports }}\n{{ $v }}\n{{- end }}\n",
        );
        let values = json!({"x": {"enabled": true}});
        let at = |line: usize| -> Vec<Option<bool>> {
            b.line_conditions_between(line, 0)
                .iter()
                .map(|c| c.eval(&values))
                .collect()
        };
        assert_eq!(at(1), vec![Some(true)]);
        assert_eq!(at(3), vec![Some(false)]);
        assert_eq!(at(5), vec![]);
        let to_yaml = b.on_line(6).next().unwrap();
        assert_eq!(to_yaml.text, "toYaml .");
        assert_eq!(b.dot(to_yaml), Some("volumes"));
        let v = b.on_line(9).next().unwrap();
        assert_eq!(
            b.ranges(v),
            vec![&RangeVars {
                path: "ports".into(),
                key: Some("$k".into()),
                value: Some("$v".into())
            }]
        );
    }
}
