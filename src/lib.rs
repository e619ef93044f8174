//! kube-harden: adds the Kubernetes securityContext baseline to workload manifests, in place,
//! with edits that keep every byte they have no reason to touch.
//!
//! The data flows one way, one module per stage:
//! [`discover`] → `yaml_splice` (parse) → [`policy`] (plan) → `yaml_splice` (splice) →
//! [`verify`] → [`render`] → [`deliver`]. The [`sources`] (plain manifests, Helm charts,
//! Kustomize trees, GitOps releases) each turn their files into [`report::FileReport`]s through
//! those stages; [`pipeline`] hands each file to its source, in parallel; [`pull_requests`] runs
//! the last stages once per service for `kube-harden pr`. Beside the stages: [`helm`] (the
//! engine, chart repositories, OCI and git chart sources, the image facts of a rendered
//! chart), [`registry`] (the OCI distribution client) and [`images`] (image facts read through
//! it, which the policy plans with), and [`prove`] (each changed container run as-is and
//! hardened). The README's Layout section says which module may use which.

// The module docs point at the private parts they are made of: the links work with
// `cargo doc --document-private-items`, and read as plain names otherwise.
#![allow(rustdoc::private_intra_doc_links)]

pub mod apply;
pub mod config;
pub mod deliver;
pub mod discover;
pub mod dockerfile;
pub mod group;
pub mod helm;
pub mod http;
pub mod images;
pub mod input;
pub mod kustomization;
pub mod pipeline;
pub mod policy;
pub mod process;
pub mod prove;
pub mod pull_requests;
pub mod registry;
pub mod render;
pub mod report;
pub mod sources;
pub mod verify;
