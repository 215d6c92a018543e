#!/usr/bin/env bash
# Builds and runs every test: Catch2 unit tests and the CLI tests (which run pibake as an
# unprivileged user when started as root), through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
