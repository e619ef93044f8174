//! The kubelet's `$(VAR)` expansion (Kubernetes' `third_party/forked/golang/expansion`): a
//! container's env values, `command` and `args` may name env variables as `$(NAME)`, and the
//! kubelet replaces them before the runtime sees them. A container engine does not, so the proof
//! expands them itself: `$(NAME)` of a defined name is its value, `$$` is a literal `$` (so
//! `$$(NAME)` stays `$(NAME)`), an undefined `$(NAME)` and any other `$` stay as written. Pure
//! string work: which names are defined, and when, is the caller's (see `translate`).

/// The env of a container as far as the kubelet has built it: names and values in order; a name
/// given twice has its last value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    entries: Vec<(String, String)>,
}

impl Env {
    /// Adds `name` with `value` as given (the caller expands it first where the kubelet does).
    pub fn define(&mut self, name: String, value: String) {
        self.entries.push((name, value));
    }

    /// The value of `name`: the last one given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The entries in the order they were given.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// `input` with each `$(NAME)` replaced as the kubelet replaces it against this env.
    pub fn expand(&self, input: &str) -> String {
        expand(input, |name| self.value(name))
    }
}

/// `input` with each reference replaced: `$(NAME)` by `lookup(NAME)` where it has a value, else
/// kept as written; `$$` by `$`; any other `$` kept. A `$(` with no `)` after it is kept, and
/// the text after it is read on (as the kubelet does).
pub fn expand<'a>(input: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        rest = if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            escaped
        } else if let Some(body) = after.strip_prefix('(') {
            match body.split_once(')') {
                Some((name, tail)) => {
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => out.extend(["$(", name, ")"]),
                    }
                    tail
                }
                None => {
                    out.push_str("$(");
                    body
                }
            }
        } else {
            out.push('$');
            after
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut env = Env::default();
        for (name, value) in pairs {
            env.define(name.to_string(), value.to_string());
        }
        env
    }

    #[test]
    fn a_defined_name_is_replaced_by_its_value() {
        let env = env(&[("PORT", "8080"), ("HOST", "db")]);
        assert_eq!(env.expand("--listen=:$(PORT)"), "--listen=:8080");
        assert_eq!(env.expand("$(HOST):$(PORT)/$(HOST)"), "db:8080/db");
    }

    #[test]
    fn a_doubled_dollar_is_a_literal_dollar() {
        let env = env(&[("PORT", "8080")]);
        assert_eq!(env.expand("$$(PORT)"), "$(PORT)");
        assert_eq!(env.expand("$$$(PORT)"), "$8080");
        assert_eq!(env.expand("cost: $$5"), "cost: $5");
    }

    #[test]
    fn an_undefined_name_stays_as_written() {
        let env = env(&[("PORT", "8080")]);
        assert_eq!(env.expand("$(MISSING) $(PORT)"), "$(MISSING) 8080");
        assert_eq!(env.expand("$()"), "$()");
    }

    #[test]
    fn other_dollars_and_unclosed_references_stay_as_written() {
        let env = env(&[("A", "1")]);
        assert_eq!(env.expand("$HOME ${A} $"), "$HOME ${A} $");
        assert_eq!(env.expand("$(A $$"), "$(A $");
        assert_eq!(env.expand("é$(A)ü"), "é1ü");
    }

    #[test]
    fn the_last_value_of_a_name_given_twice_wins() {
        let env = env(&[("A", "1"), ("A", "2")]);
        assert_eq!(env.expand("$(A)"), "2");
    }
}
