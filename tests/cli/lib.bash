# Shared helpers for the CLI tests: a scratch directory, running pibake as an unprivileged user
# (the product must never need root), fixture images, and checks with independent tools.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin
: "${PIBAKE:?PIBAKE must name the pibake binary}"
: "${PIBAKE_SOURCE_DIR:?PIBAKE_SOURCE_DIR must name the source tree}"
export SOURCE_DATE_EPOCH=1700000000

TEST_NAME=$(basename "$0" .sh)
mkdir -p "${PIBAKE_TEST_TMP:-/tmp}"
SCRATCH=$(mktemp -d "${PIBAKE_TEST_TMP:-/tmp}/$TEST_NAME.XXXXXX")
chmod 0777 "$SCRATCH"   # the unprivileged user writes here
SERVER_PID=""
trap '[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null; rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"
mkdir -p home && chmod 0777 home

fail() { echo "FAIL ($TEST_NAME): $*" >&2; exit 1; }
# skip REASON: exit 77 ("Skipped" in CTest). Under CI=true a skip is a failure with the reason, so a
# CI machine that lacks a tool or a machine feature cannot stay green without running the test.
skip() {
  if [ "${CI:-}" = true ]; then fail "cannot run under CI=true (a skip is a failure there): $*"; fi
  echo "SKIP ($TEST_NAME): $*" >&2
  exit 77
}
require_tool() { for t in "$@"; do command -v "$t" >/dev/null || skip "$t is not installed"; done; }
note() { echo "-- $*"; }

# Runs pibake as "nobody" when the tests run as root, so any need for privileges fails the test.
# Output goes to $SCRATCH/out.log (stdout) and $SCRATCH/err.log (stderr); returns pibake's status.
pibake() {
  local rc=0
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
      env HOME="$SCRATCH/home" "$PIBAKE" "$@" >"$SCRATCH/out.log" 2>"$SCRATCH/err.log" || rc=$?
  else
    HOME="$SCRATCH/home" "$PIBAKE" "$@" >"$SCRATCH/out.log" 2>"$SCRATCH/err.log" || rc=$?
  fi
  return $rc
}
pibake_ok() { pibake "$@" || { cat "$SCRATCH/out.log" "$SCRATCH/err.log" >&2; fail "pibake $* exited $?"; }; }

# make_base OUT.img [make-base-image.sh options]: an Ubuntu-shaped fixture image, readable by all.
make_base() {
  require_tool sfdisk mkfs.vfat mke2fs mcopy
  bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-base-image.sh" "$@" >/dev/null || fail "make-base-image.sh $* failed"
  chmod 0644 "$1"
}

# fake_upstream [http]: upstream-shaped artifacts in $SCRATCH/upstream, and mirrors pointing there
# appended to ./cluster.yaml (created when missing). file:// mirrors: no network at all; with
# "http", served by start_server on 127.0.0.1 (SERVER_URL, SERVER_LOG: every download is logged).
fake_upstream() {
  bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-artifacts.sh" "$SCRATCH/upstream" >/dev/null
  chmod -R a+rX "$SCRATCH/upstream"
  local base=file://$SCRATCH/upstream
  if [ "${1:-}" = http ]; then
    start_server "$SCRATCH/upstream"
    base=$SERVER_URL
  fi
  cat >> cluster.yaml <<YAML
mirrors:
  "https://dl.k8s.io": "$base/dl.k8s.io"
  "https://github.com": "$base/github.com"
  "https://registry.k8s.io": "$base/registry/registry.k8s.io"
  "https://ghcr.io": "$base/registry/ghcr.io"
YAML
  chmod 0644 cluster.yaml
}

# start_server DIR [http_server.py options]: serves DIR on 127.0.0.1; sets SERVER_URL, SERVER_LOG.
start_server() {
  require_tool python3
  local root=$1; shift
  rm -f "$SCRATCH/server.port"; SERVER_LOG=$SCRATCH/server.log; : > "$SERVER_LOG"
  python3 "$PIBAKE_SOURCE_DIR/tests/fixtures/http_server.py" "$root" "$SCRATCH/server.port" "$SERVER_LOG" "$@" &
  SERVER_PID=$!
  for _ in $(seq 1 500); do [ -s "$SCRATCH/server.port" ] && break; sleep 0.01; done
  [ -s "$SCRATCH/server.port" ] || fail "the test HTTP server did not start"
  # shellcheck disable=SC2034  # read by the tests that source this file
  SERVER_URL=http://127.0.0.1:$(cat "$SCRATCH/server.port")
}
stop_server() { [ -z "$SERVER_PID" ] || { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; }; SERVER_PID=""; }

# part_offset, part_size, root_cat, boot_cat: shared with the e2e test.
# shellcheck source=tests/fixtures/image-read.sh
. "$PIBAKE_SOURCE_DIR/tests/fixtures/image-read.sh"

# Every check an image must pass, with tools that did not write it.
check_image() {
  local img=$1 off size
  sfdisk -V "$img" >/dev/null || fail "$img: sfdisk -V rejects the partition table"
  off=$(part_offset "$img" 2)
  e2fsck -fn "$img?offset=$off" >"$SCRATCH/e2fsck.log" 2>&1 || { cat "$SCRATCH/e2fsck.log" >&2; fail "$img: e2fsck -fn found problems"; }
  off=$(part_offset "$img" 1); size=$(part_size "$img" 1)
  dd if="$img" of="$SCRATCH/boot.part" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$size" status=none
  fsck.fat -n "$SCRATCH/boot.part" >"$SCRATCH/fsck.log" 2>&1 || { cat "$SCRATCH/fsck.log" >&2; fail "$img: fsck.fat -n found problems"; }
  rm -f "$SCRATCH/boot.part"
}

# yaml_docs FILE: "apiVersion kind" ("-" where absent) of each document of FILE, read with
# python3-yaml (not pibake's writer) by the Kubernetes stand-in's parser; fails the test when FILE
# does not parse or holds no document.
yaml_docs() {
  local out
  out=$(PIBAKE_STAND_IN_LOG="$SCRATCH/yaml-docs" sh "$PIBAKE_SOURCE_DIR/tests/e2e/k8s-stand-in.sh" yaml-docs "$1") ||
    fail "$1 is not valid YAML"
  echo "$out" | cut -d' ' -f1-2
}
# assert_yaml FILE "apiVersion kind"...: FILE's documents are exactly these, in this order.
assert_yaml() {
  local file=$1 got
  shift
  got=$(yaml_docs "$file") || exit 1
  assert_eq "$(echo "$got" | tr '\n' ';')" "$(printf '%s;' "$@")" "$file: documents (apiVersion kind)"
}

assert_eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"; }
assert_contains() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 does not contain '$2'"; }; }
# assert_no_images [DIR]: a failed build left nothing in DIR (default out): no image, no temporary,
# no bmap, no spec, nothing but pibake's lock file (or no DIR at all).
assert_no_images() {
  local found
  found=$(find "${1:-out}" -mindepth 1 ! -name .pibake.lock 2>/dev/null || true)
  [ -z "$found" ] || fail "unexpected files left behind: $found"
}
