"""The fleet warm-up's stop rules (bench.fleet_warm): the JVMs' CPU per request settled, every stage run."""

from __future__ import annotations

from typing import Any

import pytest

from bench import fleet_warm, report

pytestmark = pytest.mark.unit


def test_settles_only_when_the_last_batches_lie_within_the_tolerance_of_their_mean() -> None:
    # Kafka + Neo4j ms per request as measured on 27 November: the JIT warm-up falls 3x, then noise
    falling = [122.0, 81.0, 60.0, 44.8, 41.0]
    assert not any(fleet_warm.settled(falling[:n]) for n in range(len(falling) + 1))
    assert fleet_warm.settled([*falling, 40.0, 43.0])  # 41, 40, 43: spread 3 <= 20 % of 41.3
    assert not fleet_warm.settled([*falling, 40.0, 52.0])  # spread 12 > 8.9: a noisy batch is not settled


def test_needs_a_whole_window_and_a_floor_for_small_figures() -> None:
    assert not fleet_warm.settled([5.0, 5.0])  # two batches are not a window of three
    assert fleet_warm.settled([5.0, 5.0], window=2)
    assert fleet_warm.settled([1.2, 2.0, 1.5])  # spread 0.8 ms: > 20 % of 1.6, within the 1 ms floor
    assert not fleet_warm.settled([1.2, 2.0, 1.5], floor_ms=0.5)
    assert not fleet_warm.settled([3.0, 3.0, 3.0], window=1)  # one batch compares with nothing


def _snapshot(**services: dict[tuple[str, str], float]) -> dict[str, dict[tuple[str, ...], list[float]]]:
    return {name: {key: [0.0, n] for key, n in rows.items()} for name, rows in services.items()}


SERVICES = ["gateway", "planner", "expert-worker", "merger", "graph-ingest", "gap-healer", "codex-lineage"]


def test_every_consumer_of_a_published_topic_must_have_handled_it() -> None:
    done = _snapshot(planner={("moe_messages_published", "plans"): 3, ("moe_stage_seconds", "requests"): 3},
                     merger={("moe_stage_seconds", "results"): 3})
    left = fleet_warm.missing(done, ["planner", "merger", "expert-worker"])
    assert left == ["merger handling plans"]  # results and tasks.expert were never published: not required
    done["merger"][("moe_stage_seconds", "plans")] = [0.0, 1.0]
    assert fleet_warm.missing(done, ["planner", "merger", "expert-worker"]) == []


def test_the_record_checkpoints_and_learning_writes_neo4j_before_the_warm_up_may_stop() -> None:
    done = _snapshot(**{"codex-lineage": {("moe_lineage_records", "requests"): 9}})
    assert fleet_warm.missing(done, SERVICES) == [
        "codex-lineage checkpointing", "graph-ingest querying Neo4j", "gap-healer writing to Neo4j"]
    done["codex-lineage"][("moe_audit_checkpoints", "made")] = [0.0, 1.0]
    done["graph-ingest"] = {("moe_store_seconds", "neo4j"): [0.2, 2.0]}
    done["gap-healer"] = {("moe_store_ops", "neo4j:read"): [0.1, 2.0]}
    assert fleet_warm.missing(done, SERVICES) == ["gap-healer writing to Neo4j"]  # a read is not learning's write
    done["gap-healer"][("moe_store_ops", "neo4j:write")] = [0.1, 1.0]
    assert fleet_warm.missing(done, SERVICES) == []
    assert fleet_warm.missing({}, ["planner"]) == []  # a bare fleet: neither the record nor learning is waited for


def test_the_results_say_how_the_warm_up_ended() -> None:
    batch = {"requests": 60, "errors": 0, "seconds": 5.0, "cpu_ms_per_request": {"kafka": 30.0, "neo4j": 11.0}}
    warm: dict[str, Any] = {
        "paths": ["full", "trivial", "cache"], "requests_per_path": 20, "concurrency": 8, "max_batches": 2,
        "criterion": {"window": 3, "tolerance": 0.2, "floor_ms": 1.0}, "seconds": 10.2, "settled": False,
        "missing": ["codex-lineage checkpointing"], "cap_hit": True,
        "batches": [batch | {"jvm_ms_per_request": 41.0}, batch | {"jvm_ms_per_request": 30.5}]}
    [line, _] = report.warm_lines({"fleet_warm": warm, "bare": {"fleet_warm": warm | {"cap_hit": False}}})
    assert "2 batches of 20 requests per path (full, trivial, cache) at concurrency 8" in line
    assert "by batch: 41.0, 30.5; **the cap of 2 batches hit**: not settled; not run: codex-lineage checkpointing" \
        in line
    assert "Without the record and learning: 2 batches" in line and "settled (the last 3 within 20 %" in line
    assert report.warm_lines({}) == []  # results from before the warm-up existed render as they did
