#!/usr/bin/env bash
# Build sandboxd's sandbox images offline (no registry is reachable):
#   sandboxd/busybox  tiny image from Debian's busybox-static, for fast tests
#   sandboxd/base     Debian bookworm minbase + python3, git, ca-certificates, with a
#                     non-root user "sandbox" (uid 1000) and workdir /home/sandbox
# Each image is built only when missing; pass --force to rebuild.
set -euo pipefail

force=0
[ "${1:-}" = "--force" ] && force=1

have() { [ "$force" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

work=$(mktemp -d /tmp/sandboxd-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

if have sandboxd/busybox; then
  echo "build-images: sandboxd/busybox present"
else
  root="$work/busybox"
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/home/sandbox" "$root/proc" "$root/dev" "$root/sys"
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\nsandbox:x:1000:\n' >"$root/etc/group"
  chown 1000:1000 "$root/home/sandbox"
  tar -C "$root" -c . | docker import \
    -c 'USER sandbox' -c 'WORKDIR /home/sandbox' -c 'ENV PATH=/bin' \
    -c 'LABEL org.sandboxd.image=busybox' - sandboxd/busybox >/dev/null
  echo "build-images: built sandboxd/busybox"
fi

if have sandboxd/base; then
  echo "build-images: sandboxd/base present"
else
  root="$work/base"
  mirror=${DEBIAN_MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  debootstrap --variant=minbase --include=git,python3-minimal,ca-certificates \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
      tail -30 "$work/debootstrap.log" >&2; exit 1; }
  chroot "$root" useradd --create-home --uid 1000 --shell /bin/bash sandbox
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    -c 'USER sandbox' -c 'WORKDIR /home/sandbox' \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8' \
    -c 'LABEL org.sandboxd.image=base' - sandboxd/base >/dev/null
  echo "build-images: built sandboxd/base"
fi
