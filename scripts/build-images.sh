#!/usr/bin/env bash
# build-images.sh builds strata's test images with tools that strata's
# authors did not write (mmdebstrap, umoci, buildah, skopeo from Debian's
# packages), so that the unpacker is tested on layers, whiteouts and diff IDs
# made by other people's code.
#
#   usage: build-images.sh [--force] [STAGE...]
#
# Stages (no STAGE means all, in this order): busybox debian debian-zstd
# archives. A stage builds the stages it depends on first. The archives stage
# is archive-busybox, archive-debian and archive-debian-zstd, each of which
# can be named alone.
#
# Outputs under $STRATA_IMAGES (default /var/tmp/strata-images):
#   NAME/             OCI image layout with one tag, "latest"
#   NAME.oci.tar      skopeo oci-archive of NAME
#   NAME.docker.tar   skopeo docker-archive of NAME (layers uncompressed);
#                     debian-zstd has none because it would repeat debian's
#   work/             scratch space: bundles, layer tars, buildah's store
#   .stamps/STAGE     stamp of the last successful build of STAGE
#
# Caching: a stage is skipped when its outputs exist and its stamp matches
# the sha256 of this script, the stage name and the index.json of each stage
# it depends on. Editing this script therefore rebuilds everything; --force
# rebuilds the named stages and their dependencies.
#
# Measured build times (2 vCPU VM, Debian 12, kernel 6.18, ext4 on a virtual
# disk, packages from deb.debian.org; two runs of --force, all stages):
#   busybox         2.3 s
#   debian          31 to 34 s, mostly mmdebstrap and apt-get downloads
#   debian-zstd     1.1 s
#   archives        2.0 to 3.0 s for the three archive stages
#   cached          0.06 s for all stages when nothing changed
# A fresh machine first spends time in apt-get install (not measured here).
# Both runs gave the same manifest digests for all three images and the same
# docker-archive bytes. The oci-archive tars differ, because skopeo stamps
# their tar headers with the current time. Layers 1 and 2 of debian change
# when the Debian mirror serves newer packages.
#
# Benchmark stages, built only when named (bench/run names them): many-files
# (node_modules from `npm ci` of bench/images/many-files, about 40,000 small
# files; needs npm and the npm registry), big-file and big-file-text (one
# layer with one 1 GiB file from bench/gendata, random or text; needs go).
#
# Room for more stages: a stage NAME needs a stage_NAME function (dashes
# become underscores), an entry in STAGE_DEPS when it builds on another
# stage, and an entry in ALL_STAGES unless it is built only when named.
#
# Needs root: mmdebstrap --mode=root, chroot, mknod and setcap all do. Runs
# without a terminal (CI=true, no stdin). buildah and skopeo run in a private
# mount namespace with tmpfs on /var/lib and /run, so their caches and locks
# never land on the host.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
IMAGES=${STRATA_IMAGES:-/var/tmp/strata-images}
# Not a dot directory: buildah names an image it reads from a layout after
# the layout's path, and a reference component may not start with a dot.
WORK=$IMAGES/work
STAMPS=$IMAGES/.stamps
SUITE=bookworm

# A fixed epoch makes config and history times and the clamped mtimes equal
# across builds: 2024-01-01T00:00:00Z.
export SOURCE_DATE_EPOCH=1704067200
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
export LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive TMPDIR=$WORK/tmp
IMAGE_PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

BUILDAH=(buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run"
  --storage-driver overlay)

ALL_STAGES=(busybox debian debian-zstd archives)
declare -A STAGE_DEPS=(
  [debian-zstd]=debian
  [archive-busybox]=busybox
  [archive-debian]=debian
  [archive-debian-zstd]=debian-zstd
  [archives]="archive-busybox archive-debian archive-debian-zstd"
)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build-images.sh: %s\n' "$*" >&2; exit 1; }

# in_ns CMD...: run CMD in a private mount namespace with empty tmpfs on
# /var/lib and /run. containers/image keeps a blob-info cache under
# /var/lib/containers and locks under /run/containers; both vanish here.
in_ns() {
  unshare --mount --propagation private -- bash -c '
    mount -t tmpfs strata-images /var/lib
    mount -t tmpfs strata-images /run
    exec "$@"' in_ns "$@"
}

# Packages that provide the tools this script drives.
PACKAGES=(umoci skopeo mmdebstrap buildah busybox-static zstd libcap2-bin attr)

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "install ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# clamp DIR: set every mtime newer than SOURCE_DATE_EPOCH to SOURCE_DATE_EPOCH,
# symlinks included, so that a repack records the same times on every build.
clamp() {
  find "$1" -xdev -newer "$WORK/epoch" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# new_image NAME: make $WORK/NAME/oci with one empty image tagged latest.
new_image() {
  rm -rf "${WORK:?}/$1"
  mkdir -p "$WORK/$1"
  umoci init --layout "$WORK/$1/oci"
  umoci new --image "$WORK/$1/oci:latest"
}

# repack NAME BUNDLE CREATED_BY: add the bundle's changes as a new layer.
repack() {
  clamp "$2/rootfs"
  umoci repack --refresh-bundle --image "$WORK/$1/oci:latest" \
    --history.created "$CREATED" --history.author strata \
    --history.created_by "$3" "$2"
}

# set_config LAYOUT CMD: set the fields a runnable image needs.
set_config() {
  umoci config --image "$1:latest" --no-history --created "$CREATED" \
    --author strata --architecture amd64 --os linux \
    --config.env "$IMAGE_PATH_ENV" --config.cmd "$2"
  umoci gc --layout "$1"
}

# publish NAME LAYOUT: replace $IMAGES/NAME with a copy of LAYOUT.
publish() {
  rm -rf "${IMAGES:?}/$1.new"
  cp -a "$2" "$IMAGES/$1.new"
  rm -rf "${IMAGES:?}/$1"
  mv "$IMAGES/$1.new" "$IMAGES/$1"
  log "published $IMAGES/$1"
}

stage_busybox() {
  local oci=$WORK/busybox/oci bundle=$WORK/busybox/bundle r version
  new_image busybox
  umoci unpack --image "$oci:latest" "$bundle"
  r=$bundle/rootfs

  install -d -m 0755 "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,var}
  install -d -m 0700 "$r/root"
  install -d -m 1777 "$r/tmp"
  # ldd fails on a static binary, which is what a chroot with no libc needs.
  if ldd /bin/busybox >/dev/null 2>&1; then
    die "/bin/busybox is linked dynamically: install busybox-static"
  fi
  install -m 0755 /bin/busybox "$r/bin/busybox"
  # Without -s, --install makes hard links rather than symlinks.
  chroot "$r" /bin/busybox --install

  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
  printf '%s\n' 'root:*:19723:0:99999:7:::' 'nobody:*:19723:0:99999:7:::' >"$r/etc/shadow"
  chmod 0600 "$r/etc/shadow"
  echo busybox >"$r/etc/hostname"

  version=$(dpkg-query -W -f='${Version}' busybox-static)
  repack busybox "$bundle" "busybox --install (busybox-static $version)"
  set_config "$oci" /bin/sh
  publish busybox "$oci"
}

stage_debian() {
  local w=$WORK/debian bundle=$WORK/debian/bundle version
  new_image debian

  log "debian layer 1: mmdebstrap --variant=minbase $SUITE"
  version=$(dpkg-query -W -f='${Version}' mmdebstrap)
  mmdebstrap --quiet --mode=root --variant=minbase --format=tar "$SUITE" "$w/rootfs.tar"
  umoci raw add-layer --image "$w/oci:latest" --history.created "$CREATED" \
    --history.author strata \
    --history.created_by "mmdebstrap --variant=minbase $SUITE (mmdebstrap $version)" \
    "$w/rootfs.tar"
  rm -f "$w/rootfs.tar"
  umoci unpack --image "$w/oci:latest" "$bundle"

  log "debian layer 2: apt-get install in a chroot"
  debian_layer2 "$bundle/rootfs"
  repack debian "$bundle" "apt-get install -y --no-install-recommends ca-certificates"

  log "debian layer 3: whiteouts, modes, links, xattrs, special files"
  debian_layer3 "$bundle/rootfs"
  repack debian "$bundle" "rm -rf, chmod, chown, ln, setcap, setfattr, mkfifo (build-images.sh)"
  set_config "$w/oci" /bin/bash

  log "debian layer 4: buildah commit from an overlay mount"
  rm -rf "$WORK/buildah" "$w/final"
  mkdir -p "$WORK/buildah"
  in_ns bash "$SCRIPT" --in-namespace debian_layer4
  rm -rf "$WORK/buildah"
  publish debian "$w/final"
}

# debian_layer2 ROOTFS installs a small package with the image's own apt-get,
# which needs the host's resolver and /proc. /proc is mounted in a private
# mount namespace, so it is gone when the namespace ends even if this fails.
debian_layer2() {
  local r=$1 saved=$WORK/debian/resolv.conf.saved
  rm -f "$saved"
  if [ -e "$r/etc/resolv.conf" ] || [ -L "$r/etc/resolv.conf" ]; then
    mv "$r/etc/resolv.conf" "$saved"
  fi
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"

  unshare --mount --propagation private -- bash -euo pipefail -c '
    r=$1
    mount -t proc proc "$r/proc"
    trap "umount \"$r/proc\"" EXIT
    env -u TMPDIR chroot "$r" apt-get update -qq
    env -u TMPDIR chroot "$r" apt-get install -y -qq --no-install-recommends \
      ca-certificates >&2
    env -u TMPDIR chroot "$r" apt-get clean' layer2 "$r"

  # apt-get's logs and ldconfig's aux-cache hold times and inode numbers, so
  # keeping them would change the layer on every build.
  rm -rf "$r"/var/lib/apt/lists/* "$r/etc/resolv.conf" "$r/var/cache/ldconfig/aux-cache" \
    "$r"/var/log/apt/*.log "$r/var/log/dpkg.log" "$r/var/log/alternatives.log"
  if [ -e "$saved" ] || [ -L "$saved" ]; then
    mv "$saved" "$r/etc/resolv.conf"
  fi
}

# debian_layer3 ROOTFS makes the changes that exercise an unpacker's edge
# cases. umoci turns each removal into a whiteout and never writes an opaque
# marker, which is why layer 4 exists.
debian_layer3() {
  local r=$1 e=$1/opt/edge long_dir long_file
  mkdir -p "$e"

  # Whiteouts: a directory with hundreds of entries, every child of another
  # directory, files from layers 1 and 2, and a symlink.
  local pem
  rm -rf "$r/usr/share/doc"
  rm -rf "$r"/usr/share/man/*
  rm "$r/var/log/faillog" "$r/var/log/lastlog" "$r/etc/ssl/certs/ca-certificates.crt"
  pem=$(find "$r/etc/ssl/certs" -name '*.pem' -type l | sort | sed -n 1p)
  rm "$pem"

  # Mode-only changes of lower-layer entries.
  chmod 0750 "$r/var/log"
  chmod 0600 "$r/etc/debian_version"
  chmod 0444 "$r/etc/issue"

  # Type changes: file to symlink, directory to file, file to directory.
  rm "$r/etc/motd"
  ln -s /run/motd.dynamic "$r/etc/motd"
  rmdir "$r/var/opt"
  echo "a file where a directory was" >"$r/var/opt"
  rm "$r/etc/issue.net"
  mkdir "$r/etc/issue.net"
  echo "a directory where a file was" >"$r/etc/issue.net/README"

  # A hard link to a lower-layer file, and a group of three names in two
  # directories.
  ln "$r/usr/bin/env" "$r/usr/local/bin/env-link"
  mkdir -p "$e/links/sub"
  echo "three names, one inode" >"$e/links/one"
  ln "$e/links/one" "$e/links/two"
  ln "$e/links/one" "$e/links/sub/three"

  # setuid and setgid files, a setgid directory and a sticky directory.
  install -m 4755 "$r/usr/bin/env" "$e/setuid-env"
  install -m 2755 "$r/usr/bin/env" "$e/setgid-env"
  install -d -m 2775 -g 50 "$e/setgid-dir"
  install -d -m 1777 "$e/sticky-dir"

  # Extended attributes: a file capability and a user xattr.
  install -m 0755 "$r/usr/bin/true" "$e/cap-true"
  setcap cap_net_bind_service+ep "$e/cap-true"
  echo "has a user xattr" >"$e/xattr-file"
  setfattr -n user.strata.test -v layer3 "$e/xattr-file"

  # Owners other than root.
  mkdir -p "$r/home/builder/work"
  echo "owned by 1000" >"$r/home/builder/work/file"
  chown -R 1000:1000 "$r/home/builder"
  echo "owned by nobody" >"$e/nobody-file"
  chown 65534:65534 "$e/nobody-file"
  chmod 0604 "$e/nobody-file"

  # Special and empty entries.
  mkfifo -m 0644 "$e/fifo"
  : >"$e/empty-file"
  mkdir "$e/empty-dir"

  # Names: a path past 255 bytes with a 200-byte name (PAX records), UTF-8
  # with spaces, and a name that is not valid UTF-8 (Latin-1 "café").
  long_dir=$(printf 'd%.0s' {1..120})
  long_file=$(printf 'f%.0s' {1..200})
  mkdir -p "$e/long/$long_dir"
  echo "long name" >"$e/long/$long_dir/$long_file"
  echo "utf-8 name" >"$e/naïve café 名前.txt"
  echo "latin-1 name" >"$e/latin1-caf"$'\xe9'

  # Symlinks whose targets leave the root when resolved on the host.
  ln -s ../../../../../../../../etc/shadow "$e/escape-relative"
  ln -s /etc/shadow "$e/escape-absolute"
  ln -s ../../../../.. "$e/escape-dir"
  ln -s does-not-exist "$e/dangling"
  ln -s ../usr/share "$e/share-link"
}

# debian_layer4 runs inside in_ns: the overlay mount that buildah makes is
# visible only in that namespace. rm -rf of a lower directory followed by
# mkdir makes the kernel mark the new upper directory opaque
# (trusted.overlay.opaque), and buildah writes that as .wh..wh..opq.
debian_layer4() {
  local w=$WORK/debian src=/run/strata/debian-layer3 ctr mnt
  # buildah records the source layout's path in the manifest and history, so
  # it reads the layout from a fixed path on the namespace's own /run.
  mkdir -p "$src"
  mount --bind "$w/oci" "$src"
  trap '"${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true; umount "'"$src"'"' EXIT
  ctr=$("${BUILDAH[@]}" from --quiet --name strata-debian "oci:$src:latest")
  mnt=$("${BUILDAH[@]}" mount "$ctr")

  # An opaque directory over hundreds of lower entries, holding a new
  # directory whose name also exists below.
  rm -rf "$mnt/usr/share/locale"
  mkdir -m 0755 "$mnt/usr/share/locale"
  mkdir -p "$mnt/usr/share/locale/de/LC_MESSAGES"
  echo "replaces every lower locale" >"$mnt/usr/share/locale/de/LC_MESSAGES/README"
  # A whiteout of a file that layer 3 changed, and a new file.
  rm -f "$mnt/etc/issue"
  echo "layer 4" >"$mnt/etc/strata-layer4"

  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  "${BUILDAH[@]}" config \
    --created-by "rm -rf /usr/share/locale && mkdir -p /usr/share/locale/de/LC_MESSAGES" "$ctr"
  "${BUILDAH[@]}" commit --quiet --format oci --disable-compression=false \
    --timestamp "$SOURCE_DATE_EPOCH" "$ctr" "oci:$w/final:latest" >/dev/null
}

stage_debian_zstd() {
  rm -rf "$WORK/debian-zstd"
  mkdir -p "$WORK/debian-zstd"
  in_ns skopeo copy --quiet --dest-compress --dest-compress-format zstd \
    "oci:$IMAGES/debian:latest" "oci:$WORK/debian-zstd/oci:latest"
  publish debian-zstd "$WORK/debian-zstd/oci"
}

# archive NAME: write NAME.oci.tar and, unless the layers are zstd (which a
# docker-archive cannot hold, so skopeo would store debian's tars again),
# NAME.docker.tar.
archive() {
  local name=$1 tmp=$WORK/archive-$1
  rm -rf "$tmp"
  mkdir -p "$tmp"
  in_ns skopeo copy --quiet "oci:$IMAGES/$name:latest" "oci-archive:$tmp/$name.oci.tar:latest"
  if [ "$name" != debian-zstd ]; then
    in_ns skopeo copy --quiet "oci:$IMAGES/$name:latest" \
      "docker-archive:$tmp/$name.docker.tar:strata/$name:latest"
    mv "$tmp/$name.docker.tar" "$IMAGES/$name.docker.tar"
  fi
  mv "$tmp/$name.oci.tar" "$IMAGES/$name.oci.tar"
  rmdir "$tmp"
}

# The benchmark stages below are built only when named, because they take
# minutes and 2.5 GiB: bench/run names them.

# stage_many_files packs node_modules from `npm ci` of a fixed lock file:
# about 40,000 small files, the shape of a JavaScript application image.
stage_many_files() {
  local oci=$WORK/many-files/oci bundle=$WORK/many-files/bundle src
  src=$(dirname "$SCRIPT")/../bench/images/many-files
  if ! command -v npm >/dev/null 2>&1; then
    log "install npm"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >&2
  fi
  new_image many-files
  umoci unpack --image "$oci:latest" "$bundle"
  mkdir -p "$bundle/rootfs/app"
  cp "$src/package.json" "$src/package-lock.json" "$bundle/rootfs/app/"
  # The cache outlives new_image, so a rebuild downloads nothing.
  (cd "$bundle/rootfs/app" && env -u TMPDIR npm ci --cache "$WORK/npm-cache" \
    --logs-dir "$WORK/npm-cache/_logs" --update-notifier=false --ignore-scripts \
    --no-audit --no-fund --loglevel=warn >&2)
  # npm's own copy of the lock file records install times.
  rm -f "$bundle/rootfs/app/node_modules/.package-lock.json"
  repack many-files "$bundle" "npm ci (bench/images/many-files/package-lock.json)"
  set_config "$oci" /bin/sh
  publish many-files "$oci"
}

# big_file NAME KIND: make NAME, one layer holding a 1 GiB file that
# bench/gendata writes. gzip cannot shrink KIND random, and gzip -6 shrinks
# KIND text about 2.5 times.
big_file() {
  local name=$1 kind=$2 oci=$WORK/$1/oci bundle=$WORK/$1/bundle repo
  repo=$(dirname "$SCRIPT")/..
  command -v go >/dev/null 2>&1 || die "stage $name needs go on PATH to build bench/gendata"
  new_image "$name"
  (cd "$repo" && go build -o "$WORK/$name/gendata" ./bench/gendata)
  umoci unpack --image "$oci:latest" "$bundle"
  mkdir -p "$bundle/rootfs/data"
  "$WORK/$name/gendata" -kind "$kind" -size $((1 << 30)) >"$bundle/rootfs/data/$kind.bin"
  repack "$name" "$bundle" "gendata -kind $kind -size 1073741824 (bench/gendata)"
  set_config "$oci" /bin/sh
  publish "$name" "$oci"
  rm -rf "${WORK:?}/$name"
}

stage_big_file() { big_file big-file random; }
stage_big_file_text() { big_file big-file-text text; }

stage_archive_busybox() { archive busybox; }
stage_archive_debian() { archive debian; }
stage_archive_debian_zstd() { archive debian-zstd; }
stage_archives() { :; }

# outputs STAGE: print the files whose presence means STAGE was built.
outputs() {
  case $1 in
  archives) ;;
  archive-debian-zstd) echo "$IMAGES/debian-zstd.oci.tar" ;;
  archive-*) printf '%s\n' "$IMAGES/${1#archive-}.oci.tar" "$IMAGES/${1#archive-}.docker.tar" ;;
  *) echo "$IMAGES/$1/index.json" ;;
  esac
}

# stamp STAGE: print the hash that identifies what STAGE would build now.
stamp() {
  local dep
  {
    sha256sum <"$SCRIPT"
    echo "$1"
    for dep in ${STAGE_DEPS[$1]:-}; do
      if [ -e "$IMAGES/$dep/index.json" ]; then sha256sum <"$IMAGES/$dep/index.json"; fi
    done
  } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  local f
  [ "$FORCE" = 0 ] || return 1
  [ "$(cat "$STAMPS/$1" 2>/dev/null)" = "$(stamp "$1")" ] || return 1
  for f in $(outputs "$1"); do
    [ -e "$f" ] || return 1
  done
}

declare -A VISITED=()
REPORT=()
PACKAGES_CHECKED=0

run_stage() {
  local stage=$1 dep fn start seconds
  [ -z "${VISITED[$stage]:-}" ] || return 0
  for dep in ${STAGE_DEPS[$stage]:-}; do
    run_stage "$dep"
  done
  VISITED[$stage]=1

  if up_to_date "$stage"; then
    REPORT+=("$(printf '%-20s cached' "$stage")")
    return 0
  fi
  log "build $stage"
  if [ "$PACKAGES_CHECKED" = 0 ]; then
    install_packages
    PACKAGES_CHECKED=1
  fi
  rm -f "$STAMPS/$stage"
  fn=stage_${stage//-/_}
  start=$EPOCHREALTIME
  "$fn"
  stamp "$stage" >"$STAMPS/$stage"
  seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  REPORT+=("$(printf '%-20s built in %ss' "$stage" "$seconds")")
}

# main runs the named stages. The whole script is parsed before main starts,
# so editing the file during a build does not change the running build.
main() {
  local arg s
  FORCE=0
  stages=()
  for arg in "$@"; do
    case $arg in
    --force) FORCE=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $arg (see --help)" ;;
    *)
      declare -F "stage_${arg//-/_}" >/dev/null || die "unknown stage $arg (see --help)"
      stages+=("$arg")
      ;;
    esac
  done
  [ ${#stages[@]} -gt 0 ] || stages=("${ALL_STAGES[@]}")

  [ "$(id -u)" = 0 ] || die "run as root: mmdebstrap, chroot, mknod and setcap need it"
  case $(readlink -m "$IMAGES")/ in
  /var/lib/* | /run/*) die "STRATA_IMAGES=$IMAGES is hidden by the tmpfs that buildah and skopeo run under" ;;
  esac
  exec </dev/null
  mkdir -p "$IMAGES" "$WORK" "$STAMPS"

  # Parallel callers (test binaries, a developer's shell) take turns.
  exec 9>"$IMAGES/.build.lock"
  if ! flock -n 9; then
    log "wait for another build-images.sh to finish ($IMAGES/.build.lock)"
    flock 9
  fi
  rm -rf "$TMPDIR"
  mkdir -p "$TMPDIR"

  touch -d "@$SOURCE_DATE_EPOCH" "$WORK/epoch"
  for s in "${stages[@]}"; do
    run_stage "$s"
  done

  printf '%s\n' "${REPORT[@]}" >&2
  echo "images in $IMAGES:" >&2
  for s in "${!VISITED[@]}"; do
    outputs "$s"
  done | sort | sed 's#/index.json$#/#' >&2
}

# The buildah step re-enters the script inside the namespace that in_ns made.
if [ "${1:-}" = --in-namespace ]; then
  "$2"
  exit 0
fi
main "$@"
exit
