"""Renders a chart with Helm's own template engine (helm-python-sdk, no helm binary).

usage: helm_render.py CHART [VALUES_FILE]
Prints a JSON object: template path -> rendered text, as `helm template` would render it with
`-f VALUES_FILE`.
"""
import json
import sys

import helm_python as helm

chart_dir = sys.argv[1]
values = {}
if len(sys.argv) > 2:
    with open(sys.argv[2], encoding="utf-8") as f:
        values = helm.values_from_yaml(f.read())
with helm.Chart.load(chart_dir) as chart:
    rendered = chart.render(values, name="release", namespace="default", is_install=True)
json.dump(rendered, sys.stdout)
