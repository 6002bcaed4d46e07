#!/usr/bin/env python3
"""Times the Prometheus API's discovery endpoints (label names and values, series) of one
modelpulse binary over a database, as Grafana's metric browser and variables send them.

`modelpulse run` with no targets serves the file (as bench/prometheus_compare.py does); after
the startup quick_check, each request goes once, in order, and its wall time and answer size
are printed, then the daemon's VmRSS and VmHWM. The windows are relative to the end of
rules_bench's generated history (--days after its start); "all of history" sends no start/end.

  bench/api_discovery_bench.py --db /tmp/pcmp/mp-rules-bench-t20-d30-i15-v2.db --days 30
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

# bench/rules_bench.cpp's kStartMs: whole hours.
START_S = 1_750_000_000 // 3600 * 3600


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="a database rules_bench generated")
    parser.add_argument("--days", type=int, default=30, help="days of history it holds")
    parser.add_argument("--modelpulse", default="build/release/daemon/modelpulse")
    args = parser.parse_args()
    end = START_S + args.days * 86_400
    six_hours = {"start": end - 6 * 3600, "end": end}
    cases = [
        ("label/__name__/values, all of history (first)", "/api/v1/label/__name__/values", {}),
        ("the same again", "/api/v1/label/__name__/values", {}),
        ("labels, last 6 h", "/api/v1/labels", six_hours),
        (f"series modelpulse_probes_total, {args.days} d", "/api/v1/series",
         {"match[]": "modelpulse_probes_total", "start": START_S, "end": end}),
        ("label/target/values of probe_success, last 6 h", "/api/v1/label/target/values",
         dict(six_hours, **{"match[]": "probe_success"})),
        # Grafana's metric browser and Explore list every series of the default selector.
        ('series {__name__=~".+"}, all of history', "/api/v1/series",
         {"match[]": '{__name__=~".+"}'}),
    ]
    with tempfile.TemporaryDirectory(prefix="mp-discovery-") as tmp:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = os.path.join(tmp, "modelpulse.yml")
        with open(config, "w") as f:
            f.write("storage: {retention: 3650d}\ntargets: []\n")
        log = os.path.join(tmp, "modelpulse.log")
        proc = subprocess.Popen(
            [args.modelpulse, "run", f"--config.file={config}", f"--storage.path={args.db}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if urllib.request.urlopen(base + "/-/ready", timeout=2).status == 200:
                        break
                except OSError:
                    time.sleep(0.2)
            # A file over StorageOptions::integrity_check_max_bytes (256 MiB) is checked in the
            # background after the start; a smaller one was checked before it.
            background_check = os.path.getsize(args.db) > 256 << 20
            while background_check and "quick_check" not in open(log, errors="replace").read():
                if time.monotonic() > deadline:
                    raise SystemExit("no quick_check in the log after 300 s")
                time.sleep(0.5)
            print("| request | time | results |")
            print("| --- | --- | --- |")
            for name, path, params in cases:
                url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
                t0 = time.monotonic()
                try:
                    with urllib.request.urlopen(url, timeout=600) as r:
                        body = json.loads(r.read())
                    results = len(body["data"])
                except urllib.error.HTTPError as e:  # a bound: Prometheus's error envelope
                    results = f"HTTP {e.code}: {json.loads(e.read())['error']}"
                elapsed = time.monotonic() - t0
                print(f"| {name} | {elapsed:.3f} s | {results} |")
            with open(f"/proc/{proc.pid}/status") as f:
                print(" ".join(line.strip() for line in f if line.startswith(("VmRSS", "VmHWM"))))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
