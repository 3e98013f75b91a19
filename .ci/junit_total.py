"""Sum pytest's JUnit XML reports into one table and a closing line for ``.ci/run``.

The last line it prints is ``total: N passed, N failed, N skipped``, the plain closing line a
CI reader takes as the run's test count. Exit status 1 when any test failed or errored, or a
report is missing or unreadable (a suite that wrote nothing did not pass).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(report: Path) -> dict[str, int]:
    """tests, failed (failures + errors) and skipped of one report."""
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failed": 0, "skipped": 0}
    for suite in suites:
        total["tests"] += int(suite.get("tests", 0))
        total["failed"] += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        total["skipped"] += int(suite.get("skipped", 0))
    return total


def main(paths: list[str]) -> int:
    grand = {"passed": 0, "failed": 0, "skipped": 0}
    ok = bool(paths)
    for path in paths:
        name = Path(path).stem.removeprefix("junit-")
        try:
            c = counts(Path(path))
        except (OSError, ET.ParseError) as exc:
            print(f"{name:<14} unreadable report: {exc}")
            ok = False
            continue
        passed = c["tests"] - c["failed"] - c["skipped"]
        print(f"{name:<14} {passed:>5} passed {c['failed']:>3} failed {c['skipped']:>3} skipped")
        grand["passed"] += passed
        grand["failed"] += c["failed"]
        grand["skipped"] += c["skipped"]
        ok = ok and c["failed"] == 0 and c["tests"] > 0
    print(f"total: {grand['passed']} passed, {grand['failed']} failed, {grand['skipped']} skipped")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
