"""`modelpulse run` as systemd sees it: a NOTIFY_SOCKET datagram listener in place of systemd,
the watchdog while every loop makes progress and while the rule loop is stuck, reloads, stop; and
`systemd-analyze verify` on the unit `cmake --install` writes."""
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BINARY, Daemon, wait_until
import harness

WATCHDOG_USEC = 200000

# No targets: the prober and the writer idle, so a silent watchdog can only be the rule loop's.
CONFIG = """
global:
  evaluation_interval: 1s
targets: []
rule_files: [rules.yaml]
"""

# The recording rule is evaluated every second; its group's alert states are saved after each
# evaluation (a write to the database, even when there is nothing to save).
RULES = """
groups:
  - name: heartbeat
    interval: 1s
    rules:
      - record: modelpulse_test:one
        expr: vector(1)
"""


class NotifySocket:
    """What systemd's end of NOTIFY_SOCKET records: every datagram with its arrival time."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (time.monotonic(), text)
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def since(self, start):
        with self.lock:
            return [(t, m) for t, m in self.messages if t >= start]

    def wait_for(self, predicate, start, timeout, what):
        def found():
            return [(t, m) for t, m in self.since(start) if predicate(m)]
        return wait_until(found, timeout=timeout, interval=0.02, what=what)[0]

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def is_ping(message):
    return message == "WATCHDOG=1"


class NotifiedDaemon(Daemon):
    """The daemon started as systemd would with Type=notify and WatchdogSec=: NOTIFY_SOCKET,
    WATCHDOG_USEC, and WATCHDOG_PID naming the service's own process (sh's $$, kept by exec)."""

    def start_notified(self, notify, watchdog_usec=WATCHDOG_USEC):
        self.log = open(self.log_path, "ab")
        env = dict(self.env, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC=str(watchdog_usec))
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(
            ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", BINARY, "run",
             f"--config.file={self.config}", f"--web.listen-address=127.0.0.1:{self.port}",
             f"--storage.path={self.db}"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        return self


class SystemdNotify(unittest.TestCase):
    def setUp(self):
        self.daemon = NotifiedDaemon(CONFIG, {"rules.yaml": RULES})
        self.notify = NotifySocket(self.daemon.dir)
        self.locker = None

    def tearDown(self):
        if self.locker is not None:
            self.locker.close()
        self.daemon.close()
        self.notify.close()

    def test_ready_watchdog_reload_stuck_rule_loop_and_stop(self):
        daemon = self.daemon.start_notified(self.notify)
        ready_at, _ = self.notify.wait_for(lambda m: m == "READY=1", daemon.spawned_at, 15,
                                           "READY=1")
        print(f"startup to READY=1: {(ready_at - daemon.spawned_at) * 1000:.0f} ms")
        # While starting (a migration after an upgrade can take minutes), the start timeout is
        # extended first, with a status saying why.
        extended = [(t, m) for t, m in self.notify.since(daemon.spawned_at)
                    if m.startswith("EXTEND_TIMEOUT_USEC=")]
        self.assertTrue(extended, "EXTEND_TIMEOUT_USEC= before READY=1")
        self.assertLessEqual(extended[0][0], ready_at)
        self.assertRegex(extended[0][1],
                         r"^EXTEND_TIMEOUT_USEC=60000000\nSTATUS=starting: opening the database")

        # Healthy: a ping every half interval (100 ms); allow for a loaded machine.
        healthy_from = time.monotonic()
        time.sleep(1.0)
        pings = [t for t, m in self.notify.since(healthy_from) if is_ping(m)]
        self.assertGreaterEqual(len(pings), 4, "WATCHDOG=1 about every 100 ms while healthy")

        # SIGHUP: RELOADING=1 with the monotonic time, then READY=1 again.
        reload_from = time.monotonic()
        daemon.signal(signal.SIGHUP)
        reloading_at, reloading = self.notify.wait_for(
            lambda m: m.startswith("RELOADING=1"), reload_from, 10, "RELOADING=1")
        self.assertRegex(reloading, r"^RELOADING=1\nMONOTONIC_USEC=\d+$")
        monotonic_usec = int(reloading.split("MONOTONIC_USEC=")[1])
        # Python's time.monotonic() is CLOCK_MONOTONIC too: the daemon stamped it meanwhile.
        self.assertLessEqual(reload_from * 1e6 - 1e3, monotonic_usec)
        self.assertLessEqual(monotonic_usec, time.monotonic() * 1e6)
        ready_again_at, _ = self.notify.wait_for(lambda m: m == "READY=1", reloading_at, 10,
                                                 "READY=1 after the reload")
        # From the daemon's own stamp: the receiving thread may see both datagrams at once.
        print(f"SIGHUP reload, RELOADING=1 (MONOTONIC_USEC) to READY=1 received: "
              f"{(ready_again_at - monotonic_usec / 1e6) * 1000:.1f} ms")

        # Another process holds the database's write lock (an admin's open transaction in
        # sqlite3, a backup tool): the rule loop's save of its alert states waits in SQLite's
        # busy handler, so the loop makes no progress and the pings stop.
        self.locker = sqlite3.connect(daemon.db, isolation_level=None, timeout=0)
        self.locker.execute("BEGIN IMMEDIATE")
        locked_at = time.monotonic()

        def silent_for(seconds):
            pings = [t for t, m in self.notify.since(locked_at) if is_ping(m)]
            last = pings[-1] if pings else locked_at
            return time.monotonic() - last >= seconds
        wait_until(lambda: silent_for(1.5), timeout=8, interval=0.05,
                   what="1.5 s without WATCHDOG=1 while the rule loop is stuck")
        wait_until(lambda: "watchdog: the rules loop has made no progress" in daemon.log_text(),
                   timeout=5, what="the stuck loop named in the log")

        # The lock released, the loop goes on and so do the pings (after at most one busy
        # timeout of the statement that was waiting).
        self.locker.rollback()
        self.locker.close()
        self.locker = None
        released_at = time.monotonic()
        self.notify.wait_for(is_ping, released_at, 15, "WATCHDOG=1 again after the lock is gone")
        wait_until(lambda: "watchdog: every loop makes progress again" in daemon.log_text(),
                   timeout=5, what="the recovery in the log")

        stop_from = time.monotonic()
        self.assertEqual(daemon.stop(), 0)
        self.notify.wait_for(lambda m: m == "STOPPING=1", stop_from, 5, "STOPPING=1")

    def test_no_watchdog_pings_for_another_process(self):
        # WATCHDOG_PID names another process: the pings are not this one's to send (a child
        # that inherited the environment must not ping for its parent).
        daemon = self.daemon
        daemon.log = open(daemon.log_path, "ab")
        env = dict(daemon.env, NOTIFY_SOCKET=self.notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC),
                   WATCHDOG_PID="1")
        started = time.monotonic()
        daemon.proc = subprocess.Popen(
            [BINARY, "run", f"--config.file={daemon.config}",
             f"--web.listen-address=127.0.0.1:{daemon.port}", f"--storage.path={daemon.db}"],
            stdout=daemon.log, stderr=subprocess.STDOUT, env=env)
        ready_at, _ = self.notify.wait_for(lambda m: m == "READY=1", started, 15, "READY=1")
        time.sleep(0.6)
        self.assertEqual([m for _, m in self.notify.since(started) if is_ping(m)], [])
        self.assertEqual(daemon.stop(), 0)


@harness.requires_peer(shutil.which("systemd-analyze"),
                       "systemd-analyze (package systemd; scripts/install-deps.sh installs it)")
class UnitFile(unittest.TestCase):
    def test_installed_unit_verifies_clean(self):
        build_dir = os.environ.get("MODELPULSE_BUILD_DIR")
        self.assertTrue(build_dir, "MODELPULSE_BUILD_DIR names the build folder")
        prefix = tempfile.mkdtemp(prefix="modelpulse-prefix-")
        try:
            subprocess.run(["cmake", "--install", build_dir, "--prefix", prefix], check=True,
                           capture_output=True, timeout=120)
            unit = os.path.join(prefix, "lib/systemd/system/modelpulse.service")
            with open(unit) as f:
                text = f.read()
            # The paths follow the prefix: the binary and configuration that were installed.
            self.assertIn(f"ExecStart={prefix}/bin/modelpulse run "
                          f"--config.file={prefix}/etc/modelpulse/modelpulse.yml ", text)
            self.assertTrue(os.access(f"{prefix}/bin/modelpulse", os.X_OK))
            self.assertTrue(os.path.isfile(f"{prefix}/etc/modelpulse/modelpulse.yml"))
            for directive in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID",
                              "StateDirectory=modelpulse", "EnvironmentFile=-"):
                self.assertIn(directive, text)
            # verify loads the unit as systemd would (directives, ExecStart's binary, the
            # hardening options) and prints anything it does not like.
            result = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True,
                                    text=True, timeout=60)
            self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))
        finally:
            shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
