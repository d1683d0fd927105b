"""The product beside the bare fleet: the same cells with the record (codex-lineage) and learning (graph-ingest,
gap-healer), as operators run it, and without them (`result["bare"]`, bench.analyze.bare_part), one run."""

from __future__ import annotations

from typing import Any

from bench.analyze import BASELINE_GROUPS

ADDED = ("codex-lineage", "graph-ingest", "gap-healer")


def fleet_cpu(row: dict[str, Any]) -> float | None:
    """CPU ms per request of the fleet and the infrastructure (not the inference server, LiteLLM or the load)."""
    cpu = row.get("cpu_ms_per_request") or {}
    return round(sum(v or 0.0 for k, v in cpu.items() if k not in BASELINE_GROUPS), 1) if cpu else None


def _find(rows: list[dict[str, Any]], target: str, stream: bool, concurrency: int) -> dict[str, Any]:
    return next((r for r in rows if r["target"] == target and r["stream"] == stream
                 and r["concurrency"] == concurrency), {})


def _delta(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a - b:+.1f}"


def _cell(value: Any) -> str:
    return "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))


def comparison(result: dict[str, Any]) -> list[list[str]]:
    """Per fleet path, stream mode and concurrency: CPU, added p50 and req/s, with / without / difference."""
    bare = result["bare"]
    rows = []
    for s in result["summary"]:
        if s["target"] in ("direct", "litellm"):
            continue
        key = (s["target"], s["stream"], s["concurrency"])
        b = _find(bare["summary"], *key)
        added, added_b = _find(result["added_latency_ms"], *key).get("p50"), \
            _find(bare["added_latency_ms"], *key).get("p50")
        cpu, cpu_b = fleet_cpu(s), fleet_cpu(b) if b else None
        own = sum((s.get("cpu_ms_per_request") or {}).get(k) or 0.0 for k in ADDED)
        rows.append([s["target"], "yes" if s["stream"] else "no", str(s["concurrency"]),
                     _cell(cpu), _cell(cpu_b), _delta(cpu, cpu_b), _cell(round(own, 1)),
                     _cell(added), _cell(added_b), _delta(added, added_b),
                     _cell(s["throughput_rps"]), _cell(b.get("throughput_rps"))])
    return rows


def lines(result: dict[str, Any]) -> list[str]:
    cfg = result["config"]
    ran = [name for name, on in (("the record (codex-lineage)", cfg.get("record")),
                                 ("learning (graph-ingest, gap-healer)", cfg.get("learning"))) if on]
    if not result.get("bare"):
        said = " and ".join(ran) or "neither the record nor learning"
        return [f"The fleet ran with {said}; no cells without them in this run.", ""]
    rows = comparison(result)
    head = ["path", "stream", "conc.", "CPU ms with", "without", "difference", "of which their own processes",
            "added p50 ms with", "without", "difference", "req/s with", "without"]
    table = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
             *["| " + " | ".join(r) + " |" for r in rows]]
    bare = result["bare"]
    tokens = [f"{path}: {_cell(t.get('ratio'))}x with, {_cell((bare.get('tokens') or {}).get(path, {}).get('ratio'))}x "
              "without" for path, t in (result.get("tokens") or {}).items()]
    return ["### With and without the record and learning", "",
            f"Every table above is the fleet as operators run it: with {' and '.join(ran)}. Here the same cells "
            f"again on a second fleet without them (namespace `{bare['namespace']}`, started after the first one "
            f"stopped, {bare['duration_s']:.0f} s): CPU per request of the fleet and the infrastructure (Kafka, "
            "Postgres and the others carry the record's writes too), the latency added to the direct call, and "
            "the throughput. Each cell's CPU window closes once every consumer behind the request path (the "
            "record, usage, the cache's write-behind, learning) has committed what the cell's requests "
            "produced (bench/settle.py).", "", *table, "",
            *([f"Token overhead (learning's model calls after each answer count with it): {'; '.join(tokens)}.", ""]
              if tokens else [])]
