"""Markdown of the per-stage breakdown (bench.stages) and of memory across the run."""

from __future__ import annotations

from typing import Any

STORES = ("redis", "chroma", "neo4j")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _calls(item: dict[str, float] | None) -> str:
    if not item:
        return "-"
    return f"{item['per_request']:g} ({_f(item['ms_per_request'])} ms)"


def stage_lines(result: dict[str, Any]) -> list[str]:
    tables = result.get("stages") or []
    if not tables:
        return []
    cpu = {(r["target"], r["concurrency"]): r.get("cpu_ms_per_request") or {}
           for r in result["summary"] if not r["stream"]}
    top = max(result["config"]["concurrency"])
    out = ["### Where the time goes, per stage (non-streaming, per request)", "",
           "From each service's own counters (`/metrics`, read before and after every cell): the messages a stage "
           "handled and its handler time (parsing, stores, model calls and publishing included), the model calls "
           "inside it (the zero-latency model: what is left is the client's own overhead), and every round trip "
           "to Redis (a command or a pipeline), Chroma (an HTTP request) and Neo4j (a query) with its time. "
           "*ms / msg* is the handler time of one message: compare it with the Kafka hops above (the rest of a "
           "hop is the Kafka append, the fetch and the wait in the consumer's queue). CPU from /proc as in the "
           "CPU table.", ""]
    head = ["path", "conc.", "service", "topic: messages, ms / msg", "handler ms", "model calls (ms)",
            "Redis calls (ms)", "Chroma calls (ms)", "Neo4j calls (ms)", "CPU ms"]
    rows: list[list[str]] = []
    for table in tables:
        if table["concurrency"] not in (1, top):
            continue
        for service, groups in sorted(table["services"].items()):
            handlers = groups.get("handlers", {})
            topics = ", ".join(f"{t}: {h['per_request']:g}, {_f(_per_msg(h))}" for t, h in sorted(handlers.items()))
            model = groups.get("model", {})
            model_sum = ({"per_request": round(sum(m["per_request"] for m in model.values()), 2),
                          "ms_per_request": sum(m["ms_per_request"] for m in model.values())} if model else None)
            stores = groups.get("stores", {})
            rows.append([table["target"], str(table["concurrency"]), service, topics or "-",
                         _f(sum(h["ms_per_request"] for h in handlers.values())) if handlers else "-",
                         _calls(model_sum), *[_calls(stores.get(s)) for s in STORES],
                         _f(cpu.get((table["target"], table["concurrency"]), {}).get(service))])
    out.append(_table(head, rows))
    out += ["", "Round trips by operation (concurrency 1, per request):", ""]
    for table in tables:
        if table["concurrency"] == 1 and table["target"] in ("full", "trivial"):
            for service, groups in sorted(table["services"].items()):
                ops = sorted((groups.get("store_ops") or {}).items(), key=lambda kv: -kv[1]["per_request"])
                if ops:
                    out.append(f"- {table['target']} · {service}: " + ", ".join(
                        f"{op} {v['per_request']:g}" for op, v in ops))
    return out


def _per_msg(h: dict[str, float]) -> float | None:
    return h["ms_per_request"] / h["per_request"] if h["per_request"] else None


def memory_lines(result: dict[str, Any]) -> list[str]:
    growth = result.get("memory_growth") or {}
    if not growth:
        return []
    at_once = result.get("memory_growth_at_once")
    rows = [[name, _f(g["start_mb"]), _f(g["end_mb"]), _f(g["growth_mb"]),
             "-" if g.get("growth_pct") is None else f"{g['growth_pct']:.1f} %", _f(g.get("anon_growth_mb"))]
            + ([_f((at_once.get(name) or {}).get("growth_mb"))] if at_once is not None else [])
            for name, g in growth.items()]
    after = ("after the last one, once the fleet has idled for one of the gateway's trims of freed memory "
             "(MOE_MALLOC_TRIM_INTERVAL_S and 2 s)" if at_once is not None else "after the last one")
    burst = ((result.get("memory_first_burst") or {}).get("gateway") or {}).get("growth_mb")
    warmed = "the fleet warmed" + ("" if burst is None else
                                   f", and after one burst of the streams cells' largest N: the gateway "
                                   f"{burst:+.1f} MB, the high-water mark of that many streams at once, "
                                   "`memory_first_burst`")
    return ["", f"Resident memory (VmRSS) of each process tree before the first cell ({warmed}; from its cold "
            f"start: `memory_growth_from_cold_start` in latest.json) and {after}; *of which "
            "anonymous*: the growth of RssAnon, the memory no file backs (the rest is pages of mapped files read "
            "further, such as the planner's memory-mapped static embedding table, bounded by their size)"
            + ("; *at once*: the growth read right after the last cell (a burst's high-water mark, "
               "`memory_growth_at_once`):" if at_once is not None else ":"), "",
            _table(["process", "before MB", "after MB", "growth MB", "growth", "of which anonymous MB"]
                   + (["at once MB"] if at_once is not None else []), rows)]


def profile_lines(result: dict[str, Any], link_prefix: str = "") -> list[str]:
    """Where each service's CPU went under full-pipeline load (py-spy): the fleet's own frames with the
    largest inclusive share, and the flame graph."""
    services = (result.get("cpu_profile") or {}).get("services") or {}
    if not services:
        return []
    load = (result.get("cpu_profile") or {}).get("load") or {}
    out = ["### Profiles (py-spy, 100 Hz, every service, full pipeline at concurrency 8)", "",
           f"{load.get('requests', '?')} requests during the profile. Frames of the fleet's own code with the "
           "largest inclusive share of each service's samples (idle waiting included in the total); the flame "
           "graphs show everything.", ""]
    for name, data in services.items():
        if "error" in data:
            out.append(f"- **{name}**: py-spy failed: {data['error'][:200]}")
            continue
        ours = [(f, pct) for f, pct in data.get("inclusive", []) if any(k in f for k in _OWN_CODE)
                and not f.startswith(("run (moe_core/runtime/service.py)", "<module>"))][:4]
        graph = f"[flame graph]({link_prefix}{data['flame_graph']})" if data.get("flame_graph") else ""
        out.append(f"- **{name}** ({data['samples']} samples) {graph}: "
                   + ("; ".join(f"`{f}` {pct} %" for f, pct in ours) or "no frame of its own above the rest"))
    return out


_OWN_CODE = ("moe_core/", "planner/", "merger/", "expert_worker/", "graph_rag/", "gateway/", "research/",
             "critic/", "mcp_service/")


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
