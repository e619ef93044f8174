//! The images that ship: what the builds of an app's roots (before the edits) run in each
//! container, traced back to the file each rendered object came from (its origin annotation)
//! and to the patches that met it. What a base's text names is not always what ships: the
//! kustomization's `images:` (newName, newTag, digest) or a patch may replace it. So a resource
//! file is planned with a lookup that answers for each image text with the facts of the image
//! the builds ship for it, and a strategic-merge patch with the images of the pods it meets
//! ([`crate::policy::ShippedPod`]). Without a build (no engine, `--render never`, a root that
//! does not build) the text is all there is, and it is planned as written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy::images::{Looked, Unread};
use crate::policy::{ImageLookup, ShippedContainer, ShippedPod};
use crate::report::FileReport;

use super::build::root_dir;
use super::forest::Forest;
use super::model::{normalise, PatchSource};
use super::render::{origin_of, Before};

/// A patch, as the builds know it: a file, or the entry of an inline patch.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PatchKey {
    File(PathBuf),
    Inline { kustomization: PathBuf, line: usize },
}

/// A workload as one root builds it.
#[derive(Clone, Debug)]
struct BuiltPod {
    kind: String,
    /// The rendered name (prefixes and suffixes applied).
    name: String,
    pod: ShippedPod,
}

/// The images each file's workloads and each patch's pods ship with.
#[derive(Default)]
pub struct Shipped {
    /// Per resource file (canonical): each image text of its containers, and the images the
    /// builds ship for it, each with the first root that does.
    by_file: BTreeMap<PathBuf, BTreeMap<String, BTreeMap<String, PathBuf>>>,
    by_patch: BTreeMap<PatchKey, Vec<BuiltPod>>,
    /// Each root's kustomizations (itself and what it includes) and the pods it builds: an
    /// untargeted patch meets the pods its documents name in the roots that include it.
    by_root: Vec<(Vec<PathBuf>, Vec<BuiltPod>)>,
}

impl Shipped {
    /// Reads the builds before the edits.
    pub fn of(before: &Before, forest: &Forest) -> Shipped {
        let mut shipped = Shipped::default();
        let mut texts = FileImages::default();
        for (root, render) in before.renders() {
            let Ok(stream) = render else { continue };
            let Ok(docs) = crate::verify::load_all(stream) else {
                continue;
            };
            let mut pods = Vec::new();
            for doc in &docs {
                let Some(built) = built_pod(doc) else {
                    continue;
                };
                pods.push(built.clone());
                let origin = origin_of(doc)
                    .and_then(|o| before.copy().origin_file(&root_dir(root), &o))
                    .and_then(|f| std::fs::canonicalize(f).ok());
                if let Some(file) = origin {
                    shipped.add_file(&file, &built, root, &mut texts);
                }
                for (kustomization, patch) in
                    forest.patches_of_object(root, &built.kind, &built.name)
                {
                    let key = match patch.source {
                        PatchSource::File(file) => PatchKey::File(normalise(&file)),
                        PatchSource::Inline(_) => PatchKey::Inline {
                            kustomization: kustomization.clone(),
                            line: patch.line,
                        },
                        PatchSource::Unreadable(_) => continue,
                    };
                    shipped.by_patch.entry(key).or_default().push(built.clone());
                }
            }
            shipped.by_root.push((forest.closure_of(root), pods));
        }
        shipped
    }

    fn add_file(&mut self, file: &Path, built: &BuiltPod, root: &Path, texts: &mut FileImages) {
        let Some(own) = texts.of(file, &built.kind, &built.name) else {
            return;
        };
        let images = self.by_file.entry(file.to_path_buf()).or_default();
        for c in &built.pod.containers {
            let Some(text) = own.get(&c.name) else {
                continue;
            };
            images
                .entry(text.clone())
                .or_default()
                .entry(c.image.clone())
                .or_insert_with(|| root.to_path_buf());
        }
    }

    /// The lookup a resource file is planned with, when the builds ship another image than
    /// its text names for some container (None: the file's text is what ships).
    pub fn lookup_for(&self, file: &Path, lookup: &ImageLookup) -> Option<ImageLookup> {
        if !lookup.is_on() {
            return None;
        }
        let file = std::fs::canonicalize(file).ok()?;
        let replaced: BTreeMap<String, BTreeMap<String, PathBuf>> = self
            .by_file
            .get(&file)?
            .iter()
            .filter(|(text, built)| built.keys().any(|b| b != *text))
            .map(|(t, b)| (t.clone(), b.clone()))
            .collect();
        if replaced.is_empty() {
            return None;
        }
        let inner = lookup.clone();
        let mut wrapped = ImageLookup::new(Arc::new(move |text: &str| match replaced.get(text) {
            Some(built) => shipped_facts(&inner, built),
            None => inner.facts(text).expect("the lookup is on"),
        }));
        wrapped.required = lookup.required;
        wrapped.volumes_as_notes = lookup.volumes_as_notes;
        Some(wrapped)
    }

    /// Names, in the file's image notes, the image that ships where its text names another
    /// (`app` becomes "`registry/app:2`, what the build of overlays/prod ships for `app`").
    pub fn name_shipped_images(&self, report: &mut FileReport) {
        let Some(images) = std::fs::canonicalize(&report.path)
            .ok()
            .and_then(|f| self.by_file.get(&f))
        else {
            return;
        };
        for (text, built) in images {
            let [(image, root)] = built.iter().collect::<Vec<_>>()[..] else {
                // Not one image: the reason says which, the note should not say "cannot be read".
                let unread = format!("`{text}` cannot be read ({AMBIGUOUS}");
                let told = format!("`{text}` is planned without one image's facts ({AMBIGUOUS}");
                for note in &mut report.notes {
                    note.message = note.message.replacen(&unread, &told, 1);
                }
                continue;
            };
            if image == text {
                continue;
            }
            let quoted = format!("`{text}`");
            let named = format!(
                "`{image}`, what the build of {} ships for `{text}`",
                root_dir(root).display()
            );
            for note in &mut report.notes {
                if note.message.starts_with("image facts") && note.message.contains(&quoted) {
                    note.message = note.message.replacen(&quoted, &named, 1);
                }
            }
        }
    }

    /// What the builds ship in the pods a patch's document meets: with a `target`, every pod
    /// of the kind that the builds apply the patch to; else the pods of the kind and name the
    /// document writes, in the roots that include a kustomization using the patch (`used_in`).
    /// None when no build tells; a container whose image the builds disagree on is left out.
    pub fn for_patch(
        &self,
        key: &PatchKey,
        used_in: &[PathBuf],
        (kind, name): (&str, &str),
        targeted: bool,
    ) -> Option<ShippedPod> {
        let pods: Vec<&BuiltPod> = match targeted {
            true => self
                .by_patch
                .get(key)?
                .iter()
                .filter(|p| p.kind == kind)
                .collect(),
            false => self
                .by_root
                .iter()
                .filter(|(closure, _)| closure.iter().any(|k| used_in.contains(k)))
                .flat_map(|(_, pods)| pods)
                .filter(|p| p.kind == kind && p.name.contains(name))
                .collect(),
        };
        let (first, others) = pods.split_first()?;
        let mut pod = first.pod.clone();
        pod.containers.retain(|c| {
            others.iter().all(|o| {
                o.pod
                    .containers
                    .iter()
                    .any(|d| d.name == c.name && d.image == c.image)
            })
        });
        pod.sets_ids |= others.iter().any(|o| o.pod.sets_ids);
        Some(pod)
    }
}

/// How the reason of a text that ships as images of different users begins.
const AMBIGUOUS: &str = "it ships as";

/// The facts of the image(s) the builds ship for `text`: one image, or several that run as the
/// same user (the first's facts); several users cannot all be a base's, so it is planned
/// without them.
fn shipped_facts(lookup: &ImageLookup, built: &BTreeMap<String, PathBuf>) -> Looked {
    let mut first: Option<Looked> = None;
    for image in built.keys() {
        let looked = lookup.facts(image).expect("the lookup is on");
        match (&first, &looked) {
            (None, _) => first = Some(looked),
            (Some(Ok(a)), Ok(b)) if a.user == b.user => {}
            (Some(Err(_)), _) => {}
            _ => {
                let ships: Vec<String> = built
                    .iter()
                    .map(|(image, root)| format!("`{image}` ({})", root_dir(root).display()))
                    .collect();
                return Err(Unread::Failed(format!(
                    "{AMBIGUOUS} {}, which run as different users, and one base cannot take the ids of both",
                    ships.join(" and ")
                )));
            }
        }
    }
    first.expect("a text is recorded with the image it ships as")
}

/// A rendered workload's containers and images (None for an object without a pod).
fn built_pod(doc: &yaml_serde::Value) -> Option<BuiltPod> {
    let kind = doc.get("kind")?.as_str()?.to_string();
    let name = doc.get("metadata")?.get("name")?.as_str()?.to_string();
    let pod = crate::policy::pod_spec_path(&kind)
        .iter()
        .try_fold(doc, |v, key| v.get(*key))?;
    let containers: Vec<ShippedContainer> = ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod.get(*list)?.as_sequence())
        .flatten()
        .filter_map(|c| {
            Some(ShippedContainer {
                name: c.get("name")?.as_str()?.to_string(),
                image: c.get("image")?.as_str()?.to_string(),
            })
        })
        .collect();
    if containers.is_empty() {
        return None;
    }
    let sets_ids = ["runAsUser", "runAsGroup", "fsGroup"].iter().any(|key| {
        pod.get("securityContext")
            .and_then(|s| s.get(*key))
            .and_then(|v| v.as_i64())
            .is_some_and(|v| v != 0)
    });
    Some(BuiltPod {
        kind,
        name,
        pod: ShippedPod {
            containers,
            sets_ids,
        },
    })
}

/// An object of a resource file (kind, name) with its containers' image texts by name.
type ObjectImages = (String, String, BTreeMap<String, String>);

/// The image text of each container of the objects of resource files, read once per file.
#[derive(Default)]
struct FileImages {
    files: BTreeMap<PathBuf, Vec<ObjectImages>>,
}

impl FileImages {
    /// The containers' image texts of the file's object that a rendered `kind`/`name` comes
    /// from (the longest base name the rendered one contains: it may carry a prefix or suffix).
    fn of(&mut self, file: &Path, kind: &str, rendered: &str) -> Option<&BTreeMap<String, String>> {
        let objects = self
            .files
            .entry(file.to_path_buf())
            .or_insert_with(|| read_images(file));
        objects
            .iter()
            .filter(|(k, n, _)| k == kind && rendered.contains(n.as_str()))
            .max_by_key(|(_, n, _)| n.len())
            .map(|(_, _, images)| images)
    }
}

/// Each object of a file (kind, name) with its containers' image texts by container name.
fn read_images(file: &Path) -> Vec<ObjectImages> {
    let Some(docs) = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| crate::verify::load_all(&text).ok())
    else {
        return vec![];
    };
    docs.iter()
        .filter_map(|doc| {
            let built = built_pod(doc)?;
            let images = built
                .pod
                .containers
                .into_iter()
                .map(|c| (c.name, c.image))
                .collect::<BTreeMap<_, _>>();
            Some((built.kind, built.name, images))
        })
        .collect()
}
