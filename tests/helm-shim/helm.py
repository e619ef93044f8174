"""`helm template NAME CHART [--values FILE]... [--namespace NS]` on Helm's own engine.

The subset of the helm command line that kube-harden's render check runs, for the tests
(helm-python-sdk has Helm's Go engine, not its command line). Like helm: the values files are
merged over the chart's values.yaml in order; a dependency declared in Chart.yaml and not
vendored in charts/ is an error (never fetched); the output is every rendered manifest with
its `# Source:` line, each template's output split into documents as Helm splits it; errors go to stderr as `Error: ...` with exit code 1.
"""
import re
import sys

import helm_python as helm


def fail(message):
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


def merge(base, over):
    """Helm's merge of -f files: mappings key by key, anything else replaces."""
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def parse(argv):
    if not argv or argv[0] != "template":
        fail(f"this test helm knows only `template`, not {argv[:1]}")
    positional, values, namespace = [], [], "default"
    args = iter(argv[1:])
    for arg in args:
        if arg in ("-f", "--values"):
            values.append(next(args))
        elif arg.startswith("--values="):
            values.append(arg.split("=", 1)[1])
        elif arg in ("-n", "--namespace"):
            namespace = next(args)
        elif arg.startswith("-"):
            fail(f"unknown flag: {arg}")
        else:
            positional.append(arg)
    if len(positional) != 2:
        fail("usage: helm template NAME CHART [--values FILE]... [--namespace NS]")
    return positional[0], positional[1], values, namespace


def main():
    name, chart_dir, files, namespace = parse(sys.argv[1:])
    missing = [d["name"] for d in helm.dependency_list(chart_dir) if d.get("status") == "missing"]
    if missing:
        fail(
            "An error occurred while checking for chart dependencies. You may need to run "
            "`helm dependency build` to fetch missing dependencies: found in Chart.yaml, but "
            f"missing in charts/ directory: {', '.join(missing)}"
        )
    values = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            merge(values, helm.values_from_yaml(f.read()) or {})
    try:
        with helm.Chart.load(chart_dir) as chart:
            rendered = chart.render(values, name=name, namespace=namespace, is_install=True)
    except helm.HelmError as e:
        fail(str(e))
    out = []
    for source in sorted(rendered):
        base = source.rsplit("/", 1)[-1]
        if base == "NOTES.txt" or base.startswith("_"):
            continue
        for document in split_manifests(rendered[source]):
            out.append(f"---\n# Source: {source}\n{document}\n")
    sys.stdout.write("".join(out))


# Helm's releaseutil.SplitManifests: `---` at the start of the text or right after a line
# break, with the whitespace around it, separates documents; anything after it on its line
# (`---# comment`, as cert-manager's templates start) begins the next document.
SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


def split_manifests(text):
    """The documents of one template's output, as `helm template` prints them."""
    return [piece.strip() for piece in SEPARATOR.split(text) if piece.strip()]


main()
