"""Markdown tables of one result, and docs/performance.md around them."""

from __future__ import annotations

from typing import Any

from bench import report_bare, report_before_after, report_stages
from bench.config import REPO
from bench.loadgen import CELL_LONGEST

ANALYSIS = REPO / "bench" / "analysis.md"
DOC_INTRO = REPO / "bench" / "doc_intro.md"


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _lookup(rows: list[dict[str, Any]], target: str, stream: bool, concurrency: int) -> dict[str, Any]:
    return next((r for r in rows if r["target"] == target and r["stream"] == stream
                 and r["concurrency"] == concurrency), {})


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    v = m["versions"]
    share = m["cpu_share"]["share_of_machine"]
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; {m['os']}; Python {m['python']}; "
            f"Kafka {v.get('kafka')}, Redis {v.get('redis')}, FastStream {v.get('faststream')}, "
            f"aiokafka {v.get('aiokafka')}, LiteLLM {v.get('litellm')}. Load average before/after: "
            f"{m['load_average_before']} / {m['load_average_after']}. During the measurement "
            f"{_pct(share.get('other processes'))} of the machine's CPU went to processes outside the benchmark "
            f"and {_pct(share.get('infrastructure'))} to the shared infrastructure (Kafka, Redis, Postgres, "
            f"Chroma, Neo4j; other users' load on it included); idle {_pct(m['cpu_share']['idle'])}.")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def _at_least(cfg: dict[str, Any]) -> str:
    least = cfg.get("cell_min_requests") or 0  # results before session 40 have none
    return f", at least {least} requests (up to {CELL_LONGEST * cfg['cell_seconds']:g} s)" if least else ""


def markdown(result: dict[str, Any], link_prefix: str = "") -> str:
    """link_prefix: where the flame graphs are, seen from the Markdown file (docs/: ../bench/results/)."""
    cfg = result["config"]
    measured_runs = max((r["runs"] for r in result["summary"]), default=0)
    parts = [
        f"Command: `{result['command']}` · profile `{result['profile']}` · {cfg['runs']} run(s) planned, "
        f"{measured_runs} measured (medians across the measured runs) · cells of {cfg['cell_seconds']} s or "
        f"{cfg['cell_requests']} requests{_at_least(cfg)} · "
        f"{result['started_at'][:19]} UTC · took {result['duration_s']:.0f} s.",
        "", f"Machine: {machine_line(result)}", "", *warm_lines(result), *_skipped(result),
        "### Paths", "",
        _table(["path", "what", "measured"],
               [[n, p["description"], "yes" if p["available"] else f"not available: {p['reason']}"]
                for n, p in result["paths"].items() if n in ("direct", "litellm") or n in cfg["paths"]]),
        "", *report_bare.lines(result), *_latency(result), "", *_streaming(result), "", *_hops(result), "",
        *_tokens(result), "",
        *_cpu(result), "", *_streams(result), *report_stages.stage_lines(result), "",
        *report_before_after.lines(result), "", *_memory(result),
        *report_stages.memory_lines(result), "", *report_stages.profile_lines(result, link_prefix),
        "", "### Targets", "",
        _table(["target", "goal", "measured", "met"],
               [[t["target"], t["goal"], t["measured"], t.get("note") or _f(t["met"])] for t in result["targets"]]),
    ]
    return "\n".join(parts) + "\n"


def _warm(warm: dict[str, Any] | None) -> str:
    if not warm:
        return "none"
    figures = ", ".join(_f(b["jvm_ms_per_request"]) for b in warm["batches"])
    errors = sum(b["errors"] for b in warm["batches"])
    c = warm["criterion"]
    end = (f"settled (the last {c['window']} within {c['tolerance'] * 100:.0f} % of their mean or "
           f"{c['floor_ms']:g} ms)" if not warm["cap_hit"] else
           f"**the cap of {warm['max_batches']} batches hit**: {'settled' if warm['settled'] else 'not settled'}"
           f"{'; not run: ' + ', '.join(warm['missing']) if warm['missing'] else ''}")
    return (f"{len(warm['batches'])} batches of {warm['requests_per_path']} requests per path "
            f"({', '.join(warm['paths'])}) at concurrency {warm['concurrency']} in {warm['seconds']:.0f} s"
            f"{f' ({errors} errors)' if errors else ''}; Kafka + Neo4j CPU ms per request by batch: {figures}; {end}")


def warm_lines(result: dict[str, Any]) -> list[str]:
    """The fleet's warm-up before idle and the cells (bench.fleet_warm), with and without the record and learning."""
    if "fleet_warm" not in result:
        return []
    bare = result.get("bare")
    return [f"Fleet warm-up (`bench/fleet_warm.py`, not counted in any cell): {_warm(result['fleet_warm'])}"
            + (f". Without the record and learning: {_warm(bare.get('fleet_warm'))}" if bare else "") + ".", ""]


def _skipped(result: dict[str, Any]) -> list[str]:
    skipped = result.get("skipped_cells") or []
    if not skipped:
        return []
    return [f"**{len(skipped)} cells were not measured**: the time budget ({result['config']['budget_s']:.0f} s) "
            f"ran out first (the machine was slower than the budget assumes): {', '.join(skipped[:12])}"
            f"{' ...' if len(skipped) > 12 else ''}.", ""]


def _latency(result: dict[str, Any]) -> list[str]:
    rows = []
    for s in (r for r in result["summary"] if not r["stream"]):
        added = _lookup(result["added_latency_ms"], s["target"], False, s["concurrency"])
        ratio = _lookup(result["litellm_ratio"], s["target"], False, s["concurrency"])
        lat = s["latency_ms"]
        rows.append([s["target"], s["concurrency"], s["throughput_rps"], lat.get("p50"), lat.get("p90"), lat.get("p99"),
                     added.get("p50"), added.get("p99"), ratio.get("p50"), ratio.get("p99"),
                     f"{s['errors']} / {s['requests']}"])
    out = ["### Latency and throughput (non-streaming; ms)", "",
           "*added* = the path's latency minus the direct call's in the same run; *x LiteLLM* = our added "
           "latency divided by LiteLLM's.", "",
           _table(["path", "conc.", "req/s", "p50", "p90", "p99", "added p50", "added p99", "x LiteLLM p50",
                   "x LiteLLM p99", "errors / requests"], rows)]
    if result.get("sustained"):
        s = result["sustained"]
        out += ["", f"Sustained full pipeline: {s['requests']} requests in {s['elapsed_s']} s at concurrency "
                f"{s['concurrency']}: **{_f(s['throughput_rps'])} req/s**, p50 {_f(s['latency_ms']['p50'])} ms, "
                f"p99 {_f(s['latency_ms']['p99'])} ms, {s['errors']} errors."]
    return out


def _streaming(result: dict[str, Any]) -> list[str]:
    rows = []
    for s in (r for r in result["summary"] if r["stream"]):
        added = _lookup(result["added_latency_ms"], s["target"], True, s["concurrency"])
        ttft = s["ttft_ms"] or {}
        rows.append([s["target"], s["concurrency"], s["throughput_rps"], ttft.get("p50"), ttft.get("p99"),
                     added.get("ttft_p50"), s["latency_ms"].get("p50"), f"{s['errors']} / {s['requests']}"])
    if not rows:
        return []
    return ["### Streaming: time to first token (ms)", "",
            _table(["path", "conc.", "req/s", "TTFT p50", "TTFT p99", "added TTFT p50", "last byte p50",
                    "errors / requests"], rows)]


def _hops(result: dict[str, Any]) -> list[str]:
    names = list(result["hop_definitions"])
    top = max(result["config"]["concurrency"])
    rows = []
    for row in result["hops"]:
        if row["stream"] or row["concurrency"] not in (1, top):
            continue
        rows.append([row["target"], row["concurrency"]] + [
            f"{_f(h['p50'])} / {_f(h['p99'])}" if (h := row["hops"].get(n)) else "-" for n in names])
    probe = result["kafka_probe"]
    counts = result.get("kafka_messages_per_request") or {}
    topics = sorted({t for row in counts.values() for t in row} - {"total"})
    count_rows = [[path, *[row.get(t) for t in topics], row["total"]] for path, row in counts.items()]
    return ["### Kafka per hop (p50 / p99 ms, non-streaming)", "",
            "From the messages' own timestamps (envelope `created_at` and Kafka record time):", "",
            *[f"- **{name}**: {text}" for name, text in result["hop_definitions"].items()], "",
            _table(["path", "conc.", *names], rows), "",
            f"Kafka alone ({probe['messages']} messages, one at a time, the fleet's client settings): publish "
            f"acknowledged (acks=all) p50 {_f(probe['publish_ack_ms']['p50'])} / p99 "
            f"{_f(probe['publish_ack_ms']['p99'])} ms; produce → consume p50 "
            f"{_f(probe['produce_to_consume_ms']['p50'])} / p99 {_f(probe['produce_to_consume_ms']['p99'])} ms.",
            "", "Kafka messages per request (median, all streaming modes and concurrencies):", "",
            _table(["path", *topics, "total"], count_rows) if count_rows else "-"]


def _tokens(result: dict[str, Any]) -> list[str]:
    rows = []
    for path, t in result["tokens"].items():
        calls = ", ".join(f"{m} {v['calls']}x" for m, v in t["by_model"].items()) or "none"
        rows.append([path, t["llm_calls_per_request"], calls, t["fleet_tokens_per_request"],
                     t["direct_tokens_per_request"], f"{_f(t['ratio'], 2)}x", t["reported_tokens_per_request"],
                     _usage_check(t)])
    return ["### Token overhead", "",
            "Prompt + completion tokens of all LLM calls of a request, counted by the inference server, against "
            "one direct call of the answering model with the same question. *Usage reported* is what the answers "
            "said (`usage`): a request's own calls; learning's calls come after its answer and are not in it (the "
            "fleet without learning, in \"With and without the record and learning\", checks it exactly).", "",
            _table(["path", "LLM calls / request", "calls (all samples)", "tokens / request", "direct tokens",
                    "ratio", "usage reported / request", "usage = server's count"], rows)]


def _usage_check(t: dict[str, Any]) -> str:
    """Whether the answers' usage is the server's count; with learning, the server also counted its calls after the
    answers, so the answers' usage is less (the fleet without learning compares exactly)."""
    if t["reported_matches_server"]:
        return "yes"
    if t.get("with_learning") and t["reported_tokens_per_request"] < t["fleet_tokens_per_request"]:
        return "less: learning's calls come after the answer"
    return "no"


INFRA_GROUPS = ("kafka", "redis", "postgres", "chroma", "neo4j")


def _cpu(result: dict[str, Any]) -> list[str]:
    """CPU ms per request per process group, non-streaming, at each concurrency."""
    rows_in = [r for r in result["summary"] if not r["stream"] and r.get("cpu_ms_per_request")]
    groups = sorted({g for r in rows_in for g in r["cpu_ms_per_request"]} - {"load generator", *INFRA_GROUPS})
    infra = [g for g in INFRA_GROUPS if any(g in r["cpu_ms_per_request"] for r in rows_in)]
    rows = []
    for r in rows_in:
        cpu = r["cpu_ms_per_request"]
        own = sum(cpu.get(g) or 0 for g in groups if g not in ("llm", "litellm"))
        rows.append([r["target"], r["concurrency"], *[cpu.get(g) for g in groups], round(own, 1),
                     *[cpu.get(g) for g in infra], round(own + sum(cpu.get(g) or 0 for g in infra), 1)])
    if not rows:
        return []
    idle = result.get("idle_cores") or {}
    fleet_idle = sum(v for k, v in idle.items() if k not in (*INFRA_GROUPS, "load generator", "llm", "litellm"))
    return ["### CPU per request (ms, non-streaming, summed over each process tree)", "",
            "What one request costs each process, net of its idle use (measured for a few seconds before the "
            f"cells: the fleet idles at {fleet_idle:.2f} cores, Kafka at {idle.get('kafka', 0):.2f} cores incl. "
            "other users' fleets). The infrastructure columns include whatever else used Kafka, Redis, Chroma at "
            "the time; `-` means nothing beyond the idle use was seen (for a shared Kafka, its other load "
            "varied more than this path added). On 2 cores, 2000 ms / (sum of the row) bounds the throughput.",
            "",
            _table(["path", "conc.", *groups, "fleet (without llm, litellm)", *infra, "fleet + infra"], rows)]


def _streams(result: dict[str, Any]) -> list[str]:
    rows = result.get("streams") or []
    if not rows:
        return []
    held = {r["target"]: max((x["streams"] for x in rows if x["target"] == r["target"] and x["held"] == x["streams"]),
                             default=0) for r in rows}
    lines = ["### Streams at scale (N SSE streams at once; the model takes "
             f"{result.get('streams_model_s', '?')} s per completion)", "",
             "Each stream's reply is a numbered word sequence: *held* = HTTP 200, every word in order, the "
             "finish chunk and `[DONE]`; *dropped* counts missing frames (words, finish, done) of the streams "
             "that got 200 and no error frame; *failed*: another status, an error frame (e.g. the deadline "
             "passed) or a client timeout. CPU per stream like the cells (CPU seconds of each process group, "
             "net of idle).", "",
             _table(["target", "N", "held", "dropped frames", "reordered", "failed", "frames / stream", "took s",
                     "latency p50 ms", "p99 ms", "CPU ms / stream (all)", "first errors"],
                    [[r["target"], r["streams"], r["held"], r["dropped_frames"], r["reordered_frames"], r["failed"],
                      r["frames_per_stream"], r["elapsed_s"], r["latency_ms"].get("p50"), r["latency_ms"].get("p99"),
                      round(sum(r["cpu_ms_per_stream"].values()), 1),
                      "; ".join(f"{k} ({v})" for k, v in r["errors"].items()) or "-"] for r in rows]), "",
             "Most streams held at once with 0 dropped: " + ", ".join(f"{t} {n}" for t, n in held.items()) + ".", ""]
    return lines


def _memory(result: dict[str, Any]) -> list[str]:
    rows = [[name, m["peak_rss_mb"], m["processes"]] for name, m in result["memory"].items()]
    return ["### Peak memory (RSS high-water mark, summed over each process tree)", "",
            _table(["process", "peak RSS MB", "processes"], rows)]


def performance_doc(result: dict[str, Any], chart: str) -> str:
    intro = DOC_INTRO.read_text() if DOC_INTRO.exists() else "# Performance\n"
    analysis = ANALYSIS.read_text() if ANALYSIS.exists() else ""
    return (f"{intro.rstrip()}\n\n## Latest results\n\n<!-- generated by `{result['command']}` from "
            f"bench/results/latest.json; edit bench/doc_intro.md and bench/analysis.md instead -->\n\n"
            f"![latency and throughput]({chart})\n\n{markdown(result, '../bench/results/')}\n{analysis.rstrip()}\n"
            f"{_soak_section()}")


def _soak_section() -> str:
    """The last soak's section (bench.soak writes it), kept when the benchmark rewrites the page."""
    soak = DOC_INTRO.parent / "results" / "latest-soak.md"
    return f"\n{soak.read_text()}" if soak.exists() else ""
