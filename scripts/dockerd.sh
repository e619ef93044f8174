#!/usr/bin/env bash
# A dockerd of the project's own for the start proof (tests/prove.rs, `kube-harden prove` by
# hand): its own socket, exec root and data root under DIR, no bridge, no iptables, no masquerade
# (containers run with --network none: a network namespace holding only `lo`).
#   scripts/dockerd.sh start DIR   prints the DOCKER_HOST to use once the daemon answers
#   scripts/dockerd.sh stop DIR    stops it (waits until it is gone)
set -euo pipefail
action="${1:?start|stop}"; dir="${2:?the folder of the daemon}"
mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
host="unix://$dir/docker.sock"
case "$action" in
start)
  if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
    echo "$host"; exit 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd.sh: no dockerd (scripts/runtime-deps.sh installs it)" >&2; exit 1; }
  setsid dockerd --host "$host" --pidfile "$dir/dockerd.pid" --data-root "$dir/data" \
    --exec-root "$dir/exec" --bridge none --iptables=false --ip6tables=false --ip-masq=false \
    </dev/null >"$dir/dockerd.log" 2>&1 &
  for _ in $(seq 300); do
    docker -H "$host" version >/dev/null 2>&1 && { echo "$host"; exit 0; }
    sleep 0.1
  done
  echo "dockerd.sh: dockerd did not answer in 30 s; its log:" >&2; tail -20 "$dir/dockerd.log" >&2; exit 1 ;;
stop)
  [ -f "$dir/dockerd.pid" ] || exit 0
  pid="$(cat "$dir/dockerd.pid")"
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true ;;
*) echo "dockerd.sh: start|stop DIR" >&2; exit 2 ;;
esac
