#!/usr/bin/env bash
# Install (if missing) and start a Docker engine for sandboxd, with the flags this
# workplace requires: no bridge, no iptables, no IP forwarding. Sandboxes use
# network mode "none", so nothing they run can reach any network.
#
# Idempotent: if an engine already answers on /var/run/docker.sock it does nothing.
set -euo pipefail

if ! command -v dockerd >/dev/null 2>&1 || ! command -v busybox >/dev/null 2>&1 \
   || ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io busybox-static debootstrap >/dev/null
fi

if docker version >/dev/null 2>&1; then
  echo "start-docker: engine already running"
  exit 0
fi

log=${DOCKERD_LOG:-/var/log/sandboxd-dockerd.log}
# setsid: the engine outlives this script and the shell that ran it.
setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false \
  >"$log" 2>&1 </dev/null &

for _ in $(seq 1 120); do
  if docker version >/dev/null 2>&1; then
    echo "start-docker: engine up ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 0.5
done
echo "start-docker: dockerd did not answer within 60 s; see $log" >&2
tail -20 "$log" >&2 || true
exit 1
