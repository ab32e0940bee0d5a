#!/usr/bin/env bash
# quickstart.sh - the main job on a fresh Debian machine, as root: install
# the tools, build strata and a real busybox image (made by umoci from
# Debian's busybox-static), import it, unpack it, mount it and run a shell
# inside with chroot.
#
#   sudo ./scripts/quickstart.sh
#
# STRATA_ROOT (default /var/lib/strata) is the store it uses.
set -euo pipefail

cd "$(dirname "$0")/.."
export STRATA_ROOT=${STRATA_ROOT:-/var/lib/strata}
images=${STRATA_IMAGES:-/var/tmp/strata-images}

if [ "$(id -u)" != 0 ]; then
  echo "quickstart.sh: run as root: it mounts overlayfs and installs packages" >&2
  exit 1
fi

# sudo's secure_path leaves out the Go toolchain's usual home.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

echo "== build strata"
mkdir -p bin
go build -o bin/strata ./cmd/strata

echo "== build the busybox image with umoci"
./scripts/build-images.sh busybox

echo "== import, unpack, mount, run"
mnt=$(mktemp -d /tmp/strata-quickstart.XXXXXX)
cleanup() {
  bin/strata umount "$mnt" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT

bin/strata import --name busybox:latest "$images/busybox"
bin/strata unpack busybox:latest
bin/strata mount busybox:latest "$mnt"
chroot "$mnt" /bin/sh -c 'echo hello from strata'
