#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: runs every benchmark and the load test and
# writes their figures with the commands that printed them. `make bench`.
# With SLIPWAY_TEST_DATABASE_URL set, the API benchmarks run on PostgreSQL
# too.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
out=BENCHMARKS.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # title, command...
  local title=$1; shift
  echo "== $title: $*" >&2
  {
    echo
    echo "## $title"
    echo
    echo '```'
    echo "\$ $*"
    "$@" 2>&1 | grep -E '^(Benchmark|cpu:)|stress_e2e_test.go:[0-9]+: +(load:|server|goroutines|dyno|  )' | sed -E 's/^ +stress_e2e_test.go:[0-9]+: //' || true
    echo '```'
  } >>"$tmp/body"
}

run "Release API: create and list (SQLite$( [ -n "${SLIPWAY_TEST_DATABASE_URL:-}" ] && echo ' and PostgreSQL'))" \
  go test ./api -run '^$' -bench 'ReleaseCreate|ReleaseList' -benchtime 200x
run "Rollout: wall time against the app's own start time (local runtime)" \
  go test ./runtime/local -run '^$' -bench Rollout -benchtime 5x
run "Router: added latency and throughput against calling a dyno directly" \
  go test ./runtime/local -run '^$' -bench Router -benchtime 2s

# Idle RSS: a fresh server on an empty data dir, after it settles.
go build -o "$tmp/slipway" ./cmd/slipway
SLIPWAY_TOKEN=bench "$tmp/slipway" serve --listen 127.0.0.1:0 --router-listen 127.0.0.1:0 --data-dir "$tmp/data" >"$tmp/serve.log" 2>&1 &
pid=$!
sleep 3
idle=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
kill $pid; wait $pid 2>/dev/null || true
{
  echo
  echo "## Memory"
  echo
  echo "Idle: \`slipway serve\` on an empty data dir, 3 s after start: **$((idle / 1024)) MiB** RSS."
} >>"$tmp/body"
run "Memory under load: 100 apps × 2 dynos, 20 releases in flight" \
  env SLIPWAY_STRESS=1 go test ./cmd/slipway -run 'TestStressLoad_ManyAppsConcurrentReleases' -count=1 -v

{
  echo "# Benchmarks"
  echo
  echo "Regenerate with \`make bench\` (scripts/bench.sh). Last run $(date -u +%Y-%m-%dT%H:%MZ) on"
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
  echo "$(go version | cut -d' ' -f3). Figures are from one run on a shared 2-core machine: read"
  echo "them as orders of magnitude, and compare runs made on the same machine."
  echo
  echo "Targets: release create p50 < 2 ms; list of 10,000 releases < 100 ms;"
  echo "rollout overhead < 50 ms per dyno beyond the app's own start; router p50 added latency"
  echo "< 0.3 ms and throughput ≥ 70% of direct."
  echo
  echo "Reading them: PostgreSQL figures are taken right after seeding, before autovacuum has"
  echo "analyzed the table (a page of 20 then costs ~10 ms instead of ~0.2 ms). The router test"
  echo "runs client, router and app on the same 2 cores: the routed path makes two loopback HTTP"
  echo "hops where the direct one makes one, which is why its throughput stays near half."
  cat "$tmp/body"
} >"$out"
echo "wrote $out" >&2
