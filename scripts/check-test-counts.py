#!/usr/bin/env python3
"""Cross-checks that the test command runs every test case, once: the TEST_CASEs in the sources,
the cases the doctest binaries list, the unit entries ctest knows, and (given ctest's JUnit
report of a run) the cases each entry executed. doctest_discover_tests once split names at ';'
into fragments that ran nothing and passed; this fails on any such mismatch, names what differs,
and prints the summary line scripts/test.sh ends with.

Usage: check-test-counts.py <build dir> [<ctest --output-junit file>]"""
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

SOURCE_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TEST_CASE = re.compile(r"^\s*TEST_CASE\(", re.MULTILINE)
RAN = re.compile(r"\[doctest\] test cases: *(\d+) \|")


def source_test_cases():
    count = 0
    for root, dirs, files in os.walk(os.path.join(SOURCE_ROOT, "tests")):
        dirs[:] = [d for d in dirs if d != "node_modules"]
        for name in files:
            if name.endswith((".cpp", ".h")):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    count += len(TEST_CASE.findall(f.read()))
    return count


def listed_cases(executable):
    out = subprocess.run([executable, "--list-test-cases", "--no-version"], capture_output=True,
                         text=True, check=True).stdout
    names = [line for line in out.splitlines()
             if line and not line.startswith("[doctest]") and set(line) != {"="}]
    counted = subprocess.run([executable, "--count", "--no-version"], capture_output=True,
                             text=True, check=True).stdout
    match = re.search(r"test cases passing the current filters: (\d+)", counted)
    return names, int(match.group(1)) if match else -1


def ctest_entries(build_dir):
    out = subprocess.run(["ctest", "--test-dir", build_dir, "-N", "--show-only=json-v1"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["tests"]


def labels(test):
    for prop in test.get("properties", []):
        if prop["name"] == "LABELS":
            return prop["value"]
    return []


def case_filter(command):
    for arg in command:
        if arg.startswith("--test-case="):
            return arg[len("--test-case="):].replace("\\,", ",").replace("\\\\", "\\")
    return None


def main():
    build_dir = sys.argv[1]
    junit = sys.argv[2] if len(sys.argv) > 2 else None
    problems = []
    tests = ctest_entries(build_dir)
    unit = [t for t in tests if "unit" in labels(t)]
    integration = [t for t in tests if "integration" in labels(t)]
    for t in tests:
        if "command" not in t:
            problems.append(f"ctest entry {t['name']!r} has no command (a test binary not built)")
        elif "unit" not in labels(t) and "integration" not in labels(t):
            problems.append(f"ctest entry {t['name']!r} is neither unit nor integration")
    by_binary = {}
    for t in unit:
        by_binary.setdefault(t["command"][0], []).append(case_filter(t["command"]))
    listed_total = 0
    for binary, filters in sorted(by_binary.items()):
        names, counted = listed_cases(binary)
        listed_total += len(names)
        short = os.path.basename(binary)
        if counted != len(names):
            problems.append(f"{short}: --count says {counted}, --list-test-cases lists {len(names)}")
        for name in names:
            if ";" in name:
                problems.append(f"{short}: test case name with ';' (ctest splits it): {name!r}")
        if sorted(set(names)) != sorted(names):
            problems.append(f"{short}: duplicate test case names")
        for name in sorted(set(filters) - set(names)):
            problems.append(f"{short}: ctest entry that is no test case: {name!r}")
        for name in sorted(set(names) - set(filters)):
            problems.append(f"{short}: test case with no ctest entry: {name!r}")
    in_sources = source_test_cases()
    if not (in_sources == listed_total == len(unit)):
        problems.append(f"{in_sources} TEST_CASEs in the sources, {listed_total} listed by the "
                        f"doctest binaries, {len(unit)} unit entries in ctest")
    if len(tests) != in_sources + len(integration):
        problems.append(f"{len(tests)} ctest entries != {in_sources} TEST_CASEs + "
                        f"{len(integration)} integration entries")

    summary = (f"{len(tests)} ctest entries: {len(unit)} unit ({in_sources} TEST_CASEs in the "
               f"sources, {listed_total} listed by doctest), {len(integration)} integration")
    if junit:
        unit_names = {t["name"] for t in unit}
        executed = skipped = failed = passed = 0
        for case in ET.parse(junit).getroot().iter("testcase"):
            status = case.get("status")
            out = case.findtext("system-out") or ""
            skipped += status in ("notrun", "disabled")
            failed += status == "fail"
            passed += status == "run"
            # A unit entry skipped for a missing peer still ran its one case up to the skip.
            if case.get("name") in unit_names and status != "disabled":
                ran = RAN.findall(out)
                if len(ran) != 1 or int(ran[0]) != 1:
                    problems.append(f"unit entry {case.get('name')!r} ran "
                                    f"{ran[0] if ran else 'no'} test cases, not 1")
                executed += int(ran[0]) if ran else 0
        summary += (f"; ran {passed + failed + skipped}: {passed} passed, {failed} failed, "
                    f"{skipped} skipped; {executed} doctest cases executed")
    for problem in problems:
        print(f"test counts: {problem}", file=sys.stderr)
    print(f"test summary: {summary}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
