#!/usr/bin/env bash
# `vital import` of a release-shaped 210K LLaVA array against Python's bare `json.load` of the
# same file, in the same run, with wall time and peak RSS of each (GNU time when installed,
# Python's getrusage otherwise). Writes the file once under the target folder.
#
#   tools/import_bench.sh [SAMPLES]      (default 210000; needs python3 and a release build)
#
# Each side runs RUNS times (default 3), alternating, each vital import into a fresh workspace;
# the page cache is warm for both (the file is read once before timing).
#
# With VITAL_TEST_PG set (`eval "$(tools/test_postgres.sh start --durable)"`, a local server),
# each run also imports the file into a fresh database on that server, timed the same way:
# the client's peak RSS is vital's; the server's own memory is not in it.
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-210000}
runs=${RUNS:-3}
target=${CARGO_TARGET_DIR:-target}
dir="$target/import-bench"
file="$dir/release$((samples / 1000))k.json"
mkdir -p "$dir"
if [ ! -f "$file" ]; then
    echo "writing $file ..."
    python3 tools/release_gen.py "$file" --samples "$samples"
fi
# VITAL_BIN: another build of vital to time (e.g. target/debug/vital where a release build
# would take too long; say so with the figures).
if [ -n "${VITAL_BIN:-}" ]; then
    vital=$VITAL_BIN
else
    cargo build --release --quiet
    vital="$target/release/vital"
fi
cat "$file" > /dev/null

# Runs "$@", printing "<seconds> <peak RSS MiB>".
measure() {
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%e %M' -o "$dir/time.txt" "$@" > /dev/null
        awk '{ printf "%.2f %.0f\n", $1, $2 / 1024 }' "$dir/time.txt"
    else
        python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{time.monotonic() - t:.2f} {rss:.0f}")
PY
    fi
}

size=$(stat -c %s "$file")
echo "file: $file, $samples samples, $((size / 1000000)) MB, $((size / samples)) bytes per sample"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %-34s %10s %14s\n' run what seconds "peak RSS MiB"
for run in $(seq 1 "$runs"); do
    read -r secs rss < <(measure python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$file")
    printf '%-4s %-34s %10s %14s\n' "$run" "python3 json.load" "$secs" "$rss"
    ws="$dir/ws"
    rm -rf "$ws"
    read -r secs rss < <(measure "$vital" -w "$ws" import "$file")
    printf '%-4s %-34s %10s %14s\n' "$run" "vital import (new workspace)" "$secs" "$rss"
    if [ -n "${VITAL_TEST_PG:-}" ]; then
        db="vital_import_bench_$run"
        psql -q "$VITAL_TEST_PG" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
        url=$(printf '%s' "$VITAL_TEST_PG" | sed -E "s#/[^/?]*(\?|$)#/$db\1#")
        # As on a directory, the import creates the workspace (its tables) first.
        read -r secs rss < <(measure "$vital" -w "$url" import "$file")
        printf '%-4s %-34s %10s %14s\n' "$run" "vital import (new server database)" "$secs" "$rss"
        psql -q "$VITAL_TEST_PG" -c "DROP DATABASE $db"
    fi
done
read -r secs rss < <(measure "$vital" -w "$ws" import "$file")
printf '%-4s %-34s %10s %14s\n' "" "vital import (same file again)" "$secs" "$rss"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
