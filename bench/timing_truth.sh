#!/usr/bin/env bash
# Timing truth (issue 2, DESIGN.md §5): modelpulse's measured first-token and total times against
# the delays the simulator injected, at 1, 100 and 500 concurrent streams. The simulator runs in its
# own process pinned to core 1, the prober pinned to core 0. See bench/README.md.
#
#   bench/timing_truth.sh [BUILD_DIR] [STREAMS...]
#   env: SECONDS_PER_RUN (10), FIRST_TOKEN_MS (300), INTER_TOKEN_MS (10), OUTPUT_TOKENS (16),
#        CONNECTION (fresh | keep_warm), SIM_CORE (1), PROBE_CORE (0),
#        STAGGER_MS (empty = spread target starts over one probe duration; 0 = all due at once),
#        NICE (empty; e.g. -19 as root, so that other work on a shared machine does not delay
#        the wake-ups of the two processes: both sleep most of the time),
#        RT (empty; 1 = run both under SCHED_FIFO via `chrt -f 10`: on a kernel with EEVDF a
#        waking task may wait out another task's slice whatever its nice value; bounded by the
#        kernel's RT throttling, and by the window)
set -euo pipefail

build_dir=${1:-build/bench}
shift || true
streams_list=("$@")
[[ ${#streams_list[@]} -eq 0 ]] && streams_list=(1 100 500)
bin=$(realpath "$build_dir/bench/timing_truth")
seconds=${SECONDS_PER_RUN:-10}
first_token_ms=${FIRST_TOKEN_MS:-300}
inter_token_ms=${INTER_TOKEN_MS:-10}
output_tokens=${OUTPUT_TOKENS:-16}
connection=${CONNECTION:-fresh}
sim_core=${SIM_CORE:-1}
probe_core=${PROBE_CORE:-0}
run=()
[[ -n "${NICE:-}" ]] && run=(nice -n "$NICE")
[[ -n "${RT:-}" ]] && run+=(chrt -f 10)

max_streams=0
for n in "${streams_list[@]}"; do (( n > max_streams )) && max_streams=$n; done

work=$(mktemp -d /tmp/timing_truth.XXXXXX)
sim_pid=""
cleanup() {
  if [[ -n "$sim_pid" ]] && kill -0 "$sim_pid" 2>/dev/null; then
    kill -TERM "$sim_pid" 2>/dev/null || true
    wait "$sim_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# One endpoint per stream, so each journal entry names the target that caused it. Constant
# delays, constant length, no errors, no rate limit.
{
  echo "seed: 1"
  echo "hang_cap: 5s"
  echo "journal_size: 200000"
  echo "endpoints:"
  for (( i = 0; i < max_streams; i++ )); do
    echo "  - {name: e$i, protocol: openai, first_token_ms: $first_token_ms, inter_token_ms: $inter_token_ms, output_tokens: $output_tokens}"
  done
} > "$work/scenario.yaml"

ulimit -n 8192 2>/dev/null || true
echo "# timing_truth $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores; first_token=${first_token_ms}ms inter_token=${inter_token_ms}ms tokens=${output_tokens} connection=${connection} window=${seconds}s stagger=${STAGGER_MS:-auto} nice=${NICE:-0} rt=${RT:-0}"
for n in "${streams_list[@]}"; do
  workers=$(( n + 16 ))
  # A fresh simulator per run: an empty journal and a pool sized for this run.
  ${run[@]+"${run[@]}"} taskset -c "$sim_core" "$bin" serve --scenario "$work/scenario.yaml" --workers "$workers" \
    > "$work/sim.out" 2> "$work/sim.err" &
  sim_pid=$!
  base_url=""
  for _ in $(seq 1 100); do
    base_url=$(awk '/^listening/ {print $2}' "$work/sim.out" 2>/dev/null || true)
    [[ -n "$base_url" ]] && break
    sleep 0.1
  done
  if [[ -z "$base_url" ]]; then
    echo "simulator did not start:" >&2; cat "$work/sim.err" >&2; exit 1
  fi
  sim_cpu0=$(awk '{print $14 + $15}' "/proc/$sim_pid/stat")
  echo "# streams=$n simulator=$base_url workers=$workers load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  ${run[@]+"${run[@]}"} taskset -c "$probe_core" "$bin" probe --base-url "$base_url" --streams "$n" --seconds "$seconds" \
    --first-token-ms "$first_token_ms" --inter-token-ms "$inter_token_ms" --output-tokens "$output_tokens" \
    --connection "$connection" ${STAGGER_MS:+--stagger-ms "$STAGGER_MS"}
  sim_cpu1=$(awk '{print $14 + $15}' "/proc/$sim_pid/stat")
  echo "  simulator CPU $(( (sim_cpu1 - sim_cpu0) * 1000 / $(getconf CLK_TCK) )) ms during the run"
  kill -TERM "$sim_pid"; wait "$sim_pid" || true; sim_pid=""
done
