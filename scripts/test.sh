#!/usr/bin/env bash
# Builds and runs every test through CTest: Catch2 unit tests, the CLI tests (which run pibake as
# an unprivileged user when started as root) and the QEMU end-to-end tests (docs/e2e.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
reports=(build/test-tmp/e2e-report.txt build/test-tmp/e2e-report-flat.txt build/test-tmp/e2e-report-ha.txt build/test-tmp/e2e-report-hard_way.txt)
rm -f "${reports[@]}"
status=0
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@" || status=$?
# The QEMU end-to-end tests' reports (stage times, every check), whether they passed or not.
for report in "${reports[@]}"; do
  if [ -s "$report" ]; then
    echo "--- e2e report ($report) ---"
    cat "$report"
  fi
done
exit $status
