//! Helm knowledge shared by the sources that meet Helm charts (chart folders in the
//! repository, the charts GitOps releases install): running Helm's engine ([`engine`]).

pub mod engine;
