#!/usr/bin/env bash
# Load test of `toolforge serve` on loopback, bounded in time: starts the server
# with the embedded default router on a fresh run log, runs examples/loadgen.rs
# at 1, 16 and 64 connections, then batches of 100 queries at 1 and 4
# connections (SECONDS_PER_STEP each, default 10), stops the
# server with SIGTERM and checks that the run log holds exactly one line per
# request answered.
#
#   bash scripts/load_test.sh            # release build, 10 s per step
#   SECONDS_PER_STEP=3 bash scripts/load_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${SECONDS_PER_STEP:-10}"
work="$(mktemp -d)"
server=""
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --quiet --bin toolforge --example loadgen
TOOLFORGE_LOG_PATH="$work/runs.jsonl" target/release/toolforge serve --bind 127.0.0.1:0 \
  --concurrency 256 2> "$work/serve.err" &
server=$!
for _ in $(seq 1 100); do
  grep -q "serving on" "$work/serve.err" 2>/dev/null && break
  sleep 0.1
done
url="$(grep -o 'http://[0-9.:]*' "$work/serve.err" | head -1)"
echo "server: $url (pid $server, $(grep -o 'model [^,]*' "$work/serve.err"))"

target/release/examples/loadgen --url "$url" --seconds "$seconds" --connections 1,16,64 | tee "$work/load.txt"
echo "batches of 100 queries (latency per batch):"
target/release/examples/loadgen --url "$url" --seconds "$seconds" --connections 1,4 --batch 100 | tee "$work/batch.txt"
rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$server/status")"
kill -TERM "$server"
wait "$server"
answered="$(awk '/^answered/ {n += $2} END {print n}' "$work/load.txt" "$work/batch.txt")"
# The log and its rotated files (runs.jsonl.1 ...): every line written.
lines="$(cat "$work"/runs.jsonl* | wc -l)"
files="$(ls "$work"/runs.jsonl* | wc -l)"
echo "server peak RSS: $((rss_kb / 1024)) MiB"
echo "run log lines: $lines in $files file(s), requests answered: $answered"
if [ "$lines" -ne "$answered" ]; then
  echo "FAIL: the run log should hold exactly one line per answered request" >&2
  exit 1
fi
echo "OK: one log line per answered request"
