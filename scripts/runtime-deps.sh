#!/usr/bin/env bash
# Installs what the start proof's tests (tests/prove.rs) need, only where it is missing, so a
# second run does nothing: a container engine (Debian's docker.io; `KUBE_HARDEN_ENGINE=podman`
# takes podman + runc instead), the tools that build the test images without pulling anything
# (busybox-static, umoci, skopeo, file) and a registry to serve them on loopback
# (docker-registry, with apache2-utils for the registry tests' htpasswd). docker.io is installed under a temporary /usr/sbin/policy-rc.d so that its
# postinst starts no default daemon: no docker0 bridge, no iptables rules; the tests start their
# own dockerd (scripts/dockerd.sh).
set -euo pipefail
engine="${KUBE_HARDEN_ENGINE:-docker}"
case "$engine" in
  docker) wanted=(docker.io) ;;
  podman) wanted=(podman runc) ;;
  *) echo "runtime-deps.sh: KUBE_HARDEN_ENGINE is docker or podman, not $engine" >&2; exit 2 ;;
esac
wanted+=(busybox-static umoci skopeo docker-registry file)
# The registry tests' basic auth (htpasswd) and zstd layers, as scripts/registry-deps.sh
# installs them alone.
wanted+=(apache2-utils zstd)
missing=()
for package in "${wanted[@]}"; do
  dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
command -v apt-get >/dev/null || { echo "runtime-deps.sh: missing ${missing[*]} and no apt-get" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "runtime-deps.sh: missing ${missing[*]}: run as root" >&2; exit 1; }
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  # Exit code 101: "action forbidden"; invoke-rc.d starts no service while it exists.
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  made_policy=1
fi
trap '[ -n "$made_policy" ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "runtime-deps.sh: installed ${missing[*]}" >&2
