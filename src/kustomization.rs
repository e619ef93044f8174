//! Kustomize's own conventions that more than one source reads (the Kustomize source builds
//! trees, the GitOps source edits the releases they hold): where an inline patch string sits in
//! a kustomization, and how a generator names what it makes. It knows nothing of hardening.

use yaml_splice::{NodeId, Ref, Tree};

/// The string of the inline patch whose entry (in `patches`, `patchesJson6902` or
/// `patchesStrategicMerge`) is at `line` of a parsed kustomization.
pub fn inline_patch_at(tree: &Tree, line: usize) -> Option<NodeId> {
    let root = tree.docs.first().and_then(|d| d.root).map(Ref::root)?;
    let items = |key: &str| {
        tree.get(root, key)
            .map(|list| tree.items(list))
            .unwrap_or_default()
    };
    for key in ["patches", "patchesJson6902"] {
        for entry in items(key) {
            if tree.position(entry).0 == line {
                let patch = tree.get(entry, "patch")?;
                return tree.as_str(patch).is_some().then_some(patch.id);
            }
        }
    }
    items("patchesStrategicMerge")
        .into_iter()
        .find(|item| tree.position(*item).0 == line && tree.as_str(*item).is_some())
        .map(|item| item.id)
}

/// Whether `name` is `base` with the hash suffix a generator adds (`-` and ten characters): a
/// ConfigMap as built, named for the generator's `name`.
pub fn is_hashed_name(name: &str, base: &str) -> bool {
    name.strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hash| hash.len() == 10 && hash.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_name_carries_ten_characters_after_the_base() {
        assert!(is_hashed_name("web-values-7h2k9m4t5b", "web-values"));
        assert!(!is_hashed_name("web-values", "web-values"));
        assert!(!is_hashed_name("web-values-extra", "web-values"));
        assert!(!is_hashed_name("web-values-7h2k9m4t5", "web-values"));
    }

    #[test]
    fn inline_patches_are_found_by_the_line_of_their_entry() {
        let text = "patches:\n  - path: a.yaml\n  - target: {kind: HelmRelease}\n    patch: |\n      - op: remove\npatchesStrategicMerge:\n  - |\n    kind: X\n";
        let tree = Tree::parse(text).unwrap();
        let at = |line| {
            inline_patch_at(&tree, line).map(|n| tree.as_str(Ref::root(n)).unwrap().to_string())
        };
        assert_eq!(at(2), None);
        assert_eq!(at(3).as_deref(), Some("- op: remove\n"));
        // A block scalar item is where its `|` is.
        // A block scalar is at the first line of its content (as the model records entries).
        assert_eq!(at(8).as_deref(), Some("kind: X\n"));
    }
}
