#!/usr/bin/env bash
# The layer rules of docs/conventions.md ("Layers"), checked on every #include of builder/:
#   layer 1 (spec, plan, util, pki, state) includes no image/, fetch/, codec/ or pipeline/ header
#            and none of the image, network, archive or compression C libraries;
#   layer 2 (image, fetch, codec) includes no pipeline/ header and no other layer-2 folder
#            (codec/ is the one exception: fetch/ and image/ may decode with it).
# First the checker is shown a tree that breaks each rule and must refuse it, so it cannot pass by
# matching nothing; then the real tree must pass.
source "$(dirname "$0")/lib.bash"

forbidden_c_libs='ext2fs/|et/com_err|libfdisk|curl/|archive|archive_entry|lzma|zstd'

# check_layers BUILDER_DIR: prints one line per violation ("file:line: include (rule)"); status 1 if any.
check_layers() {
  local root=$1 bad=0 dir line
  for dir in spec plan util pki state; do
    [ -d "$root/$dir" ] || continue
    while IFS= read -r line; do
      echo "$line (layer 1 includes a higher layer)"; bad=1
    done < <(grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"(image|fetch|codec|pipeline)/' \
      "$root/$dir"/*.h "$root/$dir"/*.cpp 2>/dev/null || true)
    while IFS= read -r line; do
      echo "$line (layer 1 includes a C library of layer 2)"; bad=1
    done < <(grep -HnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<($forbidden_c_libs)" \
      "$root/$dir"/*.h "$root/$dir"/*.cpp 2>/dev/null || true)
  done
  for dir in image fetch codec; do
    [ -d "$root/$dir" ] || continue
    local others
    case $dir in
      image) others='fetch|pipeline' ;;
      fetch) others='image|pipeline' ;;
      codec) others='image|fetch|pipeline' ;;
    esac
    while IFS= read -r line; do
      echo "$line (layer 2 $dir/ includes $others)"; bad=1
    done < <(grep -HnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"($others)/" \
      "$root/$dir"/*.h "$root/$dir"/*.cpp 2>/dev/null || true)
  done
  return $bad
}

# 1. A tree that breaks every rule once: each must be reported.
broken=$SCRATCH/broken
mkdir -p "$broken"/{spec,plan,util,pki,state,image,fetch,codec,pipeline}
printf '#include "image/ext4.h"\n' > "$broken/util/a.cpp"
printf '#include <zstd.h>\n' > "$broken/plan/b.h"
printf '  #  include "pipeline/build.h"\n' > "$broken/pki/c.cpp"
printf '#include <ext2fs/ext2fs.h>\n#include <curl/curl.h>\n' > "$broken/state/d.cpp"
printf '#include "fetch/cache.h"\n' > "$broken/image/e.cpp"
printf '#include "pipeline/build.h"\n' > "$broken/codec/f.cpp"
printf '#include "image/fat.h"\n' > "$broken/fetch/g.cpp"
printf '#include <archive.h>\n' > "$broken/spec/h.cpp"
printf '#include "spec/spec.h"\n#include <fmt/format.h>\n' > "$broken/spec/fine.cpp"
rc=0
check_layers "$broken" > broken.log || rc=$?
[ "$rc" = 1 ] || fail "the layer check accepted a tree that breaks the rules"
for expected in util/a.cpp:1 plan/b.h:1 pki/c.cpp:1 state/d.cpp:1 state/d.cpp:2 image/e.cpp:1 codec/f.cpp:1 \
  fetch/g.cpp:1 spec/h.cpp:1; do
  grep -q "/$expected:" broken.log || { cat broken.log >&2; fail "the layer check missed $expected"; }
done
! grep -q 'fine.cpp' broken.log || fail "the layer check refused an allowed include"

# 2. The real tree.
check_layers "$PIBAKE_SOURCE_DIR/builder" > real.log || { cat real.log >&2; fail "builder/ breaks the layer rules"; }
echo "ok: layer rules hold in builder/ ($(cat "$PIBAKE_SOURCE_DIR"/builder/*/*.h "$PIBAKE_SOURCE_DIR"/builder/*/*.cpp | grep -cE '^[[:space:]]*#[[:space:]]*include') includes read); a tree breaking each rule is refused"
