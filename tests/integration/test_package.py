"""The .deb as a machine gets it: built here with cpack, unpacked into a throwaway root (dpkg -x),
its maintainer scripts run against that root with stand-ins for the user database and systemd,
and checked by lintian."""
import glob
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import harness

BUILD_DIR = os.environ.get("MODELPULSE_BUILD_DIR", "build/release")

# Stand-ins for the commands through which the maintainer scripts change the machine. Each logs
# its call; getent, adduser, deluser and delgroup keep their users in a file of the test's own.
SHIM = """#!/bin/sh
echo "$(basename "$0") $*" >> "$SHIM_LOG"
case "$(basename "$0")" in
  getent) grep -qx "$2" "$SHIM_USERS" 2>/dev/null; exit $? ;;
  adduser) eval "last=\\${$#}"; echo "$last" >> "$SHIM_USERS" ;;
  deluser) eval "last=\\${$#}"; grep -vx "$last" "$SHIM_USERS" > "$SHIM_USERS.new" || true
           mv "$SHIM_USERS.new" "$SHIM_USERS" ;;
esac
exit 0
"""
SHIMMED = ["getent", "adduser", "deluser", "delgroup", "chown", "deb-systemd-helper",
           "deb-systemd-invoke", "systemctl"]


def run(args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


@harness.requires_peer(shutil.which("lintian") and shutil.which("systemd-analyze"),
                       "lintian and systemd-analyze (scripts/install-deps.sh installs them)")
class DebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="modelpulse-deb-")
        config = os.path.join(BUILD_DIR, "CPackConfig.cmake")
        run(["cpack", "-G", "DEB", "--config", config, "-B", cls.work], timeout=600)
        debs = glob.glob(os.path.join(cls.work, "*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]
        cls.root = os.path.join(cls.work, "root")
        run(["dpkg-deb", "-x", cls.deb, cls.root])
        cls.control = os.path.join(cls.work, "control")
        run(["dpkg-deb", "-e", cls.deb, cls.control])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()

    def test_control_fields_and_dependencies_from_the_shared_libraries(self):
        self.assertEqual(os.path.basename(self.deb), "modelpulse_0.1.0_amd64.deb")
        self.assertEqual(self.field("Package"), "modelpulse")
        self.assertEqual(self.field("Section"), "net")
        self.assertRegex(self.field("Maintainer"), r"^[^<>]+ <[^<>@]+@[^<>]+>$")
        self.assertTrue(self.field("Description").startswith(
            "probes AI model APIs and serves their health as Prometheus metrics\n"
            " modelpulse sends small synthetic requests"))
        depends = [d.strip().split(" ")[0] for d in self.field("Depends").split(",")]
        # adduser for postinst; the rest found by dpkg-shlibdeps in the binary.
        for package in ("adduser", "libc6", "libcurl4", "libsqlite3-0", "libsystemd0",
                        "libstdc++6", "libyaml-cpp0.7", "libspdlog1.10-fmt9"):
            self.assertIn(package, depends)

    def test_files_in_fhs_paths_and_every_etc_file_a_conffile(self):
        files = sorted(os.path.relpath(os.path.join(d, f), self.root)
                       for d, _, fs in os.walk(self.root) for f in fs)
        rules = sorted(os.path.basename(p) for p in
                       glob.glob(os.path.join(harness.SOURCE_ROOT, "config/rules/*.yaml")))
        grafana_root = os.path.join(harness.SOURCE_ROOT, "config/grafana")
        grafana = sorted(os.path.relpath(p, grafana_root) for p in
                         glob.glob(os.path.join(grafana_root, "*.json")) +
                         glob.glob(os.path.join(grafana_root, "provisioning/**/*.y*ml"),
                                   recursive=True))
        self.assertEqual(files, sorted(
            ["usr/bin/modelpulse", "etc/modelpulse/modelpulse.yml",
             "lib/systemd/system/modelpulse.service", "usr/share/doc/modelpulse/copyright",
             "usr/share/doc/modelpulse/changelog.gz",
             "usr/share/doc/modelpulse/examples/clouds.yaml"] +
            [f"etc/modelpulse/rules/{r}" for r in rules] +
            [f"usr/share/doc/modelpulse/examples/grafana/{g}" for g in grafana]))
        with open(os.path.join(self.control, "conffiles")) as f:
            conffiles = f.read().split()
        self.assertEqual(sorted(conffiles),
                         sorted("/" + f for f in files if f.startswith("etc/")))
        binary = os.path.join(self.root, "usr/bin/modelpulse")
        self.assertEqual(stat.S_IMODE(os.stat(binary).st_mode), 0o755)
        self.assertIn("0.1.0", run([binary, "version"]).stdout)
        # The shipped rule files pass their checker where the package put them.
        run([binary, "check", "rules"] +
            sorted(glob.glob(os.path.join(self.root, "etc/modelpulse/rules/*.yaml"))))
        with open(os.path.join(self.root, "lib/systemd/system/modelpulse.service")) as f:
            unit = f.read()
        self.assertIn("\nExecStart=/usr/bin/modelpulse run "
                      "--config.file=/etc/modelpulse/modelpulse.yml "
                      "--storage.path=/var/lib/modelpulse/modelpulse.db\n", unit)
        self.assertIn("\nEnvironmentFile=-/etc/modelpulse/environment\n", unit)

    def test_maintainer_scripts_create_the_user_keep_state_on_upgrade_and_purge_it(self):
        shims = os.path.join(self.work, "shims")
        os.makedirs(shims, exist_ok=True)
        for name in SHIMMED:
            path = os.path.join(shims, name)
            with open(path, "w") as f:
                f.write(SHIM)
            os.chmod(path, 0o755)
        log = os.path.join(self.work, "calls.log")
        users = os.path.join(self.work, "users")
        root = os.path.join(self.work, "scripts-root")
        os.makedirs(root, exist_ok=True)
        # No sbin in PATH: a command without a stand-in fails instead of changing this machine.
        env = {"PATH": f"{shims}:/usr/bin:/bin", "DPKG_ROOT": root, "SHIM_LOG": log,
               "SHIM_USERS": users, "DPKG_MAINTSCRIPT_PACKAGE": "modelpulse"}

        def script(name, *args):
            open(log, "w").close()
            run([os.path.join(self.control, name), *args], env=env, timeout=30)
            with open(log) as f:
                return f.read().splitlines()

        state = os.path.join(root, "var/lib/modelpulse")
        calls = script("postinst", "configure", "")
        self.assertIn("adduser --system --group --quiet --home /var/lib/modelpulse "
                      "--no-create-home --gecos modelpulse daemon modelpulse", calls)
        self.assertIn(f"chown modelpulse:modelpulse {state}", calls)
        self.assertEqual(stat.S_IMODE(os.stat(state).st_mode), 0o750)
        self.assertIn("deb-systemd-helper enable modelpulse.service", calls)
        with open(os.path.join(state, "modelpulse.db"), "w") as f:
            f.write("probes")

        calls = script("postinst", "configure", "0.1.0")  # an upgrade
        self.assertFalse([c for c in calls if c.startswith("adduser")], "the user exists")
        self.assertTrue(os.path.exists(os.path.join(state, "modelpulse.db")))

        script("prerm", "remove")
        calls = script("postrm", "remove")
        self.assertTrue(os.path.exists(os.path.join(state, "modelpulse.db")), "remove keeps it")
        self.assertFalse([c for c in calls if c.startswith("deluser")], "remove keeps the user")
        self.assertIn("deb-systemd-helper mask modelpulse.service", calls)

        calls = script("postrm", "purge")
        self.assertFalse(os.path.exists(state), "purge removes the state directory")
        self.assertIn("deluser --system --quiet modelpulse", calls)
        self.assertIn("deb-systemd-helper purge modelpulse.service", calls)
        with open(users) as f:
            self.assertEqual(f.read().split(), [])

    def test_packaged_unit_verifies_clean(self):
        # verify wants ExecStart's binary to exist: the unpacked one stands in for
        # /usr/bin/modelpulse (`--root` would also want systemd's own units in the root).
        with open(os.path.join(self.root, "lib/systemd/system/modelpulse.service")) as f:
            unit = f.read()
        binary = os.path.join(self.root, "usr/bin/modelpulse")
        self.assertIn("ExecStart=/usr/bin/modelpulse ", unit)
        folder = os.path.join(self.work, "verify")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "modelpulse.service")
        with open(path, "w") as f:
            f.write(unit.replace("ExecStart=/usr/bin/modelpulse ", f"ExecStart={binary} "))
        result = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                                text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_lintian_reports_no_errors(self):
        result = subprocess.run(["lintian", "--tag-display-limit", "0", self.deb],
                                capture_output=True, text=True, timeout=900)
        print("lintian:\n" + result.stdout + result.stderr)
        errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [])
        self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
