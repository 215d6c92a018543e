#!/usr/bin/env bash
# Issue 17, kind 7: pibake never dies of a signal it could handle. A full or closed stderr, a
# failing or closed stdout, and a FIFO given as an image each end in a clean exit status 1 with a
# message (where one can still be written), never SIGABRT, SIGPIPE, a hang or an "internal error".
source "$(dirname "$0")/lib.bash"
require_tool python3 mkfifo timeout

# as_user CMD...: like pibake(), unprivileged when run as root, but with the caller's redirections.
as_user() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all env HOME="$SCRATCH/home" "$@"
  else
    HOME="$SCRATCH/home" "$@"
  fi
}
status_is() {  # status_is RC WANT WHAT
  [ "$1" = "$2" ] || fail "$3: exit status $1 (want $2$( [ "$1" -gt 128 ] && echo ", killed by signal $(($1 - 128))"))"
}

# 1. stderr is a full disk: the error message cannot be written, the exit status still says so.
touch exists.yaml; chmod 0666 exists.yaml
rc=0; as_user "$PIBAKE" init -c exists.yaml 2>/dev/full >/dev/null || rc=$?
status_is "$rc" 1 "init on an existing file with 2>/dev/full"
# A spec with problems prints many lines to stderr: still no abort.
printf 'cluster: {name: "Bad Name"}\nnetwork: {dns: [0.0.0.0]}\n' > bad.yaml; chmod 0644 bad.yaml
rc=0; as_user "$PIBAKE" build -c bad.yaml --dry-run 2>/dev/full >/dev/null || rc=$?
status_is "$rc" 1 "build of a bad spec with 2>/dev/full"
# Warnings only (no Wi-Fi configured) on a full stderr do not stop a good dry run.
rc=0; as_user "$PIBAKE" build --nodes 2 --dry-run 2>/dev/full >/dev/null || rc=$?
status_is "$rc" 0 "dry run whose warnings go to 2>/dev/full"

# 2. stdout fails: a user error naming standard output, not an internal error.
rc=0; as_user "$PIBAKE" build --nodes 2 --dry-run >/dev/full 2>err.log || rc=$?
status_is "$rc" 1 "dry run with >/dev/full"
assert_contains err.log "pibake: error: cannot write to standard output"
grep -q "internal error" err.log && fail "a failing stdout is reported as an internal error"
rc=0; as_user "$PIBAKE" --help >/dev/full 2>err.log || rc=$?
status_is "$rc" 1 "--help with >/dev/full"
# Every command's output, inspect's too (it returned before the final flush was checked).
make_base small.img
rc=0; as_user "$PIBAKE" inspect small.img >/dev/full 2>err.log || rc=$?
status_is "$rc" 1 "inspect with >/dev/full"
assert_contains err.log "pibake: error: cannot write to standard output"
# A reader that is gone: every write to the pipe fails with EPIPE (SIGPIPE unless handled).
cat > closed_pipe.py <<'PY'
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w, stderr=open("pipe_err.log", "w"))
print(p.returncode)
PY
rc=$(as_user python3 closed_pipe.py "$PIBAKE" build --nodes 2 --dry-run)
status_is "$((rc < 0 ? 128 - rc : rc))" 1 "dry run into a closed pipe"
assert_contains pipe_err.log "cannot write to standard output"

# 3. A FIFO as the image: refused at once (open() on a FIFO waits for a writer forever).
make_base good.img
fake_upstream
mkfifo base.img.fifo; chmod 0666 base.img.fifo
for cmd in "build --nodes 2 --base-image base.img.fifo --out out" "inspect base.img.fifo" "flash base.img.fifo copy.img"; do
  rc=0
  # shellcheck disable=SC2086
  as_user timeout 20 "$PIBAKE" $cmd >out.log 2>err.log || rc=$?
  [ "$rc" != 124 ] || fail "pibake $cmd hangs on a FIFO"
  status_is "$rc" 1 "pibake $cmd"
  assert_contains err.log "is a FIFO (named pipe)"
done
assert_no_images out
echo "ok: full stderr, failing and closed stdout, FIFO images: clean exits with status 1"
