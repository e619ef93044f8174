//! kube-harden: adds the Kubernetes securityContext baseline to workload manifests, in place,
//! with edits that keep every byte they have no reason to touch.
//!
//! The data flows one way, one module per stage:
//! [`discover`] → [`yaml`] (parse) → [`policy`] (plan) → [`yaml::edit`] (splice) →
//! [`verify`] → [`render`] → [`deliver`]. [`pipeline`] runs the stages for one file;
//! [`pull_requests`] runs the last stages once per service for `kube-harden pr`.

pub mod actions;
pub mod chart;
pub mod config;
pub mod deliver;
pub mod discover;
pub mod dockerfile;
pub mod group;
pub mod pipeline;
pub mod policy;
pub mod pull_requests;
pub mod render;
pub mod verify;
pub mod yaml;
