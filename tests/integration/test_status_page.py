"""The status page and the HTML report in a real browser (issue 10): headless Chromium (Debian
`chromium`) opens the HTML report file (report --format=html), the daemon's /status on loopback
and the static status page (report --format=status-html) without script errors or console
messages, screenshots are kept in the test's output folder, and the numbers the rendered DOM
shows equal the JSON report's for the same database."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import Daemon, free_port, http_get, requires_peer, series, wait_until
from test_slo import SCENARIO, config, run

CHROMIUM = shutil.which("chromium")
# The test's output folder: kept after the run (screenshots), under the build tree when known.
OUTPUT = os.path.join(os.environ.get("MODELPULSE_BUILD_DIR") or tempfile.gettempdir(),
                      "test-output", "status_page")
TOOLTIP = re.compile(r"<title>(\d{4}-\d\d-\d\d):? ([0-9.]+)% \((\d+) bad of (\d+)\)</title>")


def browse(url, name, width=412, height=915):
    """Opens `url` in headless Chromium twice (the rendered DOM, then a screenshot at the given
    window size, a phone's by default). Returns (dom, console lines, screenshot path)."""
    os.makedirs(OUTPUT, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="modelpulse-chromium-")
    shot = os.path.join(OUTPUT, f"{name}.png")
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    try:
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=30)
        pic = subprocess.run(base + [f"--screenshot={shot}", f"--window-size={width},{height}",
                                     "--hide-scrollbars", url],
                             capture_output=True, text=True, timeout=30)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    # Every console message of the page (console.*, uncaught exceptions) is logged as CONSOLE;
    # the pages have no scripts, so any is an error.
    console = [line for line in (dom.stderr + pic.stderr).splitlines()
               if ":CONSOLE" in line or "Uncaught" in line]
    print(f"screenshot: {shot}", flush=True)
    return dom.stdout, console, shot


def status_days(dom):
    """{target: {day: (good, bad)}} from the bars' tooltips of a status page's DOM."""
    out = {}
    for block in dom.split('<div class="t" id="t-')[1:]:
        name = block[:block.index('"')]
        days = {}
        for day, _pct, bad, events in TOOLTIP.findall(block):
            days[day] = (int(events) - int(bad), int(bad))
        out[name] = days
    return out


def report_days(report):
    return {t["name"]: {d["day"]: (d["good"], d["bad"]) for d in t["days"]}
            for t in report["targets"]}


@requires_peer(CHROMIUM is not None, "chromium (Debian package chromium)")
class StatusPageInChromium(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon(config(free_port()), {"scenario.yaml": SCENARIO})
        self.daemon.start()

    def tearDown(self):
        self.daemon.close()

    def report(self, *args):
        out = run("report", "--storage.path", self.daemon.db, "--config.file", self.daemon.config,
                  *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def assert_clean(self, console, what):
        self.assertEqual(console, [], f"{what}: console messages in Chromium")

    def test_pages_render_in_chromium_with_the_json_reports_numbers(self):
        started = time.monotonic()
        d = self.daemon
        # The outage fires the SLO's page: a current incident on /status.
        wait_until(lambda: series(d.metrics(), "modelpulse_alerts", alertname="SLOErrorBudgetBurn",
                                  alertstate="firing"), timeout=40, what="the SLO's page")
        wait_until(lambda: series(d.metrics(), "modelpulse_slo_burn_rate", slo="m-availability",
                                  window="5m"), timeout=40, what="the SLO figures")

        # / links the status page relatively (it works behind a proxy path).
        status, index = http_get(d.url("/"))
        self.assertEqual(status, 200)
        self.assertIn('href="status"', index)

        # Served: the daemon read the settled days at start, so every page reads today only.
        for which in ("first", "second"):
            t0 = time.monotonic()
            status, page = http_get(d.url("/status"))
            self.assertEqual(status, 200)
            print(f"GET /status ({which}): {(time.monotonic() - t0) * 1000:.1f} ms, "
                  f"{len(page)} bytes", flush=True)

        # The live page, bracketed by two JSON reports: the daemon keeps probing, and counts
        # only grow, so each day's figures on the page lie between the two reports'.
        before = report_days(json.loads(self.report("--format", "json")))
        dom, console, _ = browse(d.url("/status"), "status-live")
        after = report_days(json.loads(self.report("--format", "json")))
        self.assert_clean(console, "/status")
        self.assertIn("SLOErrorBudgetBurn", dom)  # the incident firing now
        self.assertIn('id="slos"', dom)
        self.assertIn("m-availability", dom)
        live = status_days(dom)
        self.assertEqual(sorted(live), ["m@flaky", "m@steady"])
        for target, days in after.items():
            for day, (good_after, bad_after) in days.items():
                good_before, bad_before = before[target].get(day, (0, 0))
                good, bad = live[target][day]
                self.assertTrue(good_before <= good <= good_after, (target, day, good))
                self.assertTrue(bad_before <= bad <= bad_after, (target, day, bad))
        self.assertGreater(live["m@flaky"][max(live["m@flaky"])][1], 0)  # the outage shows
        browse(d.url("/status"), "status-live-desktop", width=1280, height=900)

        self.assertEqual(d.stop(), 0)
        # Stopped: every report and page reads the same rows.
        end = str(int(time.time()) + 60)
        report = json.loads(self.report("--format", "json", "--to", end))
        expected = report_days(report)
        self.assertTrue(all(expected[t] for t in expected), expected)

        work = tempfile.mkdtemp(prefix="modelpulse-status-")
        static = os.path.join(work, "status.html")
        with open(static, "w") as f:
            f.write(self.report("--format", "status-html", "--to", end))
        dom, console, _ = browse("file://" + static, "status-static")
        self.assert_clean(console, "status-html")
        shown = status_days(dom)
        for target, days in expected.items():
            for day, figures in days.items():
                self.assertEqual(shown[target][day], figures, (target, day))
            # The other 89 days have no probes.
            self.assertEqual(len(shown[target]), len(days), target)

        html = os.path.join(work, "report.html")
        with open(html, "w") as f:
            f.write(self.report("--format", "html", "--to", end))
        dom, console, _ = browse("file://" + html, "report", width=1280, height=1600)
        self.assert_clean(console, "report --format=html")
        for target in report["targets"]:
            # The target's row: name, probes, availability as the JSON report has them.
            row = re.search(r"<tr><td>" + re.escape(target["name"]) +
                            r"</td><td>(\d+)</td><td>([0-9.]+)%</td>", dom)
            self.assertIsNotNone(row, target["name"])
            self.assertEqual(int(row.group(1)), target["probes"])
            self.assertEqual(row.group(2), f"{target['availability'] * 100:.3f}")
        tooltips = {(day, int(events) - int(bad), int(bad))
                    for day, _pct, bad, events in TOOLTIP.findall(dom)}
        for days in expected.values():
            for day, (good, bad) in days.items():
                self.assertIn((day, good, bad), tooltips)
        shutil.rmtree(work, ignore_errors=True)
        print(f"browser checks took {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    unittest.main()
