#!/usr/bin/env python3
"""Startup to READY=1 and SIGHUP reload time (RELOADING=1 to READY=1) as systemd would see them:
`modelpulse run` with NOTIFY_SOCKET pointing at a datagram socket of this script, which stamps
each message on arrival (CLOCK_MONOTONIC).

    bench/notify_bench.py build/release/daemon/modelpulse [TARGETS] [RULE_FILES] [ROUNDS]

Defaults: 200 targets, 20 rule files (the four shipped ones, five times over with renamed
groups), 5 starts and 20 reloads. The targets point at a closed loopback port with a 1 h interval,
so probing costs next to nothing and the figures are the daemon's own. Loopback only; every
process it starts is stopped before it exits.
"""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_setup(folder, targets, rule_files):
    shipped = sorted(f for f in os.listdir(os.path.join(ROOT, "config/rules"))
                     if f.endswith(".yaml"))
    names = []
    for i in range(rule_files):
        with open(os.path.join(ROOT, "config/rules", shipped[i % len(shipped)])) as f:
            text = f.read()
        text = re.sub(r"(- name: )(\S+)", lambda m: f"{m.group(1)}{m.group(2)}-{i}", text)
        name = f"rules-{i:02d}.yaml"
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
        names.append(name)
    lines = ["defaults:", "  interval: 1h", "targets:"]
    dead_port = free_port()  # nothing listens: each probe fails fast with `network`
    for i in range(targets):
        lines += [f"  - name: t{i:03d}", "    provider: openai_compatible",
                  f"    model: m{i % 10}", f"    base_url: http://127.0.0.1:{dead_port}/v1"]
    lines.append("rule_files: [" + ", ".join(names) + "]")
    config = os.path.join(folder, "modelpulse.yml")
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    return config


def receive(sock, wanted, timeout=30):
    """The arrival time of the next message starting with `wanted`, and the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except socket.timeout:
            break
        if data.startswith(wanted):
            return time.monotonic(), data
    raise SystemExit(f"no {wanted} within {timeout}s")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/release/daemon/modelpulse"
    targets = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rule_files = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    reloads = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    starts = 5
    folder = tempfile.mkdtemp(prefix="modelpulse-notify-bench-")
    try:
        config = write_setup(folder, targets, rule_files)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(os.path.join(folder, "notify.sock"))
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(folder, "notify.sock"))
        startup, reload = [], []
        for start in range(starts):
            db = os.path.join(folder, f"bench-{start}.db")  # a fresh database every start
            log = open(os.path.join(folder, "daemon.log"), "ab")
            spawned = time.monotonic()
            proc = subprocess.Popen(
                [binary, "run", f"--config.file={config}",
                 f"--web.listen-address=127.0.0.1:{free_port()}", f"--storage.path={db}"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                startup.append(receive(sock, "READY=1")[0] - spawned)
                if start == 0:
                    for _ in range(reloads):
                        proc.send_signal(signal.SIGHUP)
                        # The daemon's own stamp (CLOCK_MONOTONIC, as time.monotonic()) when it
                        # began: both datagrams may be read here at once.
                        _, reloading = receive(sock, "RELOADING=1")
                        began = int(reloading.split("MONOTONIC_USEC=")[1]) / 1e6
                        reload.append(receive(sock, "READY=1")[0] - began)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
                log.close()
        with open(os.path.join(folder, "daemon.log"), errors="replace") as f:
            reloaded = f.read().count(f"configuration reloaded: {targets} targets")
        if reloaded != reloads:
            raise SystemExit(f"{reloaded} of {reloads} reloads succeeded; see the daemon's log")
        ms = lambda values: ", ".join(f"{v * 1000:.1f}" for v in sorted(values))
        print(f"{targets} targets, {rule_files} rule files "
              f"({sum(1 for _ in open(config))} config lines)")
        print(f"startup to READY=1, ms (fresh database, {starts} starts): median "
              f"{statistics.median(startup) * 1000:.1f}; all: {ms(startup)}")
        print(f"reload, RELOADING=1 (its MONOTONIC_USEC) to READY=1 received, ms ({reloads} SIGHUPs): median "
              f"{statistics.median(reload) * 1000:.1f}, max {max(reload) * 1000:.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
