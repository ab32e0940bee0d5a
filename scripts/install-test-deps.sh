#!/usr/bin/env bash
# install-test-deps.sh installs, as root, the Debian packages that the
# tests drive and are missing. umoci, skopeo, mmdebstrap, buildah,
# busybox-static, zstd, setcap (libcap2-bin) and setfattr (attr) build the
# test images; the pull tests start their own docker-registry servers on
# 127.0.0.1; mkfs.xfs (xfsprogs) makes the reflink file system for the
# copy tests. libisal.so.2 (libisal2) is the gzip decoder that strata
# loads in process. igzip (isal) is the program it runs when the library
# is missing. The tests compare both with Go's decoder.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(umoci skopeo mmdebstrap buildah busybox-static zstd libcap2-bin attr docker-registry xfsprogs isal libisal2)
missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
