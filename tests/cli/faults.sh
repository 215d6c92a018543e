#!/usr/bin/env bash
# Faults leave nothing behind (issue 13 item 5). A build stopped by the file-size limit (SIGXFSZ,
# which pibake ignores so the write fails with EFBIG) ends with an error naming the user's image,
# never its temporary, and leaves no temporary. Builds killed with SIGKILL at many moments never
# leave a half-written key, certificate, token, kubeconfig, record or lock file in the state dir
# (each file is read back with openssl or python3-yaml); the next build removes the temporaries a
# killed build left in out/, says so, and succeeds with the same CA.
source "$(dirname "$0")/lib.bash"
require_tool openssl python3 e2fsck fsck.fat sfdisk mtype
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed"

make_base base.img
echo 'nodes: {count: 2}' > cluster.yaml
fake_upstream

# 1. The file-size limit: half the base image.
limit_kib=$(( $(stat -c %s base.img) / 2048 ))
rc=0
(ulimit -f "$limit_kib"; pibake build --base-image base.img --out out) || rc=$?
assert_eq "$rc" 1 "exit status at the file-size limit (not death by SIGXFSZ, 153)"
grep -q '^pibake: error: node-[12].img: while cloning the base image: .*out/node-[12].img.*File too large' err.log \
  || { cat err.log >&2; fail "the error does not name the image and the file-size limit"; }
if grep -q '\.tmp' err.log; then fail "the error names a temporary file: $(cat err.log)"; fi
left=$(find out pibake-state -name '*.tmp' 2>/dev/null || true)
[ -z "$left" ] || fail "temporaries left after the file-size limit: $left"

# 2. SIGKILL at many moments, from the very start of a fresh state dir to the middle of the images.
# whole_state: every file under a final name in the state dir is complete.
whole_state() {
  local f
  while IFS= read -r f; do
    case "$f" in
      */.*) continue ;;  # temporaries (".name.tmp", ".pki.tmp/"): removed or ignored by the next build
      *.key) openssl pkey -in "$f" -noout 2>/dev/null || fail "$1: half-written key $f" ;;
      *.crt) openssl x509 -in "$f" -noout 2>/dev/null || fail "$1: half-written certificate $f" ;;
      *.pub) openssl pkey -pubin -in "$f" -noout 2>/dev/null || fail "$1: half-written public key $f" ;;
      */bootstrap-token) grep -qxE '[a-z0-9]{6}\.[a-z0-9]{16}' "$f" || fail "$1: half-written token $f" ;;
      *.yaml|*.kubeconfig|*.conf)
        python3 - "$f" <<'PY' || fail "$1: half-written $f"
import sys, yaml, base64, subprocess
doc = yaml.safe_load(open(sys.argv[1]))
assert isinstance(doc, dict) and doc, "empty"
for u in doc.get("users", []) if sys.argv[1].endswith((".kubeconfig", ".conf")) else []:
    pem = base64.b64decode(u["user"]["client-certificate-data"])
    subprocess.run(["openssl", "x509", "-noout"], input=pem, check=True, capture_output=True)
    assert b"PRIVATE KEY" in base64.b64decode(u["user"]["client-key-data"])
PY
        ;;
      *) ;;
    esac
  done < <(find pibake-state -type f)
}
kills=0
for delay in 0.01 0.03 0.06 0.1 0.15 0.2 0.3 0.45 0.6 0.8 1.1 1.5 2 3 4.5; do
  rm -rf pibake-state out
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$SCRATCH/home" \
      "$PIBAKE" build --base-image base.img --out out >kill.log 2>&1 &
  else
    "$PIBAKE" build --base-image base.img --out out >kill.log 2>&1 &
  fi
  pid=$!
  sleep "$delay"
  kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
  wait $pid 2>/dev/null || true
  [ -d pibake-state ] && whole_state "SIGKILL after ${delay}s"
done
[ "$kills" -ge 10 ] || fail "only $kills of the builds were still running when killed: the test hit nothing"

# 3. A build killed while writing images leaves temporaries; the next build removes them, says
# so, and succeeds with the state dir's CA.
rm -rf out
pibake_ok build --base-image base.img --out out
ca_before=$(sha256sum pibake-state/pki/ca.crt)
# Regenerating one node takes a fraction of a second, so the kill can come too late (the image
# renamed, the build done): then it is tried again, up to 10 times, polling without sleeping.
for attempt in $(seq 1 10); do
  rm -f out/node-2.img
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$SCRATCH/home" \
      "$PIBAKE" build --base-image base.img --out out --node node-2 >kill.log 2>&1 &
  else
    "$PIBAKE" build --base-image base.img --out out --node node-2 >kill.log 2>&1 &
  fi
  pid=$!
  until [ -e out/.node-2.img.tmp ] || ! kill -0 $pid 2>/dev/null; do :; done
  killed=0
  if [ -e out/.node-2.img.tmp ] && kill -KILL $pid 2>/dev/null; then killed=1; fi
  wait $pid 2>/dev/null || true
  [ $killed = 1 ] && [ -e out/.node-2.img.tmp ] && break
  [ "$attempt" -lt 10 ] || fail "in 10 tries the build was never killed while out/.node-2.img.tmp existed"
done
whole_state "SIGKILL while writing node-2.img"
touch out/.unrelated.tmp  # not pibake's: stays
pibake_ok build --base-image base.img --out out --node node-2
assert_contains out.log "removed out/.node-2.img.tmp, left by an earlier build that was killed"
[ -e out/.unrelated.tmp ] || fail "a temporary pibake does not own was removed"
left=$(find out pibake-state -name '.*.tmp' ! -name .unrelated.tmp)
[ -z "$left" ] || fail "temporaries left after the next build: $left"
assert_eq "$(sha256sum pibake-state/pki/ca.crt)" "$ca_before" "the CA after the kills"
check_image out/node-2.img
echo "ok: EFBIG named the image, $kills SIGKILLs left a whole state dir, stale temporaries removed and reported"
