//! Which chart version a request means, the way `helm pull --version` reads it: Helm's
//! constraints (the Masterminds semver syntax) mapped onto the `semver` crate, and the choice
//! of one version among those an index lists.
//!
//! The two syntaxes differ where it matters: for the `semver` crate a bare `1.2.3` means
//! `^1.2.3`, for Helm it means exactly 1.2.3 (and a bare `1.2` means `1.2.x`). So a request is
//! rewritten comparator by comparator before the crate reads it: `||` alternatives, comparators
//! separated by spaces or commas, an operator apart from its version (`>= 1.2`), `=>`/`=<`/`~>`,
//! `x`/`X`/`*` wildcards after an operator, `A - B` ranges, `!=`, and a `v` before a version.
//! Pre-releases match only a constraint that names one (as in both libraries); an empty request
//! or `*` means the highest release.

use std::cmp::Ordering;

use semver::{Version, VersionReq};

/// A parsed version request: any one of its alternatives matches.
#[derive(Debug)]
pub(super) struct Constraint {
    alternatives: Vec<Alternative>,
}

/// Comparators that must all hold (`required`), minus the versions `!=` rules out.
#[derive(Debug)]
struct Alternative {
    required: VersionReq,
    excluded: Vec<VersionReq>,
}

impl Constraint {
    /// Reads a Helm version constraint; the error says what could not be read.
    pub(super) fn parse(text: &str) -> Result<Constraint, String> {
        let alternatives = text
            .split("||")
            .map(parse_alternative)
            .collect::<Result<_, _>>()?;
        Ok(Constraint { alternatives })
    }

    pub(super) fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|a| a.required.matches(version) && !a.excluded.iter().any(|e| e.matches(version)))
    }
}

fn parse_alternative(text: &str) -> Result<Alternative, String> {
    let mut required = Vec::new();
    let mut excluded = Vec::new();
    for (operator, version) in comparators(text)? {
        let Some(version) = without_wildcards(version) else {
            // `*`, `>= x`: no bound at all.
            continue;
        };
        match operator {
            "!=" => excluded.push(requirement(&format!("={version}"))?),
            _ => required.push(format!("{}{version}", crate_operator(operator)?)),
        }
    }
    let required = if required.is_empty() {
        VersionReq::STAR
    } else {
        requirement(&required.join(", "))?
    };
    Ok(Alternative { required, excluded })
}

fn requirement(text: &str) -> Result<VersionReq, String> {
    VersionReq::parse(text).map_err(|e| format!("{text}: {e}"))
}

/// The `(operator, version)` pairs of one alternative. Helm allows a space between an operator
/// and its version, and `A - B` for `>= A, <= B`.
fn comparators(text: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut words = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .peekable();
    let mut pairs = Vec::new();
    while let Some(word) = words.next() {
        let (operator, version) = split_operator(word);
        let version = match version {
            "" => words
                .next()
                .ok_or_else(|| format!("{operator:?} is not followed by a version"))?,
            v => v,
        };
        if operator.is_empty() && words.peek() == Some(&"-") {
            words.next();
            let upper = words
                .next()
                .ok_or_else(|| format!("the range from {version} has no upper end"))?;
            pairs.extend([(">=", version), ("<=", upper)]);
        } else {
            pairs.push((operator, version));
        }
    }
    Ok(pairs)
}

fn split_operator(word: &str) -> (&str, &str) {
    let at = word
        .find(|c: char| !matches!(c, '=' | '<' | '>' | '!' | '~' | '^'))
        .unwrap_or(word.len());
    word.split_at(at)
}

/// The `semver` crate's spelling of a Helm operator. Helm's bare and `=` operators mean
/// "equal" (a partial version such as `1.2` is a wildcard in both libraries).
fn crate_operator(operator: &str) -> Result<&'static str, String> {
    Ok(match operator {
        "" | "=" => "=",
        ">" => ">",
        "<" => "<",
        ">=" | "=>" => ">=",
        "<=" | "=<" => "<=",
        "~" | "~>" => "~",
        "^" => "^",
        other => return Err(format!("unknown operator {other:?}")),
    })
}

/// A comparator's version without its `v` and without the wildcard parts (`1.2.x` -> `1.2`),
/// which the `semver` crate then reads as a partial version; None when the major part is a
/// wildcard (no bound).
fn without_wildcards(version: &str) -> Option<String> {
    let version = strip_v(version);
    let (core, suffix) = split_core(version);
    let parts: Vec<&str> = core
        .split('.')
        .take_while(|p| !matches!(*p, "x" | "X" | "*"))
        .collect();
    match parts.len() {
        0 => None,
        3 => Some(format!("{core}{suffix}")),
        // A pre-release on a partial version means nothing to either library: dropped.
        _ => Some(parts.join(".")),
    }
}

fn strip_v(version: &str) -> &str {
    version
        .strip_prefix('v')
        .or_else(|| version.strip_prefix('V'))
        .unwrap_or(version)
}

/// `1.2.3-rc.1+build` -> (`1.2.3`, `-rc.1+build`).
fn split_core(version: &str) -> (&str, &str) {
    version.split_at(version.find(['-', '+']).unwrap_or(version.len()))
}

/// A version as an index lists it, read as Helm reads it: a `v` before it is tolerated, and a
/// partial version (`1.2`) is padded with zeros. None when it is not a version at all.
pub(super) fn parse_version(text: &str) -> Option<Version> {
    let text = strip_v(text.trim());
    if let Ok(version) = Version::parse(text) {
        return Some(version);
    }
    let (core, suffix) = split_core(text);
    let given = core.split('.').count();
    if !(1..3).contains(&given) || !core.split('.').all(is_number) {
        return None;
    }
    let padding = ".0".repeat(3 - given);
    Version::parse(&format!("{core}{padding}{suffix}")).ok()
}

fn is_number(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())
}

/// The version a request names exactly (`1.2.3`, `v1.2.3`, `=1.2.3`), or None when it is a
/// range. Only an exact request can be answered from the cache without asking the index.
pub(super) fn exact(request: &str) -> Option<Version> {
    let text = request.trim();
    let text = text.strip_prefix('=').unwrap_or(text).trim();
    let (core, _) = split_core(strip_v(text));
    if core.split('.').count() != 3 || !core.split('.').all(is_number) {
        return None;
    }
    Version::parse(strip_v(text)).ok()
}

/// The version of `listed` that `request` picks, as Helm picks it: a listed version spelled
/// exactly as requested first, else the highest that parses and matches the constraint.
pub(super) fn choose<'a>(request: &str, listed: &[&'a str]) -> Result<Option<&'a str>, String> {
    let request = request.trim();
    if !request.is_empty() {
        if let Some(same) = listed.iter().find(|v| v.trim() == request) {
            return Ok(Some(same));
        }
    }
    let constraint = Constraint::parse(request)?;
    Ok(listed
        .iter()
        .filter_map(|text| parse_version(text).map(|v| (v, *text)))
        .filter(|(version, _)| constraint.matches(version))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, text)| text))
}

/// Versions from the highest down; those that do not parse go last, in their listed order.
pub(super) fn sorted_descending(listed: &[&str]) -> Vec<String> {
    let mut versions: Vec<(Option<Version>, &str)> =
        listed.iter().map(|t| (parse_version(t), *t)).collect();
    versions.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => y.cmp(x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    });
    versions.into_iter().map(|(_, t)| t.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &[&str] = &[
        "0.9.0",
        "1.0.0",
        "1.1.0",
        "1.1.5",
        "1.2.0-rc.1",
        "1.2.0",
        "1.10.3",
        "2.0.0",
        "2.1.0-beta.2",
    ];

    fn pick(request: &str) -> Option<&'static str> {
        choose(request, LISTED).unwrap()
    }

    #[test]
    fn a_bare_full_version_is_exact_not_a_caret_range() {
        assert_eq!(pick("1.1.0"), Some("1.1.0"));
        assert_eq!(pick("=1.1.0"), Some("1.1.0"));
        assert_eq!(pick("v1.1.0"), Some("1.1.0"));
        assert_eq!(pick("1.3.0"), None);
    }

    #[test]
    fn wildcards_and_partial_versions_are_ranges() {
        assert_eq!(pick("1.x"), Some("1.10.3"));
        assert_eq!(pick("1.1.x"), Some("1.1.5"));
        assert_eq!(pick("1.1.*"), Some("1.1.5"));
        assert_eq!(pick("1.X"), Some("1.10.3"));
        assert_eq!(pick("1.1"), Some("1.1.5"));
        assert_eq!(pick("1"), Some("1.10.3"));
        assert_eq!(pick("3.x"), None);
    }

    #[test]
    fn an_empty_request_or_a_star_is_the_highest_release() {
        assert_eq!(pick(""), Some("2.0.0"));
        assert_eq!(pick("  "), Some("2.0.0"));
        assert_eq!(pick("*"), Some("2.0.0"));
        assert_eq!(pick("x"), Some("2.0.0"));
    }

    #[test]
    fn tilde_and_caret_follow_helm() {
        assert_eq!(pick("~1.1"), Some("1.1.5"));
        assert_eq!(pick("~1.1.2"), Some("1.1.5"));
        assert_eq!(pick("~>1.1"), Some("1.1.5"));
        assert_eq!(pick("^1.1"), Some("1.10.3"));
        assert_eq!(pick("^0.9"), Some("0.9.0"));
        assert_eq!(pick("~1"), Some("1.10.3"));
    }

    #[test]
    fn comparators_separated_by_spaces_or_commas_all_hold() {
        assert_eq!(pick(">=1.2 <2"), Some("1.10.3"));
        assert_eq!(pick(">= 1.0, < 1.2"), Some("1.1.5"));
        assert_eq!(pick("> 1.1.0 <= 1.2.0"), Some("1.2.0"));
        assert_eq!(pick("=>1.0.0 =<1.1.0"), Some("1.1.0"));
        assert_eq!(pick(">1.1"), Some("2.0.0"));
        assert_eq!(pick("<=1.1"), Some("1.1.5"));
        assert_eq!(pick(">=1.2.x <2"), Some("1.10.3"));
        assert_eq!(pick(">=v1.0.0 <v1.1.0"), Some("1.0.0"));
    }

    #[test]
    fn alternatives_hyphen_ranges_and_exclusions() {
        assert_eq!(pick("0.9.x || 1.1.x"), Some("1.1.5"));
        assert_eq!(pick("1.0.0 - 1.1.0"), Some("1.1.0"));
        assert_eq!(pick("1.0 - 1.2"), Some("1.2.0"));
        assert_eq!(pick("1.1.x != 1.1.5"), Some("1.1.0"));
        assert_eq!(pick(">=1.0 !=1.10.3 <2"), Some("1.2.0"));
    }

    #[test]
    fn pre_releases_only_when_asked_for() {
        assert_eq!(pick(">=2.0.0"), Some("2.0.0"));
        assert_eq!(pick("2.1.0-beta.2"), Some("2.1.0-beta.2"));
        assert_eq!(pick(">=2.1.0-beta.1"), Some("2.1.0-beta.2"));
        assert_eq!(pick("~1.2.0-rc.0"), Some("1.2.0"));
    }

    #[test]
    fn listed_versions_with_v_or_partial_are_read() {
        let listed = ["v1.0.0", "v1.4.2", "2.0", "not-a-version"];
        assert_eq!(choose("1.x", &listed).unwrap(), Some("v1.4.2"));
        assert_eq!(choose("1.0.0", &listed).unwrap(), Some("v1.0.0"));
        assert_eq!(choose("", &listed).unwrap(), Some("2.0"));
        // A listed string that is not a version is reached only by its exact spelling.
        assert_eq!(
            choose("not-a-version", &listed).unwrap(),
            Some("not-a-version")
        );
    }

    #[test]
    fn an_unreadable_constraint_is_an_error() {
        for bad in [">=", "1.0.0 -", "1.2.3.4", "abc", "?1.0", ">= 1.0 <"] {
            assert!(choose(bad, LISTED).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn exact_requests_are_recognised() {
        assert_eq!(exact("1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(exact(" v1.2.3 "), Some(Version::new(1, 2, 3)));
        assert_eq!(exact("=1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(exact("1.2.3-rc.1").unwrap().to_string(), "1.2.3-rc.1");
        for range in ["", "*", "1.2", "1.x", "^1.2.3", ">=1.2.3", "1.2.3 || 1.2.4"] {
            assert_eq!(exact(range), None, "{range:?}");
        }
    }

    #[test]
    fn listed_versions_sort_highest_first_unreadable_last() {
        let sorted = sorted_descending(&["1.0.0", "odd", "1.10.0", "v1.9.0", "1.2"]);
        assert_eq!(sorted, ["1.10.0", "v1.9.0", "1.2", "1.0.0", "odd"]);
    }
}
