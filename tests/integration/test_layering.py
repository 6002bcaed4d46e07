"""scripts/check-layering.py passes on the tree and catches what it exists to catch: an include
of another module's private header, and an include against the layering of DESIGN.md §2."""
import os
import shutil
import subprocess
import tempfile
import unittest

SOURCE_ROOT = os.environ.get(
    "MODELPULSE_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
SCRIPT = os.path.join(SOURCE_ROOT, "scripts", "check-layering.py")


def run_check(root):
    return subprocess.run(["python3", os.path.join(root, "scripts", "check-layering.py")],
                          capture_output=True, text=True, timeout=60)


class Layering(unittest.TestCase):
    def test_the_tree_follows_the_layering(self):
        result = run_check(SOURCE_ROOT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def planted(self, path, include):
        """Exit code and output of the check on a copy of the module folders with one include
        added to `path`."""
        with tempfile.TemporaryDirectory() as root:
            for folder in ("common", "collector", "storage", "rules", "simulator", "daemon",
                           "scripts"):
                shutil.copytree(os.path.join(SOURCE_ROOT, folder), os.path.join(root, folder))
            with open(os.path.join(root, path), "a", encoding="utf-8") as f:
                f.write(f'\n#include "{include}"\n')
            result = run_check(root)
            return result.returncode, result.stdout

    def test_a_private_header_of_another_module_fails(self):
        code, out = self.planted("daemon/cli.cpp", "collector/internal/sse.h")
        self.assertEqual(code, 1)
        self.assertIn("daemon/cli.cpp:", out)
        self.assertIn("private to collector/", out)

    def test_an_include_against_the_layering_fails(self):
        code, out = self.planted("rules/promql.cpp", "collector/collector.h")
        self.assertEqual(code, 1)
        self.assertIn("rules/ may not include collector/collector.h", out)
        code, out = self.planted("common/duration.cpp", "storage/storage.h")
        self.assertEqual(code, 1)
        self.assertIn("common/ may not include storage/storage.h", out)

    def test_a_module_may_use_its_own_private_headers(self):
        code, out = self.planted("collector/prober.cpp", "collector/internal/sse.h")
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
