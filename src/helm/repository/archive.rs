//! Unpacking a chart archive (`.tgz`) into a folder the caller owns, refusing anything that
//! could write outside it or leave a link behind: absolute paths, `..`, symbolic and hard
//! links, devices. Like Helm, the first path component (the chart's folder in the archive) is
//! dropped, and Helm's limits on unpacked sizes hold, so that a small archive cannot fill a
//! disk.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

/// Helm's limit on the unpacked size of a whole chart (`MaxDecompressedChartSize`).
const MAX_CHART_BYTES: u64 = 100 * 1024 * 1024;
/// Helm's limit on the unpacked size of one file (`MaxDecompressedFileSize`).
const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// Unpacks `archive` so that `<chart_dir>/Chart.yaml` is the chart's. `chart_dir` must be a
/// fresh folder (nothing in it can be a link). The error says what was refused.
pub(super) fn unpack(archive: &[u8], chart_dir: &Path) -> Result<(), String> {
    let mut tar = tar::Archive::new(GzDecoder::new(archive));
    let mut unpacked = 0u64;
    let entries = tar
        .entries()
        .map_err(|e| format!("not a gzipped tar archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a gzipped tar archive: {e}"))?;
        unpacked += unpack_entry(entry, chart_dir, MAX_CHART_BYTES - unpacked)?;
    }
    if !chart_dir.join("Chart.yaml").is_file() {
        return Err("it has no Chart.yaml in its chart folder".into());
    }
    Ok(())
}

/// Writes one entry below `chart_dir`; returns the bytes written.
fn unpack_entry<R: Read>(
    mut entry: tar::Entry<'_, R>,
    chart_dir: &Path,
    budget: u64,
) -> Result<u64, String> {
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions() {
        // Metadata for the entries that follow (the tar crate reads per-entry PAX and GNU
        // long-name headers itself).
        return Ok(0);
    }
    let inside = path_inside_chart(&name)?;
    match kind {
        EntryType::Directory => {
            fs::create_dir_all(chart_dir.join(&inside)).map_err(|e| io_error(&name, &e))?;
            Ok(0)
        }
        EntryType::Regular | EntryType::Continuous if inside.as_os_str().is_empty() => {
            Err(format!("{name:?} is a file outside the chart's folder"))
        }
        EntryType::Regular | EntryType::Continuous => {
            write_file(&mut entry, &chart_dir.join(&inside), &name, budget)
        }
        EntryType::Symlink | EntryType::Link => Err(format!(
            "{name:?} is a link; a chart archive holds only files and folders"
        )),
        other => Err(format!(
            "{name:?} is a {other:?} entry; a chart archive holds only files and folders"
        )),
    }
}

/// The entry's path below the chart's folder (empty for the folder itself). Both `/` and `\`
/// separate components, as Helm reads them; an absolute path or a `..` anywhere is refused.
fn path_inside_chart(name: &str) -> Result<PathBuf, String> {
    let drive = name.as_bytes().get(1) == Some(&b':') && name.as_bytes()[0].is_ascii_alphabetic();
    let absolute = name.starts_with(['/', '\\']) || drive;
    if absolute {
        return Err(format!("{name:?} is an absolute path"));
    }
    let parts: Vec<&str> = name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(format!("{name:?} reaches outside the chart's folder (..)"));
    }
    // Empty for `./` or the chart's folder itself.
    Ok(parts.iter().skip(1).collect())
}

fn write_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
    name: &str,
    budget: u64,
) -> Result<u64, String> {
    let limit = MAX_FILE_BYTES.min(budget);
    let too_large = || {
        format!(
            "{name:?} unpacks to more than {} MiB (Helm's limits: 5 MiB a file, 100 MiB a chart)",
            limit / (1024 * 1024)
        )
    };
    if entry.header().size().map_err(|e| io_error(name, &e))? > limit {
        return Err(too_large());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error(name, &e))?;
    }
    let mut file = fs::File::create(path).map_err(|e| io_error(name, &e))?;
    // The header's size can lie about what a damaged stream holds: count what is written.
    let written =
        io::copy(&mut entry.take(limit + 1), &mut file).map_err(|e| io_error(name, &e))?;
    if written > limit {
        return Err(too_large());
    }
    Ok(written)
}

fn io_error(name: &str, error: &io::Error) -> String {
    format!("{name:?}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// A gzipped tar with entries written byte for byte (the tar crate's own builder refuses
    /// the hostile names these tests need).
    fn archive(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_old();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if kind.is_symlink() || kind.is_hard_link() {
                header.as_old_mut().linkname[..10].copy_from_slice(b"/etc/passw");
            }
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    const CHART_YAML: (&str, EntryType, &[u8]) = (
        "demo/Chart.yaml",
        EntryType::Regular,
        b"apiVersion: v2\nname: demo\nversion: 1.0.0\n",
    );

    fn unpack_into_temp(bytes: &[u8]) -> (tempfile::TempDir, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("box").join("demo");
        fs::create_dir_all(&chart).unwrap();
        let result = unpack(bytes, &chart);
        (dir, result)
    }

    #[test]
    fn a_chart_unpacks_without_its_top_folder() {
        let bytes = archive(&[
            ("demo/", EntryType::Directory, b""),
            CHART_YAML,
            (
                "demo/templates/cm.yaml",
                EntryType::Regular,
                b"kind: ConfigMap\n",
            ),
            ("./demo/values.yaml", EntryType::Regular, b"a: 1\n"),
        ]);
        let (dir, result) = unpack_into_temp(&bytes);
        result.unwrap();
        let chart = dir.path().join("box/demo");
        assert_eq!(
            fs::read_to_string(chart.join("templates/cm.yaml")).unwrap(),
            "kind: ConfigMap\n"
        );
        assert_eq!(
            fs::read_to_string(chart.join("values.yaml")).unwrap(),
            "a: 1\n"
        );
    }

    #[test]
    fn parent_references_are_refused_and_nothing_lands_outside() {
        for name in [
            "../escape.txt",
            "demo/../../escape.txt",
            "demo\\..\\..\\escape.txt",
        ] {
            let bytes = archive(&[CHART_YAML, (name, EntryType::Regular, b"x")]);
            let (dir, result) = unpack_into_temp(&bytes);
            let error = result.unwrap_err();
            assert!(error.contains(".."), "{name}: {error}");
            assert!(!dir.path().join("escape.txt").exists());
            assert!(!dir.path().join("box/escape.txt").exists());
        }
    }

    #[test]
    fn absolute_paths_are_refused() {
        for name in ["/tmp/kube-harden-absolute.txt", "C:/evil.txt", "\\evil.txt"] {
            let bytes = archive(&[CHART_YAML, (name, EntryType::Regular, b"x")]);
            let error = unpack_into_temp(&bytes).1.unwrap_err();
            assert!(error.contains("absolute"), "{name}: {error}");
        }
        assert!(!Path::new("/tmp/kube-harden-absolute.txt").exists());
    }

    #[test]
    fn links_and_devices_are_refused() {
        for kind in [
            EntryType::Symlink,
            EntryType::Link,
            EntryType::Fifo,
            EntryType::Char,
        ] {
            let bytes = archive(&[CHART_YAML, ("demo/templates/x", kind, b"")]);
            let (dir, result) = unpack_into_temp(&bytes);
            let error = result.unwrap_err();
            assert!(
                error.contains("only files and folders"),
                "{kind:?}: {error}"
            );
            assert!(fs::symlink_metadata(dir.path().join("box/demo/templates/x")).is_err());
        }
    }

    #[test]
    fn a_file_beside_the_chart_folder_is_refused() {
        let bytes = archive(&[("Chart.yaml", EntryType::Regular, b"name: demo\n")]);
        let error = unpack_into_temp(&bytes).1.unwrap_err();
        assert!(error.contains("outside the chart's folder"), "{error}");
    }

    #[test]
    fn an_archive_without_chart_yaml_is_refused() {
        let bytes = archive(&[("demo/values.yaml", EntryType::Regular, b"a: 1\n")]);
        let error = unpack_into_temp(&bytes).1.unwrap_err();
        assert!(error.contains("no Chart.yaml"), "{error}");
    }

    #[test]
    fn a_file_over_helms_limit_is_refused() {
        let big = vec![b'a'; MAX_FILE_BYTES as usize + 1];
        let bytes = archive(&[CHART_YAML, ("demo/big.txt", EntryType::Regular, &big)]);
        let error = unpack_into_temp(&bytes).1.unwrap_err();
        assert!(error.contains("more than 5 MiB"), "{error}");
    }

    #[test]
    fn bytes_that_are_not_a_tgz_are_refused() {
        let error = unpack_into_temp(b"<html>not found</html>").1.unwrap_err();
        assert!(error.contains("not a gzipped tar archive"), "{error}");
    }
}
