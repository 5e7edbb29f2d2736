#!/usr/bin/env bash
# Build sandboxd's sandbox images without any container registry (Debian's mirror only):
#   sandboxd/busybox  tiny image from Debian's busybox-static, for fast tests
#   sandboxd/base     Debian bookworm minbase + full python3 (venv, pip), git, procps, less,
#                     vim-tiny, ncurses-bin, ca-certificates, with a non-root user "sandbox"
#                     (uid 1000) and workdir /home/sandbox
# Each image carries the label org.sandboxd.image-version. An image is built when it is
# missing or its label differs from the version below (so a machine that still has an older
# image gets the new one); pass --force to rebuild anyway. A rebuild is imported under a
# temporary tag and then retagged in one step, so sandboxes being created meanwhile see
# either the old image or the new one, never none.
set -euo pipefail

# Bump a version whenever the image's contents change.
BUSYBOX_VERSION=1
BASE_VERSION=2
BASE_PACKAGES=git,python3,python3-venv,python3-pip,procps,less,vim-tiny,ncurses-bin,ca-certificates

force=0
[ "${1:-}" = "--force" ] && force=1

# current IMAGE VERSION: true when IMAGE exists with label org.sandboxd.image-version=VERSION
current() {
  [ "$force" = 0 ] || return 1
  local have
  have=$(docker image inspect "$1" \
    --format '{{ index .Config.Labels "org.sandboxd.image-version" }}' 2>/dev/null) || return 1
  [ "$have" = "$2" ]
}

# publish IMAGE VERSION KIND: import the tar stream on stdin as IMAGE, atomically
publish() {
  local image=$1 version=$2 kind=$3 tmp="$1:build-$$" old
  shift 3
  old=$(docker image inspect "$image:latest" --format '{{.Id}}' 2>/dev/null || true)
  docker import "$@" -c "LABEL org.sandboxd.image=$kind org.sandboxd.image-version=$version" \
    - "$tmp" >/dev/null
  docker tag "$tmp" "$image:latest"
  docker rmi "$tmp" >/dev/null
  # The old image goes once no container uses it any more; until then it stays, untagged.
  [ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
}

work=$(mktemp -d /tmp/sandboxd-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

if current sandboxd/busybox "$BUSYBOX_VERSION"; then
  echo "build-images: sandboxd/busybox present (version $BUSYBOX_VERSION)"
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
  tar -C "$root" -c . | publish sandboxd/busybox "$BUSYBOX_VERSION" busybox \
    -c 'USER sandbox' -c 'WORKDIR /home/sandbox' -c 'ENV PATH=/bin'
  echo "build-images: built sandboxd/busybox (version $BUSYBOX_VERSION)"
fi

if current sandboxd/base "$BASE_VERSION"; then
  echo "build-images: sandboxd/base present (version $BASE_VERSION)"
else
  started=$SECONDS
  root="$work/base"
  mirror=${DEBIAN_MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "build-images: building sandboxd/base (version $BASE_VERSION) from $mirror; takes a few minutes"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
      tail -30 "$work/debootstrap.log" >&2; exit 1; }
  chroot "$root" useradd --create-home --uid 1000 --shell /bin/bash sandbox
  # vim-tiny registers itself as the editor; make `vi`, `vim` and `editor` all find it.
  ln -sf /usr/bin/vim.tiny "$root/usr/local/bin/vim"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | publish sandboxd/base "$BASE_VERSION" base \
    -c 'USER sandbox' -c 'WORKDIR /home/sandbox' \
    -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8'
  size=$(docker image inspect sandboxd/base --format '{{.Size}}')
  echo "build-images: built sandboxd/base (version $BASE_VERSION, $((size / 1000000)) MB, $((SECONDS - started)) s)"
fi
