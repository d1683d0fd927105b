"""Where the production code's lines came from (issue 51): services/ + libs/ Python, per first-parent commit since a
base, each attributed to the issue it served.

    python tools/size_growth.py [BASE] [HEAD]      (BASE defaults to a3c9ff99, when issue 51 was filed)

A commit's delta is `git diff --numstat` against its first parent (added minus deleted, Python under services/ and
libs/), so the deltas add up to the change of `find services libs -name '*.py' | xargs cat | wc -l`. A merge is split
over its branch's own commits (each by the issue its message names, else the merge's); what the merge itself changed
beyond them (conflict resolution) goes to the merge's issue. The issue is the first "issue N" in the message, else
the helper's name in "Merge hN..." (h47s, h49k: issue 47, 49), else "unnamed"."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict

PATHS = ("services/*.py", "libs/*.py")
HELPERS = {"hbk": "49", "hsuite": "suite"}  # helpers whose names carry no issue number


def git(*args: str) -> str:
    return subprocess.run(("git", *args), check=True, capture_output=True, text=True).stdout  # noqa: S603, S607


def delta(parent: str, commit: str) -> int:
    total = 0
    for line in git("diff", "--numstat", parent, commit, "--", *PATHS).splitlines():
        added, deleted, _ = line.split("\t", 2)
        if added != "-":
            total += int(added) - int(deleted)
    return total


def issue_of(message: str, fallback: str = "unnamed") -> str:
    if found := re.search(r"[Ii]ssues? (\d+)", message):
        return found.group(1)
    if found := re.match(r"Merge (h[a-z]*\d*)", message):
        name = found.group(1)
        digits = re.match(r"h(\d+)", name)
        return digits.group(1) if digits else HELPERS.get(name, fallback)
    return fallback


def parts(commit: str) -> list[tuple[str, str, int]]:
    """(commit, issue, lines) for one first-parent commit: a merge split over its branch's first-parent commits."""
    message = git("show", "-s", "--format=%B", commit)
    own = issue_of(message)
    parents = git("show", "-s", "--format=%P", commit).split()
    total = delta(parents[0], commit)
    if len(parents) < 2:
        return [(commit, own, total)]
    rows = []
    for branch in git("rev-list", "--first-parent", "--reverse", f"{parents[0]}..{parents[1]}").split():
        lines = delta(f"{branch}^1", branch)
        if lines:
            rows.append((branch, issue_of(git("show", "-s", "--format=%B", branch), own), lines))
    rest = total - sum(lines for _, _, lines in rows)
    if rest:
        rows.append((commit, own, rest))
    return rows


def main(base: str = "a3c9ff99", head: str = "HEAD") -> None:
    by_issue: dict[str, int] = defaultdict(int)
    print("| commit | issue | lines | subject |\n|---|---|---|---|")
    for commit in git("rev-list", "--first-parent", "--reverse", f"{base}..{head}").split():
        rows = parts(commit)
        subject = git("show", "-s", "--format=%s", commit).strip()[:90]
        for _, issue, lines in rows:
            by_issue[issue] += lines
        if total := sum(lines for _, _, lines in rows):
            shares: dict[str, int] = defaultdict(int)
            for _, issue, lines in rows:
                shares[issue] += lines
            split = ", ".join(f"{issue}: {lines:+d}" for issue, lines in shares.items())
            print(f"| {commit[:8]} | {split} | {total:+,d} | {subject} |")
    print("\n| issue | lines |\n|---|---|")
    for issue, lines in sorted(by_issue.items(), key=lambda item: -item[1]):
        print(f"| {issue} | {lines:+,d} |")
    print(f"| **total** | **{sum(by_issue.values()):+,d}** |")


if __name__ == "__main__":
    main(*sys.argv[1:])
