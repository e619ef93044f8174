#!/usr/bin/env bash
# Runs the fuzz targets under fuzz/ for a given time each and reports executions and crashes.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 300)
#
# Targets: `engine` (the whole per-file pipeline on arbitrary bytes, seeded from
# fuzz/seeds/engine/) and `styles` (generated manifests in random styles, lossless invariants).
# Uses cargo-fuzz on the stable toolchain without a sanitizer (`-s none`); installs cargo-fuzz
# when it is missing. A crash is written to fuzz/artifacts/<target>/ and makes the script exit 1:
# turn it into a regression case under fixtures/conformance/ once fixed.
set -euo pipefail

SECONDS_PER_TARGET="${1:-300}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

status=0
for target in engine styles; do
  mkdir -p "corpus/$target" "artifacts/$target"
  if [ -d "seeds/$target" ]; then
    cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
  fi
  log="$(mktemp)"
  echo "==> fuzzing $target for ${SECONDS_PER_TARGET}s"
  if ! cargo fuzz run -s none "$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 >"$log" 2>&1; then
    status=1
  fi
  grep -E '^Done [0-9]+ runs' "$log" || tail -n 5 "$log"
  if ls "artifacts/$target"/crash-* "artifacts/$target"/timeout-* >/dev/null 2>&1; then
    echo "    findings: $(ls "artifacts/$target")"
    grep -m1 -A3 'panicked' "$log" || true
    status=1
  else
    echo "    no crash, no timeout"
  fi
  rm -f "$log"
done
exit "$status"
