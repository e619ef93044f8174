//! The file format: the serde types serde-saphyr reads `.kube-harden.yaml` into, and the parser
//! options that make it read YAML the way the JSON Schema does.
//!
//! These types hold the file as written, before any check. Everything is optional here so that
//! defaults apply; values whose type we check ourselves are kept as `Spanned<Scalar>` so the
//! error can point at them. Turning them into a [`Config`](super::Config) is
//! [`validate`](super::validate)'s job.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole file. Every key may be left out; the structs' `Default` stands in for it.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    // Plain structs, so that `baseline: ~` is an error (an `Option` would read it as absent).
    pub(super) baseline: RawBaseline,
    pub(super) controls: RawControls,
    pub(super) writable_tmp: Key<Spanned<Scalar>>,
    pub(super) harden_host_access_pods: Key<Spanned<Scalar>>,
    pub(super) render: Key<Spanned<Scalar>>,
    pub(super) engine_timeout: Key<Spanned<Scalar>>,
    pub(super) images: Key<Spanned<Scalar>>,
    pub(super) platform: Key<Spanned<Scalar>>,
    pub(super) insecure_registries: Vec<Spanned<String>>,
    pub(super) image_volumes: Key<Spanned<Scalar>>,
    pub(super) exclude: Vec<Spanned<String>>,
    // Spanned, so that a missing key can be reported at the start of its entry (serde's own
    // "missing field" error points at the entry's last key).
    pub(super) exemptions: Vec<Spanned<RawExemption>>,
    pub(super) services: Vec<Spanned<RawService>>,
}

/// An entry of `services`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: Key<Spanned<String>>,
    pub(super) paths: Key<Spanned<Vec<Spanned<String>>>>,
}

/// `baseline`: the values the baseline writes.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawBaseline {
    pub(super) run_as_user: Key<Spanned<Scalar>>,
    pub(super) run_as_group: Key<Spanned<Scalar>>,
    pub(super) fs_group: Key<Spanned<Scalar>>,
    pub(super) seccomp_profile: Key<Spanned<Scalar>>,
    pub(super) localhost_profile: Key<Spanned<String>>,
}

/// `controls`: which controls are on.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawControls {
    pub(super) run_as_non_root: Key<Spanned<Scalar>>,
    pub(super) run_as_user: Key<Spanned<Scalar>>,
    pub(super) run_as_group: Key<Spanned<Scalar>>,
    pub(super) fs_group: Key<Spanned<Scalar>>,
    pub(super) seccomp_profile: Key<Spanned<Scalar>>,
    pub(super) allow_privilege_escalation: Key<Spanned<Scalar>>,
    pub(super) read_only_root_filesystem: Key<Spanned<Scalar>>,
    pub(super) capabilities_drop: Key<Spanned<Scalar>>,
    pub(super) capabilities_add: Key<Spanned<Scalar>>,
}

/// An entry of `exemptions`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawExemption {
    pub(super) workload: Key<Spanned<String>>,
    pub(super) namespace: Key<Spanned<String>>,
    pub(super) container: Key<Spanned<String>>,
    pub(super) controls: Key<Spanned<Vec<Spanned<String>>>>,
    pub(super) reason: Key<Spanned<String>>,
}

/// A key the file may leave out: absent, it holds `None` (serde takes the struct's `Default`).
/// Unlike a plain `Option`, a key written as `null` is not read as absent: the `null` reaches
/// `T`, which rejects it, instead of silently meaning "use the default".
pub(super) struct Key<T>(Option<T>);

impl<T> Key<T> {
    /// The value, if the file has the key.
    pub(super) fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<T> Default for Key<T> {
    fn default() -> Self {
        Key(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Key<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|value| Key(Some(value)))
    }
}

/// Any YAML value, as the parser typed it. Booleans and ids are read this way, not as `bool`
/// and `i64`, because serde-saphyr would accept `"1000"` for an integer and `"true"` for a
/// bool (the schema does not), and because an error raised inside a custom visitor is placed
/// at the key, while a check after the fact can point at the value.
#[derive(Debug)]
pub(super) enum Scalar {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Null,
    Sequence,
    Mapping,
}

impl Scalar {
    /// The value as an error message quotes it ("found …").
    pub(super) fn describe(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(x) => format!("the number {x}"),
            Scalar::Str(s) => format!("the string {s:?}"),
            Scalar::Null => "null".into(),
            Scalar::Sequence => "a list".into(),
            Scalar::Mapping => "a mapping".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
        Ok(i128::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Sequence)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Mapping)
    }
}

/// Options that make the parser agree with the JSON Schema: YAML 1.2 booleans only (`yes` is
/// a string), strings that look like numbers or booleans must be quoted, `1_000` is a string,
/// and duplicate keys are errors (the default, stated because the README promises it).
pub(super) fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.no_schema = true;
    options.underscored_numbers_as_strings = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}
