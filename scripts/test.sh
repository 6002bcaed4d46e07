#!/usr/bin/env bash
# One command for all the tests on a fresh Debian 12 machine (as root): installs the
# dependencies, checks the test peers are there and that every include follows the module
# layering (scripts/check-layering.py), builds, runs unit and integration tests, then the unit
# tests (the fuzz targets' smoke runs among them) and the integration tests labelled `sanitized`
# (tests/integration/CMakeLists.txt) again under AddressSanitizer and UndefinedBehaviorSanitizer.
# After each run,
# scripts/check-test-counts.py checks every TEST_CASE was one ctest entry that ran exactly one
# case, and prints a summary line (entries, cases executed, passed, failed, skipped).
# A missing peer (promtool, alertmanager, botocore, PyJWT, node, node_modules) fails the run;
# MODELPULSE_ALLOW_MISSING_PEERS=1 skips their tests on a developer machine, never in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-test-peers.sh
scripts/check-layering.py

# Runs one preset's tests, then the count guard on the same build; fails if either fails.
run_preset() {
  local preset=$1 junit
  junit=$(mktemp --suffix=.xml)
  local status=0
  ctest --preset "$preset" --timeout 600 --test-output-size-passed 100000 \
        --output-junit "$junit" || status=$?
  echo "== $preset"
  scripts/check-test-counts.py "build/$preset" "$junit" || status=1
  rm -f "$junit"
  return "$status"
}

scripts/build.sh release
run_preset release
scripts/build.sh asan
run_preset asan
