//! The image facts of the pods a chart renders, by the template that wrote each: for the
//! sources that harden a chart through its values (chart folders, GitOps releases), where the
//! images a pod runs are rendered values that no file being edited names. Each rendered
//! document is planned by the policy with the run's image lookup, as a manifest would be, and
//! what its images say is kept: the ids they give the pod (the values then set those ids
//! instead of the baseline's), and the notes that hold wherever the pod's securityContext is
//! written (a root or unresolved user, low ports, volumes, an image that cannot be read).

use std::path::{Path, PathBuf};

use yaml_splice::Tree;

use crate::policy::{self, Note, Rules};

use super::engine::split_documents;

/// What the images of one rendered pod say.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedPodImages {
    /// The template that wrote it, relative to the chart (`templates/deployment.yaml`,
    /// `charts/db/templates/statefulset.yaml` for a subchart's).
    pub template: PathBuf,
    /// `Deployment/release-web`.
    pub object: String,
    /// The ids its images give it; None when it sets its own or no image runs as non-root.
    pub ids: Option<policy::ChosenIds>,
    /// The notes of its images beside their ids, each naming the rendered object.
    pub notes: Vec<Note>,
    /// The images `--images always` cannot read.
    pub errors: Vec<String>,
}

/// The image facts of a rendered chart, pod by pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderedImages {
    pub pods: Vec<RenderedPodImages>,
}

impl RenderedImages {
    /// Plans each document of a `helm template` stream with `rules` (their image lookup on)
    /// and keeps what the images say. Without a lookup there is nothing to say.
    pub fn read(stream: &str, rules: &Rules) -> RenderedImages {
        let mut pods = Vec::new();
        if !rules.images.is_on() {
            return RenderedImages { pods };
        }
        // Values cannot add an arbitrary mount: an image volume is a note, never an emptyDir.
        let mut rules = rules.clone();
        rules.images.volumes_as_notes = true;
        for document in split_documents(stream) {
            let Some(template) = source_of(&document) else {
                continue;
            };
            let Ok(tree) = Tree::parse(&document) else {
                continue;
            };
            pods.extend(pods_of(&tree, &template, &rules));
        }
        RenderedImages { pods }
    }

    /// The pods written by one of `templates` (relative to the chart at `under`, the folder
    /// of a vendored subchart inside the chart that was rendered, or empty).
    pub fn of_templates<'a>(
        &'a self,
        under: &'a Path,
        templates: &'a [PathBuf],
    ) -> impl Iterator<Item = &'a RenderedPodImages> + 'a {
        self.pods
            .iter()
            .filter(move |p| templates.iter().any(|t| under.join(t) == p.template))
    }

    /// The images `--images always` cannot read, in every rendered pod.
    pub fn errors(&self) -> Vec<String> {
        self.pods.iter().flat_map(|p| p.errors.clone()).collect()
    }

    /// The ids the images give every pod of `templates`, when they all give the same ones
    /// (a values path feeds each of those pods: one value, one uid).
    pub fn ids_for(&self, under: &Path, templates: &[PathBuf]) -> Option<policy::ChosenIds> {
        let mut pods = self.of_templates(under, templates).peekable();
        pods.peek()?;
        let mut chosen: Option<policy::ChosenIds> = None;
        for pod in pods {
            let ids = pod.ids.as_ref()?;
            match &chosen {
                Some(c) if (c.uid, c.gid) != (ids.uid, ids.gid) => return None,
                Some(_) => {}
                None => chosen = Some(ids.clone()),
            }
        }
        chosen
    }
}

/// The template a rendered document came from, by its `# Source: <chart>/templates/x.yaml`
/// line, relative to the chart.
fn source_of(document: &str) -> Option<PathBuf> {
    let source = document
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("# Source: "))?
        .trim();
    source.split_once('/').map(|(_, rest)| PathBuf::from(rest))
}

fn pods_of(tree: &Tree, template: &Path, rules: &Rules) -> Vec<RenderedPodImages> {
    let plan = policy::plan(tree, rules);
    plan.workloads
        .iter()
        .enumerate()
        .map(|(index, workload)| {
            let object = format!("{}/{}", workload.kind, workload.name);
            let notes = plan
                .image_notes
                .iter()
                .filter(|n| n.workload == index)
                .map(|n| Note {
                    message: format!("rendered {object}: {}", n.message),
                    ..n.clone()
                })
                .collect();
            let errors = plan
                .refusals
                .iter()
                .filter(|e| e.message.contains("(--images always)"))
                .filter(|e| workload_at(&plan, e.line) == Some(index))
                .map(|e| format!("rendered {object}: {}", e.message))
                .collect();
            RenderedPodImages {
                template: template.to_path_buf(),
                object,
                ids: plan.image_ids.iter().find(|c| c.workload == index).cloned(),
                notes,
                errors,
            }
        })
        .collect()
}

/// The workload a line of the document belongs to: the last one that starts at or above it.
fn workload_at(plan: &policy::Plan, line: usize) -> Option<usize> {
    plan.workloads.iter().rposition(|w| w.line <= line)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::images::Unread;
    use crate::policy::{ImageFacts, ImageLookup, ImageUser};

    fn facts(user: ImageUser, user_text: &str) -> ImageFacts {
        ImageFacts {
            volumes: vec!["/data".into()],
            ..ImageFacts::of_user(user, user_text)
        }
    }

    fn rules(required: bool) -> Rules {
        let mut images = ImageLookup::new(Arc::new(|image: &str| match image {
            "app:1" => Ok(Arc::new(facts(
                ImageUser::Ids { uid: 101, gid: 102 },
                "101:102",
            ))),
            "root:1" => Ok(Arc::new(facts(ImageUser::Root, ""))),
            _ => Err(Unread::Failed("not found".into())),
        }));
        images.required = required;
        Rules {
            images,
            ..Rules::default()
        }
    }

    fn pod(source: &str, name: &str, image: &str) -> String {
        format!("---\n# Source: web/{source}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}\n")
    }

    #[test]
    fn each_rendered_pod_is_traced_to_its_template_with_its_images_ids_and_notes() {
        let stream = pod("templates/web.yaml", "web", "app:1")
            + &pod("templates/worker.yaml", "worker", "root:1")
            + &pod("charts/db/templates/db.yaml", "db", "app:1");
        let read = RenderedImages::read(&stream, &rules(false));
        let web = [PathBuf::from("templates/web.yaml")];
        let ids = read
            .ids_for(Path::new(""), &web)
            .expect("the app image's ids");
        assert_eq!((ids.uid, ids.gid, ids.image.as_str()), (101, 102, "app:1"));
        let db = [PathBuf::from("templates/db.yaml")];
        assert_eq!(
            read.ids_for(Path::new("charts/db"), &db).map(|c| c.uid),
            Some(101)
        );
        let worker = [PathBuf::from("templates/worker.yaml")];
        assert_eq!(read.ids_for(Path::new(""), &worker), None);
        let notes: Vec<&str> = read
            .of_templates(Path::new(""), &worker)
            .flat_map(|p| p.notes.iter().map(|n| n.message.as_str()))
            .collect();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("rendered Deployment/worker: image facts: user root")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("VOLUME /data")),
            "{notes:?}"
        );
        // Two templates whose pods disagree give no single value.
        let both = [web[0].clone(), worker[0].clone()];
        assert_eq!(read.ids_for(Path::new(""), &both), None);
    }

    #[test]
    fn an_unreadable_image_is_a_note_or_with_always_an_error_and_no_lookup_reads_nothing() {
        let stream = pod("templates/web.yaml", "web", "gone:1");
        let noted = RenderedImages::read(&stream, &rules(false));
        assert!(noted.pods[0].errors.is_empty());
        assert!(noted.pods[0].notes[0]
            .message
            .contains("`gone:1` cannot be read (not found)"));
        let failed = RenderedImages::read(&stream, &rules(true));
        assert_eq!(failed.pods[0].errors.len(), 1, "{failed:?}");
        assert!(failed.pods[0].errors[0].starts_with("rendered Deployment/web: image `gone:1`"));
        assert_eq!(
            RenderedImages::read(&stream, &Rules::default()),
            RenderedImages::default()
        );
    }
}
