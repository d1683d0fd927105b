"""Where the suite's time goes, per worker scope (a tier package, or a scope split from it: tests/support/tiers.py;
setup + call + teardown of its tests, and the xdist worker that ran it), printed at the end of every run: the 15-minute
budget is kept by the largest scopes."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.support import tiers


class PackageClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.tests: dict[str, set[str]] = defaultdict(set)
        self.workers: dict[str, set[str]] = defaultdict(set)

    def record(self, report: pytest.TestReport) -> None:
        package = tiers.scope(report.nodeid)
        self.seconds[package] += report.duration
        self.tests[package].add(report.nodeid)
        worker = getattr(getattr(report, "node", None), "workerinput", {}).get("workerid")
        if worker:
            self.workers[package].add(worker)

    def lines(self) -> list[str]:
        rows = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        return [f"{seconds:8.1f} s  {len(self.tests[name]):5d} tests  {','.join(sorted(self.workers[name])) or '-':8s}"
                f"  {name}" for name, seconds in rows]


CLOCK = PackageClock()


def logreport(report: pytest.TestReport) -> None:
    CLOCK.record(report)


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CLOCK.seconds:
        terminalreporter.write_sep("=", "time per tier package (setup + call + teardown)")
        for line in CLOCK.lines():
            terminalreporter.write_line(line)
