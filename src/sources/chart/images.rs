//! The images a chart runs (`--images`): the chart rendered once with its values.yaml before
//! the edits, each rendered pod's image facts read ([`crate::helm::images`]), and what they say
//! given to the values paths that feed the pod: the ids of its images (one value feeds every
//! pod of its templates, so they must agree), the notes on the path's line, and with
//! `--images always` an image that cannot be read, which fails the values file.

use std::path::{Path, PathBuf};

use crate::helm::engine::{is_library, ChartCopy, Engine};
use crate::helm::images::RenderedImages;
use crate::policy::{Control, Level, Rules};
use crate::report::RenderMode;

use super::{ChartWiring, Settings};

/// The chart rendered with its own values, read for image facts, and that render (the render
/// check's first, which it does not make again); nothing when images are not read, the run
/// renders nothing, or the chart does not render (the render check says why).
pub fn read(chart: &Path, settings: &Settings) -> (RenderedImages, Option<String>) {
    let off = !settings.rules.images.is_on()
        || settings.render.mode == RenderMode::Never
        || is_library(chart);
    if off {
        return (RenderedImages::default(), None);
    }
    let Some(engine) = Engine::find(&settings.render) else {
        return (RenderedImages::default(), None);
    };
    let Ok(copy) = ChartCopy::of(chart) else {
        return (RenderedImages::default(), None);
    };
    match engine.template(&copy.chart, &[]) {
        Ok(stream) => (RenderedImages::read(&stream, &settings.rules), Some(stream)),
        Err(_) => (RenderedImages::default(), None),
    }
}

/// Gives the wiring of the chart folder at `under` (inside the rendered chart; empty for the
/// chart itself) what the rendered pods' images say.
pub fn apply(wiring: &mut ChartWiring, images: &RenderedImages, under: &Path, rules: &Rules) {
    let ids_free = !rules.ids_given && !rules.disabled.contains(&Control::RunAsUser);
    for target in &mut wiring.targets {
        if ids_free && (target.level == Level::Pod || target.holds_pod_ids) {
            target.image_ids = images.ids_for(under, &templates_of(&target.used_at));
        }
    }
    for pod in &images.pods {
        let feeds = |t: &&super::Target| {
            t.used_at
                .iter()
                .any(|(tpl, _)| under.join(tpl) == pod.template)
        };
        let feeding: Vec<&super::Target> = wiring.targets.iter().filter(feeds).collect();
        let Some(target) = feeding
            .iter()
            .find(|t| t.level == Level::Pod)
            .or_else(|| feeding.first())
        else {
            // No values path feeds it: its template is a gap, and the notes go there.
            if let Ok(template) = pod.template.strip_prefix(under) {
                let notes = pod
                    .notes
                    .iter()
                    .map(|n| (template.to_path_buf(), n.clone()));
                wiring.template_image_notes.extend(notes);
            }
            continue;
        };
        let path = target.path.clone();
        wiring
            .image_notes
            .extend(pod.notes.iter().map(|n| (path.clone(), n.clone())));
        wiring.image_errors.extend(pod.errors.iter().cloned());
    }
}

fn templates_of(used_at: &[(PathBuf, usize)]) -> Vec<PathBuf> {
    let mut templates: Vec<PathBuf> = used_at.iter().map(|(t, _)| t.clone()).collect();
    templates.dedup();
    templates
}
