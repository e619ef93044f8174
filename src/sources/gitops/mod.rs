//! GitOps releases: the Helm values that Flux `HelmRelease`s and Argo CD `Application`s and
//! `ApplicationSet`s carry inline, hardened for the chart they install.
//!
//! [`model`] reads the releases of a manifest (the chart each names, where its inline values
//! are).

pub mod chart;
pub mod edit;
pub mod index;
pub mod model;
pub mod values;
