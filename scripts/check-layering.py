#!/usr/bin/env python3
"""Fails when an #include runs against the module layering of DESIGN.md §2.

Each module is one folder. Its public headers are the .h files outside its `internal/`
folder; only the module itself and its own tests (tests/<module>/) may include what is in
`internal/`. A module may include only the modules it is allowed to depend on.
Run from anywhere; exits 1 and prints file:line for every violation.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Who may include whom (besides itself). The source of truth is DESIGN.md §2.
ALLOWED = {
    "common": set(),
    "collector": {"common"},
    "storage": {"common"},
    "rules": {"common"},
    "alerting": {"common"},
    "simulator": {"common"},
    "daemon": {"common", "collector", "storage", "rules", "alerting", "simulator"},
}
# Benchmarks, fuzz targets and tests are users of modules, like daemon/, but no module includes
# them. A fuzz target reaches the private decoders and parsers it exercises, like the module's
# own tests do: fuzz/<module>/ may include <module>/internal/. The config loader is the daemon's,
# so fuzz/ may use daemon's public headers too; bench/ measures modules, not the daemon.
CONSUMERS = {"bench": set(ALLOWED) - {"daemon"}, "fuzz": set(ALLOWED)}
# Deliberate exceptions, each with its reason.
EXCEPTIONS = {
    # rules_bench writes 8.6 M probe rows straight through SQL (Store::Append would take an hour)
    # and must encode label sets exactly as storage stores them.
    ("bench/rules_bench.cpp", "storage/internal/label_codec.h"),
    # ...and, having bypassed the writer, builds the rows' hourly rollups with storage's own
    # RebuildRollups (what migration 3's backfill runs), so the daemon answers long windows.
    ("bench/rules_bench.cpp", "storage/internal/rollup.h"),
    # ...and encodes each row as the dense probe table stores it (migration 8).
    ("bench/rules_bench.cpp", "storage/internal/probe_codec.h"),
    # ...and builds the probe summaries (migration 9) the same way, which reports read.
    ("bench/rules_bench.cpp", "storage/internal/summary.h"),
    # ...and the counter series' first-seen times (migration 12) the discovery endpoints read.
    ("bench/rules_bench.cpp", "storage/internal/first_seen.h"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def owner_of(path: pathlib.Path):
    """(kind, module) for a source file: ('module', m), ('test', m) or ('bench', None)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] in ALLOWED:
        return "module", parts[0]
    if parts[0] == "tests" and len(parts) > 2 and parts[1] in ALLOWED:
        return "test", parts[1]
    if parts[0] in CONSUMERS:
        return "bench", parts[0]  # a consumer; module = the consumer's folder
    return None, None


def check(path: pathlib.Path):
    kind, module = owner_of(path)
    if kind is None:
        return []
    problems = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = INCLUDE.match(line)
        if not match:
            continue
        target = match.group(1)
        if (path.relative_to(ROOT).as_posix(), target) in EXCEPTIONS:
            continue
        top = target.split("/", 1)[0]
        if top not in ALLOWED:
            continue  # a test's own helper header, or a third-party one
        where = f"{path.relative_to(ROOT)}:{number}"
        private = "/internal/" in target
        if kind == "bench":
            allowed = CONSUMERS[module]
            parts = path.relative_to(ROOT).parts
            own_module = module == "fuzz" and len(parts) > 2 and parts[1] == top
            if top not in allowed:
                problems.append(f"{where}: {module} includes {target}; {module}/ uses modules, not daemon/")
            elif private and not own_module:
                problems.append(f"{where}: includes {target}, private to {top}/")
            continue
        if top == module:
            continue
        allowed = ALLOWED[module] if kind == "module" else ALLOWED[module] | {module}
        if kind == "test":
            # A module's tests may use what the module may, plus the test-side peers: the
            # simulator is the collector's counterpart on loopback.
            allowed = allowed | {"simulator"}
        if top not in allowed:
            problems.append(f"{where}: {module}/ may not include {target} "
                            f"({module} depends only on {', '.join(sorted(ALLOWED[module])) or 'std'})")
        elif private:
            problems.append(f"{where}: includes {target}, private to {top}/")
    return problems


def main():
    problems = []
    for path in sorted(ROOT.rglob("*")):
        if path.suffix not in (".h", ".cpp") or "build" in path.relative_to(ROOT).parts[:1]:
            continue
        if "node_modules" in path.parts:
            continue
        problems += check(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-layering: {len(problems)} include(s) against the layering (DESIGN.md §2)")
        return 1
    print("check-layering: every include follows the layering")
    return 0


if __name__ == "__main__":
    sys.exit(main())
