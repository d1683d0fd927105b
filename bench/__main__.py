"""`python -m bench` (what `make bench` runs): see bench/README.md."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import analyze, chart, config, profile, report
from bench.config import REPO
from bench.runner import Benchmark

log = logging.getLogger("bench")
LATEST = REPO / "bench" / "results"
DOC = REPO / "docs" / "performance.md"


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the runner's clean-up (stops every process)


def render(path: Path) -> int:
    """Rewrite a result's Markdown, chart, and (for latest.json) docs/performance.md, e.g. after editing
    bench/analysis.md; nothing is measured."""
    result = json.loads(path.read_text())
    result["targets"] = analyze.targets_of(result)  # the current goals, from the stored measurements
    path.write_text(json.dumps(result, indent=1) + "\n")
    md = path.with_suffix(".md")
    title = md.read_text().split("\n", 1)[0] if md.exists() else f"# Benchmark {path.stem}"  # the run's stamp
    md.write_text(f"{title}\n\n{report.markdown(result)}")
    chart.draw(result, path.with_suffix(".png"))
    if path.resolve() == (LATEST / "latest.json").resolve():
        DOC.write_text(report.performance_doc(result, "../bench/results/latest.png"))
    log.info("rendered %s", path)
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "render":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s", datefmt="%H:%M:%S")
        return render(Path(argv[1]) if len(argv) > 1 else LATEST / "latest.json")
    signal.signal(signal.SIGTERM, _interrupted)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "aiokafka", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = config.parse(argv)
    log.info("profile %s: %d cells of %.1f s, concurrency %s, %d run(s)", cfg.profile, cfg.cells(),
             cfg.cell_seconds, cfg.concurrency, cfg.runs)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = Benchmark(cfg, stamp).run()
    if cfg.bare:
        log.info("the same cells without the record and learning ...")
        result["bare"] = analyze.bare_part(Benchmark(cfg.without_record_and_learning(), stamp).run())
        result["targets"] = analyze.targets_of(result)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.docs:
        _keep_profile(result, cfg.out_dir)
    files = {ext: cfg.out_dir / f"{stamp}.{ext}" for ext in ("json", "md", "png")}
    files["json"].write_text(json.dumps(result, indent=1) + "\n")
    files["md"].write_text(f"# Benchmark {stamp}\n\n{report.markdown(result)}")
    chart.draw(result, files["png"])
    if result.get("cpu_profile") and "services" in result["cpu_profile"]:
        files["profile"] = cfg.out_dir / f"{stamp}-profile.md"
        files["profile"].write_text(profile.markdown(result["cpu_profile"]["services"]))
    if cfg.docs:
        for ext in ("json", "md", "png"):
            shutil.copyfile(files[ext], LATEST / f"latest.{ext}")
        DOC.write_text(report.performance_doc(result, "../bench/results/latest.png"))
        log.info("wrote %s and bench/results/latest.*", DOC.relative_to(REPO))
    log.info("results: %s", ", ".join(str(p.relative_to(REPO) if p.is_relative_to(REPO) else p)
                                       for p in files.values()))
    failed = [t["target"] for t in result["targets"] if t["met"] is False]
    log.info("targets missed: %s", ", ".join(failed) or "none")
    return 0


def _keep_profile(result: dict[str, Any], out_dir: Path) -> None:
    """The latest run's profile (Markdown) and flame graphs as bench/results/latest-profile*, replacing the
    previous ones (docs/performance.md links them)."""
    services = (result.get("cpu_profile") or {}).get("services")
    if not services:
        return
    for old in LATEST.glob("latest-profile*"):
        old.unlink()
    for name, data in services.items():
        if data.get("flame_graph"):
            shutil.copyfile(out_dir / data["flame_graph"], LATEST / f"latest-profile-{name}.svg")
            data["flame_graph"] = f"latest-profile-{name}.svg"
    (LATEST / "latest-profile.md").write_text(profile.markdown(services))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or None))
