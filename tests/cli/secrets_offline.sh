#!/usr/bin/env bash
# Issue 17, kind 6: no secret can be tested offline from what is not secret. Two builds that
# differ only in the Wi-Fi passphrase (and the login password hash) must leave every output that
# others can read identical, so nothing readable tells a guessed passphrase from the real one;
# and the running node mounts system-boot (which holds the seed) root-only.
source "$(dirname "$0")/lib.bash"
require_tool debugfs python3 jq

make_base base.img
spec() {  # spec PASSPHRASE HASH-SALT: a gateway with a Wi-Fi uplink and a login password hash
  local hash
  hash=$(openssl passwd -6 -salt "$2" "login-$1")
  cat > cluster.yaml <<YAML
network:
  uplink: {interface: wlan0, wifi: {ssid: home, password: "$1", country: GB}}
access: {password_hash: "$hash"}
YAML
}
for guess in "correct horse battery" "wrong guess number 1"; do
  spec "$guess" "salt$(echo "$guess" | wc -c)"
  fake_upstream
  pibake_ok build --nodes 2 --base-image base.img --out "out-${guess// /-}"
done
a="out-correct-horse-battery"; b="out-wrong-guess-number-1"

for img in node-1.img node-2.img; do
  # The images themselves differ (they must: the seed differs) and are owner-only; so are their maps.
  assert_eq "$(stat -c %a "$a/$img")" 600 "$img mode"
  assert_eq "$(stat -c %a "$a/$img.bmap")" 600 "$img.bmap mode (its checksums cover system-boot)"
  # Every file others may read: identical in both builds.
  for f in "$a"/*; do
    [ "$(( 0$(stat -c %a "$f") & 044 ))" = 0 ] && continue
    cmp -s "$f" "$b/${f##*/}" || fail "${f##*/} is readable by others and depends on the passphrase"
  done
  # node.json (0644 on the node) records no digest of a file holding a secret; the instance-id
  # (readable in meta-data and /var/lib/cloud) does not depend on the secrets either.
  for out in "$a" "$b"; do root_cat "$out/$img" /etc/pibake/node.json > "$out-$img.json"; done
  for seed in /user-data /network-config; do
    entry=$(jq -c --arg p "$seed" '.files[] | select(.path == $p)' "$a-$img.json")
    [ -n "$entry" ] || fail "$img: node.json does not list $seed"
    if [ "$seed" = /user-data ] || [ "$img" = node-1.img ]; then   # node-1 is the Wi-Fi gateway
      echo "$entry" | jq -e '.secret == true and (has("sha256") | not)' >/dev/null ||
        fail "$img: node.json records a digest of $seed, which holds a secret: $entry"
    fi
  done
  jq -e '[.files[] | select(.sha256 != null) | .path] | length > 0' "$a-$img.json" >/dev/null ||
    fail "$img: node.json lists no digest at all (the check above would be vacuous)"
  cmp -s <(jq -S 'del(.files[] | select(.secret) | .size)' "$a-$img.json") \
         <(jq -S 'del(.files[] | select(.secret) | .size)' "$b-$img.json") ||
    fail "$img: node.json differs beyond secret sizes between the two passphrases"
  assert_eq "$(boot_cat "$a/$img" /meta-data)" "$(boot_cat "$b/$img" /meta-data)" "$img meta-data (instance-id)"
  # The running node mounts system-boot with a restrictive fmask.
  root_cat "$a/$img" /etc/systemd/system/boot-firmware.mount.d/10-pibake-fmask.conf > dropin
  assert_contains dropin "fmask=0177"
done
if command -v systemd-analyze >/dev/null; then
  # The drop-in is valid unit syntax for a mount unit (checked against a stand-in boot-firmware.mount).
  mkdir -p units/boot-firmware.mount.d
  printf '[Mount]\nWhat=/dev/disk/by-label/system-boot\nWhere=/boot/firmware\nType=vfat\n' > units/boot-firmware.mount
  cp dropin units/boot-firmware.mount.d/10-pibake-fmask.conf
  SYSTEMD_UNIT_PATH="$SCRATCH/units:" systemd-analyze verify --man=no units/boot-firmware.mount > verify.log 2>&1 || true
  grep -qi "fmask\|Options" verify.log && { cat verify.log >&2; fail "systemd-analyze rejects the drop-in"; }
fi
echo "ok: readable outputs identical across passphrases; .bmap 0600; no digest of seed secrets; fmask set"
