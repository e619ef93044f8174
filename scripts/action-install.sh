#!/usr/bin/env bash
# Installs kube-harden for the composite action (action.yml).
#
#   action-install.sh plan      outputs build=true|false and lock-hash (the cache key's part);
#                               image-cache=true|false, image-cache-dir and image-cache-run
#                               (the image facts cache kept between runs, unless
#                               INPUT_IMAGE_CACHE is false)
#   action-install.sh install   builds the action's own source with cargo (the dist profile,
#                               as the released binaries), or downloads the released binary
#                               named by INPUT_VERSION, checked against its SHA-256; outputs
#                               bin=<path of the binary>
#
# Inputs (environment): INPUT_VERSION, INPUT_VERSION_SHA256, INPUT_IMAGE_CACHE; GITHUB_ACTION_PATH (the action's
# source), GITHUB_OUTPUT, RUNNER_TEMP, RUNNER_OS, RUNNER_ARCH, GITHUB_SERVER_URL;
# KUBE_HARDEN_RELEASES_REPOSITORY (owner/name, default: the repository in Cargo.toml);
# KUBE_HARDEN_RELEASES_URL (the folder the release archives are in, default
# $GITHUB_SERVER_URL/<repository>/releases/download; tests point it at file://).
set -euo pipefail

action_path=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: run this as a step of action.yml}
version=${INPUT_VERSION:-}
version=${version#v}

fail() {
    echo "::error title=kube-harden install::$1"
    exit 1
}

# The SHA-256 of a file, in lower-case hex (sha256sum on Linux, shasum on macOS).
sha256_of() {
    if command -v sha256sum >/dev/null; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

output() {
    printf '%s=%s\n' "$1" "$2" >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
}

plan() {
    if [ -z "$version" ]; then
        output build true
        output lock-hash "$(sha256_of "$action_path/Cargo.lock" | cut -c1-32)"
    else
        output build false
    fi
    plan_image_cache
}

# The image facts cache (--image-cache) that actions/cache restores and saves, so that a
# scheduled run asks registries only whether each tag still serves the digest it knows (a HEAD,
# which Docker Hub does not count against the pull limit). A saved cache entry never changes:
# each run saves under a key of its own (run, attempt and a random part, for the jobs of a
# matrix) and restores the newest one of its prefix.
plan_image_cache() {
    local enabled=${INPUT_IMAGE_CACHE:-true}
    enabled=${enabled//[[:space:]]/}
    case "$enabled" in
        true | True | TRUE) ;;
        false | False | FALSE)
            output image-cache false
            return
            ;;
        *) fail "input image-cache must be true or false, not '$enabled'" ;;
    esac
    output image-cache true
    output image-cache-dir "${RUNNER_TEMP:-$(mktemp -d)}/kube-harden-images"
    output image-cache-run "${GITHUB_RUN_ID:-0}-${GITHUB_RUN_ATTEMPT:-1}-$(printf '%04x%04x' "$RANDOM" "$RANDOM")"
}

build() {
    command -v cargo >/dev/null ||
        fail "cargo is not installed on this runner: set up Rust first, or set the version input to download a release"
    local target_dir="${RUNNER_TEMP:-$(mktemp -d)}/kube-harden-target"
    echo "Building kube-harden from $action_path (target folder $target_dir, profile dist)"
    # The dist profile (Cargo.toml): fat LTO, one codegen unit, as the released binaries.
    CARGO_TARGET_DIR="$target_dir" cargo build --profile dist --locked \
        --manifest-path "$action_path/Cargo.toml" --bin kube-harden
    local exe=""
    [ "${RUNNER_OS:-}" != Windows ] || exe=.exe
    output bin "$target_dir/dist/kube-harden$exe"
}

# The release's target triple for this runner.
target_triple() {
    case "${RUNNER_OS:-$(uname -s)}/${RUNNER_ARCH:-$(uname -m)}" in
        Linux/X64 | Linux/x86_64) echo x86_64-unknown-linux-musl ;;
        Linux/ARM64 | Linux/aarch64) echo aarch64-unknown-linux-musl ;;
        macOS/X64 | Darwin/x86_64) echo x86_64-apple-darwin ;;
        macOS/ARM64 | Darwin/arm64) echo aarch64-apple-darwin ;;
        *) return 1 ;;
    esac
}

# The repository the releases are in: owner/name.
releases_repository() {
    if [ -n "${KUBE_HARDEN_RELEASES_REPOSITORY:-}" ]; then
        echo "$KUBE_HARDEN_RELEASES_REPOSITORY"
        return
    fi
    sed -n 's|^repository *= *"https://github.com/\([^"/]*/[^"/]*\)".*|\1|p' "$action_path/Cargo.toml"
}

download() {
    [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] ||
        fail "version must be a release number such as 0.2.0, not '$version'"
    local triple asset expected base proto dir
    triple=$(target_triple) ||
        fail "no kube-harden release for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: leave the version input empty to build from source"
    asset="kube-harden-v$version-$triple.tar.gz"
    expected=${INPUT_VERSION_SHA256:-}
    if [ -z "$expected" ] && [ -f "$action_path/scripts/release-checksums.txt" ]; then
        expected=$(awk -v a="$asset" '$2 == a { print $1 }' "$action_path/scripts/release-checksums.txt")
    fi
    expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
    [[ $expected =~ ^[0-9a-f]{64}$ ]] ||
        fail "no SHA-256 known for $asset: set the version-sha256 input (from the release's checksums) or use an action version that lists it"
    if [ -n "${KUBE_HARDEN_RELEASES_URL:-}" ]; then
        base=$KUBE_HARDEN_RELEASES_URL
        proto='=https,file'
    else
        base="${GITHUB_SERVER_URL:-https://github.com}/$(releases_repository)/releases/download"
        proto='=https'
    fi
    dir="${RUNNER_TEMP:-$(mktemp -d)}/kube-harden-$version"
    mkdir -p "$dir"
    echo "Downloading $base/v$version/$asset"
    curl --fail --silent --show-error --location --retry 3 --proto "$proto" --tlsv1.2 \
        --output "$dir/$asset" "$base/v$version/$asset" ||
        fail "could not download $base/v$version/$asset"
    local actual
    actual=$(sha256_of "$dir/$asset")
    [ "$actual" = "$expected" ] ||
        fail "checksum mismatch for $asset: expected $expected, got $actual; not installed"
    tar -xzf "$dir/$asset" -C "$dir" kube-harden
    chmod +x "$dir/kube-harden"
    "$dir/kube-harden" --version
    output bin "$dir/kube-harden"
}

case "${1:-}" in
    plan) plan ;;
    install) if [ -z "$version" ]; then build; else download; fi ;;
    *)
        echo "usage: $0 plan|install" >&2
        exit 2
        ;;
esac
