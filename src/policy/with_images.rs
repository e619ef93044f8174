//! Planning one pod with its images' facts (see [`super::images`]): the ids a non-root image
//! user gives the pod (or a container), the notes a root or unresolved user gets, the image
//! volumes that need a writable mount, the low ports an image declares, and the image that
//! cannot be read (a note, or with `--images always` an error at its `image:` line).

use std::sync::Arc;

use yaml_splice::{EngineError, Ref, Tree};

use super::images::{image_ids, low_ports, summary, volume_paths, ImageFacts, ImageUser, Unread};
use super::{guardrails, walk, Baseline, Control, Note, NoteKind, Rules};

/// What the images of one pod change in its plan.
pub(super) struct ImagePlan {
    /// The pod's baseline: the rules', or with the ids of the first non-root image.
    pub baseline: Baseline,
    /// Containers whose image runs as another non-root user than the pod: their own ids.
    pub container_ids: Vec<(String, i64, i64)>,
    /// The ids the images gave the pod, with the image and its facts' summary.
    pub chosen: Option<super::ChosenIds>,
    /// The notes of the ids the images give (the pod's, a container's own): true only where
    /// the edit is made in the pod itself.
    pub id_notes: Vec<Note>,
    /// The other notes (a root or unresolved user, low ports, an image that cannot be read):
    /// true wherever the pod's securityContext is written.
    pub notes: Vec<Note>,
    pub errors: Vec<EngineError>,
    /// Each container's image facts, for the volumes (read after the containers are planned).
    facts: Vec<(Ref, String, String, Arc<ImageFacts>)>,
}

/// Reads the facts of each container's image and decides the pod's ids from them.
pub(super) fn plan_images(
    tree: &Tree,
    pod: Ref,
    containers: &[(Ref, String)],
    rules: &Rules,
    workload: usize,
) -> ImagePlan {
    let mut plan = ImagePlan {
        baseline: rules.baseline.clone(),
        container_ids: vec![],
        chosen: None,
        id_notes: vec![],
        notes: vec![],
        errors: vec![],
        facts: vec![],
    };
    if !rules.images.is_on() {
        return plan;
    }
    read_facts(tree, pod, containers, rules, workload, &mut plan);
    let ids_free = !rules.ids_given
        && !pod_sets_ids(tree, pod)
        && !rules.disabled.contains(&Control::RunAsUser);
    if ids_free {
        choose_ids(tree, workload, &mut plan);
    }
    if !pod_sets_ids(tree, pod) {
        root_user_notes(tree, workload, &mut plan);
    }
    other_user_notes(tree, pod, workload, &mut plan);
    low_port_notes(tree, workload, &mut plan);
    plan
}

/// The uid a context sets explicitly (`runAsUser: N`).
fn explicit_uid(tree: &Tree, holder: Ref) -> Option<i64> {
    match walk(tree, holder, &["securityContext", "runAsUser"]).and_then(|v| tree.scalar(v)) {
        Some(yaml_splice::Scalar::Int(uid)) => Some(uid),
        _ => None,
    }
}

/// A container run as another non-root uid than its image's user, by ids the manifest sets
/// (the container's own, else the pod's): the files the image gives its user may not be
/// readable or writable by the uid it runs as.
fn other_user_notes(tree: &Tree, pod: Ref, workload: usize, plan: &mut ImagePlan) {
    let pod_uid = explicit_uid(tree, pod);
    for (c, name, image, facts) in &plan.facts {
        let (Some((own, _)), Some(runs_as)) =
            (image_ids(facts), explicit_uid(tree, *c).or(pod_uid))
        else {
            continue;
        };
        if runs_as == own || runs_as == 0 {
            continue;
        }
        plan.notes.push(Note {
            workload,
            container: Some(name.clone()),
            kind: NoteKind::Risk,
            message: format!(
                "image facts: {} (`{image}`): it runs as uid {runs_as}, which its securityContext sets, not as its image's user {own}: files the image gives {own} may not be readable or writable by {runs_as}",
                summary(facts)
            ),
            line: tree.position(*c).0,
        });
    }
}

/// Looks up every container's image, app containers first (their facts decide the pod's ids).
fn read_facts(
    tree: &Tree,
    pod: Ref,
    containers: &[(Ref, String)],
    rules: &Rules,
    workload: usize,
    plan: &mut ImagePlan,
) {
    let app: Vec<Ref> = tree
        .get(pod, "containers")
        .map(|l| tree.items(l))
        .unwrap_or_default();
    let mut ordered: Vec<&(Ref, String)> = containers.iter().collect();
    ordered.sort_by_key(|(c, _)| !app.contains(c));
    for (c, name) in ordered {
        let Some(node) = tree.get(*c, "image") else {
            continue;
        };
        let Some(image) = tree.as_str(node) else {
            continue;
        };
        match rules.images.facts(image) {
            Some(Ok(facts)) => plan
                .facts
                .push((*c, name.clone(), image.to_string(), facts)),
            Some(Err(why)) if rules.images.required => {
                let (line, col) = tree.position(node);
                plan.errors.push(EngineError::new(
                    line,
                    col,
                    format!("image `{image}` cannot be read (--images always): {why}"),
                ));
            }
            // Told once for the run (the registry's name and why), not per container.
            Some(Err(Unread::Unreachable(_))) => {}
            Some(Err(Unread::Failed(why))) => plan.notes.push(Note {
                workload,
                container: Some(name.clone()),
                kind: NoteKind::Image,
                message: format!(
                    "image facts: `{image}` cannot be read ({why}): planned without them"
                ),
                line: tree.position(node).0,
            }),
            None => {}
        }
    }
}

/// Whether the pod's securityContext already sets a non-zero runAsUser, runAsGroup or
/// fsGroup: then the manifest's ids stand and the image's are not used.
fn pod_sets_ids(tree: &Tree, pod: Ref) -> bool {
    ["runAsUser", "runAsGroup", "fsGroup"].iter().any(|key| {
        walk(tree, pod, &["securityContext", key])
            .and_then(|v| tree.scalar(v))
            .is_some_and(|v| !matches!(v, yaml_splice::Scalar::Int(0)))
    })
}

/// The first non-root image gives the pod's runAsUser/runAsGroup/fsGroup; a container whose
/// image runs as another non-root user gets its own runAsUser/runAsGroup, because the files
/// of each image belong to its own user.
fn choose_ids(tree: &Tree, workload: usize, plan: &mut ImagePlan) {
    let Some((c, name, image, facts)) = plan
        .facts
        .iter()
        .find(|(_, _, _, f)| image_ids(f).is_some())
        .cloned()
    else {
        return;
    };
    let (uid, gid) = image_ids(&facts).expect("found by its ids");
    let before = plan.baseline.uid;
    plan.baseline.uid = uid;
    plan.baseline.gid = gid;
    plan.baseline.fs_group = gid;
    plan.chosen = Some(super::ChosenIds {
        workload,
        uid,
        gid,
        image: image.clone(),
        summary: summary(&facts),
    });
    plan.id_notes.push(Note {
        workload,
        container: Some(name),
        kind: NoteKind::Image,
        message: format!(
            "image facts: {} (`{image}`): runAsUser {uid}, runAsGroup {gid}, fsGroup {gid}{}, the image's own user, so the app's files stay its own",
            summary(&facts),
            if before == uid { String::new() } else { format!(" instead of {before}") }
        ),
        line: tree.position(c).0,
    });
    for (c, name, image, facts) in &plan.facts {
        let Some((u, g)) = image_ids(facts).filter(|ids| *ids != (uid, gid)) else {
            continue;
        };
        plan.container_ids.push((name.clone(), u, g));
        plan.id_notes.push(Note {
            workload,
            container: Some(name.clone()),
            kind: NoteKind::Image,
            message: format!(
                "image facts: {} (`{image}`): the container runs as {u}:{g}, not as the pod's {uid}:{gid}",
                summary(facts)
            ),
            line: tree.position(*c).0,
        });
    }
}

/// A root image (or one whose named user does not resolve) runs as the baseline's uid: the
/// files root owns may not be readable or writable by it.
fn root_user_notes(tree: &Tree, workload: usize, plan: &mut ImagePlan) {
    let uid = plan.baseline.uid;
    for (c, name, image, facts) in &plan.facts {
        let message = match &facts.user {
            ImageUser::Root => {
                let paths = if facts.root_only_paths.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; root-only in its top layers: {}",
                        facts.root_only_paths.join(", ")
                    )
                };
                format!(
                    "image facts: {} (`{image}`): it will run as {uid}, and files owned by root may not be readable or writable by {uid}{paths}",
                    summary(facts)
                )
            }
            ImageUser::Unresolved { why } => format!(
                "image facts: `{image}` has USER `{}`, which {why}: it will run as {uid}, which may not own its files",
                facts.user_text
            ),
            ImageUser::Ids { .. } => continue,
        };
        plan.notes.push(Note {
            workload,
            container: Some(name.clone()),
            kind: NoteKind::Risk,
            message,
            line: tree.position(*c).0,
        });
    }
}

/// Ports below 1024 the image exposes or its command line names, unless the container's own
/// `ports` already say so (that note is the manifest's).
fn low_port_notes(tree: &Tree, workload: usize, plan: &mut ImagePlan) {
    for (c, name, image, facts) in &plan.facts {
        let declared = super::patch_images::declared_ports(tree, *c);
        let own_command = tree.get(*c, "command").is_some() || tree.get(*c, "args").is_some();
        for (port, evidence) in low_ports(facts, own_command) {
            if declared.contains(&port) {
                continue;
            }
            plan.notes.push(Note {
                workload,
                container: Some(name.clone()),
                kind: NoteKind::Risk,
                message: format!(
                    "image facts: `{image}` {evidence}: {}",
                    guardrails::low_port_message(port)
                ),
                line: tree.position(*c).0,
            });
        }
    }
}

/// The image volumes the containers in `read_only` (about to get a read-only root filesystem)
/// do not mount: each becomes an emptyDir mount, or a risk note where the lookup says so.
pub(super) fn image_volumes(
    tree: &Tree,
    plan: &ImagePlan,
    read_only: &[(Ref, String)],
    as_notes: bool,
    workload: usize,
) -> (Vec<guardrails::ImageVolume>, Vec<Note>) {
    let mut volumes = Vec::new();
    let mut notes = Vec::new();
    for (c, name, image, facts) in &plan.facts {
        if !read_only.iter().any(|(r, _)| r == c) {
            continue;
        }
        for path in volume_paths(facts, &mounted_paths(tree, *c)) {
            if as_notes {
                notes.push(Note {
                    workload,
                    container: Some(name.clone()),
                    kind: NoteKind::Risk,
                    message: format!("image facts: `{image}` declares VOLUME {path}, which is not mounted: with a read-only root filesystem it is read-only on runtimes that do not mount image volumes (CRI-O); mount an emptyDir there"),
                    line: tree.position(*c).0,
                });
            } else {
                volumes.push(guardrails::ImageVolume {
                    container: *c,
                    name: name.clone(),
                    path,
                    image: image.clone(),
                });
            }
        }
    }
    (volumes, notes)
}

fn mounted_paths(tree: &Tree, container: Ref) -> Vec<String> {
    tree.get(container, "volumeMounts")
        .map(|m| tree.items(m))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| tree.get(m, "mountPath").and_then(|p| tree.as_str(p)))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use yaml_splice::Tree;

    use super::super::images::{ImageFacts, ImageLookup, ImageUser, Unread};
    use super::super::{plan, NoteKind, Rules};

    fn facts(user: ImageUser, user_text: &str) -> ImageFacts {
        ImageFacts::of_user(user, user_text)
    }

    /// Rules whose lookup knows `app:1` (USER 101), `root:1` (root, VOLUME /data, port 80),
    /// and says `down:1`'s registry cannot be reached and `gone:1` does not exist.
    fn rules() -> Rules {
        let find = |image: &str| -> super::super::images::Looked {
            match image {
                "app:1" => Ok(Arc::new(facts(
                    ImageUser::Ids { uid: 101, gid: 101 },
                    "101",
                ))),
                "root:1" => {
                    let mut f = facts(ImageUser::Root, "");
                    f.volumes = vec!["/data".into()];
                    f.ports = vec!["80/tcp".into()];
                    f.root_only_paths = vec!["/etc/app (0700)".into()];
                    Ok(Arc::new(f))
                }
                "down:1" => Err(Unread::Unreachable("connection refused".into())),
                _ => Err(Unread::Failed("not found".into())),
            }
        };
        Rules {
            images: ImageLookup::new(Arc::new(find)),
            ..Rules::default()
        }
    }

    fn pod(images: &[&str]) -> String {
        let mut text =
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n".to_string();
        for (i, image) in images.iter().enumerate() {
            text.push_str(&format!("    - name: c{i}\n      image: {image}\n"));
        }
        text
    }

    fn pod_ids(text: &str, rules: &Rules) -> String {
        let tree = Tree::parse(text).unwrap();
        let planned = plan(&tree, rules);
        format!("{:?}", planned.changes)
    }

    #[test]
    fn a_non_root_image_user_gives_the_pod_ids_unless_ids_are_given() {
        let text = pod(&["app:1"]);
        let tree = Tree::parse(&text).unwrap();
        let planned = plan(&tree, &rules());
        let changes = format!("{:?}", planned.changes);
        assert!(
            changes.contains("Int(101)") && !changes.contains("Int(1000)"),
            "{changes}"
        );
        assert!(planned
            .notes
            .iter()
            .any(|n| n.kind == NoteKind::Image && n.message.starts_with("image facts: user 101")));
        let given = Rules {
            ids_given: true,
            ..rules()
        };
        let changes = pod_ids(&text, &given);
        assert!(
            changes.contains("Int(1000)") && !changes.contains("Int(101)"),
            "{changes}"
        );
    }

    #[test]
    fn a_root_image_keeps_the_baseline_with_risks_and_its_volume_gets_an_empty_dir() {
        let text = pod(&["root:1"]);
        let tree = Tree::parse(&text).unwrap();
        let planned = plan(&tree, &rules());
        let risks: Vec<&str> = planned
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Risk)
            .map(|n| n.message.as_str())
            .collect();
        assert!(
            risks.iter().any(|m| m.contains("/etc/app (0700)")),
            "{risks:?}"
        );
        assert!(
            risks.iter().any(|m| m.contains("exposes 80/tcp")),
            "{risks:?}"
        );
        let changes = format!("{:?}", planned.changes);
        assert!(
            changes.contains("\"/data\"") && changes.contains("Int(1000)"),
            "{changes}"
        );
        // As a note instead, where the lookup says so.
        let mut as_notes = rules();
        as_notes.images.volumes_as_notes = true;
        let planned = plan(&tree, &as_notes);
        assert!(!format!("{:?}", planned.changes).contains("\"/data\""));
        assert!(planned
            .notes
            .iter()
            .any(|n| n.message.contains("declares VOLUME /data")));
    }

    #[test]
    fn unreadable_images_are_notes_or_with_always_errors_and_unreachable_ones_are_quiet() {
        let text = pod(&["gone:1", "down:1"]);
        let tree = Tree::parse(&text).unwrap();
        let planned = plan(&tree, &rules());
        let image_notes: Vec<&str> = planned
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Image)
            .map(|n| n.message.as_str())
            .collect();
        assert_eq!(
            image_notes,
            ["image facts: `gone:1` cannot be read (not found): planned without them"]
        );
        assert!(planned.refusals.is_empty());
        let mut always = rules();
        always.images.required = true;
        let planned = plan(&tree, &always);
        assert_eq!(planned.refusals.len(), 2, "{:?}", planned.refusals);
    }

    #[test]
    fn without_a_lookup_nothing_changes() {
        let text = pod(&["app:1"]);
        assert_eq!(
            pod_ids(&text, &Rules::default()),
            pod_ids(
                &text,
                &Rules {
                    images: ImageLookup::default(),
                    ..Rules::default()
                }
            )
        );
        assert!(pod_ids(&text, &Rules::default()).contains("Int(1000)"));
    }
}
