#!/usr/bin/env bash
# Probe cost (issue 2, DESIGN.md §5): CPU time per probe and resident memory of `modelpulse run`
# against a local nginx endpoint, side by side with prometheus-blackbox-exporter probing the same
# endpoint at the same rate in the same window. Everything on 127.0.0.1, bounded, all processes
# stopped at the end. See bench/README.md.
#
#   bench/probe_cost.sh [BUILD_DIR]
#   env: TARGETS (100) and INTERVAL (1s): modelpulse probes TARGETS/INTERVAL per second, and the
#        blackbox client loop is paced to the same rate; WINDOW (20 s); WARMUP (3 s);
#        MODES ("fresh keep_warm"); LOG_LEVEL (info: the daemon logs one line per probe)
set -euo pipefail

build_dir=${1:-build/bench}
modelpulse=$(realpath "$build_dir/daemon/modelpulse")
blackbox=$(command -v prometheus-blackbox-exporter)
nginx=$(command -v nginx || echo /usr/sbin/nginx)
targets=${TARGETS:-100}
interval=${INTERVAL:-1s}
window=${WINDOW:-20}
warmup=${WARMUP:-3}
modes=${MODES:-fresh keep_warm}
log_level=${LOG_LEVEL:-info}
tck=$(getconf CLK_TCK)

interval_s=$(python3 -c "import sys; v='$interval'; print(float(v[:-2])/1000 if v.endswith('ms') else float(v[:-1]))")
rate=$(python3 -c "print($targets / $interval_s)")

work=$(mktemp -d /tmp/probe_cost.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
pss_kb() { awk '$1 == "Pss:" {print $2}' "/proc/$1/smaps_rollup"; }
probes_total() {  # sum of modelpulse_probes_total over outcomes
  curl -s "http://$1/metrics" | awk '/^modelpulse_probes_total[{ ]/ {s += $NF} END {printf "%d\n", s}'
}
wait_http() {
  for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "not answering: $1" >&2; return 1
}

# nginx: a fixed OpenAI chat.completion (non-streaming, with usage) from a `return 200` location.
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      default_type application/json;
      return 200 '{"id":"chatcmpl-bench","object":"chat.completion","created":1764000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":1,"total_tokens":15}}';
    }
  }
}
EOF
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2> "$work/nginx/stderr" &
pids+=($!); nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/"

# blackbox_exporter, module http_2xx, on loopback.
bb_port=$(free_port)
cat > "$work/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
EOF
"$blackbox" --config.file="$work/blackbox.yml" --web.listen-address="127.0.0.1:$bb_port" \
  2> "$work/blackbox.log" &
pids+=($!); bb_pid=$!
wait_http "http://127.0.0.1:$bb_port/-/healthy"
bb_idle_rss=$(status_kb "$bb_pid" VmRSS)

# The blackbox client: one keep-alive connection, paced to `rate` probes per second, bounded by
# count and time; counts probes that report probe_success 1.
cat > "$work/bb_client.py" <<'EOF'
import http.client, sys, time
port, target, rate, window = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
path = "/probe?module=http_2xx&target=" + target
n, ok, t0 = int(rate * window), 0, time.monotonic()
for i in range(n):
    delay = t0 + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    if time.monotonic() - t0 > window + 10:
        break
    conn.request("GET", path)
    body = conn.getresponse().read()
    ok += b"\nprobe_success 1\n" in body
print(n, ok)
EOF

echo "# probe_cost $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores; ${targets} targets every ${interval} (${rate}/s), window ${window}s, log level ${log_level}"
echo "# nginx $($nginx -v 2>&1 | sed 's/.*\///'), $($blackbox --version 2>&1 | head -1)"
printf "%-24s %7s %11s %7s %9s %7s %7s %7s %7s\n" "prober" "probes" "ok/all" "cpu_ms" "ms/probe" "RSS_MB" "HWM_MB" "Anon_MB" "Pss_MB"

for mode in $modes; do
  cfg="$work/modelpulse-$mode.yaml"
  mp_port=$(free_port)
  {
    echo "web: {listen_address: 127.0.0.1:$mp_port}"
    echo "storage: {path: $work/mp-$mode.db, retention: 1d}"
    echo "defaults:"
    echo "  interval: $interval"
    echo "  stream: false"
    echo "  connection: $mode"
    echo "  timeouts: {connect: 2s, first_token: 5s, total: 5s}"
    echo "targets:"
    for (( i = 0; i < targets; i++ )); do
      echo "  - {name: t$i, provider: openai_compatible, model: gpt-4o-mini, base_url: \"http://127.0.0.1:$nginx_port/v1\"}"
    done
  } > "$cfg"
  "$modelpulse" --log.level="$log_level" run --config.file="$cfg" \
    --web.listen-address="127.0.0.1:$mp_port" --storage.path="$work/mp-$mode.db" \
    2> "$work/modelpulse-$mode.log" &
  mp_pid=$!; pids+=($mp_pid)
  wait_http "http://127.0.0.1:$mp_port/-/healthy"
  sleep "$warmup"  # first probes are spread over one interval

  load=$(cut -d' ' -f1-3 /proc/loadavg)
  mp_cpu0=$(cpu_ticks "$mp_pid"); mp_n0=$(probes_total "127.0.0.1:$mp_port")
  bb_cpu0=$(cpu_ticks "$bb_pid"); ng_cpu0=$(cpu_ticks "$nginx_pid")
  t0=$(date +%s.%N)
  read -r bb_n bb_ok < <(python3 "$work/bb_client.py" "$bb_port" "http://127.0.0.1:$nginx_port/" "$rate" "$window")
  t1=$(date +%s.%N)
  mp_cpu1=$(cpu_ticks "$mp_pid"); mp_n1=$(probes_total "127.0.0.1:$mp_port")
  bb_cpu1=$(cpu_ticks "$bb_pid"); ng_cpu1=$(cpu_ticks "$nginx_pid")
  elapsed=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
  mp_rss=$(status_kb "$mp_pid" VmRSS); mp_hwm=$(status_kb "$mp_pid" VmHWM)
  bb_rss=$(status_kb "$bb_pid" VmRSS); bb_hwm=$(status_kb "$bb_pid" VmHWM)
  mp_anon=$(status_kb "$mp_pid" RssAnon); mp_pss=$(pss_kb "$mp_pid")
  bb_anon=$(status_kb "$bb_pid" RssAnon); bb_pss=$(pss_kb "$bb_pid")
  read -r mp_ok mp_all < <(curl -s "http://127.0.0.1:$mp_port/metrics" | awk '
    /^modelpulse_probes_total[{ ]/ {all += $NF; if ($0 ~ /outcome="ok"/) ok += $NF}
    END {printf "%d %d\n", ok, all}')
  mp_n=$(( mp_n1 - mp_n0 ))
  kill -TERM "$mp_pid"; wait "$mp_pid" || true

  python3 - "$mode" "$tck" "$mp_n" "$mp_ok/$mp_all" "$((mp_cpu1 - mp_cpu0))" "$mp_rss" "$mp_hwm" \
      "$mp_anon" "$mp_pss" "$bb_n" "$bb_ok/$bb_n" "$((bb_cpu1 - bb_cpu0))" "$bb_rss" "$bb_hwm" \
      "$bb_anon" "$bb_pss" "$((ng_cpu1 - ng_cpu0))" "$elapsed" "$load" <<'EOF'
import sys
(mode, tck, mp_n, mp_ok, mp_t, mp_rss, mp_hwm, mp_anon, mp_pss, bb_n, bb_ok, bb_t, bb_rss, bb_hwm,
 bb_anon, bb_pss, ng_t, elapsed, load) = sys.argv[1:]
tck = int(tck)
def row(name, n, ok, ticks, *kb):
    ms = int(ticks) * 1000 / tck
    per = ms / int(n) if int(n) else float("nan")
    mb = " ".join(f"{int(k) / 1024:7.1f}" for k in kb)
    print(f"{name:<24} {int(n):7d} {ok:>11} {ms:7.0f} {per:9.3f} {mb}")
    return per
mp = row(f"modelpulse ({mode})", mp_n, mp_ok, mp_t, mp_rss, mp_hwm, mp_anon, mp_pss)
bb = row("blackbox http_2xx", bb_n, bb_ok, bb_t, bb_rss, bb_hwm, bb_anon, bb_pss)
print(f"  ratio modelpulse/blackbox: CPU per probe {mp / bb:.2f} (goal <= 0.33), "
      f"VmHWM {int(mp_hwm) / int(bb_hwm):.2f} (goal < 1); nginx {int(ng_t) * 1000 / tck:.0f} ms CPU; "
      f"window {elapsed}s; load average before: {load}")
EOF
  grep -E "outcome=" "$work/modelpulse-$mode.log" | grep -v "outcome=ok" | head -3 | sed 's/^/  not ok: /' || true
done
echo "# ok/all: modelpulse counts since its start (probes_total), blackbox within the window. RSS and"
echo "# HWM include shared-library pages; Anon is private heap and stacks; Pss shares library pages"
echo "# among the processes that map them. HWM includes the /metrics scrapes this script makes."
echo "# blackbox idle VmRSS before the first window: $(( bb_idle_rss / 1024 )) MB"
