//! Kustomize trees: every kustomization in the walked paths is read, and each YAML file it
//! brings in gets a role that decides what is planned for it.
pub mod embedded;
pub mod forest;
pub mod model;
