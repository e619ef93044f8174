//! The chart cache on disk. `<root>/<repository>/<chart>/<version>/` holds the unpacked chart
//! as `<chart>/` and a record of where it came from (`.kube-harden.json`: repository, archive
//! URL, SHA-256). A version folder appears whole or not at all: it is built in a temporary
//! folder beside it and renamed into place, so a killed run or a concurrent one never leaves
//! half a chart where a later run would take it for a whole one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::FetchError;

const RECORD: &str = ".kube-harden.json";

/// Where one fetched chart version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Record {
    /// The repository URL as shown (no password).
    pub(super) repository: String,
    /// The version as the index spells it.
    pub(super) version: String,
    /// The archive's URL as shown.
    pub(super) url: String,
    /// SHA-256 of the archive, lower-case hex.
    pub(super) digest: String,
}

/// The folder of one version of one chart from one repository.
pub(super) struct VersionSlot {
    pub(super) dir: PathBuf,
    chart: String,
}

impl VersionSlot {
    pub(super) fn new(chart_dir: &Path, chart: &str, version: &str) -> VersionSlot {
        VersionSlot {
            dir: chart_dir.join(version),
            chart: chart.to_string(),
        }
    }

    /// The unpacked chart (the folder with `Chart.yaml`).
    pub(super) fn chart_dir(&self) -> PathBuf {
        self.dir.join(&self.chart)
    }

    /// The record of a complete version folder from `repository`, if there is one.
    pub(super) fn record(&self, repository: &str) -> Option<Record> {
        let text = fs::read(self.dir.join(RECORD)).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        let complete = self.chart_dir().join("Chart.yaml").is_file();
        (complete && record.repository == repository).then_some(record)
    }

    /// Builds the version folder: `fill` unpacks into the chart folder it is given, then the
    /// record is written and the whole moves into place, replacing an older copy.
    pub(super) fn install(
        &self,
        record: &Record,
        fill: impl FnOnce(&Path) -> Result<(), FetchError>,
    ) -> Result<(), FetchError> {
        let parent = self.dir.parent().expect("a version folder has a parent");
        fs::create_dir_all(parent).map_err(|e| cache_error(parent, e))?;
        // A signal removes it too: an interrupted download leaves nothing in the cache.
        let staging = crate::process::scratch_dir_in(parent, ".unpacking-")
            .map_err(|e| cache_error(parent, e))?;
        let chart_dir = staging.path().join(&self.chart);
        fs::create_dir(&chart_dir).map_err(|e| cache_error(&chart_dir, e))?;
        fill(&chart_dir)?;
        let record_path = staging.path().join(RECORD);
        let text = serde_json::to_vec_pretty(record).expect("a record serialises");
        fs::write(&record_path, text).map_err(|e| cache_error(&record_path, e))?;
        self.move_into_place(staging, record)
    }

    fn move_into_place(
        &self,
        staging: crate::process::ScratchDir,
        record: &Record,
    ) -> Result<(), FetchError> {
        if fs::rename(staging.path(), &self.dir).is_ok() {
            // Renamed away: nothing left for the guard to remove.
            let _ = staging.keep();
            return Ok(());
        }
        // Another run put the same archive in place meanwhile: keep theirs.
        if self.record(&record.repository).as_ref() == Some(record) {
            return Ok(());
        }
        self.remove_old_copy()?;
        fs::rename(staging.path(), &self.dir).map_err(|e| cache_error(&self.dir, e))?;
        let _ = staging.keep();
        Ok(())
    }

    /// Moves an outdated or incomplete version folder aside and deletes it.
    fn remove_old_copy(&self) -> Result<(), FetchError> {
        let parent = self.dir.parent().expect("a version folder has a parent");
        let trash = crate::process::scratch_dir_in(parent, ".outdated-")
            .map_err(|e| cache_error(parent, e))?;
        let aside = trash.path().join("old");
        match fs::rename(&self.dir, &aside) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(cache_error(&self.dir, e)),
        }
        // `trash` removes the old copy when it goes out of scope.
    }
}

/// The versions of a chart from `repository` in the cache: each folder name with its record.
pub(super) fn cached_versions(
    chart_dir: &Path,
    chart: &str,
    repository: &str,
) -> Vec<(String, Record)> {
    let Ok(entries) = fs::read_dir(chart_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Dot folders are staging and outdated copies.
        .filter(|folder| !folder.starts_with('.'))
        .filter_map(|folder| {
            let record = VersionSlot::new(chart_dir, chart, &folder).record(repository)?;
            Some((folder, record))
        })
        .collect()
}

pub(super) fn cache_error(path: &Path, source: io::Error) -> FetchError {
    FetchError::Cache {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(digest: &str) -> Record {
        Record {
            repository: "https://charts.example.com".into(),
            version: "1.0.0".into(),
            url: "https://charts.example.com/demo-1.0.0.tgz".into(),
            digest: digest.into(),
        }
    }

    fn write_chart(dir: &Path, version: &str) -> Result<(), FetchError> {
        fs::write(
            dir.join("Chart.yaml"),
            format!("name: demo\nversion: {version}\n"),
        )
        .unwrap();
        Ok(())
    }

    #[test]
    fn an_installed_version_is_found_with_its_record() {
        let root = tempfile::tempdir().unwrap();
        let slot = VersionSlot::new(root.path(), "demo", "1.0.0");
        assert_eq!(slot.record("https://charts.example.com"), None);
        slot.install(&record("aa"), |d| write_chart(d, "1.0.0"))
            .unwrap();
        assert_eq!(
            slot.record("https://charts.example.com"),
            Some(record("aa"))
        );
        assert!(slot.chart_dir().join("Chart.yaml").is_file());
        // The same folder name from another repository is not a hit.
        assert_eq!(slot.record("https://other.example.com"), None);
    }

    #[test]
    fn a_failed_fill_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let slot = VersionSlot::new(root.path(), "demo", "1.0.0");
        let result = slot.install(&record("aa"), |d| {
            fs::write(d.join("Chart.yaml"), "half").unwrap();
            Err(FetchError::BadArchive {
                url: "u".into(),
                reason: "r".into(),
            })
        });
        assert!(result.is_err());
        assert!(!slot.dir.exists());
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            0,
            "no staging folder left"
        );
    }

    #[test]
    fn a_newer_archive_replaces_an_older_copy() {
        let root = tempfile::tempdir().unwrap();
        let slot = VersionSlot::new(root.path(), "demo", "1.0.0");
        slot.install(&record("aa"), |d| write_chart(d, "old"))
            .unwrap();
        slot.install(&record("bb"), |d| write_chart(d, "new"))
            .unwrap();
        assert_eq!(
            slot.record("https://charts.example.com"),
            Some(record("bb"))
        );
        let text = fs::read_to_string(slot.chart_dir().join("Chart.yaml")).unwrap();
        assert!(text.contains("new"), "{text}");
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "no temporary folder left"
        );
    }

    #[test]
    fn a_folder_without_its_chart_is_not_a_hit() {
        let root = tempfile::tempdir().unwrap();
        let slot = VersionSlot::new(root.path(), "demo", "1.0.0");
        slot.install(&record("aa"), |d| write_chart(d, "1.0.0"))
            .unwrap();
        fs::remove_file(slot.chart_dir().join("Chart.yaml")).unwrap();
        assert_eq!(slot.record("https://charts.example.com"), None);
    }

    #[test]
    fn cached_versions_lists_complete_folders_of_the_repository() {
        let root = tempfile::tempdir().unwrap();
        for version in ["1.0.0", "1.1.0"] {
            let slot = VersionSlot::new(root.path(), "demo", version);
            let mut r = record("aa");
            r.version = version.into();
            slot.install(&r, |d| write_chart(d, version)).unwrap();
        }
        fs::create_dir(root.path().join("2.0.0")).unwrap();
        let mut versions: Vec<String> =
            cached_versions(root.path(), "demo", "https://charts.example.com")
                .into_iter()
                .map(|(_, r)| r.version)
                .collect();
        versions.sort();
        assert_eq!(versions, ["1.0.0", "1.1.0"]);
    }
}
