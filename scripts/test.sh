#!/usr/bin/env bash
# test.sh runs strata's checks: gofmt, go vet, staticcheck, go test and a
# bounded fuzz run. It runs every step, prints each tool's own output, and
# exits non-zero when any step failed.
#
#   usage: sudo scripts/test.sh [PACKAGE...]    (default ./...)
#
# As root it first builds the test images (scripts/build-images.sh, cached
# after the first run) and sets STRATA_REQUIRE_IMAGES=1, so a test whose image
# is missing fails instead of skipping. Run as another user, tests that need
# root or images skip with a reason.
#
# staticcheck is installed into $STRATA_TOOLS (default bin/tools in the
# repository, which git ignores) with the go command's own toolchain.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# sudo's secure_path leaves out the Go toolchain's usual home.
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
cd "$ROOT"
# v0.8.2 is staticcheck 2026.2.2, which builds and runs with Go 1.26.8.
STATICCHECK_VERSION=v0.8.2
TOOLS=${STRATA_TOOLS:-$ROOT/bin/tools}
GO_TEST_TIMEOUT=${GO_TEST_TIMEOUT:-20m}

packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(./...)
failed=()

step() { printf '\n== %s\n' "$*"; }

# check NAME CMD...: run CMD and record NAME when it fails.
check() {
  local name=$1
  shift
  if ! "$@"; then
    failed+=("$name")
  fi
}

gofmt_clean() {
  local out
  # gofmt with no file names would read stdin, hence xargs -r.
  if git rev-parse --git-dir >/dev/null 2>&1; then
    out=$(git ls-files -z -c -o --exclude-standard '*.go' | xargs -0 -r gofmt -l)
  else
    out=$(gofmt -l .)
  fi
  if [ -n "$out" ]; then
    printf 'not gofmt-formatted:\n%s\n' "$out"
    return 1
  fi
}

staticcheck_run() {
  local version
  version=$("$TOOLS/staticcheck" -version 2>/dev/null) || version=
  if [[ $version != *"(${STATICCHECK_VERSION#v})"* ]]; then
    echo "install staticcheck $STATICCHECK_VERSION into $TOOLS"
    GOBIN=$TOOLS go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" || return 1
  fi
  "$TOOLS/staticcheck" "${packages[@]}"
}

step gofmt
check gofmt gofmt_clean

step "go vet"
check "go vet" go vet "${packages[@]}"

step staticcheck
check staticcheck staticcheck_run

if [ "$(id -u)" = 0 ]; then
  step "test packages"
  check "install packages" bash scripts/install-test-deps.sh
  step "test images"
  check "build images" bash scripts/build-images.sh
  export STRATA_REQUIRE_IMAGES=1
else
  echo "not root: tests that need root or unbuilt images will skip"
fi

step "go test"
check "go test" go test -timeout "$GO_TEST_TIMEOUT" "${packages[@]}"

# Bounded fuzz runs. A target that is missing or does not build fails the
# step, so a renamed target cannot quietly stop being fuzzed.
step "fuzz"
fuzz() {
  local target=$1 pkg=$2 time=$3
  local listed
  # Capture the list first: grep -q would close the pipe early, and under
  # pipefail the killed go test would fail the check.
  listed=$(go test -list "^$target\$" "$pkg") || listed=
  if ! grep -qx "$target" <<<"$listed"; then
    echo "$pkg: fuzz target $target not found"
    failed+=("fuzz $target")
    return 0
  fi
  check "fuzz $target" go test -run '^$' -fuzz "^$target\$" -fuzztime "$time" "$pkg"
}
fuzz FuzzApply ./archive 60s
fuzz FuzzApplyLayers ./internal/layercases 60s

if [ ${#failed[@]} -gt 0 ]; then
  printf '\nFAILED: %s\n' "${failed[*]}"
  exit 1
fi
printf '\nall checks passed\n'
