#!/usr/bin/env bash
# One command for all the tests on a fresh Debian 12 machine (as root): installs the
# dependencies, builds, runs unit and integration tests, then the unit tests again under
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
ctest --preset release --timeout 600
scripts/build.sh asan
ctest --preset asan --timeout 600
