#!/usr/bin/env python3
"""One-hour soak (issue 12): `modelpulse run` probes 200 targets every 15 s against
`modelpulse simulate` (its own process) with a mix of hostile endpoints, evaluates the shipped rule
files, and is sampled every 30 s: resident memory, open file descriptors and threads from /proc,
probes from /metrics. At the end the timing error of the 40 healthy canary targets (measured first
token minus the scripted 300 ms, from the stored probes) is compared window by window.

    bench/soak.py [--minutes 60] [--targets 200] [--binary build/release/daemon/modelpulse]
                  [--memory-window 20m] [--quiet]

`--quiet` is the run to compare with: the same 200 targets, every endpoint healthy. Run one of
each side by side (two invocations at once) so that both see the same machine load, and compare
their canary timing-error p99.

Prints one line per sample and a summary; writes the samples as JSON next to the database
(the folder is printed). Goals: RSS growth from the settled mark to the end < 5 %; fds stable;
canary timing-error p99 of the last window within 1 ms of the first.

RSS grows by design until two things are full: the rule engine's `storage.memory_window`
(default 2h) of every probe series, and the kept edges of the rules' longer ranges (a [1h] or
[1d] window reads whole hours from the rollups plus the rows of its partial first hour, kept
and slid between evaluations: up to an hour of rows per target and series). The settled mark
is therefore 5 minutes past the longer of the window and an hour: `--memory-window 20m` settles
at 65 minutes, so a run of two hours judges the goal over its last hour; with the default
window a run must last three hours or more. The summary also prints the growth over the last
60 minutes and a least-squares slope, which do not depend on the mark.
"""
import re
import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CANARY_FIRST_TOKEN_MS = 300

# (name, count, error kind or None, probability). 200 targets in all; the canaries are healthy.
MIX = [
    ("canary", 40, None, 0.0),
    ("throttled", 20, "rate_limit", 0.5),
    ("overloaded", 20, "overloaded_503", 0.5),
    ("malformed", 20, "malformed_json", 0.3),
    ("truncated", 20, "truncated_stream", 0.3),
    ("hang", 20, "hang", 0.2),
    ("hang_headers", 20, "hang_after_headers", 0.2),
    ("error200", 20, "error_in_200", 0.3),
    ("quota", 20, "insufficient_quota", 0.2),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario(quiet):
    lines = ["seed: 11", "hang_cap: 12s", "journal_size: 100", "endpoints:"]
    for name, _, kind, probability in MIX:
        kind = None if quiet else kind
        lines += [f"  - name: {name}", "    protocol: openai",
                  f"    first_token_ms: {CANARY_FIRST_TOKEN_MS}", "    inter_token_ms: 10",
                  "    output_tokens: 8"]
        if kind:
            lines += ["    phases:", "      - name: mixed",
                      f"        errors: [{{kind: {kind}, probability: {probability}}}]"]
    return "\n".join(lines) + "\n"


def config(sim_port, targets, memory_window):
    scale = targets / sum(count for _, count, _, _ in MIX)
    out = ["storage:", f"  memory_window: {memory_window}"] if memory_window else []
    out += ["defaults:", "  interval: 15s",
           "  timeouts: {connect: 2s, first_token: 5s, total: 10s}",
           f"rule_files: [{ROOT}/config/rules/*.yaml]", "targets:"]
    for name, count, _, _ in MIX:
        for i in range(max(1, round(count * scale))):
            out += [f"  - name: {name}-{i}", "    provider: openai_compatible",
                    "    model: gpt-4o-mini",
                    f"    base_url: http://127.0.0.1:{sim_port}/{name}/v1",
                    f"    labels: {{cloud: {name}}}"]
    return "\n".join(out) + "\n"


def proc_stat(pid):
    status = open(f"/proc/{pid}/status").read()
    field = lambda key: int(next(l.split()[1] for l in status.splitlines() if l.startswith(key)))
    return {"rss_kb": field("VmRSS:"), "threads": field("Threads:"),
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def probes_done(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("modelpulse_probes_total"))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build/release/daemon/modelpulse"))
    parser.add_argument("--memory-window", help="storage.memory_window, e.g. 20m (default: 2h)")
    parser.add_argument("--quiet", action="store_true",
                        help="every endpoint healthy: the run the hostile mix is compared with")
    args = parser.parse_args()
    window_minutes = 120.0
    if args.memory_window:
        match = re.fullmatch(r"(\d+)([mh])", args.memory_window)
        if not match:
            sys.exit("soak: --memory-window takes minutes or hours, e.g. 20m or 2h")
        window_minutes = int(match[1]) * (60 if match[2] == "h" else 1)
    settle_s = (max(window_minutes, 60.0) + 5) * 60
    folder = tempfile.mkdtemp(prefix="modelpulse-soak-")
    sim_port, port = free_port(), free_port()
    with open(os.path.join(folder, "scenario.yaml"), "w") as f:
        f.write(scenario(args.quiet))
    with open(os.path.join(folder, "modelpulse.yml"), "w") as f:
        f.write(config(sim_port, args.targets, args.memory_window))
    db = os.path.join(folder, "soak.db")
    log = open(os.path.join(folder, "daemon.log"), "wb")
    sim = subprocess.Popen([args.binary, "simulate", f"--scenario={folder}/scenario.yaml",
                            f"--web.listen-address=127.0.0.1:{sim_port}", "--worker-threads=256"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = subprocess.Popen([args.binary, "run", f"--config.file={folder}/modelpulse.yml",
                               f"--storage.path={db}", f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=log, stderr=subprocess.STDOUT)
    print(f"soak: {args.targets} targets for {args.minutes} min"
          f"{', every endpoint healthy' if args.quiet else ''}; folder {folder}", flush=True)
    samples = []
    start = time.time()
    try:
        time.sleep(5)
        while time.time() - start < args.minutes * 60:
            if daemon.poll() is not None:
                sys.exit(f"soak: the daemon exited with {daemon.returncode}; see {folder}/daemon.log")
            sample = {"t_s": round(time.time() - start), **proc_stat(daemon.pid),
                      "probes": probes_done(port)}
            samples.append(sample)
            print(json.dumps(sample), flush=True)
            time.sleep(30)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)
    with open(os.path.join(folder, "samples.json"), "w") as f:
        json.dump(samples, f)

    settled = next((s for s in samples if s["t_s"] >= settle_s), None)
    last = samples[-1]
    fds = [s["fds"] for s in samples if s["t_s"] >= 300] or [s["fds"] for s in samples]
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT p.start_ms, p.ttft_s FROM probes p JOIN targets t ON t.id = p.target_id "
        "WHERE t.name LIKE 'canary-%' AND p.outcome = 0 AND p.ttft_s IS NOT NULL "
        "ORDER BY p.start_ms").fetchall()
    outcomes = conn.execute("SELECT outcome_name, count(*) FROM probes_named "
                            "GROUP BY outcome_name ORDER BY 2 DESC").fetchall()
    conn.close()
    first_ms = rows[0][0] if rows else 0
    window_ms = 10 * 60 * 1000
    windows = {}
    for start_ms, ttft in rows:
        windows.setdefault((start_ms - first_ms) // window_ms, []).append(
            1000 * ttft - CANARY_FIRST_TOKEN_MS)
    print(f"soak summary: {len(samples)} samples over {last['t_s']} s; "
          f"{last['probes']:.0f} probes; outcomes {dict(outcomes)}")
    peak = max(s["rss_kb"] for s in samples)
    if settled is None:
        print(f"  rss: {last['rss_kb']} kB at the end, max {peak} kB; the run ended before the "
              f"memory window filled ({settle_s / 60:.0f} min), so growth is not judged")
    else:
        growth = 100.0 * (last["rss_kb"] - settled["rss_kb"]) / settled["rss_kb"]
        after = [s["rss_kb"] for s in samples if s["t_s"] >= settle_s]
        print(f"  rss: {settled['rss_kb']} kB settled at {settled['t_s']} s (memory window "
              f"{window_minutes:.0f} min or 1 h + 5), {last['rss_kb']} kB at the end "
              f"({growth:+.1f} %); "
              f"after settling min {min(after)} max {max(after)} kB; max overall {peak} kB")
    hour = [s for s in samples if s["t_s"] >= last["t_s"] - 3600]
    if len(hour) > 2 and last["t_s"] >= 3600:
        mean_t = sum(s["t_s"] for s in hour) / len(hour)
        mean_rss = sum(s["rss_kb"] for s in hour) / len(hour)
        slope = sum((s["t_s"] - mean_t) * (s["rss_kb"] - mean_rss) for s in hour) / sum(
            (s["t_s"] - mean_t) ** 2 for s in hour) * 3600
        print(f"  last 60 min: {hour[0]['rss_kb']} kB -> {last['rss_kb']} kB "
              f"({100.0 * (last['rss_kb'] - hour[0]['rss_kb']) / hour[0]['rss_kb']:+.1f} %), "
              f"least-squares slope {slope:+.0f} kB/h")
    print(f"  fds after 5 min: min {min(fds)} max {max(fds)}; threads at the end "
          f"{last['threads']}")
    for index, errors in sorted(windows.items()):
        print(f"  canary timing error, minutes {index * 10}-{index * 10 + 10}: "
              f"n={len(errors)} p50={percentile(errors, 0.5):.2f} ms "
              f"p99={percentile(errors, 0.99):.2f} ms max={max(errors):.2f} ms")
    errors = [e for window in windows.values() for e in window]
    if errors:
        print(f"  canary timing error, whole run: n={len(errors)} p50={percentile(errors, 0.5):.2f} "
              f"ms p99={percentile(errors, 0.99):.2f} ms max={max(errors):.2f} ms")


if __name__ == "__main__":
    main()
