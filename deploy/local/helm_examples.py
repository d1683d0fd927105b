"""The chart's checked-in renders (helm/examples/), written anew by `make schemas` with the pinned helm that
`make install` builds into .data/bin (tests/deploy/test_helm.py fails when one is stale).

    python deploy/local/helm_examples.py [REPO]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# example file -> values files (relative to the chart)
# (the audit anchors the chart requires: ci/anchors-values.yaml, in every render)
RENDER_CASES: dict[str, list[str]] = {"default.yaml": ["ci/anchors-values.yaml"],
                                      "keda.yaml": ["ci/anchors-values.yaml", "ci/keda-values.yaml"]}
NOTED = "found symbolic link in path"  # helm's note on the chart's linked folders (dashboards, policies)


def main(repo: Path) -> int:
    chart, helm = repo / "helm" / "moe-fleet", repo / ".data" / "bin" / "helm"
    for example, values in RENDER_CASES.items():
        cmd = [str(helm), "template", "moe", str(chart), "--namespace", "moe"]
        for name in values:
            cmd += ["-f", str(chart / name)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 (argv, no shell)
        noise = "\n".join(line for line in done.stderr.splitlines() if NOTED not in line)
        if done.returncode != 0:
            print(f"helm template for helm/examples/{example} failed:\n{noise}", file=sys.stderr)
            return 1
        if noise:
            print(noise, file=sys.stderr)
        (repo / "helm" / "examples" / example).write_text(done.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]))
