#!/usr/bin/env bash
# First-boot packages end to end (issue 12, docs/packages.md) against an apt archive on 127.0.0.1
# built with Debian's tools (tests/fixtures/make-apt-archive.sh: dpkg-deb, apt-ftparchive, an
# InRelease signed by a throwaway gpg key passed through packages.keyring), and a base image whose
# dpkg status already lists some of them. Checked with debugfs: each card holds exactly the missing
# closure for its role, byte-identical to the archive's .debs; the lock pins them; an --offline
# rebuild works from the cache with the server stopped. Then the bad inputs: a tampered InRelease,
# a tampered Packages index, a tampered .deb, an unknown key: each a clear error naming it,
# non-zero exit, no image, nothing unverified in the cache.
source "$(dirname "$0")/lib.bash"
require_tool debugfs sfdisk e2fsck fsck.fat mtype python3 apt-get apt-cache apt-ftparchive dpkg-deb gpg

# The base already has socat, iptables (and its libbar): only conntrack, libfoo, the gateway's
# chrony, isc-dhcp-server and libdhcp, and the control plane's etcd-client are missing.
mkdir -p rootdir/var/lib/dpkg
for p in base-files socat iptables libbar; do
  printf 'Package: %s\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.0\nDescription: x\n\n' "$p"
done > rootdir/var/lib/dpkg/status
make_base base.img --root-dir rootdir

printf 'nodes: {count: 2}\n' > cluster.yaml
fake_upstream http
archive=$SCRATCH/upstream/ports
bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-apt-archive.sh" "$SCRATCH/pristine" resolute >/dev/null ||
  fail "make-apt-archive.sh failed"
cp -a "$SCRATCH/pristine" "$archive"
chmod -R a+rX "$SCRATCH/pristine" "$archive"
cat >> cluster.yaml <<YAML
  "https://ports.ubuntu.com/ubuntu-ports": "$SERVER_URL/ports"
packages:
  keyring: [test-key.asc]
YAML
cp "$archive/test-key.asc" .   # a path relative to the spec's folder
chmod 0644 cluster.yaml test-key.asc

pibake_ok build --base-image base.img --out out
cache=$SCRATCH/home/.cache/pibake

# card_debs IMG: the names in /var/cache/pibake/debs, sorted, one line.
card_debs() {
  debugfs -R "ls -l /var/cache/pibake/debs" "$1?offset=$(part_offset "$1" 2)" 2>/dev/null |
    awk '$NF ~ /\.deb$/ {print $NF}' | sort | tr '\n' ' '
}
assert_eq "$(card_debs out/node-1.img)" \
  "chrony_4.6_arm64.deb conntrack_1.0_arm64.deb etcd-client_3.5_arm64.deb isc-dhcp-server_4.4_arm64.deb libdhcp_2.0_arm64.deb libfoo_1.1_arm64.deb " \
  "the gateway's .debs (closure without recommends, libfoo from -updates, libdhcp from -security)"
assert_eq "$(card_debs out/node-2.img)" "conntrack_1.0_arm64.deb libfoo_1.1_arm64.deb " "the worker's .debs"
declare -A pool=([chrony_4.6_arm64.deb]=release [conntrack_1.0_arm64.deb]=release [isc-dhcp-server_4.4_arm64.deb]=release
  [etcd-client_3.5_arm64.deb]=release
  [libdhcp_2.0_arm64.deb]=security [libfoo_1.1_arm64.deb]=updates)
for img in out/node-1.img out/node-2.img; do
  check_image "$img"
  off=$(part_offset "$img" 2)
  for deb in $(card_debs "$img"); do
    rm -f got
    debugfs -R "dump /var/cache/pibake/debs/$deb $SCRATCH/got" "$img?offset=$off" >/dev/null 2>&1
    cmp -s got "$archive/pool/${pool[$deb]}/$deb" || fail "$img: $deb differs from the archive's"
    debugfs -R "stat /var/cache/pibake/debs/$deb" "$img?offset=$off" 2>/dev/null |
      grep -q "Mode:  0644.*" || fail "$img: $deb is not 0644"
    debugfs -R "stat /var/cache/pibake/debs/$deb" "$img?offset=$off" 2>/dev/null |
      grep -q "User:     0   Group:     0" || fail "$img: $deb is not owned by root"
  done
done
grep -q "node-1.img: node-1 .*packages [1-9][0-9]* KiB in /var/cache/pibake/debs" out.log ||
  { cat out.log; fail "the summary does not give node-1's package bytes"; }

# The lock pins each .deb (version, URL under the upstream archive, sha256, size) and each set.
lock=pibake-state/lock.yaml
python3 - "$lock" "$archive" <<'PY' || fail "the lock file does not pin the packages"
import hashlib, os, sys, yaml
lock = yaml.safe_load(open(sys.argv[1]))
pk = lock["packages"]
want = {"conntrack": ("1.0", "release"), "libfoo": ("1:1.1", "updates"), "chrony": ("4.6", "release"),
        "isc-dhcp-server": ("4.4", "release"), "libdhcp": ("2.0", "security"), "etcd-client": ("3.5", "release")}
assert set(pk) == set(want), pk
for name, (version, pocket) in want.items():
    p = pk[name]
    f = f"{sys.argv[2]}/pool/{pocket}/{name}_{version.split(':')[-1]}_arm64.deb"
    assert p["version"] == version, p
    assert p["url"] == f"https://ports.ubuntu.com/ubuntu-ports/pool/{pocket}/{os.path.basename(f)}", p
    assert p["sha256"] == hashlib.sha256(open(f, "rb").read()).hexdigest(), p
    assert p["size"] == os.path.getsize(f), p
sets = lock["package_sets"]
assert sorted(sets["gateway-control-plane"]["debs"]) == sorted(want), sets
assert sorted(sets["node"]["debs"]) == ["conntrack", "libfoo"], sets
assert sets["gateway-control-plane"]["requested"] == "chrony conntrack etcd-client iptables isc-dhcp-server socat", sets
PY

# Server stopped, --offline: node-2 regenerated from the cache and the lock, identical.
stop_server
before=$(sha256sum out/node-2.img | cut -d' ' -f1)
rm out/node-2.img
pibake_ok build --base-image base.img --out out --node node-2 --offline
assert_eq "$(sha256sum out/node-2.img | cut -d' ' -f1)" "$before" "node-2 regenerated offline"

# Bad input. Each case: a fresh cluster folder (no lock), the archive altered, and an empty cache
# for the packages; the build must fail naming the culprit, write no image, keep nothing bad.
start_server "$SCRATCH/upstream"   # again, on a new port
bad_case() {  # NAME EXPECTED-MESSAGE: run in $SCRATCH/NAME with the archive as altered
  local name=$1 want=$2
  mkdir -p "$SCRATCH/$name" && cd "$SCRATCH/$name" || exit 1
  sed "s|http://127.0.0.1:[0-9]*|$SERVER_URL|" "$SCRATCH/cluster.yaml" > cluster.yaml
  cp "$SCRATCH/test-key.asc" . && chmod 0777 . && chmod 0644 cluster.yaml test-key.asc
  rm -rf "$cache/sha256" "$cache/partial"
  if pibake build --base-image "$SCRATCH/base.img" --out out; then fail "$name: the build succeeded"; fi
  grep -qF -- "$want" "$SCRATCH/err.log" || { cat "$SCRATCH/err.log" >&2; fail "$name: no error naming '$want'"; }
  assert_no_images out
  # Nothing unverified in the cache: every blob is what its name says, nothing partial is kept.
  for f in "$cache"/sha256/*; do
    [ -f "$f" ] || continue
    case $f in *.verified) continue ;; esac
    assert_eq "$(sha256sum "$f" | cut -d' ' -f1)" "$(basename "$f")" "$name: cached blob"
  done
  [ -z "$(ls -A "$cache/partial" 2>/dev/null)" ] || fail "$name: partial downloads kept: $(ls "$cache/partial")"
  cd "$SCRATCH" || exit 1
  rm -rf "$archive" && cp -a "$SCRATCH/pristine" "$archive" && chmod -R a+rX "$archive"
}

# An InRelease whose signed text was changed: the signature no longer verifies.
sed -i 's/^Suite: resolute-updates$/Suite: resolute-updatez/' "$archive/dists/resolute-updates/InRelease"
bad_case bad-inrelease "resolute-updates InRelease"
grep -q "not signed\|signatures were invalid\|BADSIG" "$SCRATCH/err.log" || { cat "$SCRATCH/err.log"; fail "bad-inrelease: no signature error"; }

# A Packages index that no longer matches the hashes the signed InRelease gives.
for f in "$archive"/dists/resolute/main/binary-arm64/Packages*; do
  if [[ $f == *.gz ]]; then zcat "$f" | sed 's/^Size: 676$/Size: 677/' | gzip -9n > "$f.new" && mv "$f.new" "$f"
  else sed -i 's/^Size: 676$/Size: 677/' "$f"; fi
done
bad_case bad-packages "main/binary-arm64/Packages"
grep -qi "hash sum mismatch\|unexpected size\|Hashes of expected file" "$SCRATCH/err.log" || { cat "$SCRATCH/err.log"; fail "bad-packages: no hash error"; }

# A .deb that differs from what the signed index says (same size, other bytes).
deb=$archive/pool/release/conntrack_1.0_arm64.deb
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-1]^=1; open(sys.argv[1],"wb").write(b)' "$deb"
bad_case bad-deb "package conntrack 1.0"
assert_contains "$SCRATCH/err.log" "checksum mismatch"

# An archive signed by a key nobody listed in packages.keyring.
sed -i '/^packages:/,/^[a-z]/{/keyring/d}' "$SCRATCH/cluster.yaml"
bad_case unknown-key "resolute InRelease"
grep -q "NO_PUBKEY\|not signed" "$SCRATCH/err.log" || { cat "$SCRATCH/err.log"; fail "unknown-key: no key error"; }
# A keyring that does not exist: refused in preflight, before any download or state dir.
mkdir -p nokey && printf 'nodes: {count: 2}\npackages:\n  keyring: [missing.asc]\n' > nokey/cluster.yaml
chmod 0777 nokey && chmod 0644 nokey/cluster.yaml
if pibake build -c nokey/cluster.yaml --base-image base.img --out nokey/out; then fail "a missing keyring was accepted"; fi
assert_contains "$SCRATCH/err.log" "packages.keyring[0] nokey/missing.asc: No such file or directory"
[ ! -e nokey/pibake-state ] || fail "a missing keyring left a state dir"

# `network.dhcp_server: auto` goes by the archive: one without isc-dhcp-server (as a release that
# dropped it) gives the gateway Kea, though the base says Ubuntu 26.04 (whose archive has it); the
# lock keeps the choice, so an --offline rebuild makes the same gateway.
PIBAKE_APT_ARCHIVE_DHCP=kea bash "$PIBAKE_SOURCE_DIR/tests/fixtures/make-apt-archive.sh" "$SCRATCH/upstream/kea-ports" resolute >/dev/null ||
  fail "make-apt-archive.sh (kea) failed"
chmod -R a+rX "$SCRATCH/upstream/kea-ports"
mkdir -p kea && chmod 0777 kea
{ sed -e "s|http://127.0.0.1:[0-9]*|$SERVER_URL|" -e '/^packages:/,$d' cluster.yaml | sed "s|$SERVER_URL/ports\"|$SERVER_URL/kea-ports\"|"
  printf 'packages:\n  keyring: [test-key.asc]\n'; } > kea/cluster.yaml
cp "$SCRATCH/upstream/kea-ports/test-key.asc" kea/ && chmod 0644 kea/cluster.yaml kea/test-key.asc
(cd kea && pibake_ok build --base-image ../base.img --out out)
assert_contains out.log "the archive does not have isc-dhcp-server: the gateway runs kea-dhcp4-server"
assert_eq "$(card_debs kea/out/node-1.img)" \
  "chrony_4.6_arm64.deb conntrack_1.0_arm64.deb etcd-client_3.5_arm64.deb kea-dhcp4-server_2.6_arm64.deb libdhcp_2.0_arm64.deb libfoo_1.1_arm64.deb " \
  "the gateway's .debs with an archive that has Kea only"
assert_contains <(root_cat kea/out/node-1.img /usr/local/sbin/pibake-firstboot) 'PACKAGES="chrony conntrack etcd-client iptables kea-dhcp4-server socat"'
root_cat kea/out/node-1.img /etc/kea/kea-dhcp4.conf | python3 -c 'import json, sys; c = json.load(sys.stdin)["Dhcp4"]; assert c["subnet4"][0]["subnet"] == "10.0.0.0/24", c' ||
  fail "the Kea gateway has no valid /etc/kea/kea-dhcp4.conf"
if debugfs -R "stat /etc/dhcp/dhcpd.conf" "kea/out/node-1.img?offset=$(part_offset kea/out/node-1.img 2)" 2>&1 | grep -q "Inode:"; then
  fail "the Kea gateway also carries dhcpd.conf"
fi
stop_server
kea_first=$(sha256sum kea/out/node-1.img | cut -d' ' -f1)
(cd kea && pibake_ok build --base-image ../base.img --out again --node node-1 --offline)
assert_eq "$(sha256sum kea/again/node-1.img | cut -d' ' -f1)" "$kea_first" "the Kea gateway rebuilt offline from the lock"
note "packages: closure, card, lock, offline, bad InRelease / Packages / .deb / key, DHCP server by the archive all checked"
