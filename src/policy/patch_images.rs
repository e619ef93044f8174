//! Image facts for a strategic-merge patch. A patch seldom names the image it runs (the base
//! does, and the kustomization's `images:` may replace it), so the images come from what the
//! build ships ([`ShippedPod`], handed in by the caller). The pod's ids are those the base
//! gets: the first non-root image among the base's containers, unless ids are given or the
//! built pod sets its own; they are what the patch writes where it corrects an id or replaces
//! a context. A container the patch adds is its own: its image's user (when another than the
//! pod's), its root user or its low ports are planned and said here, at its line.

use std::sync::Arc;

use yaml_splice::{EngineError, Ref, Tree};

use super::images::{image_ids, low_ports, summary, ImageFacts, ImageUser, Unread};
use super::{guardrails, Baseline, Control, Note, NoteKind, Rules};

/// What a build ships in a patched object's pod, as far as image facts go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShippedPod {
    /// Each container the build runs, app containers first.
    pub containers: Vec<ShippedContainer>,
    /// The built pod's securityContext sets a non-zero id: those ids stand, the images' not.
    pub sets_ids: bool,
}

/// One container as the build ships it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShippedContainer {
    pub name: String,
    pub image: String,
}

/// The images a build ships for the object a patch document names (its document, kind and
/// name); None when there is no build to tell.
pub type ShippedImages<'a> = &'a dyn Fn(usize, &str, &str) -> Option<ShippedPod>;

/// What the images change in the plan of one patched pod.
pub(super) struct PatchImages {
    /// The pod's baseline: the rules', or with the ids of the base's first non-root image.
    pub baseline: Baseline,
    /// Containers the patch adds whose image runs as another non-root user: their own ids.
    pub container_ids: Vec<(String, i64, i64)>,
    pub notes: Vec<Note>,
    pub errors: Vec<EngineError>,
    /// The image the pod's ids come from, and its facts.
    pub ids_from: Option<(String, Arc<ImageFacts>)>,
}

/// The patched pod's images: the pod's ids, and the facts of the containers the patch adds
/// (`added`: the patch's containers that the base does not have).
pub(super) fn plan(
    tree: &Tree,
    added: &[(Ref, String)],
    base_containers: Option<&[String]>,
    shipped: Option<&ShippedPod>,
    rules: &Rules,
    workload: usize,
) -> PatchImages {
    let mut out = PatchImages {
        baseline: rules.baseline.clone(),
        container_ids: vec![],
        notes: vec![],
        errors: vec![],
        ids_from: None,
    };
    let Some(shipped) = shipped.filter(|_| rules.images.is_on()) else {
        return out;
    };
    let ids_free =
        !rules.ids_given && !shipped.sets_ids && !rules.disabled.contains(&Control::RunAsUser);
    if ids_free {
        out.ids_from = shipped
            .containers
            .iter()
            .filter(|c| base_containers.is_none_or(|names| names.contains(&c.name)))
            .find_map(|c| match rules.images.facts(&c.image) {
                Some(Ok(facts)) if image_ids(&facts).is_some() => Some((c.image.clone(), facts)),
                _ => None,
            });
    }
    if let Some((_, facts)) = &out.ids_from {
        let (uid, gid) = image_ids(facts).expect("chosen by its ids");
        out.baseline.uid = uid;
        out.baseline.gid = gid;
        out.baseline.fs_group = gid;
    }
    for (c, name) in added {
        let image = shipped
            .containers
            .iter()
            .find(|s| s.name == *name)
            .map(|s| s.image.clone())
            .or_else(|| {
                tree.get(*c, "image")
                    .and_then(|i| tree.as_str(i))
                    .map(str::to_string)
            });
        if let Some(image) = image {
            added_container(
                tree,
                *c,
                name,
                &image,
                shipped.sets_ids,
                rules,
                workload,
                &mut out,
            );
        }
    }
    out
}

/// The facts of a container the patch adds: its own ids, or a note.
#[allow(clippy::too_many_arguments)]
fn added_container(
    tree: &Tree,
    c: Ref,
    name: &str,
    image: &str,
    pod_sets_ids: bool,
    rules: &Rules,
    workload: usize,
    out: &mut PatchImages,
) {
    let line = tree.position(c).0;
    let note = |kind: NoteKind, message: String| Note {
        workload,
        container: Some(name.to_string()),
        kind,
        message,
        line,
    };
    let facts = match rules.images.facts(image) {
        Some(Ok(facts)) => facts,
        Some(Err(why)) if rules.images.required => {
            return out.errors.push(EngineError::new(
                line,
                tree.position(c).1,
                format!("image `{image}` cannot be read (--images always): {why}"),
            ));
        }
        Some(Err(Unread::Failed(why))) => {
            return out.notes.push(note(
                NoteKind::Image,
                format!("image facts: `{image}` cannot be read ({why}): planned without them"),
            ));
        }
        _ => return,
    };
    let (uid, gid) = (out.baseline.uid, out.baseline.gid);
    match &facts.user {
        ImageUser::Ids { uid: u, gid: g } if (*u, *g) != (uid, gid) && !rules.ids_given => {
            out.container_ids.push((name.to_string(), *u, *g));
            out.notes.push(note(
                NoteKind::Image,
                format!(
                    "image facts: {} (`{image}`): the container this patch adds runs as {u}:{g}, not as the pod's {uid}:{gid}",
                    summary(&facts)
                ),
            ));
        }
        ImageUser::Ids { .. } => {}
        ImageUser::Root if !pod_sets_ids => out.notes.push(note(
            NoteKind::Risk,
            format!(
                "image facts: {} (`{image}`): the container this patch adds will run as {uid}, and files owned by root may not be readable or writable by {uid}",
                summary(&facts)
            ),
        )),
        ImageUser::Unresolved { why } if !pod_sets_ids => out.notes.push(note(
            NoteKind::Risk,
            format!(
                "image facts: `{image}` has USER `{}`, which {why}: it will run as {uid}, which may not own its files",
                facts.user_text
            ),
        )),
        _ => {}
    }
    let own_command = tree.get(c, "command").is_some() || tree.get(c, "args").is_some();
    let declared = declared_ports(tree, c);
    for (port, evidence) in low_ports(&facts, own_command) {
        if declared.contains(&port) {
            continue;
        }
        out.notes.push(note(
            NoteKind::Risk,
            format!(
                "image facts: `{image}` {evidence}: {}",
                guardrails::low_port_message(port)
            ),
        ));
    }
}

/// The `containerPort`s the container declares (their low-port note is the manifest's).
pub(super) fn declared_ports(tree: &Tree, c: Ref) -> Vec<i64> {
    tree.get(c, "ports")
        .map(|p| tree.items(p))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| tree.get(p, "containerPort"))
        .filter_map(|n| match tree.scalar(n) {
            Some(yaml_splice::Scalar::Int(n)) => Some(n),
            _ => None,
        })
        .collect()
}

/// The note on the ids a patch writes from the base's image.
pub(super) fn ids_note(
    images: &PatchImages,
    tree: &Tree,
    pod: Ref,
    workload: usize,
) -> Option<Note> {
    let (image, facts) = images.ids_from.as_ref()?;
    let b = &images.baseline;
    Some(Note {
        workload,
        container: None,
        kind: NoteKind::Image,
        message: format!(
            "image facts: {} (`{image}`, what the build ships): where this patch sets them, runAsUser {}, runAsGroup {}, fsGroup {}, the image's own user, as its base gets",
            summary(facts),
            b.uid,
            b.gid,
            b.fs_group
        ),
        line: tree.position(pod).0,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use yaml_splice::Tree;

    use super::super::images::{ImageFacts, ImageLookup, ImageUser};
    use super::super::{plan_patch_with_images, NoteKind, Rules};
    use super::{ShippedContainer, ShippedPod};

    fn facts(user: ImageUser) -> ImageFacts {
        ImageFacts::of_user(user, "")
    }

    /// `app:1` runs as 101, `side:1` as 202, `root:1` as root and exposes port 80.
    fn rules() -> Rules {
        let find = |image: &str| -> super::super::images::Looked {
            let mut f = match image {
                "app:1" => facts(ImageUser::Ids { uid: 101, gid: 101 }),
                "side:1" => facts(ImageUser::Ids { uid: 202, gid: 202 }),
                _ => facts(ImageUser::Root),
            };
            if image == "root:1" {
                f.ports = vec!["80/tcp".into()];
            }
            Ok(Arc::new(f))
        };
        Rules {
            images: ImageLookup::new(Arc::new(find)),
            ..Rules::default()
        }
    }

    /// A patch of Deployment `web` that sets the pod's `runAsUser: 0` and adds container
    /// `side` (whose text names no image: the build says which).
    const PATCH: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      securityContext:\n        runAsUser: 0\n      containers:\n        - name: side\n";

    fn shipped(side: &str, sets_ids: bool) -> ShippedPod {
        let c = |name: &str, image: &str| ShippedContainer {
            name: name.into(),
            image: image.into(),
        };
        ShippedPod {
            containers: vec![c("side", side), c("web", "app:1")],
            sets_ids,
        }
    }

    fn planned(rules: &Rules, pod: Option<ShippedPod>) -> (String, Vec<(NoteKind, String)>) {
        let tree = Tree::parse(PATCH).unwrap();
        let base = |_: usize, _: &str, _: &str| Some(vec!["web".to_string()]);
        let ships = |_: usize, _: &str, _: &str| pod.clone();
        let plan = plan_patch_with_images(&tree, rules, &base, &ships);
        let notes = plan
            .notes
            .into_iter()
            .map(|n| (n.kind, n.message))
            .collect();
        (format!("{:?}", plan.changes), notes)
    }

    #[test]
    fn a_patch_writes_the_base_image_s_ids_and_an_added_container_gets_its_own() {
        let (changes, notes) = planned(&rules(), Some(shipped("side:1", false)));
        // The pod's root becomes the base image's 101, not 1000; `side` runs as 202.
        assert!(changes.contains("Int(101)"), "{changes}");
        assert!(changes.contains("Int(202)"), "{changes}");
        assert!(!changes.contains("Int(1000)"), "{changes}");
        let messages: Vec<&str> = notes.iter().map(|(_, m)| m.as_str()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("where this patch sets them, runAsUser 101")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("runs as 202:202, not as the pod's 101:101")),
            "{messages:?}"
        );
    }

    #[test]
    fn a_root_container_added_gets_risk_notes_and_given_ids_win() {
        let (changes, notes) = planned(&rules(), Some(shipped("root:1", false)));
        assert!(changes.contains("Int(101)"), "{changes}");
        let risks: Vec<&str> = notes
            .iter()
            .filter(|(k, _)| *k == NoteKind::Risk)
            .map(|(_, m)| m.as_str())
            .collect();
        assert!(
            risks
                .iter()
                .any(|m| m.contains("will run as 101, and files owned by root")),
            "{risks:?}"
        );
        assert!(
            risks.iter().any(|m| m.contains("exposes 80/tcp")),
            "{risks:?}"
        );
        // Ids given on the command line win over every image.
        let given = Rules {
            ids_given: true,
            ..rules()
        };
        let (changes, _) = planned(&given, Some(shipped("side:1", false)));
        assert!(
            changes.contains("Int(1000)")
                && !changes.contains("Int(101)")
                && !changes.contains("Int(202)"),
            "{changes}"
        );
    }

    #[test]
    fn without_a_build_or_with_the_pod_s_own_ids_the_baseline_stands() {
        let (changes, notes) = planned(&rules(), None);
        assert!(
            changes.contains("Int(1000)") && !changes.contains("Int(101)"),
            "{changes}"
        );
        assert!(
            notes.iter().all(|(k, _)| *k != NoteKind::Image),
            "{notes:?}"
        );
        // The built pod sets its own ids: they stand, so the patch's 0 becomes the baseline's.
        let (changes, _) = planned(&rules(), Some(shipped("side:1", true)));
        assert!(
            changes.contains("Int(1000)") && !changes.contains("Int(101)"),
            "{changes}"
        );
    }
}
