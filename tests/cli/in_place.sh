#!/usr/bin/env bash
# Regenerating a node over its previous image edits that image in place (docs/speed.md,
# "Regenerating in place"). What must hold, each checked with cmp against a build into an empty
# directory, or against a copy taken before:
# - the edited image and its block map are byte for byte what a fresh build writes, for the same
#   spec and for a changed one (bmaptool checks the map, e2fsck and fsck.fat the filesystems);
# - a previous image changed since pibake wrote it, or with a second name, is not edited: the
#   base is copied as before, and the other name's file stays as it was;
# - a failure half-way (a write refused by RLIMIT_FSIZE) puts the previous image back at once;
# - a kill at an exact write (strace's fault injection sends SIGKILL at the Nth pwrite into the
#   image) leaves no image under the final name, and the next build into the directory puts the
#   previous one back exactly; when it cannot (its journal lost), it says so and removes it.
source "$(dirname "$0")/lib.bash"
require_tool e2fsck fsck.fat sfdisk debugfs mtype strace cmp bmaptool

make_base base.img
key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs0e6mPyyVZl4PzbJ3p1bYd3Tj9n9bO7zq1o6yJ9T3V me@laptop"
cat > cluster.yaml <<YAML
cluster: {name: stack, domain: cluster.home}
nodes: {count: 4}
network:
  subnet: 10.0.0.0/24
  dns: [1.1.1.1]
access:
  user: pi
  ssh_authorized_keys: ["$key"]
YAML
fake_upstream
# b.yaml: other DNS servers, no SSH key: other files on both filesystems of every node.
sed -e 's/dns: \[1.1.1.1\]/dns: [9.9.9.9, 149.112.112.112]/' -e '/ssh_authorized_keys/d' -e 's/  user: pi/  user: admin/' \
  cluster.yaml > b.yaml
cp cluster.yaml a.yaml
chmod 0644 a.yaml b.yaml

# fresh SPEC: node-3 built by SPEC into an empty directory fresh-SPEC/ (the reference).
fresh() {
  pibake_ok build -c "$1.yaml" --base-image base.img --out "fresh-$1" --node node-3
  if grep -q 'regenerated in place' out.log; then fail "a build into an empty directory claims to edit in place"; fi
}
# regen SPEC: regenerates node-3 into out/ with SPEC.
regen() { pibake_ok build -c "$1.yaml" --base-image base.img --out out --node node-3; }
# same_as SPEC: out/node-3.img and its block map are fresh-SPEC's, byte for byte.
same_as() {
  cmp out/node-3.img "fresh-$1/node-3.img" || fail "out/node-3.img differs from a fresh build of $1.yaml"
  cmp out/node-3.img.bmap "fresh-$1/node-3.img.bmap" || fail "out/node-3.img.bmap differs from a fresh build's"
}
in_place() { grep -q '^out/node-3.img: node-3 .*, regenerated in place (' out.log || fail "node-3 was not edited in place"; }
copied() { if grep -q 'regenerated in place' out.log; then fail "node-3 was edited in place: $1"; fi; }
no_leftovers() {
  local left
  left=$(find out -name '.*.in-place' -o -name '.*.undo' -o -name '.*.tmp')
  [ -z "$left" ] || fail "left behind: $left"
}

# The 4-node build first: it completes the state dir, which a node's image reflects (a node built
# before the cluster's first whole build differs from one built after it).
pibake_ok build -c a.yaml --base-image base.img --out out
fresh a
fresh b
[ -f out/.node-3.img.ranges ] || fail "no record of what was written beside out/node-3.img"
assert_eq "$(stat -c %a out/.node-3.img.ranges)" 600 "mode of the record"
same_as a
if cmp -s "fresh-a/node-3.img" "fresh-b/node-3.img"; then fail "a.yaml and b.yaml give the same node-3 image"; fi

note "in place, same spec, then a changed one"
regen a
in_place
same_as a
regen b
in_place
same_as b
check_image out/node-3.img
bmaptool copy --bmap out/node-3.img.bmap out/node-3.img card.img >/dev/null 2>&1 || fail "bmaptool rejects the edited image's block map"
rm -f card.img
no_leftovers

note "a failure half-way puts the previous image back at once"
# Writes past the root partition's start fail with EFBIG: the root filesystem's edit is refused
# half-way (its first blocks lie below the limit). Everything else a build writes is far smaller.
limit_kib=$(( $(part_offset out/node-3.img 2) / 1024 + 64 ))
rc=0; (ulimit -f "$limit_kib"; pibake build -c a.yaml --base-image base.img --out out --node node-3) || rc=$?
[ "$rc" != 0 ] || fail "the build went through despite the file-size limit"
assert_contains err.log "while writing the root filesystem (writable) (regenerating in place)"
assert_contains err.log "File too large"
assert_contains err.log "the previous image was put back"
same_as b
no_leftovers
regen a  # the failed edit dropped the record: copied, with a new record
copied "the previous build failed and dropped its record"
same_as a

note "an image changed since pibake wrote it is copied, not edited"
touch out/node-3.img
regen b
copied "out/node-3.img was touched after pibake wrote it"
same_as b
note "an image with a second name is copied, not edited, and the other name keeps its bytes"
ln out/node-3.img linked.img
regen a
copied "out/node-3.img has a second name"
same_as a
cmp linked.img fresh-b/node-3.img || fail "editing node-3 changed the file's other name"
rm -f linked.img  # (the old file's other name: out/node-3.img is a new file with its own record)

# traced STRACE-OPTION...: regenerates node-3 with b.yaml as lib.bash's pibake runs it (the same
# user and state dir), under strace tracing its pwrites into the image under its in-place name.
traced() {
  local run=("$PIBAKE" build -c b.yaml --base-image base.img --out out --node node-3)
  if [ "$(id -u)" = 0 ]; then
    run=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all env HOME="$SCRATCH/home" "${run[@]}")
  else
    run=(env HOME="$SCRATCH/home" "${run[@]}")
  fi
  strace -f -P "$SCRATCH/out/.node-3.img.in-place" -e trace=pwrite64 "$@" "${run[@]}" >out.log 2>err.log
}
# killed_at N: that regenerate, killed (SIGKILL, by strace's fault injection) at the Nth pwrite
# into the image; it must die there, leaving no image under the final name.
killed_at() {
  local rc=0
  traced -o strace.log -e inject=pwrite64:signal=KILL:when="$1" || rc=$?
  assert_eq "$rc" 137 "exit status of the build killed at write $1"
  [ ! -e out/node-3.img ] || fail "killed at write $1, out/node-3.img is under its final name"
  [ -f out/.node-3.img.in-place ] && [ -f out/.node-3.img.undo ] || fail "killed at write $1, no edit under way"
}
# The number of pwrites an edit from a.yaml to b.yaml makes into the image, counted on a run that
# is not killed (then put back to a.yaml).
traced -o count.log || { cat out.log err.log >&2; fail "the counted run failed"; }
in_place
writes=$(grep -c 'pwrite64(' count.log)
[ "$writes" -gt 4 ] || fail "only $writes writes counted into the in-place image"
rm -rf out && pibake_ok build -c a.yaml --base-image base.img --out out && same_as a
for n in 1 $((writes / 2)) "$writes"; do
  note "killed at write $n of $writes"
  killed_at "$n"
  if [ "$n" -gt 1 ] && cmp -s out/.node-3.img.in-place fresh-a/node-3.img; then
    fail "killed at write $n, the image was not edited yet: the kill proves nothing"
  fi
  if [ "$n" = "$writes" ]; then
    # Until a build puts it back, flash and inspect say where the image is and what to do.
    if pibake inspect out/node-3.img; then fail "inspect read an image that is mid-regenerate"; fi
    assert_contains err.log "out/node-3.img is missing: a pibake build is regenerating it in place, or was killed doing so (it waits as .node-3.img.in-place); run pibake build into out again"
    if pibake flash out/node-3.img card.img; then fail "flash wrote an image that is mid-regenerate"; fi
    assert_contains err.log "out/node-3.img is missing: a pibake build is regenerating it in place"
    if pibake flash out c1.img c2.img c3.img; then fail "flash of out/ went ahead one image short"; fi
    assert_contains err.log "out/node-3.img is missing: a pibake build is regenerating it in place"
    [ ! -e card.img ] && [ ! -e c1.img ] || fail "flash wrote a card while an image was missing"
  fi
  if [ "$n" = 1 ]; then
    # The previous block map under its final name only (as when the kill came just before the
    # edit renamed it aside): the rollback is checked against that one.
    rm out/.node-3.img.bmap.in-place
    [ -f out/node-3.img.bmap ] || fail "no block map left to check a rollback against"
  fi
  if [ "$n" = "$((writes / 2))" ]; then
    # An I/O error while putting it back (the journal unreadable): the build stops and removes
    # nothing; once the journal can be read again, the next build puts the image back.
    chmod 000 out/.node-3.img.undo
    if pibake build -c a.yaml --base-image base.img --out out --node node-1; then fail "recovery ignored an unreadable journal"; fi
    assert_contains err.log "nothing was removed"
    [ -f out/.node-3.img.in-place ] && [ -f out/.node-3.img.undo ] || fail "recovery removed files after an I/O error"
    chmod 600 out/.node-3.img.undo
  fi
  pibake_ok build -c a.yaml --base-image base.img --out out --node node-1
  assert_contains out.log "put back out/node-3.img as it was"
  same_as a
  no_leftovers
  regen a  # its record again
done

note "an edit that cannot be put back is removed, and the next build writes it anew"
killed_at $((writes / 2))
head -c 16 out/.node-3.img.undo > undo.head && cat undo.head > out/.node-3.img.undo  # its records lost
regen a
assert_contains out.log "removed out/node-3.img: an earlier build was killed while regenerating it, and it could not be put back"
copied "its previous image was removed"
same_as a
no_leftovers

note "a whole rebuild over out/ edits every node in place"
pibake_ok build -c a.yaml --base-image base.img --out fresh4
pibake_ok build -c a.yaml --base-image base.img --out out
assert_eq "$(grep -c 'regenerated in place' out.log)" 4 "nodes edited in place"
for k in 1 2 3 4; do
  cmp out/node-$k.img fresh4/node-$k.img || fail "node-$k.img differs from a fresh build's"
  cmp out/node-$k.img.bmap fresh4/node-$k.img.bmap || fail "node-$k.img.bmap differs from a fresh build's"
done
echo "ok: regenerated in place: identical to fresh builds, rolled back on failure and after kills at writes 1, $((writes / 2)) and $writes of $writes"
