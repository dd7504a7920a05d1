#!/usr/bin/env bash
# The scale test (`make scale`): starts a k8s-lab cluster of
# its own, three `slipway serve --runtime kubernetes` on one fresh
# PostgreSQL schema, and drives them with scripts/scale (see there); then
# stops the cluster. Not part of `go test ./...`.
#
#   SCALE_APPS (1000)        apps, each with 2 or 3 web dynos
#   SCALE_INFLIGHT (100)     releases in flight at once
#   SCALE_RESTARTS (100)     apps restarted (rolling) in the third wave
#   SCALE_IDLE (1m)          idle phase, for API requests per idle app
#   SCALE_LEASE_TTL (15s)    the servers' --lease-ttl
#   SCALE_SCRAPE (3s)        how often each server's /metrics is read; each read of
#                            an app never deployed lists the cluster (see BENCHMARKS.md)
#   SCALE_DATABASE_URL       PostgreSQL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable);
#                            a fresh schema is made in it and dropped at the end
#   SCALE_BENCHMARKS         file the figures are appended to (BENCHMARKS.md; "-" for none)
#   K8SLAB_HOME              the k8s-lab scripts (/work/shared/k8s-lab)
#   K8SLAB_DIR               the cluster's state (/tmp/k8slab-scale: not the lab other tests use)
#   K8SLAB_BIN               its binaries (/tmp/k8slab/bin, from the lab's build.sh)
#   K8SLAB_API_PORT, K8SLAB_ETCD_PORT, K8SLAB_ETCD_PEER_PORT (6543, 2479, 2480)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

apps=${SCALE_APPS:-1000}
lab_home=${K8SLAB_HOME:-/work/shared/k8s-lab}
export K8SLAB_DIR=${K8SLAB_DIR:-/tmp/k8slab-scale}
export K8SLAB_BIN=${K8SLAB_BIN:-/tmp/k8slab/bin}
export K8SLAB_API_PORT=${K8SLAB_API_PORT:-6543} K8SLAB_ETCD_PORT=${K8SLAB_ETCD_PORT:-2479} K8SLAB_ETCD_PEER_PORT=${K8SLAB_ETCD_PEER_PORT:-2480}
export K8SLAB_QPS=${K8SLAB_QPS:-200}
# 250 pods a node; each app has up to 3 web pods and one more while it rolls out.
export K8SLAB_NODES=${K8SLAB_NODES:-$(( (apps * 4 + 249) / 250 + 1 ))}
mkdir -p "$K8SLAB_DIR"
if [ ! -f "$K8SLAB_DIR/kwok-stages.yaml" ]; then
  cp "$(dirname "$K8SLAB_BIN")/kwok-stages.yaml" "$K8SLAB_DIR/kwok-stages.yaml"
fi

work=$(mktemp -d /tmp/slipway-scale.XXXXXX)
cleanup() {
  bash "$lab_home/down.sh" --purge >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/slipway" ./cmd/slipway
go build -o "$work/scale" ./scripts/scale
bash "$lab_home/up.sh"

bench=${SCALE_BENCHMARKS:-BENCHMARKS.md}
[ "$bench" = "-" ] && bench=
cmdline="K8SLAB_NODES=$K8SLAB_NODES K8SLAB_QPS=$K8SLAB_QPS SCALE_APPS=$apps"
for v in SCALE_INFLIGHT SCALE_RESTARTS SCALE_IDLE SCALE_LEASE_TTL SCALE_SCRAPE; do
  [ -n "${!v:-}" ] && cmdline="$cmdline $v=${!v}"
done
KUBECONFIG=$K8SLAB_DIR/kubeconfig SLIPWAY_BIN=$work/slipway SCALE_WORKDIR=$work/run \
  SCALE_BENCHMARKS=$bench SCALE_COMMAND="$cmdline make scale" "$work/scale"
