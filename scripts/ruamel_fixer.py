#!/usr/bin/env python3
"""Reference fixer for benchmarks: the plain ruamel.yaml round-trip approach.

This is what most people would write to add a securityContext baseline: load every
document with ruamel.yaml's round-trip loader, set the fields, dump the file back. It is
here only so scripts/bench.sh can compare kube-harden against it; it is not lossless
(ruamel re-indents, re-wraps and re-quotes) and is not meant to be used on real repos.

Usage: ruamel_fixer.py PATH...   (files or folders; folders are walked)

Needs ruamel.yaml, e.g.:
    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install ruamel.yaml
"""

import os
import sys
import time

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

# Kinds whose pod spec is at spec.template.spec.
TEMPLATE_KINDS = {
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
}
KUSTOMIZATION_NAMES = {"kustomization.yaml", "kustomization.yml"}
UID = GID = FS_GROUP = 1000


# --- discovery -------------------------------------------------------------------------


def in_chart(path, root):
    """True when a folder between the file and `root` (both included) has a Chart.yaml."""
    root = os.path.abspath(root)
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.isfile(os.path.join(folder, "Chart.yaml")):
            return True
        if folder == root or os.path.dirname(folder) == folder:
            return False
        folder = os.path.dirname(folder)


def yaml_files(paths):
    """Yields every .yaml/.yml file under `paths`, with the root it was found from."""
    for root in paths:
        if os.path.isfile(root):
            yield root, os.path.dirname(os.path.abspath(root))
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".yaml", ".yml")):
                    yield os.path.join(folder, name), root


# --- the baseline ----------------------------------------------------------------------


class Edits:
    """Counts the fields set, so the file is only dumped when something changed."""

    def __init__(self):
        self.count = 0

    def put(self, mapping, key, value):
        current = mapping.get(key)
        # `1 == True` in Python, so compare the bool-ness too (`runAsNonRoot: 1` is wrong).
        if current == value and isinstance(current, bool) == isinstance(value, bool):
            return
        mapping[key] = value
        self.count += 1


def child_map(mapping, key, edits):
    """mapping[key] as a mapping, created (or replacing a non-mapping) when needed."""
    value = mapping.get(key)
    if not isinstance(value, dict):
        value = CommentedMap()
        mapping[key] = value
        edits.count += 1
    return value


def is_unset_id(value):
    # `0` means root, so it counts as unset. ruamel may hand back an int subclass
    # (ScalarInt); bool is an int subclass too, and is not an id.
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 0)


def harden_pod(pod, edits):
    sc = child_map(pod, "securityContext", edits)
    edits.put(sc, "runAsNonRoot", True)
    for key, value in (("runAsUser", UID), ("runAsGroup", GID), ("fsGroup", FS_GROUP)):
        if is_unset_id(sc.get(key)):
            edits.put(sc, key, value)
    seccomp = child_map(sc, "seccompProfile", edits)
    # Localhost is a deliberate, stricter profile: leave it.
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        edits.put(seccomp, "type", "RuntimeDefault")

    for list_key in ("initContainers", "containers"):
        containers = pod.get(list_key)
        if isinstance(containers, list):
            for container in containers:
                if isinstance(container, dict):
                    harden_container(container, edits)


def harden_container(container, edits):
    sc = child_map(container, "securityContext", edits)
    edits.put(sc, "allowPrivilegeEscalation", False)
    edits.put(sc, "readOnlyRootFilesystem", True)
    caps = child_map(sc, "capabilities", edits)
    drop = caps.get("drop")
    if not isinstance(drop, list):
        caps["drop"] = CommentedSeq(["ALL"])
        edits.count += 1
    elif "ALL" not in drop:
        drop.append("ALL")
        edits.count += 1


def pod_spec(doc):
    """The pod spec of a workload document, or None."""
    if not isinstance(doc, dict):
        return None
    kind = doc.get("kind")
    if kind == "Pod":
        path = ["spec"]
    elif kind == "CronJob":
        path = ["spec", "jobTemplate", "spec", "template", "spec"]
    elif kind in TEMPLATE_KINDS:
        path = ["spec", "template", "spec"]
    else:
        return None
    node = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


# --- one file --------------------------------------------------------------------------


def fix_file(path, yaml):
    """Returns 'changed', 'unchanged', or 'failed' (the file could not be loaded)."""
    try:
        with open(path, encoding="utf-8") as f:
            docs = list(yaml.load_all(f))
    except Exception:  # any parse or decode error: skip the file, as the brief says
        return "failed"
    edits = Edits()
    for doc in docs:
        pod = pod_spec(doc)
        if pod is not None:
            harden_pod(pod, edits)
    if not edits.count:
        return "unchanged"
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump_all(docs, f)
    return "changed"


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    start = time.perf_counter()
    yaml = YAML()  # round-trip mode, all defaults: the approach most people take
    counts = {"scanned": 0, "changed": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    for path, root in yaml_files(argv):
        counts["scanned"] += 1
        if os.path.basename(path) in KUSTOMIZATION_NAMES or in_chart(path, root):
            counts["skipped"] += 1
            continue
        with open(path, "rb") as f:
            if b"{{" in f.read():  # Helm/Go templates are not YAML until rendered
                counts["skipped"] += 1
                continue
        counts[fix_file(path, yaml)] += 1
    elapsed = time.perf_counter() - start
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    print(f"ruamel_fixer: {summary} in {elapsed:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
