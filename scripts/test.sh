#!/usr/bin/env bash
# Builds and runs every test through CTest: Catch2 unit tests, the CLI tests (which run pibake as
# an unprivileged user when started as root) and the QEMU end-to-end test (docs/e2e.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
report=build/test-tmp/e2e-report.txt
rm -f "$report"
status=0
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@" || status=$?
# The QEMU end-to-end test's report (stage times, every check), whether it passed or not.
if [ -s "$report" ]; then
  echo "--- e2e.cluster report ($report) ---"
  cat "$report"
fi
exit $status
