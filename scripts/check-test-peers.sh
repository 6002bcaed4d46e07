#!/usr/bin/env bash
# The outside programs the tests use as oracles or peers must be present: a missing one would
# otherwise turn checks into passes. Names every missing one and fails. A developer may opt out
# on their own machine with MODELPULSE_ALLOW_MISSING_PEERS=1 (never by default, refused when
# CI=true): the tests that need a missing peer are then reported as Skipped, and counted in the
# summary of scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

# bash's `command -v` names a non-executable file when it finds nothing better.
have_command() { local path; path=$(command -v "$1") && [ -x "$path" ]; }

missing=()
have_command promtool || missing+=("promtool on PATH (Debian package prometheus)")
[ -x /usr/bin/promtool ] || missing+=("/usr/bin/promtool (Debian package prometheus)")
have_command prometheus-alertmanager || have_command alertmanager ||
  missing+=("alertmanager (Debian package prometheus-alertmanager)")
/usr/bin/python3 -c 'import botocore.auth, botocore.eventstream' 2>/dev/null ||
  missing+=("botocore for /usr/bin/python3 (Debian package python3-botocore)")
/usr/bin/python3 -c 'import jwt' 2>/dev/null ||
  missing+=("PyJWT for /usr/bin/python3 (Debian package python3-jwt)")
have_command node || missing+=("node (Debian package nodejs)")
# test_web: a throwaway certificate, curl as the TLS client, Prometheus as the scraper.
have_command prometheus || missing+=("prometheus (Debian package prometheus)")
have_command openssl || missing+=("openssl (Debian package openssl)")
have_command curl || missing+=("curl (Debian package curl)")
# test_package and test_systemd: the .deb's checks and the unit's.
have_command lintian || missing+=("lintian (Debian package lintian)")
have_command systemd-analyze || missing+=("systemd-analyze (Debian package systemd)")
have_command dpkg-shlibdeps || missing+=("dpkg-shlibdeps (Debian package dpkg-dev)")
# test_status_page: the HTML report and the status page in a headless browser.
have_command chromium || missing+=("chromium (Debian package chromium)")
modules=tests/integration/npm/node_modules
for package in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["dependencies"]))' \
                   tests/integration/npm/package.json); do
  [ -f "$modules/$package/package.json" ] ||
    missing+=("$modules/$package (cd tests/integration/npm && npm ci)")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
for m in "${missing[@]}"; do
  echo "test peers: missing $m" >&2
done
if [ "${MODELPULSE_ALLOW_MISSING_PEERS:-}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "test peers: MODELPULSE_ALLOW_MISSING_PEERS=1: the tests that need them are Skipped" >&2
  exit 0
fi
if [ "${MODELPULSE_ALLOW_MISSING_PEERS:-}" = 1 ]; then
  echo "test peers: MODELPULSE_ALLOW_MISSING_PEERS is refused when CI=true" >&2
else
  echo "test peers: ${#missing[@]} required peer(s) missing; run scripts/install-deps.sh" \
       "(a developer may set MODELPULSE_ALLOW_MISSING_PEERS=1 to skip their tests locally)" >&2
fi
exit 1
