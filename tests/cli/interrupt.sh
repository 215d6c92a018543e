#!/usr/bin/env bash
# Ctrl-C during a build: pibake dies of SIGINT, the partial image is removed, no file appears
# under a final name unless it is complete.
source "$(dirname "$0")/lib.bash"
require_tool e2fsck fsck.fat sfdisk debugfs mtype

# Enough data that copying one node takes a moment, so the signal lands mid-image.
make_base base.img --root-mib 700 --fill-mib 600
fake_upstream
if [ "$(id -u)" = 0 ]; then
  setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$SCRATCH/home" \
    "$PIBAKE" build --nodes 4 --base-image base.img --out out >out.log 2>err.log &
else
  "$PIBAKE" build --nodes 4 --base-image base.img --out out >out.log 2>err.log &
fi
pid=$!
for _ in $(seq 1 2000); do
  [ -n "$(find out -name '.node-*.img.tmp' 2>/dev/null)" ] && break
  sleep 0.005
done
[ -n "$(find out -name '.node-*.img.tmp' 2>/dev/null)" ] || fail "no temporary image ever appeared"
kill -INT $pid
rc=0; wait $pid || rc=$?
assert_eq "$rc" 130 "exit status after SIGINT"
assert_contains err.log "interrupted"
left=$(find out -name '*.tmp')
[ -z "$left" ] || fail "temporary files left after SIGINT: $left"
# Whatever did get its final name is complete and clean.
for img in out/*.img; do
  [ -e "$img" ] || continue
  check_image "$img"
done
echo "ok: interrupted build left $(ls out/*.img 2>/dev/null | wc -l) complete image(s) and no partial one"
