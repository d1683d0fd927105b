"""What a stage run ran with: the configuration digest (secrets masked, any setting changes it), the prompt
templates a run used (collected per consumed message), stamped by the bus on what the run publishes (FastStream's
in-memory broker), and the lineage facet codex-lineage derives from it."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from codex_lineage.lineage import Datasets, Lineage
from moe_core.audit.records import from_kafka, message_types
from moe_core.contracts import Progress, RunVersions, TaskResult, ToolTask, Topics, deadline_in
from moe_core.runtime.bus import Bus
from moe_core.runtime.run_versions import config_digest, config_view, prompt_used, run_prompts
from moe_core.runtime.settings import FleetSettings

pytestmark = pytest.mark.unit


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_the_configuration_digest_covers_every_setting_but_no_secret() -> None:
    base = FleetSettings(service_name="planner", postgres_dsn="postgresql://moe:first@db:5432/moe")
    same = FleetSettings(service_name="planner", postgres_dsn="postgresql://moe:second@db:5432/moe",
                         kafka_password="another")
    assert config_digest(base) == config_digest(same)  # passwords are not configuration
    view = config_view(same)
    assert view["postgres_dsn"] == "postgresql://moe:***@db:5432/moe" and "another" not in str(view)
    assert config_digest(base) != config_digest(base.model_copy(update={"retry_max_attempts": 3}))
    assert config_digest(base).startswith("sha256:") and len(config_digest(base)) == 71


def test_outside_a_stage_run_no_prompt_is_recorded() -> None:
    prompt_used("planner.plan", "Split the question")
    assert run_prompts() == {}


async def test_the_bus_stamps_the_runs_configuration_and_prompts_on_what_it_publishes() -> None:
    settings = FleetSettings(service_name="toy", topic_namespace="versions", kafka_create_topics=False)
    bus = Bus(settings)
    published: list[TaskResult] = []
    kept = RunVersions(service="older", config=_sha("older"), prompts={})

    @bus.broker.subscriber(bus.topics.tasks_mcp)
    async def handle(task: ToolTask) -> None:
        prompt_used("toy.solve", f"Solve with {task.tool}")
        fields: dict[str, Any] = {"response_id": task.response_id, "tenant_id": task.tenant_id,
                                  "deadline_at": task.deadline_at, "task_id": task.task_id, "category": "math"}
        await bus.publish(TaskResult(**fields), bus.topics.results)
        await bus.publish(Progress(**{k: fields[k] for k in ("response_id", "tenant_id", "deadline_at")},
                                   stage="toy", event="done"), bus.topics.progress)
        await bus.publish(TaskResult(**{**fields, "task_id": "kept", "versions": kept}), bus.topics.results)

    @bus.broker.subscriber(bus.topics.results)
    async def results(result: TaskResult) -> None:
        published.append(result)

    progress: list[Progress] = []
    bus.broker.subscriber(bus.topics.progress)(lambda m: progress.append(Progress.model_validate(m)))
    async with TestKafkaBroker(bus.broker):
        task = ToolTask(response_id="r1", tenant_id="acme", deadline_at=deadline_in(30), task_id="t1", tool="sympy")
        await bus.publish(task, bus.topics.tasks_mcp)
    by_id = {r.task_id: r for r in published}
    assert by_id["t1"].versions == RunVersions(service="toy", config=config_digest(settings),
                                               prompts={"toy.solve": _sha("Solve with sympy")})
    assert by_id["kept"].versions == kept  # a stored outcome republished keeps the run that made it
    assert progress and progress[0].versions is None  # live events are not recorded


def test_the_lineage_of_a_stage_run_carries_its_versions() -> None:
    topics = Topics.for_namespace("moe")
    versions = RunVersions(service="expert-worker", config=_sha("cfg"), prompts={"expert.general": _sha("You are")})
    result = TaskResult(response_id="r1", tenant_id="acme", deadline_at=deadline_in(60), task_id="t1",
                        category="general", model="m1", versions=versions)
    record = from_kafka(topics.results, 0, 1, int(result.created_at.timestamp() * 1000), b"r1",
                        result.model_dump_json().encode(), {"x-moe-producer": "expert-worker"}, message_types(topics))
    lineage = Lineage(topics, "moe-sovereign", Datasets("kafka://k:9092", "neo4j://n:7687", "chroma://c:8000"))
    for event in lineage.events(record):
        facet = event["run"]["facets"]["moe_versions"]
        assert (facet["service"], facet["configDigest"], facet["promptDigests"]) == (
            "expert-worker", _sha("cfg"), {"expert.general": _sha("You are")})
        assert facet["_schemaURL"].endswith("/MoeVersionsRunFacet.json#/$defs/MoeVersionsRunFacet")
    old = result.model_copy(update={"versions": None})
    older = from_kafka(topics.results, 0, 2, 0, b"r1", old.model_dump_json().encode(), {}, message_types(topics))
    assert all("moe_versions" not in e["run"]["facets"] for e in lineage.events(older))
