"""Runs the containers' healthchecks where podman cannot: podman schedules a container's healthcheck with a systemd
timer, and a machine whose init is not systemd (CI's machines, this one) runs none, so compose's `service_healthy`
conditions would wait forever. This runs `podman healthcheck run` for every running container of one compose project
at its healthcheck's own interval (podman itself applies the start period and the retries), until stopped.

    python3 deploy/containers/health_ticker.py <compose project>

A healthy container is checked again every HEALTHY_EVERY_S at most (a 2-core machine runs ~20 containers). Stdlib.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

HEALTHY_EVERY_S = 30.0


def running(project: str) -> list[str]:
    out = subprocess.run(["podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=False).stdout
    return out.split()


def interval_s(container: str) -> float | None:
    """The container's healthcheck interval, None without a healthcheck."""
    out = subprocess.run(["podman", "inspect", "--format", "{{json .Config.Healthcheck}}", container],
                         capture_output=True, text=True, check=False).stdout.strip()
    check = json.loads(out) if out and out != "null" else None
    if not check or not check.get("Test") or check["Test"][0] == "NONE":
        return None
    return max(float(check.get("Interval") or 30_000_000_000) / 1e9, 1.0)


def tick(project: str, intervals: dict[str, float | None], due: dict[str, float],
         runs: dict[str, subprocess.Popen[bytes]]) -> None:
    now = time.monotonic()
    for container in running(project):
        if container not in intervals:
            intervals[container] = interval_s(container)
            due[container] = now
        every = intervals[container]
        if every is None or due[container] > now or (container in runs and runs[container].poll() is None):
            continue
        if container in runs:  # the last run's result: exit 0 healthy, else not yet
            every = max(every, HEALTHY_EVERY_S) if runs[container].returncode == 0 else every
        runs[container] = subprocess.Popen(["podman", "healthcheck", "run", container],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        due[container] = now + every


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    intervals: dict[str, float | None] = {}
    due: dict[str, float] = {}
    runs: dict[str, subprocess.Popen[bytes]] = {}
    while True:
        tick(sys.argv[1], intervals, due, runs)
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
