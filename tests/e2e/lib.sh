# shellcheck shell=bash
# Sourced by the e2e scripts. Everything in them runs as an ordinary user: mmdebstrap in its
# unshare mode, the image layout in a user namespace, pibake and QEMU. Root, when the scripts are
# started as root (CI), only prepares the machine and then hands over to an unprivileged user.

# e2e_as_user "$@": when root, prepares the fixtures that need root and re-runs the calling script
# as $PIBAKE_E2E_USER (default nobody):
#   - subordinate uid/gid ranges for that user (mmdebstrap --mode=unshare and `unshare --map-auto`)
#   - the qemu-aarch64 binfmt handler (mmdebstrap runs arm64 maintainer scripts through it)
#   - a cache dir the user owns (default /var/cache/pibake-e2e)
# Returns at once when not root.
e2e_as_user() {
  [ "$(id -u)" = 0 ] || return 0
  local user=${PIBAKE_E2E_USER:-nobody} f
  local first
  touch /etc/subuid /etc/subgid
  # The first range (from 1000000) that no other user's subordinate ids overlap.
  first=$(awk -F: '$2 + $3 > m { m = $2 + $3 } END { print (m > 1000000 ? m : 1000000) }' /etc/subuid /etc/subgid)
  for f in /etc/subuid /etc/subgid; do
    grep -q "^$user:" "$f" || echo "$user:$first:65536" >> "$f"
  done
  # Set-up errors are failures (exit 1 with the reason), never a silent skip later on.
  if [ "$(dpkg --print-architecture 2>/dev/null)" != arm64 ]; then
    [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
      { echo "FAIL (e2e): cannot mount binfmt_misc on /proc/sys/fs/binfmt_misc" >&2; exit 1; }
    # Without update-binfmts (a missing tool) make-rootfs-image.sh reports the missing handler: a skip.
    if ! grep -qs enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 && command -v update-binfmts >/dev/null; then
      update-binfmts --enable qemu-aarch64 ||
        { echo "FAIL (e2e): update-binfmts --enable qemu-aarch64 failed (is qemu-user-static installed?)" >&2; exit 1; }
    fi
  fi
  export PIBAKE_E2E_CACHE=${PIBAKE_E2E_CACHE:-/var/cache/pibake-e2e}
  mkdir -p "$PIBAKE_E2E_CACHE/home"
  chown -R "$user" "$PIBAKE_E2E_CACHE"
  if [ -n "${PIBAKE_TEST_TMP:-}" ]; then mkdir -p "$PIBAKE_TEST_TMP" && chmod 1777 "$PIBAKE_TEST_TMP"; fi
  exec runuser -u "$user" -- env HOME="$PIBAKE_E2E_CACHE/home" bash "$0" "$@"
}

# ns_root CMD...: CMD as root of a user namespace that maps this user to 0 and its subordinate
# ids to 1..65535, so files keep their owners (what `tar -p` and `mke2fs -d` need).
ns_root() { unshare --map-auto --map-root-user --setuid 0 --setgid 0 "$@"; }

# e2e_need_unshare: exit 77 unless this user can map a full uid range in a user namespace.
e2e_need_unshare() {
  if ! command -v unshare >/dev/null || ! command -v newuidmap >/dev/null; then
    echo "e2e: unshare/newuidmap missing (apt-get install util-linux uidmap)" >&2; exit 77
  fi
  ns_root true 2>/dev/null ||
    { echo "e2e: $(id -un) cannot map subordinate ids (no /etc/subuid entry?)" >&2; exit 77; }
}
