//! Finding the external programs the render check runs (Kustomize, kubectl, Helm): a name is
//! looked up on `PATH`, a path must be an executable file. Nothing here runs them.

use std::path::{Path, PathBuf};

/// The program the user named (`--kustomize-bin`, `--helm-bin`: a bare name is looked up on
/// `PATH`, a path is taken as it is when executable), else the first of `defaults` on `PATH`.
pub fn find(named: Option<&Path>, defaults: &[&str]) -> Option<PathBuf> {
    match named {
        Some(bin) if bin.components().count() == 1 => on_path(&bin.to_string_lossy()),
        Some(bin) => Some(bin.to_path_buf()).filter(|b| is_executable(b)),
        None => defaults.iter().find_map(|name| on_path(name)),
    }
}

/// The program `name` in a folder of PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
