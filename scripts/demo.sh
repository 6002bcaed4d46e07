#!/usr/bin/env bash
# One command for the demo on a fresh Debian 12 machine (as root): installs the build
# dependencies, builds, and runs modelpulse against its built-in simulator. No API key, no
# network. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build-only
scripts/build.sh release
# Git keeps the demo's fixed keys world-readable; modelpulse warns about such secret files.
chmod 600 config/demo-credentials/*.key config/demo-credentials/aws-credentials config/scenarios/keys/* 2>/dev/null || true
rm -f /tmp/modelpulse-demo.db /tmp/modelpulse-demo.db-wal /tmp/modelpulse-demo.db-shm
exec build/release/daemon/modelpulse run --config.file=config/demo.yaml "$@"
