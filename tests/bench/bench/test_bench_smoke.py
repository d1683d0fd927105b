"""The benchmark harness in its quickest form: one fleet path, one concurrency, a few requests.

It starts its own fleet (own topic namespace) and zero-latency inference server like `make bench`
does, with the record (codex-lineage, `--record`), and checks the files it writes and the structure of its JSON.
No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
REQUESTS = 3
CELL_SECONDS = 600  # far beyond REQUESTS full requests: the count ends each cell
NEO4J_WARM = 20
WARM_BATCHES, WARM_REQUESTS = 2, 2  # the fleet's warm-up at its smallest: two batches of two full requests
FLEET_SERVICES = ("gateway", "planner", "expert-worker", "merger")
TARGETS = {"CPU per full request, all processes incl. infrastructure",
           "CPU per full request, all processes, without the record and learning",
           "full pipeline throughput (sustained)",
           "full pipeline added latency p50", "trivial path added latency p50", "trivial path throughput",
           "cache hit latency p50", "memory flat across the run (largest growth of one service, MB)",
           "token overhead, full pipeline", "token overhead, fast path",
           "concurrent SSE streams held, trivial path, 0 frames dropped",
           "memory flat in the soak (largest second-half growth of a fleet service, MB)"}


@pytest.fixture(scope="module")
def result(infra: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bench")
    # --seconds: each cell ends after its REQUESTS, never on the clock (a slow CI host made a 3 s cell end after one)
    argv = [sys.executable, "-m", "bench", "--paths", "full", "--concurrency", "1", "--requests", str(REQUESTS),
            "--seconds", str(CELL_SECONDS), "--runs", "1", "--stream", "no", "--no-warmup", "--no-litellm",
            "--token-samples", "1", "--sustain", "0",
            "--kafka-probe", "20", "--profile", "0", "--neo4j-warm", str(NEO4J_WARM), "--streams", "4",
            "--fleet-warm", str(WARM_BATCHES), "--fleet-warm-requests", str(WARM_REQUESTS),
            "--fleet-warm-concurrency", "1",
            "--streams-model-s", "0.2", "--no-docs", "--record", "--no-learning", "--no-bare",
            "--out", str(out)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    files = sorted(out.glob("*.json"))
    assert len(files) == 1, list(out.iterdir())
    return out, json.loads(files[0].read_text())


def test_writes_json_markdown_and_chart_but_not_the_docs(result: tuple[Path, dict]) -> None:
    out, _ = result
    stem = next(out.glob("*.json")).stem
    assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / f"{stem}.md").read_text()
    assert "### Latency and throughput" in md and "### Targets" in md and "| full |" in md
    assert not list(out.glob("latest.*"))  # --no-docs leaves docs/performance.md and latest.* alone


def test_neo4j_is_warmed_with_graph_rags_reads_and_learnings_statements_before_the_cells(
        result: tuple[Path, dict]) -> None:
    warm = result[1]["neo4j_warm"]
    assert warm["questions"] == NEO4J_WARM, warm
    assert warm["neo4j_cpu_ms_first"] >= 0 and warm["neo4j_cpu_ms_last"] >= 0, warm
    learned = warm["learned"]
    assert learned["answers"] == NEO4J_WARM and learned["neo4j_cpu_ms_last"] >= 0, learned


def test_the_whole_fleet_is_warmed_in_batches_that_count_in_no_cell(result: tuple[Path, dict]) -> None:
    """Two batches cannot settle (the criterion compares three): the cap is hit and said so, each batch's JVM CPU
    is kept, and every stage of the full path ran in them. The cells hold only their own requests (below: the
    planner's model was called once per cell request)."""
    out, data = result
    warm = data["fleet_warm"]
    assert (len(warm["batches"]), warm["cap_hit"], warm["settled"]) == (WARM_BATCHES, True, False), warm
    for batch in warm["batches"]:
        assert (batch["requests"], batch["errors"]) == (WARM_REQUESTS, 0), batch
        assert set(batch["cpu_ms_per_request"]) == {"kafka", "neo4j"} and batch["jvm_ms_per_request"] >= 0, batch
    ran = {"planner handling requests", "expert-worker handling tasks.expert", "merger handling plans",
           "merger handling results", "graph-rag handling tasks.graph", "gateway handling answers",
           "codex-lineage recording"}
    assert not ran & set(warm["missing"]), warm["missing"]
    md = next(out.glob("*.md")).read_text()
    assert f"Fleet warm-up (`bench/fleet_warm.py`, not counted in any cell): {WARM_BATCHES} batches" in md


def test_the_full_path_was_taken_by_every_request(result: tuple[Path, dict]) -> None:
    _, data = result
    assert data["schema"] == "moe-bench/1"
    assert data["paths"]["full"]["available"] is True
    assert data["paths"]["litellm"] == {**data["paths"]["litellm"], "available": False,
                                        "reason": "skipped (--no-litellm)"}
    cells = {(c["target"], c["concurrency"], c["stream"]): c for c in data["cells"]}
    assert set(cells) == {("direct", 1, False), ("full", 1, False)}
    for cell in cells.values():
        assert (cell["requests"], cell["ok"], cell["errors"]) == (REQUESTS, REQUESTS, 0), cell
        assert cell["latency_ms"]["n"] == REQUESTS
    assert cells[("full", 1, False)]["server"]["models"]["planner-model"]["calls"] == REQUESTS


def test_summary_added_latency_hops_tokens_memory_and_targets(result: tuple[Path, dict]) -> None:
    _, data = result
    summary = {r["target"]: r for r in data["summary"]}
    assert set(summary) == {"direct", "full"}
    assert all(summary[t]["latency_ms"]["p50"] > 0 for t in summary)
    added = data["added_latency_ms"]
    assert [(r["target"], r["concurrency"]) for r in added] == [("full", 1)]
    hops = data["hops"][0]["hops"]
    assert hops["request -> answer"]["n"] == REQUESTS and "request -> plan" in hops
    tokens = data["tokens"]["full"]
    assert tokens["reported_matches_server"] is True
    assert tokens["ratio"] > 1 and tokens["llm_calls_per_request"] >= 4  # planner, two experts, judge
    assert {"planner-model", "expert-model", "judge-model"} <= set(tokens["by_model"])
    for service in (*FLEET_SERVICES, "llm", "load generator"):
        assert data["memory"][service]["peak_rss_mb"] > 0, service
    assert data["kafka_probe"]["produce_to_consume_ms"]["n"] == 20
    assert data["skipped_cells"] == [] and "planner" in data["idle_cores"]
    assert summary["full"]["cpu_ms_per_request"]["planner"] > 0  # the planner worked for every request
    assert {t["target"] for t in data["targets"]} == TARGETS
    trivial = next(t for t in data["targets"] if t["target"] == "trivial path added latency p50")
    assert trivial["measured"] is None and trivial["note"]  # not measured in this run, and says so
    streams = next(t for t in data["targets"] if t["target"].startswith("concurrent SSE streams"))
    assert streams["measured"] is None and streams["note"]  # only the direct target's streams ran
    bare = next(t for t in data["targets"] if t["target"].endswith("without the record and learning"))
    assert bare["measured"] is None and "--no-bare" in bare["note"] and "bare" not in data  # not asked for here
    soak = next(t for t in data["targets"] if t["target"].startswith("memory flat in the soak"))
    assert soak["measured"] is None and "SOAK=0" in soak["note"]  # the soak runs after the benchmark
    assert data["machine"]["cores"] and data["machine"]["python"]


def test_per_stage_breakdown_from_the_services_counters(result: tuple[Path, dict]) -> None:
    """Every full request crosses the planner, two experts and the merger: their handlers, model calls and
    store round trips show per request (counts, not timings)."""
    out, data = result
    [table] = [t for t in data["stages"] if t["target"] == "full"]
    services = table["services"]
    assert services["planner"]["handlers"]["requests"]["per_request"] >= 1
    assert services["planner"]["model"]["planner-model"]["per_request"] == 1
    assert services["expert-worker"]["handlers"]["tasks.expert"]["per_request"] >= 2
    assert services["expert-worker"]["model"]["expert-model"]["per_request"] == 2
    assert services["merger"]["handlers"]["results"]["per_request"] >= 2
    assert services["merger"]["model"]["judge-model"]["per_request"] >= 1
    assert services["merger"]["stores"]["redis"]["per_request"] > 0  # its partial state lives in Redis
    # the planner's memo of its outcome (Redis); its Chroma writes are behind the request path, batched over
    # MOE_CACHE_WRITE_LINGER_MS, so a cell of a few requests may end before they land
    assert services["planner"]["stores"]["redis"]["per_request"] > 0
    memory, cold = data["memory_growth"], data["memory_growth_from_cold_start"]  # from the warmed fleet; from its start
    assert all(m[s]["start_mb"] > 0 and m[s]["end_mb"] > 0 for m in (memory, cold) for s in FLEET_SERVICES)
    assert all(memory[s]["end_mb"] == cold[s]["end_mb"] for s in FLEET_SERVICES)
    md = next(out.glob("*.md")).read_text()
    assert "### Where the time goes, per stage" in md and "| full | 1 | merger |" in md


def test_the_streams_cell_checks_every_frame_of_each_stream(result: tuple[Path, dict]) -> None:
    _, data = result
    [direct] = data["streams"]  # only the fleet's trivial path (not measured here) would add a row
    assert (direct["target"], direct["streams"], direct["held"], direct["failed"]) == ("direct", 4, 4, 0)
    assert direct["dropped_frames"] == direct["reordered_frames"] == 0
    assert direct["frames_per_stream"] == 44.0  # role, 40 words, finish, usage, [DONE]


def test_the_record_ran_beside_the_fleet_in_an_audit_schema_dropped_afterwards(
        result: tuple[Path, dict], infra: dict[str, str]) -> None:
    """codex-lineage recorded the run (its CPU is in the table) into a schema of the run's own, gone now: the run's
    chains, signed with a key nobody keeps, never join a schema a later codex-lineage checkpoints."""
    import asyncio

    import asyncpg

    from tests.support.audit_schema import own_schema

    _, data = result
    full = next(r for r in data["summary"] if r["target"] == "full")
    assert "codex-lineage" in full["cpu_ms_per_request"]
    # the cell closed once the record had caught up (bench.settle): every message of its requests was recorded
    # inside its window, whatever MOE_KAFKA_LINGER_MS held the record's fetches back
    [cell] = [c for c in data["cells"] if c["target"] == "full"]
    recorded = cell["stages"]["codex-lineage"]["recorded"]
    sent = data["kafka_messages_per_request"]["full"]
    for topic in ("requests", "plans", "tasks.expert", "results", "answers"):
        assert recorded[topic]["per_request"] == sent[f"{topic}.v1"], (topic, recorded, sent)
    assert cell["settle_s"] is not None and cell["cpu_window_s"] >= cell["elapsed_s"]

    async def left_behind() -> tuple[int, int]:
        """(the run's own schema still there, the run tenant's entries in the shared `audit` schema)"""
        conn = await asyncpg.connect(infra["postgres"])
        try:
            own = await conn.fetchval("SELECT count(*) FROM information_schema.schemata WHERE schema_name=$1",
                                      own_schema(data["namespace"]))
            shared = await conn.fetchval("SELECT to_regclass('audit.audit_log') IS NOT NULL")
            entries = await conn.fetchval("SELECT count(*) FROM audit.audit_log WHERE tenant_id=$1",
                                          f"tenant-{data['namespace']}") if shared else 0
            return int(own), int(entries)
        finally:
            await conn.close()

    assert data["namespace"].startswith("bench") and asyncio.run(left_behind()) == (0, 0)
