#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang++, ASan+UBSan, fuzz/) and runs each for
# the given number of seconds (default 600), or until it has made RUNS executions when a second
# argument gives them (`scripts/fuzz.sh 3600 10000000`: 10 million each, at most an hour each), starting from its seed corpus (fuzz/corpus/<target>/,
# copied to build/fuzz/corpus/ so that runs grow a working corpus without touching the seeds) with
# its dictionary (fuzz/dict/<target>.dict). Prints libFuzzer's final stats and one summary line
# per target (executions, cov, ft, crashes). FUZZ_TIMEOUT (seconds, default 10) is libFuzzer's
# per-input limit, measured in wall time: raise it when the run shares its cores with builds, or
# a starved input reads as a hang. Exits 1 when any target crashed, timed out or ran
# out of memory; the reproducer is build/fuzz/artifacts/<target>-*. FUZZ_TARGETS="a b" runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
runs=${2:--1}  # libFuzzer's -runs: -1 is unlimited
input_timeout=${FUZZ_TIMEOUT:-10}
targets=${FUZZ_TARGETS:-"sse eventstream provider promql template rule_file promtool_series config"}

# clang and its sanitizer runtimes only for fuzzing: the test command does not need them.
command -v clang++ >/dev/null && dpkg -s libclang-rt-14-dev >/dev/null 2>&1 ||
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev; }
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

mkdir -p build/fuzz/artifacts
status=0
summary=()
for target in $targets; do
  work=build/fuzz/corpus/$target
  mkdir -p "$work"
  cp -n fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  log=build/fuzz/$target.log
  echo "== $target (${seconds}s)"
  rc=0
  build/fuzz/fuzz/"${target}"_fuzz "$work" \
    -dict=fuzz/dict/"$target".dict -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 \
    -timeout="$input_timeout" -rss_limit_mb=2048 -max_len=4096 \
    -artifact_prefix=build/fuzz/artifacts/"$target"- >"$log" 2>&1 || rc=$?
  grep -E '^stat::|ERROR|SUMMARY' "$log" || true
  # The last status line carries the final coverage (no DONE line under -max_total_time).
  done_line=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1
    status=1
    echo "!! $target failed (exit $rc); log: $log"
  fi
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  summary+=("$(printf '%-16s execs=%-10s exec/s=%-7s cov=%-6s ft=%-6s crashes=%s' \
    "$target" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes")")
done
echo "== fuzz summary (at most ${seconds}s and ${runs} executions per target)"
printf '%s\n' "${summary[@]}"
exit "$status"
