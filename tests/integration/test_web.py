"""The HTTP endpoint of `modelpulse run` against real clients: curl over TLS with basic auth, the
lifecycle API, and hostile clients (huge and compressed bodies, slowloris). Every client is bounded
in count and time."""
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
import unittest
import warnings
import zlib

import harness
from harness import Daemon, free_port, requires_peer, wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # libxcrypt through Python: the same bcrypt the daemon verifies with

SCENARIO = """
seed: 7
endpoints:
  - name: fast
    protocol: openai
    first_token_ms: 20
    inter_token_ms: 5
    output_tokens: 4
    phases: [{name: healthy}]
"""


def config(sim_port):
    return f"""
defaults:
  interval: 2s
targets:
  - name: fast
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/fast/v1
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
"""


def curl(*args, timeout=10):
    """curl's exit code, HTTP status ("000" when none) and body."""
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}",
                          *args], capture_output=True, timeout=timeout)
    body, _, status = out.stdout.decode(errors="replace").rpartition("\n")
    return out.returncode, status, body


def vm_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def make_cert(folder, name, ca=None):
    """A throwaway P-256 certificate and key, self-signed or signed by `ca` (a name made here
    before); returns the certificate's path."""
    key, cert = os.path.join(folder, f"{name}.key"), os.path.join(folder, f"{name}.pem")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key]
    if ca is None:
        subprocess.run(["openssl", "req", "-x509", *ec, "-days", "1", "-subj", f"/CN={name}",
                        "-addext", "subjectAltName=IP:127.0.0.1", "-out", cert],
                       check=True, capture_output=True, timeout=30)
    else:
        csr = os.path.join(folder, f"{name}.csr")
        subprocess.run(["openssl", "req", *ec, "-subj", f"/CN={name}", "-out", csr],
                       check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-days", "1",
                        "-CA", os.path.join(folder, f"{ca}.pem"),
                        "-CAkey", os.path.join(folder, f"{ca}.key"), "-CAcreateserial",
                        "-out", cert], check=True, capture_output=True, timeout=30)
    return cert


class WebDaemon(Daemon):
    """A Daemon whose readiness is checked with curl (TLS and basic auth need it)."""

    def __init__(self, args, curl_args=(), scheme="http", extra_files=None):
        sim_port = free_port()
        files = {"scenario.yaml": SCENARIO}
        files.update(extra_files or {})
        super().__init__(config(sim_port), files, args=args)
        self.curl_args = list(curl_args)
        self.scheme = scheme

    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self):
        self.log = open(self.log_path, "ab")
        self.args = [a.replace("{dir}", self.dir) for a in self.args]
        self.proc = subprocess.Popen(
            [harness_binary(), "run", f"--config.file={self.config}",
             f"--web.listen-address=127.0.0.1:{self.port}", f"--storage.path={self.db}",
             *self.args],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(lambda: self.proc.poll() is None and
                   curl(*self.curl_args, self.url("/-/ready"))[1] == "200",
                   what="daemon ready")
        return self


def harness_binary():
    import harness
    return harness.BINARY


@requires_peer(shutil.which("openssl") and shutil.which("curl") and shutil.which("prometheus"),
               "openssl, curl and prometheus")
class TlsAndBasicAuth(unittest.TestCase):
    """--web.config.file with a throwaway certificate made by openssl, and bcrypt users."""

    @classmethod
    def setUpClass(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            cls.hash = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
        assert cls.hash.startswith("$2b$10$"), cls.hash
        web_config = f"""
tls_server_config:
  cert_file: tls/server.pem   # relative to this file, as exporter-toolkit resolves it
  key_file: tls/server.key
http_server_config:
  headers:
    X-Frame-Options: deny
basic_auth_users:
  alice: {cls.hash}
"""
        cls.daemon = WebDaemon(["--web.config.file={dir}/web-config.yml"],
                               scheme="https", extra_files={"web-config.yml": web_config})
        tls = os.path.join(cls.daemon.dir, "tls")
        os.mkdir(tls)
        cls.cacert = make_cert(tls, "server")
        cls.daemon.curl_args = ["--cacert", cls.cacert, "-u", "alice:s3cret"]
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.daemon.close()

    def get(self, path, *args):
        return curl("--cacert", self.cacert, *args, self.daemon.url(path))

    def test_right_password_passes(self):
        code, status, body = self.get("/metrics", "-u", "alice:s3cret")
        self.assertEqual((code, status), (0, "200"), body)
        self.assertIn("modelpulse_build_info", body)

    def test_wrong_password_unknown_user_and_none_get_401(self):
        for args in (["-u", "alice:wrong"], ["-u", "mallory:s3cret"], []):
            with self.subTest(args=args):
                code, status, body = self.get("/metrics", *args)
                self.assertEqual(status, "401", body)
                self.assertEqual(body, "Unauthorized\n")
        # Every endpoint, not only /metrics.
        self.assertEqual(self.get("/-/healthy")[1], "401")
        self.assertEqual(self.get("/api/v1/targets")[1], "401")

    def test_challenge_and_configured_headers(self):
        out = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "--max-time", "5",
                              "--cacert", self.cacert, self.daemon.url("/metrics")],
                             capture_output=True, timeout=10).stdout.decode().lower()
        self.assertIn("www-authenticate: basic", out)
        self.assertIn("x-frame-options: deny", out)

    def test_plain_http_client_to_the_tls_port_fails(self):
        code, status, _ = curl("-u", "alice:s3cret", f"http://127.0.0.1:{self.daemon.port}/metrics")
        self.assertNotEqual(code, 0)
        self.assertEqual(status, "000")
        # And the refused client did not take the server down.
        self.assertEqual(self.get("/-/ready", "-u", "alice:s3cret")[1], "200")

    def test_tls_below_the_minimum_version_is_refused(self):
        code, status, _ = self.get("/-/ready", "-u", "alice:s3cret", "--tls-max", "1.1")
        self.assertNotEqual(code, 0)
        self.assertEqual(status, "000")

    def test_prometheus_scrapes_it_over_tls_with_basic_auth(self):
        port = free_port()
        folder = os.path.join(self.daemon.dir, "prometheus")
        os.mkdir(folder)
        with open(os.path.join(folder, "prometheus.yml"), "w") as f:
            f.write(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: modelpulse
    scheme: https
    tls_config: {{ca_file: {self.cacert}}}
    basic_auth: {{username: alice, password: s3cret}}
    static_configs: [{{targets: ["127.0.0.1:{self.daemon.port}"]}}]
""")
        with open(os.path.join(folder, "log"), "wb") as log:
            prom = subprocess.Popen(
                ["prometheus", f"--config.file={folder}/prometheus.yml",
                 f"--storage.tsdb.path={folder}/data", f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)
            try:
                def up():
                    _, status, body = curl(
                        f"http://127.0.0.1:{port}/api/v1/query?query=modelpulse_build_info")
                    return status == "200" and json.loads(body)["data"]["result"]
                wait_until(up, timeout=30, interval=0.5, what="Prometheus scraped modelpulse")
                _, _, body = curl(f"http://127.0.0.1:{port}/api/v1/query?query=up")
                self.assertEqual(json.loads(body)["data"]["result"][0]["value"][1], "1")
            finally:
                prom.terminate()
                prom.wait(timeout=20)

    def test_silent_sockets_on_the_tls_port_do_not_stop_scrapes(self):
        # 16 clients that connect and never start the handshake.
        silent = [socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
                  for _ in range(16)]
        try:
            started = time.monotonic()
            code, status, _ = self.get("/metrics", "-u", "alice:s3cret")
            self.assertEqual(status, "200")
            self.assertLess(time.monotonic() - started, 1.0)
        finally:
            for s in silent:
                s.close()

    def test_reload_without_lifecycle_is_refused(self):
        code, status, body = self.get("/-/reload", "-u", "alice:s3cret", "-X", "POST")
        self.assertEqual(status, "403")
        self.assertEqual(body, "Lifecycle API is not enabled.\n")
        self.assertEqual(self.get("/-/reload", "-u", "alice:s3cret", "-X", "PUT")[1], "403")
        # A reload through SIGHUP stays available.
        self.assertNotIn("reloading configuration", self.daemon.log_text())


@requires_peer(shutil.which("openssl") and shutil.which("curl"), "openssl and curl")
class ClientCertificates(unittest.TestCase):
    def test_require_and_verify_client_cert(self):
        web_config = """
tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
"""
        daemon = WebDaemon(["--web.config.file={dir}/web-config.yml"], scheme="https",
                           extra_files={"web-config.yml": web_config})
        try:
            server = make_cert(daemon.dir, "server")
            make_cert(daemon.dir, "ca")
            client = make_cert(daemon.dir, "client", ca="ca")
            stranger = make_cert(daemon.dir, "stranger")
            key = lambda cert: cert[:-len(".pem")] + ".key"
            daemon.curl_args = ["--cacert", server, "--cert", client, "--key", key(client)]
            daemon.start()
            url = daemon.url("/metrics")
            self.assertEqual(curl("--cacert", server, "--cert", client, "--key", key(client),
                                  url)[1], "200")
            self.assertEqual(curl("--cacert", server, url)[1], "000")
            self.assertEqual(curl("--cacert", server, "--cert", stranger, "--key",
                                  key(stranger), url)[1], "000")
        finally:
            daemon.stop()
            daemon.close()


class WebConfigErrors(unittest.TestCase):
    def test_a_bad_web_config_stops_the_start_with_file_and_line(self):
        daemon = WebDaemon(["--web.config.file={dir}/web-config.yml"], extra_files={
            "web-config.yml": "basic_auth_users:\n  alice: plaintext\ntls_server_config:\n"
                              "  cert_file: missing.pem\n"})
        try:
            daemon.args = [a.replace("{dir}", daemon.dir) for a in daemon.args]
            out = subprocess.run(
                [harness_binary(), "run", f"--config.file={daemon.config}",
                 f"--web.listen-address=127.0.0.1:{daemon.port}", f"--storage.path={daemon.db}",
                 *daemon.args], capture_output=True, timeout=20)
            self.assertEqual(out.returncode, 1)
            # The error is one logfmt line: its msg value escapes quotes and newlines.
            text = (out.stdout.decode() + out.stderr.decode()).replace('\\"', '"')
            self.assertIn("level=error", text)
            self.assertIn("web-config.yml:2:10: basic_auth_users.alice: not a bcrypt hash", text)
            self.assertIn("web-config.yml:3:1: \"tls_server_config\": missing key_file", text)
            self.assertNotIn("plaintext", text)
        finally:
            daemon.close()


class Lifecycle(unittest.TestCase):
    def test_bare_post_and_put_reload_with_lifecycle_enabled(self):
        daemon = WebDaemon(["--web.enable-lifecycle"]).start()
        try:
            started = time.monotonic()
            code, status, body = curl("-X", "POST", daemon.url("/-/reload"))
            self.assertEqual((code, status), (0, "200"), body)
            self.assertLess(time.monotonic() - started, 3.0)
            self.assertEqual(curl("-X", "PUT", daemon.url("/-/reload"))[1], "200")
            self.assertEqual(curl("-X", "POST", "-d", "", daemon.url("/-/reload"))[1], "200")
            self.assertEqual(curl(daemon.url("/-/reload"))[1], "405")
        finally:
            daemon.stop()
            daemon.close()


class BoundedClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = WebDaemon(["--web.enable-lifecycle", "--web.read-timeout=3s"]).start()
        cls.idle_rss = vm_rss_mb(cls.daemon.proc.pid)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        cls.daemon.close()

    def rss(self):
        return vm_rss_mb(self.daemon.proc.pid)

    def assert_memory_bounded(self):
        # The bound: under 100 MB resident. Under ASan the same 80 MB of headroom over
        # the idle process (about 20 MB in release) is what is checked.
        if harness.SANITIZED:
            self.assertLess(self.rss() - self.idle_rss, 80.0)
        else:
            self.assertLess(self.rss(), 100.0)

    def raw_request(self, head, body_chunks, limit_s=20):
        """Sends `head`, then body chunks until the server answers or closes; the answer's
        first line and how many body bytes went out."""
        s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
        sent = 0
        deadline = time.monotonic() + limit_s
        try:
            s.sendall(head)
            s.setblocking(False)
            answer = b""
            for chunk in body_chunks:
                if time.monotonic() > deadline:
                    break
                try:
                    answer += s.recv(4096)
                    break  # the server answered (or closed: b"") before the body ended
                except BlockingIOError:
                    pass
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    break
            s.settimeout(5)
            try:
                while b"\r\n" not in answer:
                    data = s.recv(4096)
                    if not data:
                        break
                    answer += data
            except (ConnectionResetError, socket.timeout):
                pass
            return answer.split(b"\r\n")[0].decode(errors="replace"), sent
        finally:
            s.close()

    def test_1gib_post_is_refused_unread(self):
        mib = b"\0" * (1 << 20)
        line, sent = self.raw_request(
            b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n",
            (mib for _ in range(1024)))
        self.assertEqual(line, "HTTP/1.1 413 Payload Too Large")
        self.assertLess(sent, 256 << 20)
        # Chunked, where no length is announced: the allowance ends it.
        line, sent = self.raw_request(
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            (b"100000\r\n" + mib + b"\r\n" for _ in range(1024)))
        self.assertLess(sent, 256 << 20)
        self.assertNotIn(" 200 ", line)
        # curl streaming a 1 GiB (sparse) file: stopped by the 413.
        big = os.path.join(self.daemon.dir, "big")
        with open(big, "wb") as f:
            f.truncate(1 << 30)
        code, status, _ = curl("-X", "POST", "-T", big, self.daemon.url("/-/reload"), timeout=30)
        self.assertEqual(status, "413")
        os.remove(big)
        self.assert_memory_bounded()

    def test_gzip_post_is_never_inflated(self):
        # 1 MiB of gzip that would inflate to 1 GiB.
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b"\0" * (1 << 20)
        bomb = b"".join(packer.compress(zeros) for _ in range(1024)) + packer.flush()
        self.assertLess(len(bomb), 1_100_000)
        before = self.daemon.log_text().count("reload")
        for path in ("/-/reload", "/metrics", "/nowhere"):
            with self.subTest(path=path):
                line, _ = self.raw_request(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                    f"Content-Length: {len(bomb)}\r\n\r\n".encode(),
                    (bomb[i:i + 65536] for i in range(0, len(bomb), 65536)))
                self.assertEqual(line, "HTTP/1.1 415 Unsupported Media Type")
        self.assertEqual(self.daemon.log_text().count("reload"), before)
        self.assert_memory_bounded()

    def test_header_flood_is_cut_off(self):
        line, _ = self.raw_request(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
            (b"X-Filler: " + b"a" * 1000 + b"\r\n" for _ in range(100_000)))
        self.assertNotIn(" 200 ", line)
        self.assert_memory_bounded()

    def test_16_slowloris_sockets_do_not_stop_metrics(self):
        sockets = []
        stop = threading.Event()
        answered = {}  # socket -> when the server's answer (400) arrived
        closed = {}  # socket -> when the server closed it

        def drip():
            # One byte a second on every socket, for at most 12 seconds; looks for the server's
            # answer and close four times a second.
            for tick in range(48):
                for s in list(sockets):
                    try:
                        readable, _, _ = select.select([s], [], [], 0)
                        if readable:
                            if s.recv(4096):
                                answered.setdefault(s, time.monotonic())
                                continue
                            raise ConnectionResetError  # the server closed it
                        if tick % 4 == 0:
                            s.send(b"X")
                    except OSError:
                        closed[s] = time.monotonic()
                        sockets.remove(s)
                        s.close()
                if stop.wait(0.25):
                    return

        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(s)
        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            durations = []
            for _ in range(5):
                time.sleep(0.5)
                started = time.monotonic()
                code, status, body = curl(self.daemon.url("/metrics"))
                durations.append(time.monotonic() - started)
                self.assertEqual(status, "200")
            self.assertLess(max(durations), 1.0, durations)
            # The whole-request deadline (--web.read-timeout=3s here) ends each drip with a 400,
            # and the connection with it: the client cannot start over on the same socket.
            wait_until(lambda: len(closed) == 16, timeout=9, interval=0.2,
                       what="slowloris sockets closed by the server")
            for s, when in closed.items():
                self.assertLess(when - answered.get(s, when), 1.5)
        finally:
            stop.set()
            dripper.join()
            for s in sockets:
                s.close()


if __name__ == "__main__":
    unittest.main()
