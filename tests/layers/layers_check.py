#!/usr/bin/env python3
"""The layers of src/ point one way (STYLE.md, issue 20): every `#include "dir/..."` of a
file in src/ names a folder of its own layer or one below.

  0 core                                   the ledger rules, no I/O
  1 net, http, observe, redis, service     the base every binary stands on
  2 contract                               what both binaries agree on (the route table)
  3 auth                                   token checks and the authorization table
  4 flags                                  the flags both mains take, and what they build
  5 storage, cache, engine, api, jobs      the ledger service   } side by side, never
  5 gateway                                the API gateway      } including each other

A folder not in the table is an error too (a new folder must say where it stands). Prints one
line per violation and "N passed, M failed"; exits non-zero on any violation.
Usage: layers_check.py SRC_DIR [--selftest]
"""
import pathlib
import re
import sys

LAYERS = {
    "core": (0, "core"),
    "net": (1, "base"), "http": (1, "base"), "observe": (1, "base"), "redis": (1, "base"), "service": (1, "base"),
    "contract": (2, "contract"),
    "auth": (3, "auth"),
    "flags": (4, "flags"),
    "storage": (5, "ledger"), "cache": (5, "ledger"), "engine": (5, "ledger"), "api": (5, "ledger"), "jobs": (5, "ledger"),
    "gateway": (5, "gateway"),
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def violations(folder, text):
    """The problems of one file of `folder`, given its text."""
    if folder not in LAYERS:
        return [f"folder src/{folder} is in no layer (tests/layers/layers_check.py)"]
    level, group = LAYERS[folder]
    problems = []
    for target in INCLUDE.findall(text):
        if target not in LAYERS:
            problems.append(f'includes "{target}/...", a folder in no layer')
            continue
        their_level, their_group = LAYERS[target]
        if their_level > level:
            problems.append(f'includes "{target}/..." ({their_group}, layer {their_level}) from layer {level} ({group}): it points up')
        elif their_level == level == 5 and their_group != group:
            problems.append(f'includes "{target}/..." ({their_group}) from {group}: the two sides never include each other')
    return problems


def selftest():
    cases = [("http", '#include "core/codes.h"\n', 0), ("http", '#include "api/routes.h"\n', 1),
             ("auth", '#include "contract/routes.h"\n', 0), ("gateway", '#include "storage/store.h"\n', 1),
             ("storage", '#include "engine/clock.h"\n', 0), ("core", '#include "observe/log.h"\n', 1),
             ("nowhere", "", 1), ("core", '#include "mystery/x.h"\n', 1), ("core", "#include <vector>\n", 0)]
    bad = [c for c in cases if len(violations(c[0], c[1])) != c[2]]
    return bad


def main():
    if "--selftest" in sys.argv:
        bad = selftest()
        print(f"{'FAIL' if bad else 'PASS'}: the checker finds what it must: {bad or 'all cases'}")
        return 1 if bad else 0
    src = pathlib.Path(sys.argv[1])
    passed = failed = 0
    for path in sorted(list(src.glob("*/**/*.h")) + list(src.glob("*/**/*.cc"))):
        folder = path.relative_to(src).parts[0]
        problems = violations(folder, path.read_text())
        for problem in problems:
            print(f"FAIL: {path.relative_to(src.parent)}: {problem}")
        failed += bool(problems)
        passed += not problems
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
