//! The images a release runs (`--images`): its chart rendered with the effective values before
//! the edits, under the name it is installed under, each rendered pod's image facts read
//! ([`crate::helm::images`]), and what they say given to the wired values paths that feed the
//! pod: the ids of its images (the release's values then set those instead of the
//! baseline's) and the notes, each on the path's workload.

use std::path::Path;

use serde_json::Value;

use crate::helm::engine::Engine;
use crate::helm::images::RenderedImages;
use crate::policy::{self, Control, Level, Note, NoteKind, Rules};
use crate::report::{RenderMode, Settings};

use super::values::Wired;

/// The chart rendered with `effective`, read for image facts; nothing when images are not read,
/// the run renders nothing, or the chart does not render (the render check says why).
pub fn read(
    chart: &Path,
    effective: &Value,
    name: Option<&str>,
    settings: &Settings,
) -> RenderedImages {
    if !settings.rules.images.is_on() || settings.render.mode == RenderMode::Never {
        return RenderedImages::default();
    }
    let Some(engine) = Engine::find(&settings.render) else {
        return RenderedImages::default();
    };
    let Ok(dir) = tempfile::tempdir() else {
        return RenderedImages::default();
    };
    let file = dir.path().join("values.yaml");
    let written = serde_json::to_string(effective)
        .ok()
        .and_then(|text| std::fs::write(&file, text).ok());
    if written.is_none() {
        return RenderedImages::default();
    }
    match engine.template_as(chart, &[file], name.unwrap_or("release")) {
        Ok(stream) => RenderedImages::read(&stream, &settings.rules),
        Err(_) => RenderedImages::default(),
    }
}

/// Gives each wired path the ids of the pods it feeds, and returns the notes (their workload
/// is the path's index in `wired`).
pub fn apply(wired: &mut [Wired], images: &RenderedImages, rules: &Rules) -> Vec<Note> {
    let ids_free = !rules.ids_given && !rules.disabled.contains(&Control::RunAsUser);
    let mut notes = Vec::new();
    for (workload, w) in wired.iter_mut().enumerate() {
        if ids_free && (w.level == Level::Pod || w.holds_pod_ids) {
            w.image_ids = images.ids_for(Path::new(""), &w.templates);
        }
        if let Some(ids) = &w.image_ids {
            notes.push(Note {
                workload,
                container: None,
                kind: NoteKind::Image,
                message: policy::images::values_ids_note(ids, rules.baseline.uid, w.level),
                line: 0,
            });
        }
    }
    for pod in &images.pods {
        let feeds = |w: &&Wired| w.templates.contains(&pod.template);
        let feeding: Vec<(usize, &Wired)> =
            wired.iter().enumerate().filter(|(_, w)| feeds(w)).collect();
        // No path feeds it (its securityContext is a post-renderer's or a person's): the
        // notes go on the release's first path.
        let workload = feeding
            .iter()
            .find(|(_, w)| w.level == Level::Pod)
            .or_else(|| feeding.first())
            .map_or(0, |(workload, _)| *workload);
        if wired.is_empty() {
            continue;
        }
        notes.extend(pod.notes.iter().map(|n| Note {
            workload,
            ..n.clone()
        }));
    }
    notes
}
