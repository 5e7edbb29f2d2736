#!/usr/bin/env bash
# Start N extra Docker engines on this machine for the multi-engine tests and bench
# (issue #14): each with its own socket, data root, exec root and pidfile, and the same
# network-less flags as the main engine (no bridge, no iptables, no IP forwarding).
# The test image sandboxd/busybox is loaded into each from the main engine.
#
#   scripts/start-engines.sh [N]       start engines 1..N (default 3); idempotent
#   scripts/start-engines.sh tls       start one more on tcp://127.0.0.1:23760 that only
#                                      speaks TLS with client certificates (--tlsverify);
#                                      CA, server and client certificates are made here
#   scripts/start-engines.sh stop      stop them (data roots are kept)
#
# Engine k listens on unix:///run/sandboxd-engines/k/docker.sock; the TLS engine's client
# files are /run/sandboxd-engines/tls/{ca,cert,key}.pem.
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

wait_for() {  # wait_for NAME DOCKER-ARGS...
  local name=$1; shift
  for _ in $(seq 1 120); do
    if docker "$@" version >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "start-engines: engine $name did not answer within 60 s" >&2
  tail -20 "$base/$name/dockerd.log" >&2 || true
  exit 1
}

load_image() {  # load_image DOCKER-ARGS...
  local want have
  want=$(docker image inspect -f '{{.Id}}' sandboxd/busybox)
  have=$(docker "$@" image inspect -f '{{.Id}}' sandboxd/busybox 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    docker save sandboxd/busybox | docker "$@" load -q >/dev/null
  fi
}

if [ "${1:-}" = tls ]; then
  dir="$base/tls"
  mkdir -p "$dir" "$state/tls"
  tls=(--tlsverify --tlscacert "$dir/ca.pem" --tlscert "$dir/cert.pem" --tlskey "$dir/key.pem"
       -H tcp://127.0.0.1:23760)
  if [ ! -f "$dir/cert.pem" ]; then
    (
      cd "$dir"
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=sandboxd test CA" \
        -keyout ca-key.pem -out ca.pem 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem \
        -out server.csr 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
        -extfile server.ext -out server-cert.pem 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=sandboxd" -keyout key.pem -out client.csr 2>/dev/null
      printf 'extendedKeyUsage=clientAuth\n' >client.ext
      openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
        -extfile client.ext -out cert.pem 2>/dev/null
    )
  fi
  if ! docker "${tls[@]}" version >/dev/null 2>&1; then
    setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false \
      --tlsverify --tlscacert "$dir/ca.pem" --tlscert "$dir/server-cert.pem" --tlskey "$dir/server-key.pem" \
      -H tcp://127.0.0.1:23760 --data-root "$state/tls" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
      >"$dir/dockerd.log" 2>&1 </dev/null &
  fi
  wait_for tls "${tls[@]}"
  load_image "${tls[@]}"
  echo "start-engines: TLS engine up on tcp://127.0.0.1:23760"
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
  wait_for "$k" -H "unix://$base/$k/docker.sock"
  load_image -H "unix://$base/$k/docker.sock"
done
echo "start-engines: $n engines up under $base"
