//! Helm knowledge shared by the sources that meet Helm charts (chart folders in the
//! repository, the charts GitOps releases install): running Helm's engine ([`engine`]), and
//! what a Helm chart repository is and how a chart is fetched from one into a local cache
//! ([`repository`]), for a chart the sources do not find in the repository they harden,
//! Helm's way of layering values ([`values`]), and what the images of a rendered chart's pods
//! say, pod by pod and by template ([`images`]).
//! Nothing here edits YAML.

pub mod engine;
pub mod images;
pub mod repository;
pub mod values;
