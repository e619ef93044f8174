#!/usr/bin/env bash
# The main step of the composite action (action.yml): builds kube-harden's command line from
# the action's inputs, passed as INPUT_* environment variables (never as `${{ }}` in the
# script), and runs it. kube-harden itself sees GITHUB_ACTIONS=true and writes the step outputs
# ($GITHUB_OUTPUT), the step summary ($GITHUB_STEP_SUMMARY) and, in check mode, the
# annotations.
#
# Inputs: KUBE_HARDEN (the binary, default `kube-harden` on PATH), INPUT_MODE (pr|check|diff),
# INPUT_PATHS (one per line), INPUT_CONFIG, INPUT_OFFLINE, INPUT_REGISTRY_TOKEN,
# INPUT_REGISTRY_HOSTS, IMAGE_CACHE_DIR (--image-cache, the folder actions/cache keeps); mode pr: INPUT_TOKEN, INPUT_REPOSITORY, INPUT_BASE, INPUT_GROUP_BY,
# INPUT_LABELS, INPUT_REVIEWERS, INPUT_TEAM_REVIEWERS (comma-separated), INPUT_AUTHOR,
# INPUT_DRAFT, INPUT_MAX_PRS, INPUT_DRY_RUN, INPUT_PROVE; mode check:
# INPUT_SARIF_FILE, INPUT_FAIL_ON_FINDINGS.
set -euo pipefail

fail() {
    echo "::error title=kube-harden::$1"
    exit 2
}

# A boolean input, as YAML 1.2 (and @actions/core's getBooleanInput) spells it: sets the
# variable named $1 to true or false.
boolean() {
    local value
    value=$(trim "$3")
    case "$value" in
        true | True | TRUE) printf -v "$1" true ;;
        false | False | FALSE | "") printf -v "$1" false ;;
        *) fail "input $2 must be true or false, not '$value'" ;;
    esac
}

trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    s=${s%"${s##*[![:space:]]}"}
    printf '%s' "$s"
}

# Adds `FLAG item` to args for each non-empty item of a comma-separated input.
each_item() {
    local flag=$1 item items
    IFS=',' read -r -a items <<<"$2"
    for item in "${items[@]}"; do
        item=$(trim "$item")
        [ -z "$item" ] || args+=("$flag" "$item")
    done
}

bin=${KUBE_HARDEN:-kube-harden}
mode=$(trim "${INPUT_MODE:-check}")
draft=false dry_run=false fail_on_findings=true offline=false prove=false
boolean draft draft "${INPUT_DRAFT:-false}"
boolean dry_run dry-run "${INPUT_DRY_RUN:-false}"
boolean offline offline "${INPUT_OFFLINE:-false}"
boolean prove prove "${INPUT_PROVE:-false}"
boolean fail_on_findings fail-on-findings "${INPUT_FAIL_ON_FINDINGS:-true}"

args=()
case "$mode" in
    pr)
        args=(pr --format json)
        base=$(trim "${INPUT_BASE:-}")
        [ -z "$base" ] || args+=(--base "$base")
        group_by=$(trim "${INPUT_GROUP_BY:-}")
        [ -z "$group_by" ] || args+=(--group-by "$group_by")
        each_item --label "${INPUT_LABELS:-}"
        [ "$draft" = false ] || args+=(--draft)
        max_prs=$(trim "${INPUT_MAX_PRS:-}")
        if [ -n "$max_prs" ]; then
            [[ $max_prs =~ ^[0-9]+$ ]] || fail "input max-prs must be a number, not '$max_prs'"
            args+=(--max-prs "$max_prs")
        fi
        each_item --reviewer "${INPUT_REVIEWERS:-}"
        each_item --team-reviewer "${INPUT_TEAM_REVIEWERS:-}"
        author=$(trim "${INPUT_AUTHOR:-}")
        [ -z "$author" ] || args+=(--author "$author")
        [ "$dry_run" = false ] || args+=(--dry-run)
        [ "$prove" = false ] || args+=(--prove)
        # The token goes to kube-harden through the environment, never on the command line;
        # so does the repository (GITHUB_REPOSITORY cannot be set in a workflow's env).
        export GITHUB_TOKEN="${INPUT_TOKEN:-${GITHUB_TOKEN:-}}"
        repository=$(trim "${INPUT_REPOSITORY:-}")
        if [ -n "$repository" ]; then
            [[ $repository =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] ||
                fail "input repository must be owner/name, not '$repository'"
            export GITHUB_REPOSITORY="$repository"
        fi
        ;;
    check)
        args=(check)
        sarif_file=$(trim "${INPUT_SARIF_FILE:-}")
        [ -z "$sarif_file" ] || args+=(--sarif-file "$sarif_file")
        ;;
    diff)
        args=(diff)
        ;;
    *) fail "input mode must be pr, check or diff, not '$mode'" ;;
esac

[ "$offline" = false ] || args+=(--offline)
image_cache_dir=$(trim "${IMAGE_CACHE_DIR:-}")
[ -z "$image_cache_dir" ] || args+=(--image-cache "$image_cache_dir")
# Charts in OCI registries: the token reaches kube-harden in its environment (never on the
# command line), for the hosts named only; GitHub's registry takes the workflow's actor as user.
registry_token=$(trim "${INPUT_REGISTRY_TOKEN:-}")
if [ -n "$registry_token" ]; then
    export KUBE_HARDEN_REGISTRY_TOKEN="$registry_token"
    KUBE_HARDEN_REGISTRY_HOSTS=$(trim "${INPUT_REGISTRY_HOSTS:-ghcr.io}")
    export KUBE_HARDEN_REGISTRY_HOSTS
    export KUBE_HARDEN_REGISTRY_USER="${GITHUB_ACTOR:-kube-harden}"
fi
config=$(trim "${INPUT_CONFIG:-}")
[ -z "$config" ] || args+=(--config "$config")

paths=()
while IFS= read -r line || [ -n "$line" ]; do
    line=$(trim "$line")
    [ -z "$line" ] || paths+=("$line")
done <<<"${INPUT_PATHS:-.}"
[ "${#paths[@]}" -gt 0 ] || paths=(.)
args+=(-- "${paths[@]}")

echo "kube-harden ${args[*]}"
status=0
"$bin" "${args[@]}" || status=$?

# check exits 1 when something falls short, 2 when a file could not be handled.
if [ "$mode" = check ] && [ "$status" -eq 1 ] && [ "$fail_on_findings" = false ]; then
    echo "kube-harden found controls that fall short (fail-on-findings is false)"
    status=0
fi
exit "$status"
