#!/usr/bin/env bash
# Makes sure Helm's template engine for tests/helm_render.rs is installed: the PyPI package
# helm-python-sdk (a wheel with Helm's Go engine inside, no helm binary), pinned, in the
# virtual environment target/helm-venv, which later runs reuse. Prints that environment's
# Python. Used by .ci/run and, when the engine is missing, by the test itself, so that
# `cargo test --locked` on a fresh clone needs no extra step.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/helm-venv
if ! "$venv/bin/python" -c 'import helm_python' 2>/dev/null; then
  mkdir -p target
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'helm-python-sdk==0.2.2' >&2
fi
echo "$PWD/$venv/bin/python"
