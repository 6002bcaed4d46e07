#!/usr/bin/env bash
# Installs everything modelpulse needs to build, test and run its demo on Debian 12, as root.
# Debian packages and the npm registry only; nothing else is downloaded. scripts/fuzz.sh installs
# clang and libclang-rt-14-dev (libFuzzer, the sanitizer runtimes) itself: the tests do not need them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

export DEBIAN_FRONTEND=noninteractive
sudo_if_needed apt-get update -q
sudo_if_needed apt-get install -y -q \
  build-essential cmake pkg-config git \
  prometheus-cpp-dev libcurl4-openssl-dev libyaml-cpp-dev libsqlite3-dev sqlite3 libspdlog-dev \
  libfmt-dev doctest-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libssl-dev \
  libsystemd-dev libexpected-dev libbenchmark-dev libre2-dev libcrypt-dev python3
if [ "${1:-}" != "--build-only" ]; then
  # Test peers. No Recommends: they would pull in node-exporter, smartmontools and more.
  sudo_if_needed apt-get install -y -q --no-install-recommends \
    prometheus prometheus-alertmanager prometheus-blackbox-exporter nginx-light \
    python3-botocore python3-jwt curl openssl lintian systemd
  # The browser tests' Chromium with its Recommends (fonts, Mesa): the configuration they were
  # run with; the bare package was not tried headless.
  sudo_if_needed apt-get install -y -q chromium
  command -v npm >/dev/null || sudo_if_needed apt-get install -y -q --no-install-recommends nodejs npm
  # Third-party mock server and SDKs for the integration tests, at pinned versions.
  (cd "$here/tests/integration/npm" && npm ci --no-audit --no-fund --loglevel=error)
fi
