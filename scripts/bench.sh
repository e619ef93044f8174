#!/usr/bin/env bash
# Benchmarks kube-harden on a corpus of real manifests and compares it with the plain
# ruamel.yaml round-trip approach (scripts/ruamel_fixer.py).
#
# Usage: scripts/bench.sh [CORPUS_DIR]        (default: ../shared/corpus from the repo root)
#
# Environment:
#   RUAMEL_PYTHON  python with ruamel.yaml (default /tmp/bench-venv/bin/python); the
#                  comparison is left out when it is missing. To make one:
#                    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install ruamel.yaml
#   RUAMEL_RUNS    runs of the ruamel.yaml fixer; their median is compared (default 3)
#   HYPERFINE      hyperfine binary (default: found on PATH); set it empty to force the
#                  plain bash timing loop.
#   TMPDIR         where the copies go (default /tmp, on disk here); TMPDIR=/dev/shm times
#                  the tool without the disk.
#
# Nothing in the corpus or the repo is modified: every run works on copies in a temp dir.
#
# On an ext4 without a journal (as on the CI VM), `fix` times depend on what was deleted in the
# last minute (this script's own cleanup, a cargo build): making its temporary files, the inode
# allocator steps over every inode freed since. Compare builds in one series, not across runs.
# The window is a minute, or six while the freed inodes' table block is dirty, which making
# new files next to them keeps it: a run started within minutes of this script's own cleanup
# (~17,000 files) measured `fix` at 115-118 ms (system time ~100 ms) instead of 92-94 (~62).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORPUS="$(cd "${1:-$ROOT/../shared/corpus}" && pwd)"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/kube-harden"
RUAMEL_PYTHON="${RUAMEL_PYTHON:-/tmp/bench-venv/bin/python}"
RUAMEL_RUNS="${RUAMEL_RUNS:-3}"
HYPERFINE="${HYPERFINE-$(command -v hyperfine || true)}"
TIME_V=/usr/bin/time
WARMUP=3
RUNS=20

WORK="$(mktemp -d -t kube-harden-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
PRISTINE="$WORK/pristine" # the corpus's plain manifests, never touched after copying
RUN="$WORK/run"           # re-made from PRISTINE before every fix run

log() { printf '==> %s\n' "$*" >&2; }

# Seconds between two `date +%s.%N` stamps (awk, so bc is not needed).
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'; }

# Re-creates $RUN from the pristine copy, so each `fix` starts from unfixed files.
fresh_copy() {
  rm -rf "$RUN"
  cp -a "$PRISTINE" "$RUN"
}

# Copies every .yaml/.yml not inside a Helm chart (a folder with Chart.yaml, at any level
# from the corpus root down), keeping relative paths. Charts are templates, not manifests.
copy_plain_manifests() {
  mkdir -p "$PRISTINE"
  (
    cd "$CORPUS"
    find . -type d -exec test -e '{}/Chart.yaml' ';' -prune \
      -o -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 |
      xargs -0 --no-run-if-empty cp --parents -t "$PRISTINE"
  )
  # The corpus may be read-only; the copies must not be, or `fix` would only refuse them.
  chmod -R u+w "$PRISTINE"
  find "$PRISTINE" -type f | wc -l
}

# Every timed `fix` gets its own unfixed copy, made before the timing starts. Making it right
# before each run (rm -rf, then cp) would time the file system's reaction to that, not the
# tool: the copy's writeback would land on the run's writes, and on an ext4 without a journal
# (as on this machine) the inode allocator skips, one by one, every inode freed in the last
# minute, so each temporary file a run creates would scan past the 700 inodes just deleted.
# The copies' folder is marked as a top of directory hierarchies (`chattr +T`), so ext4
# spreads the copies over its block groups: the originals one run frees (at its end) are then
# not where the next run makes its files. Elsewhere (tmpfs: `TMPDIR=/dev/shm`) chattr fails
# and does not matter. Before each run the used copy is moved aside and the next one moved
# into place (renames, nothing deleted).
prepare_copies() { # N
  mkdir -p "$WORK/copies" "$WORK/used"
  # The sanity run's copy is moved aside, not deleted (see the header).
  if [[ -e "$RUN" ]]; then mv "$RUN" "$WORK/used/sanity"; fi
  chattr +T "$WORK/copies" 2>/dev/null || true
  local i
  for i in $(seq "$1"); do
    cp -a "$PRISTINE" "$WORK/copies/$(printf '%03d' "$i")"
  done
  sync
}

# The prepare command for each timed fix: the last run's copy goes to used/, the next one
# becomes $RUN.
next_copy_command() {
  printf '%s' "{ [ ! -e '$RUN' ] || mv '$RUN' '$WORK/used/'\$(date +%s%N); } && mv \"\$(ls -d '$WORK/copies/'* | head -n 1)\" '$RUN'"
}

# Runs the binary once to check it works on this corpus. Exit 2 only means some files could
# not be handled (reported, left alone); anything else is a real failure.
sanity_run() { # MODE DIR
  local rc=0
  "$BIN" --color never "$1" "$2" >/dev/null 2>"$WORK/$1.stderr" || rc=$?
  if ((rc != 0 && rc != 2)); then
    cat "$WORK/$1.stderr" >&2
    log "kube-harden $1 exited $rc"
    exit 1
  fi
  log "kube-harden $1 (exit $rc): $(tail -n 1 "$WORK/$1.stderr")"
}

# Prints "MIN MEDIAN" in seconds for a command, with hyperfine when there is one, otherwise
# a bash loop. PREPARE runs before every timed run (and is not timed).
time_cmd() { # NAME PREPARE CMD
  local name=$1 prepare=$2 cmd=$3
  if [[ -n "$HYPERFINE" ]]; then
    # -i: exit 2 (some files left alone) is expected, sanity_run already vetted it.
    "$HYPERFINE" --style basic --warmup "$WARMUP" --runs "$RUNS" -i --prepare "$prepare" \
      --export-csv "$WORK/$name.csv" -n "$name" "$cmd" >&2
    # CSV columns: command,mean,stddev,median,user,system,min,max
    awk -F, 'NR == 2 { print $7, $4 }' "$WORK/$name.csv"
  else
    local i start end
    for i in $(seq "$RUNS"); do
      bash -c "$prepare"
      start=$(date +%s.%N)
      bash -c "$cmd" >/dev/null 2>&1 || true
      end=$(date +%s.%N)
      elapsed "$start" "$end"
    done | sort -g | awk '{ t[NR] = $1 } END { m = int((NR + 1) / 2); print t[1], (NR % 2 ? t[m] : (t[m] + t[m + 1]) / 2) }'
  fi
}

# Prints the peak RSS in MB of one run of CMD, or "n/a" without GNU time.
peak_rss_mb() { # CMD...
  if [[ ! -x "$TIME_V" ]]; then
    echo "n/a"
    return
  fi
  "$TIME_V" -v "$@" >/dev/null 2>"$WORK/time.out" || true
  awk -F: '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$WORK/time.out"
}

# Times RUAMEL_RUNS runs of the ruamel.yaml fixer, each on a fresh copy; prints "MEDIAN MIN
# MAX" in seconds, or nothing when there is no python with ruamel.yaml. One run of ~10 s on a
# shared host can be off by a second or two, hence the median.
time_ruamel() {
  if ! "$RUAMEL_PYTHON" -c 'import ruamel.yaml' 2>/dev/null; then
    log "no ruamel.yaml at $RUAMEL_PYTHON: comparison skipped"
    return
  fi
  local i start end
  for i in $(seq "$RUAMEL_RUNS"); do
    fresh_copy
    start=$(date +%s.%N)
    "$RUAMEL_PYTHON" "$ROOT/scripts/ruamel_fixer.py" "$RUN" 2>"$WORK/ruamel.stderr" || true
    end=$(date +%s.%N)
    log "run $i: $(tail -n 1 "$WORK/ruamel.stderr")"
    elapsed "$start" "$end"
  done | sort -g | awk '{ t[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2 ? t[m] : (t[m] + t[m + 1]) / 2), t[1], t[NR] }'
}

ms() { awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }'; }

main() {
  log "building (cargo build --release)"
  (cd "$ROOT" && cargo build --release)

  log "copying plain manifests from $CORPUS"
  local files
  files=$(copy_plain_manifests)
  log "$files files"

  fresh_copy
  sanity_run fix "$RUN"
  sanity_run diff "$PRISTINE"

  log "timing fix (a fresh copy for each run, made in advance)"
  local fix_times diff_times fix_min fix_med diff_min diff_med
  prepare_copies $((WARMUP + RUNS + 1))
  fix_times=$(time_cmd fix "$(next_copy_command)" "'$BIN' --color never fix '$RUN'")
  read -r fix_min fix_med <<<"$fix_times"

  # diff writes nothing, so it can read the pristine copy every time; the no-op prepare
  # keeps its numbers comparable to fix (same hyperfine options and overhead).
  log "timing diff (read-only)"
  diff_times=$(time_cmd diff "sync" "'$BIN' --color never diff '$PRISTINE'")
  read -r diff_min diff_med <<<"$diff_times"

  log "peak memory (GNU time -v)"
  local fix_rss diff_rss
  fresh_copy
  fix_rss=$(peak_rss_mb "$BIN" --color never fix "$RUN")
  diff_rss=$(peak_rss_mb "$BIN" --color never diff "$PRISTINE")
  log "max RSS: fix $fix_rss MB, diff $diff_rss MB"

  log "timing the ruamel.yaml fixer ($RUAMEL_RUNS runs)"
  local ruamel ruamel_med ruamel_min ruamel_max ratio="n/a" ruamel_shown="n/a"
  ruamel=$(time_ruamel)
  if [[ -n "$ruamel" ]]; then
    read -r ruamel_med ruamel_min ruamel_max <<<"$ruamel"
    ruamel_shown=$(awk -v m="$ruamel_med" -v a="$ruamel_min" -v b="$ruamel_max" \
      'BEGIN { printf "%.2f s (%.2f-%.2f)", m, a, b }')
    ratio=$(awk -v r="$ruamel_med" -v f="$fix_med" 'BEGIN { printf "%.0fx", r / f }')
  fi

  echo
  printf '%-22s %s\n' \
    "files" "$files" \
    "fix median (min)" "$(ms "$fix_med") ($(ms "$fix_min"))" \
    "diff median (min)" "$(ms "$diff_med") ($(ms "$diff_min"))" \
    "peak RSS (fix)" "$fix_rss MB" \
    "ruamel fixer median" "$ruamel_shown" \
    "ruamel / fix medians" "$ratio"
}

main
exit 0
