#!/usr/bin/env bash
# ThreadSanitizer over the tests where modelpulse's threads meet: the store's writer and readers,
# the rule manager, the prober's loop with token commands, the alerting notifier, the HTTP server,
# and the integration tests that run the whole daemon (prober, writer, rule loop, notifier and
# HTTP workers together). A third full build, so not part of scripts/test.sh; run it after
# changing anything that locks, waits or shares state between threads.
#   scripts/tsan.sh            build the tsan preset, run the unit and integration tests below
# Exits non-zero on the first data race or lock-order inversion TSan reports (halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset tsan >/dev/null
cmake --build --preset tsan --target modelpulse storage_test rules_test collector_test \
  alerting_test daemon_test
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 suppressions=$PWD/scripts/tsan.supp ${TSAN_OPTIONS:-}"
status=0
for binary in storage/storage_test rules/rules_test collector/collector_test \
              alerting/alerting_test daemon/daemon_test; do
  echo "== tsan: $binary"
  build/tsan/tests/$binary || status=1
done
echo "== tsan: integration"
ctest --test-dir build/tsan --output-on-failure --timeout 900 \
  -R 'integration_(daemon|alerting|web|api|hostile_rules)$' || status=1
exit "$status"
