#!/usr/bin/env python3
"""modelpulse's Prometheus API against a real Prometheus over the same history (issue 9's
benchmark).

One generated history (bench/rules_bench's generator: N targets, D days, a probe every S
seconds, realistic outcomes and a daily rhythm in first-token time) is served twice:

- by `modelpulse run` over the generated SQLite database (hourly rollups built as the migration
  backfill builds them), with no targets of its own and a long retention;
- by Prometheus (Debian's 2.42) over TSDB blocks made from the same samples by `promtool tsdb
  create-blocks-from openmetrics`, once its startup compaction has finished.

The samples are `probe_ttft_seconds` (one per successful probe: what modelpulse's engine sees
for that series), exported from the database in a streaming way into one OpenMetrics file per
2 h block (promtool 2.42 re-parses its whole input once per 2 h block, so one file per block
keeps the import linear). Then, at the same evaluation time, each query is sent --repeat times to
both over HTTP (form-encoded POST, as Grafana sends it) and timed end to end:

  avg    avg_over_time(probe_ttft_seconds[30d])                      instant, every target
  p95    quantile_over_time(0.95, probe_ttft_seconds[30d])            instant, every target
  range  avg_over_time(probe_ttft_seconds[1h]) over 30 days at step 1h

Resident memory (VmRSS after each query, VmHWM at the end) is read from /proc for both
processes; the answers are compared series by series (largest relative difference).

  bench/prometheus_compare.py --targets 20 --days 30 --interval 15      # from the repo root

Everything is cached under --dir (the database, the Prometheus blocks); delete it to start over.
"""
import argparse
import glob
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HOUR_MS = 3_600_000
BLOCK_MS = 2 * HOUR_MS
# bench/rules_bench.cpp's kStartMs: whole hours.
START_MS = 1_750_000_000_000 // HOUR_MS * HOUR_MS


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, data=None, timeout=300):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited with {proc.returncode}")
        try:
            if http(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout} s")


def rss_mb(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def decode_labels(text):
    """storage/label_codec.cpp's encoding: name=value pairs joined by ',', with '\\', '=' and ','
    escaped by a backslash and NUL written as \\0."""
    labels, name, cur, i = {}, None, "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            cur += "\0" if nxt == "0" else nxt
            i += 2
            continue
        if c == "=" and name is None:
            name, cur = cur, ""
        elif c == ",":
            labels[name], name, cur = cur, None, ""
        else:
            cur += c
        i += 1
    if name is not None:
        labels[name] = cur
    return labels


def om_labels(labels):
    def esc(v):
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return ",".join(f'{k}="{esc(v)}"' for k, v in sorted(labels.items()))


def generate_db(args):
    t0 = time.monotonic()
    subprocess.run([args.rules_bench, "--targets", str(args.targets), "--days", str(args.days),
                    "--interval-s", str(args.interval), "--dir", args.dir, "--generate-only", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    # rules_bench names the file with its generator's version (-vN.db): the highest is its.
    pattern = f"mp-rules-bench-t{args.targets}-d{args.days}-i{args.interval}-v*.db"
    path = max(glob.glob(os.path.join(args.dir, pattern)),
               key=lambda p: int(p.rsplit("-v", 1)[1][:-len(".db")]))
    log(f"database ready in {time.monotonic() - t0:.1f} s: "
        f"{os.path.getsize(path) / 1e9:.2f} GB")
    return path


def build_blocks(args, db_path):
    data = os.path.join(args.dir, f"prom-t{args.targets}-d{args.days}-i{args.interval}")
    done = os.path.join(data, ".complete")
    if os.path.exists(done):
        return data
    shutil.rmtree(data, ignore_errors=True)
    om_dir = os.path.join(args.dir, "openmetrics")
    shutil.rmtree(om_dir, ignore_errors=True)
    os.makedirs(om_dir)
    os.makedirs(data)
    t0 = time.monotonic()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    labels = {tid: om_labels(decode_labels(text))
              for tid, text in db.execute("SELECT id, labels FROM targets")}
    files, lines = {}, 0
    # Streamed: the cursor walks the probes in primary-key order (target, time), each line goes
    # to the file of its 2 h block, so every series is in time order within every file.
    for tid, start_ms, ttft in db.execute(
            "SELECT target_id, start_ms, ttft_s FROM probes WHERE ttft_s IS NOT NULL "
            "ORDER BY target_id, start_ms"):
        block = start_ms // BLOCK_MS
        f = files.get(block)
        if f is None:
            f = files[block] = open(os.path.join(om_dir, f"{block}.om"), "w", buffering=1 << 20)
            f.write("# TYPE probe_ttft_seconds gauge\n")
        # repr() is the shortest text that reads back as the same double.
        f.write(f"probe_ttft_seconds{{{labels[tid]}}} {ttft!r} {start_ms // 1000}."
                f"{start_ms % 1000:03d}\n")
        lines += 1
    for f in files.values():
        f.write("# EOF\n")
        f.close()
    db.close()
    log(f"wrote {lines} samples into {len(files)} OpenMetrics files in "
        f"{time.monotonic() - t0:.1f} s")
    t1 = time.monotonic()
    for name in sorted(os.listdir(om_dir)):
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        os.path.join(om_dir, name), data], check=True)
        os.remove(os.path.join(om_dir, name))
    os.rmdir(om_dir)
    log(f"promtool made {len(os.listdir(data))} blocks in {time.monotonic() - t1:.1f} s")
    open(done, "w").close()
    return data


def prometheus_metric(base, name):
    text = http(base + "/metrics")[1].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def start_prometheus(args, data, procs):
    port = free_port()
    config = os.path.join(args.dir, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global: {evaluation_interval: 1m}\nscrape_configs: []\n")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
         "--storage.tsdb.retention.time=10y", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(os.path.join(args.dir, "prometheus.log"), "wb"), stderr=subprocess.STDOUT)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/-/ready", proc, 120)
    # The TSDB compacts the imported 2 h blocks on its first compaction (a minute after start);
    # queries are timed over the compacted blocks, as a long-running Prometheus would have them.
    t0 = time.monotonic()
    compacted = os.path.join(data, ".compacted")
    while not os.path.exists(compacted) and time.monotonic() - t0 < args.compaction_wait:
        if prometheus_metric(base, "prometheus_tsdb_compactions_triggered_total") >= 1:
            before = prometheus_metric(base, "prometheus_tsdb_compactions_total")
            time.sleep(10)
            if prometheus_metric(base, "prometheus_tsdb_compactions_total") == before:
                break
        else:
            time.sleep(2)
    open(compacted, "w").close()
    log(f"Prometheus on {base}: {prometheus_metric(base, 'prometheus_tsdb_blocks_loaded'):g} "
        f"blocks after {time.monotonic() - t0:.0f} s of compaction wait")
    return proc, base


def start_modelpulse(args, db_path, procs, binary=None, name="modelpulse"):
    port = free_port()
    config = os.path.join(args.dir, "modelpulse.yml")
    with open(config, "w") as f:
        # No targets: the daemon only serves the history; retention keeps all of it.
        f.write("storage: {retention: 3650d}\ntargets: []\n")
    log_path = os.path.join(args.dir, f"{name}.log")
    proc = subprocess.Popen(
        [binary or args.modelpulse, "run", f"--config.file={config}", f"--storage.path={db_path}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/-/ready", proc, 300)
    # Opening a database over 256 MB starts a background integrity check that reads the whole
    # file; the queries are timed after it, as in a daemon that has been up for a minute. A
    # smaller file was checked before the daemon became ready.
    deadline = time.monotonic() + (300 if os.path.getsize(db_path) > 256 << 20 else 0)
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            if "quick_check" in f.read():
                break
        time.sleep(0.5)
    return proc, base


def run_query(base, kind, params):
    path = "/api/v1/query_range" if kind == "range" else "/api/v1/query"
    t0 = time.monotonic()
    status, body = http(base + path, params)
    elapsed = time.monotonic() - t0
    answer = json.loads(body)
    if answer.get("status") != "success":
        raise SystemExit(f"{base}{path} {params}: {answer}")
    return elapsed, answer["data"]["result"]


def by_target(result):
    out = {}
    for s in result:
        key = s["metric"].get("target", json.dumps(s["metric"], sort_keys=True))
        if "value" in s:
            out[key] = {s["value"][0]: float(s["value"][1])}
        else:
            out[key] = {t: float(v) for t, v in s["values"]}
    return out


def compare(a, b):
    """Largest relative difference over every series and timestamp; missing points are reported."""
    worst, missing = 0.0, 0
    for key in set(a) | set(b):
        pa, pb = a.get(key, {}), b.get(key, {})
        for t in set(pa) | set(pb):
            if t not in pa or t not in pb:
                missing += 1
                continue
            x, y = pa[t], pb[t]
            if x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    return worst, missing


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=15, help="seconds between probes")
    parser.add_argument("--window-days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/mp-prometheus-compare")
    parser.add_argument("--modelpulse", default="build/release/daemon/modelpulse")
    parser.add_argument("--rules-bench", default="build/release/bench/rules_bench")
    parser.add_argument("--compaction-wait", type=float, default=240,
                        help="longest wait for Prometheus's startup compaction, seconds")
    parser.add_argument("--baseline", metavar="MODELPULSE",
                        help="compare with this other modelpulse binary over the same database "
                             "instead of Prometheus (a before/after of one change)")
    parser.add_argument("--range-end-offset", type=float, action="append", default=[],
                        metavar="SECONDS",
                        help="also run the range query ending this many seconds past the hour "
                             "(repeatable): windows ending late in an hour")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    samples_per_target = args.days * 86_400 // args.interval
    end_ms = START_MS + samples_per_target * args.interval * 1000
    # 7.503 s past the last generated probe: no probe (offsets 71*i ms within 15 s) sits on
    # either edge of the window, so left-open and left-closed windows select the same samples.
    t_eval = (end_ms + 7_503) / 1000
    t_hour = int(t_eval) // 3600 * 3600
    window = f"{args.window_days}d"
    queries = {
        "avg": ("instant", {"query": f"avg_over_time(probe_ttft_seconds[{window}])",
                            "time": f"{t_eval:.3f}"}),
        "p95": ("instant", {"query": f"quantile_over_time(0.95, probe_ttft_seconds[{window}])",
                            "time": f"{t_eval:.3f}"}),
        # Grafana aligns start and end to a multiple of the step, so its windows are whole
        # hours; the unaligned variant ends 7.503 s past the hour.
        "range": ("range", {"query": "avg_over_time(probe_ttft_seconds[1h])",
                            "start": f"{t_hour - args.window_days * 86_400}",
                            "end": f"{t_hour}", "step": "3600"}),
        "range_unaligned": ("range", {"query": "avg_over_time(probe_ttft_seconds[1h])",
                                      "start": f"{t_eval - args.window_days * 86_400:.3f}",
                                      "end": f"{t_eval:.3f}", "step": "3600"}),
    }

    for offset in args.range_end_offset:
        end = t_hour - 3600 + offset
        queries[f"range_end+{offset:g}s"] = (
            "range", {"query": "avg_over_time(probe_ttft_seconds[1h])",
                      "start": f"{end - args.window_days * 86_400:.3f}", "end": f"{end:.3f}",
                      "step": "3600"})

    db_path = generate_db(args)
    other = "baseline" if args.baseline else "prometheus"
    procs = []
    try:
        if args.baseline:
            prom, prom_base = start_modelpulse(args, db_path, procs, args.baseline, "baseline")
        else:
            prom, prom_base = start_prometheus(args, build_blocks(args, db_path), procs)
        t0 = time.monotonic()
        mp, mp_base = start_modelpulse(args, db_path, procs)
        log(f"modelpulse ready in {time.monotonic() - t0:.1f} s")
        servers = {"modelpulse": (mp, mp_base), other: (prom, prom_base)}
        idle = {name: rss_mb(p.pid)["VmRSS"] for name, (p, _) in servers.items()}
        times = {name: {q: [] for q in queries} for name in servers}
        rss_after = {name: {} for name in servers}
        answers = {name: {} for name in servers}
        for q, (kind, params) in queries.items():
            for name, (p, base) in servers.items():
                for _ in range(args.repeat):
                    elapsed, result = run_query(base, kind, params)
                    times[name][q].append(elapsed)
                answers[name][q] = by_target(result)
                rss_after[name][q] = rss_mb(p.pid)["VmRSS"]
        peak = {name: rss_mb(p.pid)["VmHWM"] for name, (p, _) in servers.items()}
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    total = args.targets * samples_per_target
    print(f"history: {args.targets} targets x {args.days} days at {args.interval} s = "
          f"{total:,} probes ({total / args.targets:,.0f} per target); window {window}; "
          f"{args.repeat} runs per query, wall time of the HTTP request")
    print()
    print(f"| query | modelpulse first | modelpulse median | {other} first | "
          f"{other} median | modelpulse/{other} (median) | series | points | max rel diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for q in queries:
        m, p = times["modelpulse"][q], times[other][q]
        worst, missing = compare(answers["modelpulse"][q], answers[other][q])
        points = sum(len(v) for v in answers[other][q].values())
        diff = f"{worst:.2g}" + (f" ({missing} points in one only)" if missing else "")
        print(f"| {q} | {m[0]:.3f} s | {statistics.median(m):.3f} s | {p[0]:.3f} s | "
              f"{statistics.median(p):.3f} s | {statistics.median(m) / statistics.median(p):.3f} | "
              f"{len(answers[other][q])} | {points} | {diff} |")
    print()
    print("| resident memory (MB) | idle | " + " | ".join(f"after {q}" for q in queries) +
          " | peak (VmHWM) |")
    print("| --- " * (len(queries) + 3) + "|")
    for name in ("modelpulse", other):
        r = rss_after[name]
        print(f"| {name} | {idle[name]:.0f} | " + " | ".join(f"{r[q]:.0f}" for q in queries) +
              f" | {peak[name]:.0f} |")


if __name__ == "__main__":
    main()
