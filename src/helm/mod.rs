//! Helm knowledge shared by the sources: what a Helm chart repository is and how a chart is
//! fetched from one into a local cache ([`repository`]), for the sources that need a chart
//! they do not find in the repository they harden (the chart a GitOps release names). Nothing
//! here knows Kubernetes objects or edits YAML.

pub mod repository;
