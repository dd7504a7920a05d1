#!/usr/bin/env bash
# Measures what one inline (data:) build costs the server in memory: starts
# `slipway serve` on a fresh data dir, pushes a tar.gz of SIZE_MB MiB of
# incompressible data as a data: URI (curl streams the JSON body from a
# file), waits for the build to end, and prints the server's RSS before,
# its peak RSS (VmHWM) and the peak Go heap in use (sampled from /metrics
# every 100 ms). Usage: scripts/inline-build-memory.sh [SIZE_MB] [BUILDS]
# BUILDS (default 1) are pushed at once. SLIPWAY_BIN runs that binary
# instead of building this checkout (to measure another commit).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
size_mb=${1:-100}
builds=${2:-1}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT

if [ -n "${SLIPWAY_BIN:-}" ]; then cp "$SLIPWAY_BIN" "$tmp/slipway"; else go build -o "$tmp/slipway" ./cmd/slipway; fi
mkdir -p "$tmp/app"
printf 'web: ./server\n' >"$tmp/app/Procfile"
head -c $((size_mb << 20)) /dev/urandom >"$tmp/app/blob"
tar czf "$tmp/app.tgz" -C "$tmp/app" .
{ printf '{"url":"data:application/gzip;base64,'; base64 -w0 "$tmp/app.tgz"; printf '"}'; } >"$tmp/body.json"
echo "archive $(stat -c %s "$tmp/app.tgz") bytes, JSON body $(stat -c %s "$tmp/body.json") bytes, $builds at once"

port=$((20000 + RANDOM % 20000))
SLIPWAY_TOKEN=measure "$tmp/slipway" serve --listen 127.0.0.1:$port --router-listen 127.0.0.1:0 \
  --data-dir "$tmp/data" --max-slug-size $(((size_mb + 16) << 20)) --log-level warn >"$tmp/serve.log" 2>&1 &
pid=$!
api() { curl -sf -H 'Authorization: Bearer measure' -H 'Content-Type: application/json' "$@"; }
for _ in $(seq 100); do api "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
api -X POST "http://127.0.0.1:$port/apps" -d '{"name":"mem"}' >/dev/null
sleep 1
before=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

(
  peak=0
  while kill -0 $pid 2>/dev/null; do
    h=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^go_memstats_heap_inuse_bytes/ {printf "%d", $2}')
    [ -n "$h" ] && [ "$h" -gt "$peak" ] && peak=$h && echo "$peak" >"$tmp/heap"
    sleep 0.1
  done
) &
sampler=$!

start=$(date +%s.%N)
ids=() posts=()
for i in $(seq "$builds"); do
  api -X POST "http://127.0.0.1:$port/apps/mem-default/builds" --data-binary @"$tmp/body.json" >"$tmp/build$i.json" &
  posts+=($!)
done
wait "${posts[@]}"
for i in $(seq "$builds"); do ids+=("$(sed 's/^{"id":"\([^"]*\)".*/\1/' "$tmp/build$i.json")"); done
for id in "${ids[@]}"; do
  for _ in $(seq 600); do
    st=$(api "http://127.0.0.1:$port/apps/mem-default/builds/$id" | sed 's/.*"status":"\([a-z]*\)".*/\1/')
    [ "$st" = succeeded ] || [ "$st" = failed ] && break
    sleep 0.2
  done
  echo "build $id: $st"
done
took=$(echo "$(date +%s.%N) - $start" | bc)
sleep 0.3
peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
after=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
kill $sampler 2>/dev/null || true
echo "RSS before: $((before / 1024)) MiB; peak RSS (VmHWM): $((peak / 1024)) MiB; RSS after: $((after / 1024)) MiB"
echo "peak Go heap in use (sampled): $(($(cat "$tmp/heap" 2>/dev/null || echo 0) >> 20)) MiB; push to succeeded: ${took}s"
