//! The configuration file, `.kube-harden.yaml`: its format, its defaults, and the questions the
//! rest of the tool asks of it (is this path excluded? which exemptions cover this container?).
//!
//! This module owns reading and validating the file, and nothing else: it knows the names of
//! the controls but not what they do to a manifest. Every error points at the offending key or
//! value as `path:line:col: message`, so a typo is fixed in one look.
//!
//! - [`format`](mod@format): the file as written, the serde types serde-saphyr reads it into
//!   (and the parser options that make it agree with the JSON Schema);
//! - [`validate`]: from those types to checked values, each error at its position
//!   ([`parse`], [`ConfigError`]);
//! - [`queries`]: the loaded configuration ([`Config`] and its parts, with their defaults),
//!   [`find`] and [`load`], and what the pipeline asks of it: exclusions ([`ExcludeMatcher`]),
//!   the exemptions that cover a workload or a container, the services of `kube-harden pr`,
//!   and the baseline as [`policy::Rules`](crate::policy::Rules) ([`Config::rules`]).
//!
//! The file format is documented in `docs/config.md`; `schema/kube-harden.schema.json` is its
//! JSON Schema, and `tests/config.rs` keeps the two in step with this parser.

mod format;
mod queries;
mod validate;

pub use queries::{
    find, load, BaselineConfig, Config, Controls, ExcludeMatcher, NamedService, RenderMode,
    Seccomp, DEFAULT_ENGINE_TIMEOUT, DEFAULT_HARDEN_HOST_ACCESS_PODS, DEFAULT_ID,
    DEFAULT_WRITABLE_TMP, FILE_NAMES, MAX_ENGINE_TIMEOUT,
};
pub use validate::{parse, ConfigError, MAX_ID};

/// The controls are the policy's; in this file `capabilities.drop` is spelled
/// `capabilitiesDrop` (a key cannot hold a dot comfortably), which `Control::from_name` accepts.
pub use crate::policy::Control;

/// Exemptions are the policy's (it owns what they mean); this file only reads them.
pub use crate::policy::{ControlSet, Exemption};
