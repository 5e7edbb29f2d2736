#!/usr/bin/env bash
# Start N extra Docker engines on this machine for the multi-engine tests and bench
# (issue #14): each with its own socket, data root, exec root and pidfile, and the same
# network-less flags as the main engine (no bridge, no iptables, no IP forwarding).
# The test image sandboxd/busybox is loaded into each from the main engine.
#
#   scripts/start-engines.sh [N]       start engines 1..N (default 3); idempotent
#   scripts/start-engines.sh stop      stop them (data roots are kept)
#
# Engine k listens on unix:///run/sandboxd-engines/k/docker.sock.
set -euo pipefail
base=/run/sandboxd-engines
state=${SANDBOXD_ENGINES_STATE:-/var/lib/sandboxd-engines}

if [ "${1:-}" = stop ]; then
  for pidfile in "$base"/*/docker.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  exit 0
fi

n=${1:-3}
for k in $(seq 1 "$n"); do
  dir="$base/$k"
  sock="unix://$dir/docker.sock"
  mkdir -p "$dir" "$state/$k"
  if docker -H "$sock" version >/dev/null 2>&1; then
    continue
  fi
  setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false \
    -H "$sock" --data-root "$state/$k" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
    >"$dir/dockerd.log" 2>&1 </dev/null &
done
for k in $(seq 1 "$n"); do
  sock="unix://$base/$k/docker.sock"
  ok=0
  for _ in $(seq 1 120); do
    if docker -H "$sock" version >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.5
  done
  if [ "$ok" != 1 ]; then
    echo "start-engines: engine $k did not answer within 60 s" >&2
    tail -20 "$base/$k/dockerd.log" >&2 || true
    exit 1
  fi
  want=$(docker image inspect -f '{{.Id}}' sandboxd/busybox)
  have=$(docker -H "$sock" image inspect -f '{{.Id}}' sandboxd/busybox 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    docker save sandboxd/busybox | docker -H "$sock" load -q >/dev/null
  fi
done
echo "start-engines: $n engines up under $base"
