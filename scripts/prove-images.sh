#!/usr/bin/env bash
# Builds the start proof's test images (tests/prove.rs) without pulling anything: the only
# program inside is Debian's busybox-static, layered with umoci into an OCI layout at DIR, one
# tag per image. Needs root (umoci keeps file owners only as root), busybox-static, umoci
# and file (scripts/runtime-deps.sh installs them).
#   scripts/prove-images.sh DIR
#
# | tag          | USER        | at start                                                       |
# | root-port80  | (none)      | httpd on port 80 (VOLUME-less, WorkingDir /www)               |
# | uid101-cache | 101         | writes /var/cache/app/started, then httpd on 8080             |
# | named-user   | app (1001)  | reads /app/config (0600 in a 0700 /app), then httpd on 8080   |
# | volume-data  | 1000        | VOLUME /data; writes /data/state, then httpd on 8080          |
# | good         | 65532:65532 | writes only /tmp, then httpd on 8080                          |
set -euo pipefail
layout="${1:?the folder of the OCI layout}"
busybox="${BUSYBOX:-/bin/busybox}"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  { echo "prove-images.sh: no static busybox at $busybox (apt-get install busybox-static)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "prove-images.sh: no umoci (apt-get install umoci)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf "$layout"
umoci init --layout "$layout"
umoci new --image "$layout:base"
umoci unpack --image "$layout:base" "$work/base" >/dev/null
root="$work/base/rootfs"
mkdir -p "$root"/{bin,etc,tmp,www,var/cache,proc,sys,dev,run}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh cat echo mkdir sleep id ls touch env date httpd wget; do ln -s busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo 'hello' >"$root/www/index.html"
umoci repack --image "$layout:base" "$work/base" >/dev/null
umoci config --image "$layout:base" --config.env PATH=/bin

# image TAG POPULATE(fills $root) UMOCI-CONFIG-ARGS...
image() {
  local tag=$1 populate=$2; shift 2
  umoci unpack --image "$layout:base" "$work/$tag" >/dev/null
  root="$work/$tag/rootfs"
  "$populate"
  umoci repack --image "$layout:$tag" "$work/$tag" >/dev/null
  umoci config --image "$layout:$tag" "$@"
  rm -rf "${work:?}/$tag"
}
nothing() { :; }
uid101_cache() {
  mkdir -p "$root/var/cache/app"; chown 101:101 "$root/var/cache/app"
  printf '%s\n' 'date > /var/cache/app/started || exit 1' 'exec httpd -f -v -p 8080 -h /www' >"$root/start.sh"
}
named_user() {
  printf 'app:x:1001:1001:app:/app:/bin/sh\n' >>"$root/etc/passwd"
  printf 'app:x:1001:\n' >>"$root/etc/group"
  mkdir -p "$root/app/www"; echo 'secret=42' >"$root/app/config"; echo 'hello' >"$root/app/www/index.html"
  chown -R 1001:1001 "$root/app"; chmod 0700 "$root/app"; chmod 0600 "$root/app/config"
  printf '%s\n' 'cat /app/config >/dev/null || exit 1' 'exec httpd -f -v -p 8080 -h /app/www' >"$root/start.sh"
}
volume_data() {
  mkdir -p "$root/data"; chown 1000:1000 "$root/data"
  printf '%s\n' 'date > /data/state || exit 1' 'exec httpd -f -v -p 8080 -h /www' >"$root/start.sh"
}
good() {
  printf '%s\n' 'date > /tmp/started || exit 1' 'exec httpd -f -v -p 8080 -h /www' >"$root/start.sh"
}
start=(--config.entrypoint /bin/sh --config.entrypoint /start.sh --config.exposedports 8080/tcp)
image root-port80 nothing --config.cmd /bin/httpd --config.cmd -f --config.cmd -v --config.cmd -p \
  --config.cmd 80 --config.cmd -h --config.cmd /www --config.exposedports 80/tcp --config.workingdir /www
image uid101-cache uid101_cache --config.user 101 "${start[@]}"
image named-user named_user --config.user app --config.workingdir /app "${start[@]}"
image volume-data volume_data --config.user 1000 --config.volume /data "${start[@]}"
image good good --config.user 65532:65532 "${start[@]}"
umoci gc --layout "$layout"
