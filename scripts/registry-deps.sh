#!/usr/bin/env bash
# What the registry tests (tests/registry.rs and the OCI chart cases) need from Debian:
# `docker-registry` (a real OCI distribution registry, started on 127.0.0.1 by the tests) and
# `htpasswd` (apache2-utils: the bcrypt file of the registry with basic auth) and `zstd` (the
# reference encoder writes the zstd layers of tests/images.rs). Idempotent:
# installs only what is missing, so that a machine that has them all changes nothing.
set -euo pipefail
missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# No service is started by the package's scripts: the tests start their own registries.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  made_policy=1
fi
trap '[ -n "$made_policy" ] && $sudo rm -f "$policy"' EXIT
echo "scripts/registry-deps.sh: installing ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
