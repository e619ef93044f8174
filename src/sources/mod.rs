//! The sources: each kind of file the tool hardens turns its files into [`FileReport`]s through
//! the same policy, edit engine and verification. They sit side by side and none imports
//! another; what they share lives below them ([`crate::report`], [`crate::input`],
//! [`crate::policy`], [`crate::verify`], the `yaml_splice` engine). [`crate::pipeline`] decides
//! which source handles which file.
//!
//! - [`manifest`]: a plain manifest, one file at a time;
//! - [`chart`]: a Helm chart, its values files planned with what its templates wire;
//! - [`kustomize`]: a Kustomize tree, its files planned by their role and proven by building;
//! - [`gitops`]: the inline Helm values of Flux and Argo CD releases.
//!
//! A new source kind is a new module here, plus the line in [`crate::pipeline`] that hands it
//! its files.
//!
//! [`FileReport`]: crate::report::FileReport

pub mod chart;
pub mod gitops;
pub mod kustomize;
pub mod manifest;
