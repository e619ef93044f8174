"""Prints the table of the corpus charts that the Helm issue asks for: per chart, whether `fix`
patched its values, added a writable /tmp, which notes it reported (low port, host access, no
writable /tmp, renders short, does not render), and whether the render check ran.

usage: python3 scripts/chart-table.py KUBE_HARDEN_BIN CORPUS [--helm-bin HELM]
Each chart is copied to a temporary folder first; the corpus is never written to.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

binary, corpus = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]


def charts():
    """Every chart folder, except a subchart vendored in another chart's charts/."""
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        parent = os.path.dirname(root)
        vendored = os.path.basename(parent) == "charts" and os.path.isfile(
            os.path.join(os.path.dirname(parent), "Chart.yaml")
        )
        if "Chart.yaml" in files and not vendored:
            yield root


def why_unchecked(notes):
    if any("not vendored" in n for n in notes):
        return "no (dependency not vendored)"
    if any("not defined" in n or "no template" in n for n in notes):
        return "no (helpers `*.tpl` not in the corpus)"
    if any("skipped" in n for n in notes):
        return "no (no helm)"
    return "no (does not render)"


def is_library(chart):
    with open(os.path.join(chart, "Chart.yaml"), encoding="utf-8") as f:
        return any(line.strip() == "type: library" for line in f)


def run(args, cwd):
    return subprocess.run([binary, *extra, *args], cwd=cwd, capture_output=True, text=True)


rows = []
for chart in sorted(set(charts())):
    rel = os.path.relpath(chart, corpus)
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "chart")
        shutil.copytree(chart, copy, symlinks=True)
        for folder, _, names in os.walk(copy):  # the corpus is read-only; its copy must not be
            for name in names:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o644)
        check = run(["check", "--format", "json", "chart"], tmp)
        try:
            report = json.loads(check.stdout)
        except json.JSONDecodeError:
            rows.append((rel, "check failed: " + check.stderr.strip()[:80]))
            continue
        fix = run(["fix", "chart"], tmp)
        notes = [n["message"] for n in report.get("notes", [])]
        has = lambda word: sum(1 for n in notes if word in n)
        unchecked = has("does not render") or has("render check of Helm charts skipped")
        summary = fix.stderr.strip().splitlines()[-1] if fix.stderr.strip() else ""
        rows.append((
            rel,
            str(has("mounted at /tmp")),
            str(has("below 1024")),
            str(has("node's")),
            str(has("no writable /tmp")),
            str(has("renders short")),
            why_unchecked(notes) if unchecked else ("no (a library chart renders nothing)" if is_library(chart) else "yes"),
            str(len(report.get("errors", []))),
            summary,
        ))

print("| chart | /tmp notes | low port | host access | no /tmp | renders short | render-checked | errors | fix summary |")
print("|---|---|---|---|---|---|---|---|---|")
for row in rows:
    if len(row) == 2:
        print(f"| {row[0]} | {row[1]} |")
    else:
        print("| " + " | ".join(row) + " |")
