//! Named templates: the `define` blocks of a chart and of the charts vendored below it (a
//! library chart such as a `common` behind an app chart: Helm makes every `define` global),
//! and the expansion of a template's `include`/`template` calls into the text they include.
//!
//! [`super::templates`] and [`super::pods`] read pod specs from text by indentation, so a pod
//! spec written by helpers is read from the expanded text as if the template wrote it: an
//! included body goes below the calling line, indented by the call's `nindent`/`indent`, and
//! its actions are rewritten so that every path names what it stands for in the values of the
//! chart being read (`.ctx.Values.x` with `ctx` bound to `$` becomes `$.Values.x`; a range
//! item of `.Values.controllers` becomes `.Values.controllers.*`). What is followed: `.`, `$`,
//! a values path, a variable, and `dict` arguments made of those; `with`, `range` and `$x :=`
//! inside the helpers; `merge`, `mergeOverwrite`, `default`, `deepCopy`, `get`, `index` and
//! `dig` in their bindings. Anything else is unresolved (`$unresolved`), never guessed: the
//! reader then says that a person must check it. The template's own lines are kept as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// How deep includes are followed (a helper including itself is not followed again).
const MAX_DEPTH: usize = 12;

/// How many included lines one template may expand to: helpers that include each other many
/// times over cannot make the text grow without bound (what is beyond is not followed).
const MAX_INCLUDED_LINES: usize = 200_000;

/// Written where an expression cannot be followed.
const UNRESOLVED: &str = "$unresolved";

/// One named template.
#[derive(Clone, Debug)]
pub struct Define {
    /// Where it is written, relative to the chart being read.
    pub file: PathBuf,
    /// Its body's lines.
    pub body: Vec<String>,
    /// The 1-based line of the file where the body starts.
    pub first_line: usize,
}

/// Every named template a chart can include: its own and those of the charts vendored below it.
#[derive(Debug, Default)]
pub struct Defines {
    by_name: BTreeMap<String, Define>,
}

impl Defines {
    /// The named templates of the chart at `chart` and of every chart vendored below it.
    pub fn read(chart: &Path) -> Defines {
        let mut defines = Defines::default();
        for dir in super::with_vendored(chart) {
            let base = dir
                .strip_prefix(chart)
                .unwrap_or(Path::new(""))
                .to_path_buf();
            for (rel, text) in super::read_templates(&dir) {
                defines.add(&base.join(rel), &text);
            }
            let mut archived = Defines::default();
            archived.read_archives(&dir);
            for (name, mut define) in archived.by_name {
                define.file = base.join(&define.file);
                defines.by_name.entry(name).or_insert(define);
            }
        }
        defines
    }

    /// Adds the named templates of the dependencies vendored in `chart`'s `charts/` as
    /// archives (what `helm dependency build` leaves there), read without unpacking.
    pub fn read_archives(&mut self, chart: &Path) {
        let mut archives: Vec<PathBuf> = std::fs::read_dir(chart.join("charts"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.to_str().is_some_and(|s| s.ends_with(".tgz")))
            .collect();
        archives.sort();
        for archive in archives {
            let shown = archive
                .strip_prefix(chart)
                .unwrap_or(&archive)
                .to_path_buf();
            for (inner, text) in archive_templates(&archive) {
                self.add(&shown.join(inner), &text);
            }
        }
    }

    /// Adds the named templates of one file (the first of a name wins, as the chart's own
    /// files are read before its dependencies').
    pub fn add(&mut self, file: &Path, text: &str) {
        for block in define_blocks(text) {
            self.by_name.entry(block.name).or_insert(Define {
                file: file.to_path_buf(),
                body: block.body,
                first_line: block.body_line,
            });
        }
    }

    pub fn get(&self, name: &str) -> Option<&Define> {
        self.by_name.get(name)
    }
}

/// The largest template read from an archive, and how many are read from one.
const ARCHIVE_FILE_LIMIT: u64 = 1 << 20;
const ARCHIVE_FILES_LIMIT: usize = 2000;

/// The templates (`templates/**/*.tpl|yaml|yml`, its own and its dependencies') of a chart
/// archive, as (path inside the archive, text). What cannot be read is left out: the render
/// check with Helm's engine has the last word.
fn archive_templates(archive: &Path) -> Vec<(PathBuf, String)> {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(archive) else {
        return vec![];
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let Ok(entries) = tar.entries() else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in entries.flatten().take(ARCHIVE_FILES_LIMIT) {
        let Ok(path) = entry.path().map(|p| p.into_owned()) else {
            continue;
        };
        let name = path.to_string_lossy();
        let template = name.contains("/templates/")
            && (name.ends_with(".tpl") || name.ends_with(".yaml") || name.ends_with(".yml"));
        if !template || !entry.header().entry_type().is_file() || entry.size() > ARCHIVE_FILE_LIMIT
        {
            continue;
        }
        let mut text = String::new();
        if entry
            .take(ARCHIVE_FILE_LIMIT)
            .read_to_string(&mut text)
            .is_ok()
        {
            out.push((path, text));
        }
    }
    out
}

/// A `define` block found in a file's text.
struct DefineBlock {
    name: String,
    /// 0-based lines of its `define` and of its `end`.
    first: usize,
    last: usize,
    body: Vec<String>,
    /// 1-based line of the body's first line.
    body_line: usize,
}

/// The `{{ ... }}` actions of a text, as (start byte, end byte after `}}`, inner text).
fn actions_of(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find("{{").map(|o| o + at) {
        let Some(close) = text[open + 2..].find("}}").map(|c| c + open + 2) else {
            break;
        };
        let inner = text[open + 2..close]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push((open, close + 2, inner));
        at = close + 2;
    }
    out
}

fn first_word(action: &str) -> &str {
    action.split_whitespace().next().unwrap_or_default()
}

/// The top-level `define` blocks of a text with their bodies.
fn define_blocks(text: &str) -> Vec<DefineBlock> {
    let line_of = |byte: usize| text[..byte].matches('\n').count();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut open: Option<(String, usize, usize)> = None;
    for (start, end, inner) in actions_of(text) {
        if inner.starts_with("/*") {
            continue;
        }
        match first_word(inner) {
            "define" | "block" if depth == 0 => {
                let name = quoted(inner).unwrap_or_default();
                open = Some((name, start, end));
                depth = 1;
            }
            "if" | "with" | "range" | "define" | "block" => depth += 1,
            "end" if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    if let Some((name, first, body_start)) = open.take() {
                        let (skipped, body) = body_lines(&text[body_start..start]);
                        out.push(DefineBlock {
                            name,
                            first: line_of(first),
                            last: line_of(start),
                            body,
                            body_line: line_of(body_start) + skipped + 1,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A body's lines, without the rest of the `define` line and the start of the `end` line when
/// they hold nothing; and how many lines were left out at the start.
fn body_lines(body: &str) -> (usize, Vec<String>) {
    let mut lines: Vec<String> = body
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect();
    let skipped = usize::from(lines.first().is_some_and(|l| l.trim().is_empty()));
    if skipped == 1 {
        lines.remove(0);
    }
    if lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    (skipped, lines)
}

/// The first double-quoted string of an action.
fn quoted(action: &str) -> Option<String> {
    let start = action.find('"')? + 1;
    let len = action[start..].find('"')?;
    Some(action[start..start + len].to_string())
}

/// What an expression stands for in the values of the chart being read.
#[derive(Clone, Debug, PartialEq)]
enum Bind {
    /// The chart's top-level context (`$` of a template): `.Values` is its values.
    Root,
    /// The values node at a dotted path (`*` for any key or item; empty for `.Values`).
    Path(String),
    Dict(Vec<(String, Bind)>),
    /// One of several values (a `merge`, a `default`), the one that wins first.
    Any(Vec<Bind>),
    Str(String),
    /// Not followed; the text that stands for it.
    Unknown(String),
}

impl Bind {
    fn unknown() -> Bind {
        Bind::Unknown(UNRESOLVED.into())
    }

    fn field(&self, name: &str) -> Bind {
        match self {
            Bind::Root if name == "Values" => Bind::Path(String::new()),
            Bind::Path(p) if p.is_empty() => Bind::Path(name.to_string()),
            Bind::Path(p) => Bind::Path(format!("{p}.{name}")),
            Bind::Dict(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map_or_else(Bind::unknown, |(_, v)| v.clone()),
            Bind::Any(all) => any(all.iter().map(|b| b.field(name)).collect()),
            _ => Bind::unknown(),
        }
    }

    /// One item of a list or mapping (`range`).
    fn item(&self) -> Bind {
        match self {
            Bind::Path(p) if !p.is_empty() => Bind::Path(format!("{p}.*")),
            Bind::Any(all) => any(all.iter().map(Bind::item).collect()),
            _ => Bind::unknown(),
        }
    }

    /// The text that stands for it in a rewritten action, with `rest` (`.a.b`) after it.
    fn render(&self, rest: &str) -> String {
        match self {
            Bind::Root => format!("${rest}"),
            Bind::Path(p) if p.is_empty() => format!(".Values{rest}"),
            Bind::Path(p) => format!(".Values.{p}{rest}"),
            Bind::Any(all) => all
                .iter()
                .map(|b| b.render(rest))
                .collect::<Vec<_>>()
                .join(" "),
            Bind::Unknown(text) => format!("{text}{rest}"),
            Bind::Dict(_) | Bind::Str(_) => UNRESOLVED.into(),
        }
    }

    /// The values paths it stands for.
    fn paths(&self) -> Vec<String> {
        match self {
            Bind::Path(p) if !p.is_empty() => vec![p.clone()],
            Bind::Any(all) => all.iter().flat_map(Bind::paths).collect(),
            _ => vec![],
        }
    }
}

/// One of `all`, leaving out what stands for nothing.
fn any(all: Vec<Bind>) -> Bind {
    let mut kept: Vec<Bind> = Vec::new();
    for b in all {
        let b = match b {
            Bind::Any(inner) => inner,
            other => vec![other],
        };
        for b in b {
            let nothing = matches!(&b, Bind::Unknown(_) | Bind::Str(_))
                || matches!(&b, Bind::Dict(e) if e.is_empty());
            if !nothing && !kept.contains(&b) {
                kept.push(b);
            }
        }
    }
    match kept.len() {
        0 => Bind::unknown(),
        1 => kept.remove(0),
        _ => Bind::Any(kept),
    }
}

/// What names stand for at a point of a template or a helper's body.
#[derive(Clone, Debug)]
struct Scope {
    dot: Bind,
    root: Bind,
    vars: Vec<(String, Bind)>,
}

/// A block open in the text being walked: what to restore at its `end`.
struct Frame {
    dot: Bind,
    vars: usize,
    /// Its `else` sees the dot around the block.
    outer_dot: Bind,
}

/// A template with the helpers it includes expanded.
#[derive(Debug, Default)]
pub struct Expanded {
    pub text: String,
    /// For each line of `text` (0-based): the 1-based line of the template it stands for (an
    /// included line stands for its `include`).
    pub line_of: Vec<usize>,
    /// Per expanded line (0-based): where an included line is written (file and 1-based line).
    pub written_at: Vec<Option<(PathBuf, usize)>>,
    /// Values paths a `merge` layers: (the path whose keys win, the path under it).
    pub layers: Vec<(String, String)>,
    /// The named templates followed.
    pub followed: BTreeSet<String>,
    /// 0-based expanded lines with an `include` that was not followed, and its name.
    pub unfollowed: Vec<(usize, String)>,
}

impl Expanded {
    /// The template's line for an expanded 1-based line.
    pub fn template_line(&self, line: usize) -> usize {
        line.checked_sub(1)
            .and_then(|i| self.line_of.get(i))
            .copied()
            .unwrap_or(line)
    }
}

/// Expands the includes of one template. `text`'s `define` blocks named in `skip` (helpers
/// followed from elsewhere) are left out; the others stay as they are written.
pub fn expand(text: &str, defines: &Defines, skip: &BTreeSet<String>) -> Expanded {
    let mut blanked: BTreeSet<usize> = BTreeSet::new();
    let mut in_define: BTreeSet<usize> = BTreeSet::new();
    for block in define_blocks(text) {
        let target = if skip.contains(&block.name) {
            &mut blanked
        } else {
            &mut in_define
        };
        target.extend(block.first..=block.last);
    }
    let mut out = Expanded::default();
    let mut walker = Walker {
        defines,
        out: &mut out,
        stack: Vec::new(),
        budget: MAX_INCLUDED_LINES,
    };
    let mut scope = Scope {
        dot: Bind::Root,
        root: Bind::Root,
        vars: Vec::new(),
    };
    let mut frames = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        let line = if blanked.contains(&i) { "" } else { line };
        walker.push(line.to_string(), i + 1, None);
        if in_define.contains(&i) {
            continue; // a helper nobody here includes: read as written
        }
        let mut included = Vec::new();
        walker.walk_line(line, &mut scope, &mut frames, &mut included, false);
        for (lines, _) in included {
            for (text, written) in lines {
                walker.push(text, i + 1, Some(written));
            }
        }
    }
    if text.ends_with('\n') && out.line_of.len() > 1 {
        // `split` gives an empty last piece for the final newline.
        out.line_of.pop();
        out.written_at.pop();
        out.text.pop();
    }
    out
}

/// Lines of an included body, each with where it is written.
type Lines = Vec<(String, (PathBuf, usize))>;

struct Walker<'a> {
    defines: &'a Defines,
    out: &'a mut Expanded,
    /// The helpers being expanded (no helper is expanded inside itself).
    stack: Vec<String>,
    /// How many more included lines may be written.
    budget: usize,
}

impl Walker<'_> {
    fn push(&mut self, text: String, line: usize, written: Option<(PathBuf, usize)>) {
        self.out.text.push_str(&text);
        self.out.text.push('\n');
        self.out.line_of.push(line);
        self.out.written_at.push(written);
    }

    /// Reads one line's actions in order: updates the scope and the open blocks, collects
    /// the bodies its includes expand to, and returns the line with its actions rewritten
    /// (when `rewrite`).
    fn walk_line(
        &mut self,
        line: &str,
        scope: &mut Scope,
        frames: &mut Vec<Frame>,
        included: &mut Vec<(Lines, usize)>,
        rewrite: bool,
    ) -> String {
        let mut rewritten = String::new();
        let mut at = 0;
        let alone = {
            let t = line.trim();
            t.starts_with("{{") && t.ends_with("}}") && actions_of(t).len() == 1
        };
        let column = line.len() - line.trim_start().len();
        for (start, end, inner) in actions_of(line) {
            rewritten.push_str(&line[at..start]);
            let whole = &line[start..end];
            if rewrite && !inner.starts_with("/*") {
                rewritten.push_str(&whole.replacen(inner, &rewrite_action(inner, scope), 1));
            } else {
                rewritten.push_str(whole);
            }
            at = end;
            if inner.starts_with("/*") {
                continue;
            }
            if let Some(lines) = self.include(inner, scope, alone, column) {
                included.push(lines);
            }
            step(inner, scope, frames, &mut self.out.layers);
        }
        rewritten.push_str(&line[at..]);
        rewritten
    }

    /// The body an `include`/`template` action expands to, indented where it renders, when it
    /// is followed.
    fn include(
        &mut self,
        action: &str,
        scope: &Scope,
        alone: bool,
        column: usize,
    ) -> Option<(Lines, usize)> {
        let toks = tokens(action);
        let at = toks
            .iter()
            .position(|t| matches!(*t, "include" | "template"))?;
        let name = toks.get(at + 1)?.trim_matches('"').to_string();
        let indent = toks
            .windows(2)
            .find(|w| matches!(w[0], "nindent" | "indent"))
            .and_then(|w| w[1].parse::<usize>().ok());
        let indent = match (indent, alone) {
            (Some(n), _) => n,
            (None, true) => column,
            // Rendered inline after a key: a scalar, not a mapping.
            (None, false) => return None,
        };
        let Some(define) = self.defines.get(&name) else {
            if self.stack.is_empty() {
                // The template's own line, just written out.
                let line = self.out.line_of.len().saturating_sub(1);
                self.out.unfollowed.push((line, name));
            }
            return None;
        };
        if self.stack.contains(&name) || self.stack.len() >= MAX_DEPTH {
            return None;
        }
        if self.budget < define.body.len() {
            return None;
        }
        self.budget -= define.body.len();
        let mut end = at + 2;
        let arg = operand(&toks, &mut end, scope, &mut self.out.layers);
        self.out.followed.insert(name.clone());
        self.stack.push(name);
        let define = define.clone();
        let lines = self.body(&define, arg);
        self.stack.pop();
        let pad = " ".repeat(indent);
        let lines = lines
            .into_iter()
            .map(|(text, at)| {
                let text = if text.trim().is_empty() {
                    String::new()
                } else {
                    format!("{pad}{text}")
                };
                (text, at)
            })
            .collect();
        Some((lines, indent))
    }

    /// A helper's body with `arg` as its `.` and `$`, its actions rewritten and its own
    /// includes expanded.
    fn body(&mut self, define: &Define, arg: Bind) -> Lines {
        let mut scope = Scope {
            dot: arg.clone(),
            root: arg,
            vars: Vec::new(),
        };
        let mut frames = Vec::new();
        let mut out = Vec::new();
        for (i, line) in define.body.iter().enumerate() {
            let mut included = Vec::new();
            let text = self.walk_line(line, &mut scope, &mut frames, &mut included, true);
            out.push((text, (define.file.clone(), define.first_line + i)));
            for (lines, _) in included {
                out.extend(lines);
            }
        }
        out
    }
}

/// Updates the scope for one action: blocks that change `.`, their ends, and assignments.
fn step(
    action: &str,
    scope: &mut Scope,
    frames: &mut Vec<Frame>,
    layers: &mut Vec<(String, String)>,
) {
    let word = first_word(action);
    let rest = action[word.len()..].trim();
    match word {
        "with" | "range" | "if" | "define" | "block" => {
            frames.push(Frame {
                dot: scope.dot.clone(),
                vars: scope.vars.len(),
                outer_dot: scope.dot.clone(),
            });
            match word {
                "with" => scope.dot = expression(rest, scope, layers),
                "range" => {
                    let (vars, over) = match rest.split_once(":=") {
                        Some((vars, over)) => (vars.trim(), over.trim()),
                        None => ("", rest),
                    };
                    let item = expression(over, scope, layers).item();
                    let names: Vec<&str> = vars
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .collect();
                    match names.as_slice() {
                        [key, value] => {
                            scope
                                .vars
                                .push((key.to_string(), Bind::Unknown(key.to_string())));
                            scope.vars.push((value.to_string(), item.clone()));
                        }
                        [value] => scope.vars.push((value.to_string(), item.clone())),
                        _ => {}
                    }
                    scope.dot = item;
                }
                "define" | "block" => {
                    scope.dot = Bind::unknown();
                }
                _ => {}
            }
        }
        "else" => {
            if let Some(frame) = frames.last() {
                scope.dot = frame.outer_dot.clone();
                let (inner, rest) = (first_word(rest), rest[first_word(rest).len()..].trim());
                if inner == "with" {
                    scope.dot = expression(rest, scope, layers);
                }
            }
        }
        "end" => {
            if let Some(frame) = frames.pop() {
                scope.dot = frame.dot;
                scope.vars.truncate(frame.vars);
            }
        }
        w if w.starts_with('$') => {
            let (name, value) = match (action.split_once(":="), action.split_once('=')) {
                (Some((n, v)), _) => (n.trim(), v.trim()),
                (None, Some((n, v))) => (n.trim(), v.trim()),
                _ => return,
            };
            if name.starts_with('$') && !name.contains(' ') {
                let bind = expression(value, scope, layers);
                scope.vars.push((name.to_string(), bind));
            }
        }
        _ => {}
    }
}

/// Tokens of an action: parentheses, pipes, quoted strings and words.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if c == q {
                out.push(&text[start.take().unwrap_or(i)..=i]);
                quote = None;
            }
            continue;
        }
        if matches!(c, '"' | '`') && start.is_none() {
            start = Some(i);
            quote = Some(c);
            continue;
        }
        let special = matches!(c, '(' | ')' | '|');
        if c.is_whitespace() || special {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
            if special {
                out.push(&text[i..i + c.len_utf8()]);
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

/// What a whole expression (a pipeline) stands for.
fn expression(text: &str, scope: &Scope, layers: &mut Vec<(String, String)>) -> Bind {
    let toks = tokens(text);
    let mut at = 0;
    let bind = pipeline(&toks, &mut at, scope, layers);
    if at < toks.len() {
        Bind::unknown()
    } else {
        bind
    }
}

/// Commands separated by `|` up to a closing parenthesis: each gets the last one's value as
/// its last argument.
fn pipeline(
    toks: &[&str],
    at: &mut usize,
    scope: &Scope,
    layers: &mut Vec<(String, String)>,
) -> Bind {
    let mut value: Option<Bind> = None;
    loop {
        let mut args = Vec::new();
        let mut func = None;
        if let Some(t) = toks.get(*at) {
            if is_function(t) {
                func = Some(*t);
                *at += 1;
            }
        }
        while let Some(t) = toks.get(*at) {
            if matches!(*t, "|" | ")") {
                break;
            }
            args.push(operand(toks, at, scope, layers));
        }
        args.extend(value.take());
        value = Some(call(func, args, layers));
        match toks.get(*at) {
            Some(&"|") => *at += 1,
            _ => break,
        }
    }
    value.unwrap_or_else(Bind::unknown)
}

fn is_function(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// One operand: a parenthesised pipeline, a quoted string, a path, or a function without
/// arguments.
fn operand(
    toks: &[&str],
    at: &mut usize,
    scope: &Scope,
    layers: &mut Vec<(String, String)>,
) -> Bind {
    let Some(&tok) = toks.get(*at) else {
        return Bind::unknown();
    };
    *at += 1;
    if tok == "(" {
        let inner = pipeline(toks, at, scope, layers);
        if toks.get(*at) == Some(&")") {
            *at += 1;
        }
        return inner;
    }
    if tok.starts_with(['"', '`']) {
        return Bind::Str(tok[1..tok.len().saturating_sub(1)].to_string());
    }
    if is_function(tok) {
        return call(Some(tok), vec![], layers);
    }
    resolve(tok, scope)
}

/// What a call of a function stands for (`None`: a single operand).
fn call(func: Option<&str>, args: Vec<Bind>, layers: &mut Vec<(String, String)>) -> Bind {
    let Some(func) = func else {
        return match <[Bind; 1]>::try_from(args) {
            Ok([one]) => one,
            Err(_) => Bind::unknown(),
        };
    };
    match func {
        "dict" => Bind::Dict(
            args.chunks(2)
                .filter_map(|pair| match pair {
                    [Bind::Str(k), v] => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect(),
        ),
        "merge" | "mustMerge" | "mergeOverwrite" | "mustMergeOverwrite" | "coalesce" => {
            let mut order = args;
            if func.contains("Overwrite") {
                order.reverse();
            }
            let bind = any(order);
            note_layers(&bind, layers);
            bind
        }
        // `default D X`: X, else D.
        "default" => {
            let mut order = args;
            order.reverse();
            any(order)
        }
        "deepCopy" | "mustDeepCopy" => any(args),
        "get" | "index" | "dig" => {
            let mut args = args;
            if func == "dig" {
                // dig "a" "b" DEFAULT X
                let Some(map) = args.pop() else {
                    return Bind::unknown();
                };
                let default = args.pop();
                let mut bind = map;
                for k in &args {
                    let Bind::Str(k) = k else {
                        return Bind::unknown();
                    };
                    bind = bind.field(k);
                }
                return any(vec![bind].into_iter().chain(default).collect());
            }
            let mut iter = args.into_iter();
            let Some(mut bind) = iter.next() else {
                return Bind::unknown();
            };
            for k in iter {
                let Bind::Str(k) = k else {
                    return Bind::unknown();
                };
                bind = bind.field(&k);
            }
            bind
        }
        _ => Bind::unknown(),
    }
}

/// The layers of a merge: each path over those after it.
fn note_layers(bind: &Bind, layers: &mut Vec<(String, String)>) {
    let paths = bind.paths();
    for (i, over) in paths.iter().enumerate() {
        for under in &paths[i + 1..] {
            let pair = (over.clone(), under.clone());
            if !layers.contains(&pair) {
                layers.push(pair);
            }
        }
    }
}

/// A path token: `.`, `.a.b`, `$`, `$.a`, `$x`, `$x.a`.
fn resolve(token: &str, scope: &Scope) -> Bind {
    let (head, rest) = split_head(token);
    let mut bind = match head {
        "." => scope.dot.clone(),
        "$" => scope.root.clone(),
        var if var.starts_with('$') => scope
            .vars
            .iter()
            .rev()
            .find(|(n, _)| n == var)
            .map_or_else(|| Bind::Unknown(var.to_string()), |(_, b)| b.clone()),
        _ => return Bind::unknown(),
    };
    for field in rest.split('.').filter(|f| !f.is_empty()) {
        bind = bind.field(field);
    }
    bind
}

/// `$x.a.b` as (`$x`, `.a.b`); `.a.b` as (`.`, `.a.b`).
fn split_head(token: &str) -> (&str, &str) {
    if let Some(rest) = token.strip_prefix('$') {
        let end = rest.find('.').unwrap_or(rest.len());
        return (&token[..1 + end], &rest[end..]);
    }
    if token.starts_with('.') {
        return (".", token);
    }
    (token, "")
}

/// An action of a helper's body with each path written as what it stands for.
fn rewrite_action(action: &str, scope: &Scope) -> String {
    // The variables an assignment or a range declares are names, not values.
    let (declared, value) = match action.find(":=") {
        Some(i) => (&action[..i + 2], &action[i + 2..]),
        None => ("", action),
    };
    let mut out = String::from(declared);
    let chars: Vec<(usize, char)> = value.char_indices().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if matches!(c, '"' | '`') {
            quote = Some(c);
            out.push(c);
            i += 1;
            continue;
        }
        let boundary = i == 0 || {
            let prev = chars[i - 1].1;
            prev.is_whitespace() || matches!(prev, '(' | '|' | ',')
        };
        if boundary && matches!(c, '.' | '$') {
            let mut j = i + 1;
            while j < chars.len()
                && (chars[j].1.is_ascii_alphanumeric() || matches!(chars[j].1, '_' | '.'))
            {
                j += 1;
            }
            let end = chars.get(j).map_or(value.len(), |(p, _)| *p);
            let token = &value[pos..end];
            out.push_str(&render(token, scope));
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A path token as the values it stands for; what cannot be followed keeps what it is known
/// to be (`$.Release.Name`) or becomes `$unresolved`.
fn render(token: &str, scope: &Scope) -> String {
    let (head, rest) = split_head(token);
    let mut bind = match head {
        "." => scope.dot.clone(),
        "$" => scope.root.clone(),
        var if var.starts_with('$') => match scope.vars.iter().rev().find(|(n, _)| n == var) {
            Some((_, b)) => b.clone(),
            None => return token.to_string(),
        },
        _ => return token.to_string(),
    };
    let fields: Vec<&str> = rest.split('.').filter(|f| !f.is_empty()).collect();
    for (i, field) in fields.iter().enumerate() {
        let next = bind.field(field);
        if let Bind::Unknown(_) = next {
            if matches!(bind, Bind::Root) {
                // `.Release.Name` and the like: built-in objects, as they are.
                return format!(
                    "${}",
                    fields[i..]
                        .iter()
                        .map(|f| format!(".{f}"))
                        .collect::<String>()
                );
            }
            return next.render(
                &fields[i + 1..]
                    .iter()
                    .map(|f| format!(".{f}"))
                    .collect::<String>(),
            );
        }
        bind = next;
    }
    bind.render("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defines(files: &[(&str, &str)]) -> Defines {
        let mut d = Defines::default();
        for (file, text) in files {
            d.add(Path::new(file), text);
        }
        d
    }

    #[test]
    fn a_dict_argument_and_range_items_become_values_paths() {
        let d = defines(&[(
            "charts/common/templates/_pod.tpl",
            r#"{{- define "common.pod" -}}
{{- $ctx := .ctx -}}
{{- $pod := .controller.pod | default dict -}}
{{- $sc := merge (dict) ($pod.securityContext | default dict) ($ctx.Values.defaultPodOptions.securityContext | default dict) -}}
{{- with $sc }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
{{- range $name, $c := .controller.containers }}
  - name: {{ $name }}
    {{- with $c.securityContext }}
    securityContext: {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
{{- end }}
"#,
        )]);
        let template = "kind: Deployment\n{{- range $name, $controller := .Values.controllers }}\nspec:\n  template:\n    spec:\n      {{- include \"common.pod\" (dict \"ctx\" $ \"controller\" $controller) | nindent 6 }}\n{{- end }}\n";
        let e = expand(template, &d, &BTreeSet::new());
        assert!(
            e.text.contains("      {{- with .Values.controllers.*.pod.securityContext .Values.defaultPodOptions.securityContext }}\n      securityContext:\n"),
            "{}",
            e.text
        );
        assert!(
            e.text
                .contains("{{- with .Values.controllers.*.containers.*.securityContext }}"),
            "{}",
            e.text
        );
        assert!(e.text.contains("- name: {{ $name }}"), "{}", e.text);
        assert_eq!(
            e.layers,
            vec![(
                "controllers.*.pod.securityContext".to_string(),
                "defaultPodOptions.securityContext".to_string()
            )]
        );
        // Included lines stand for the include's line of the template.
        assert_eq!(e.template_line(7), 6);
        assert_eq!(e.line_of.len(), e.text.lines().count());
    }

    #[test]
    fn dot_dollar_a_values_argument_and_what_is_not_followed() {
        let d = defines(&[(
            "templates/_helpers.tpl",
            "{{- define \"x.ctx\" -}}\n{{- toYaml .Values.image.securityContext }}\n{{- end }}\n{{- define \"x.sidecar\" -}}\n{{- toYaml .containerSecurityContext }}\n{{- end }}\n",
        )]);
        let template = "spec:\n  containers:\n    - name: app\n      securityContext:\n        {{- include \"x.ctx\" . | nindent 8 }}\n    - name: reload\n      securityContext: {{- include \"x.sidecar\" .Values.sidecars.reload | nindent 8 }}\n    - name: other\n      {{- include \"y.missing\" . | nindent 6 }}\n";
        let e = expand(template, &d, &BTreeSet::new());
        assert!(
            e.text.contains("        {{- include \"x.ctx\" . | nindent 8 }}\n        {{- toYaml .Values.image.securityContext }}\n"),
            "{}",
            e.text
        );
        assert!(
            e.text.contains(
                "        {{- toYaml .Values.sidecars.reload.containerSecurityContext }}\n"
            ),
            "{}",
            e.text
        );
        assert_eq!(e.unfollowed, vec![(10, "y.missing".to_string())]);
        assert_eq!(
            e.followed.iter().cloned().collect::<Vec<_>>(),
            vec!["x.ctx".to_string(), "x.sidecar".to_string()]
        );
    }

    #[test]
    fn followed_defines_are_left_out_and_others_kept() {
        let text =
            "{{- define \"a\" -}}\nx: 1\n{{- end }}\n{{- define \"b\" -}}\ny: 2\n{{- end }}\n";
        let skip = BTreeSet::from(["a".to_string()]);
        let e = expand(text, &Defines::default(), &skip);
        assert_eq!(e.text, "\n\n\n{{- define \"b\" -}}\ny: 2\n{{- end }}\n");
    }
}
