"""The expert-worker stage as a fleet runs it: its app (lifespan, consumers, heartbeat) on the real Kafka broker
and Redis, its models on scripted inference servers (the only doubles).

- A fleet configured like the original (EXPERT_TEMPLATES names phi4:14b and qwq:32b, no tiers) escalates to
  tier 2 on a low-confidence answer, and not on a confident one.
- Ratings sent on the feedback topic put a category's best-scored model first.
- On Ollama servers, the stage's heartbeat reads /api/ps and a floating expert goes to the server that has its
  model warm; a user who was answered sticks to that server (the original's phase 0, before the warm check);
  a server configured to unload takes the model out of VRAM after an expert's call, and the next heartbeat
  sees it gone.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from redis.asyncio import Redis

from expert_worker.app import create_app
from expert_worker.scoring import ScoreBoard
from expert_worker.settings import ExpertSettings
from moe_core.contracts import Envelope, ExpertTask, Feedback, ModelUse, TaskResult, deadline_in
from moe_core.llm.inference import ModelRef
from moe_core.runtime.bus import Bus
from moe_core.runtime.kafka_clients import client_kwargs
from tests.support.scripted_llm import create_app as scripted_app
from tests.support.scripted_llm import start_server_thread

pytestmark = pytest.mark.infra
SIZED = ["phi4:14b", "qwq:32b"]  # 14 B: tier 1; 32 B: tier 2 (EXPERT_TIER_BOUNDARY_B 20)
PEERS = ["alpha:7b", "beta:8b"]  # both tier 1
OLLAMA_MODEL = "qwen2.5:7b"


@pytest.fixture(scope="module")
def openai_server() -> Iterator[tuple[str, Any]]:
    app = scripted_app({"models": SIZED + PEERS, "rules": []})
    url, stop = start_server_thread(app=app)
    yield url, app
    stop()


@pytest.fixture(scope="module")
def ollama_servers() -> Iterator[dict[str, tuple[str, Any]]]:
    """name -> (url, app): two scripted servers speaking Ollama's API, both with OLLAMA_MODEL installed; each
    answers with its own name."""
    running: dict[str, tuple[str, Any]] = {}
    stops = []
    for name in ("a", "b"):
        app = scripted_app({"models": [OLLAMA_MODEL],
                            "rules": [{"reply": f"CORE_FINDING: {name}\nCONFIDENCE: high"}]})
        url, stop = start_server_thread(app=app)
        running[name] = (url, app)
        stops.append(stop)
    yield running
    for stop in stops:
        stop()


class Stage:
    """The expert-worker app in its lifespan, and a producer and a results reader on its topics."""

    def __init__(self, settings: ExpertSettings, bootstrap: str) -> None:
        self.settings = settings
        self.bus = Bus(settings)
        self.bootstrap = bootstrap
        self.producer = AIOKafkaProducer(**client_kwargs(bootstrap=bootstrap))
        self.results: dict[str, TaskResult] = {}
        self.consumer: AIOKafkaConsumer | None = None

    async def send(self, message: Envelope, topic: str) -> None:
        await self.producer.send_and_wait(topic, message.model_dump_json().encode(),
                                          key=message.response_id.encode())

    async def ask(self, user: str | None = None, category: str = "math") -> TaskResult:
        """One expert task through Kafka; its result from the results topic."""
        rid = f"r{uuid.uuid4().hex[:10]}"
        task = ExpertTask(response_id=rid, tenant_id="t", deadline_at=deadline_in(60), task_id="t1",
                          category=category, instruction="2+2?", question="2+2?", user=user)
        await self.send(task, self.bus.topics.tasks_expert)
        assert self.consumer is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + 60
        while rid not in self.results and loop.time() < end:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    result = TaskResult.model_validate_json(record.value)
                    self.results[result.response_id] = result
        assert rid in self.results, "the expert-worker published no result"
        return self.results[rid]


@asynccontextmanager
async def stage(infra: dict[str, str], namespace: str, **fields: Any) -> AsyncIterator[Stage]:
    settings = ExpertSettings(topic_namespace=namespace, kafka_bootstrap=infra["kafka"], redis_url=infra["redis"],
                              **fields)
    app = create_app(settings)
    running = Stage(settings, infra["kafka"])
    async with app.router.lifespan_context(app):
        await running.producer.start()
        running.consumer = AIOKafkaConsumer(running.bus.topics.results, **client_kwargs(bootstrap=infra["kafka"]),
                                            auto_offset_reset="earliest", group_id=None, fetch_max_wait_ms=50)
        await running.consumer.start()
        try:
            yield running
        finally:
            await running.consumer.stop()
            await running.producer.stop()


def _called(app: Any) -> list[str]:
    return [c["model"] for c in app.state.scripted.get_calls()]


def _script(app: Any, replies: dict[str, str]) -> None:
    app.state.scripted.set_script({"models": SIZED + PEERS,
                                   "rules": [{"model": m, "reply": r} for m, r in replies.items()]})
    app.state.scripted.clear_calls()


async def test_a_fleet_with_a_tier_one_and_a_tier_two_model_escalates_on_a_low_confidence_answer(
        infra: dict[str, str], namespace: str, openai_server: tuple[str, Any]) -> None:
    url, app = openai_server
    servers = json.dumps([{"name": "gpu", "url": url, "max_retries": 0, "timeout_s": 30}])
    async with stage(infra, namespace, inference_servers=servers,
                     model_assignments=json.dumps({"default": ["phi4:14b"]}),
                     expert_templates=json.dumps({"math": SIZED})) as worker:
        _script(app, {"phi4:14b": "CORE_FINDING: maybe 5\nCONFIDENCE: low",
                      "qwq:32b": "CORE_FINDING: 4\nCONFIDENCE: high"})
        result = await worker.ask()
        assert (result.content, result.confidence, result.model, result.error) == ("4", "high", "qwq:32b", None)
        assert _called(app) == ["phi4:14b", "qwq:32b"]  # the small model first, the large one after it
        assert [(a["tier"], a["model"], a["confidence"]) for a in result.data["attempts"]] == [  # type: ignore[index]
            (1, "phi4:14b", "low"), (2, "qwq:32b", "high")]

        _script(app, {"phi4:14b": "CORE_FINDING: 4\nCONFIDENCE: high",
                      "qwq:32b": "CORE_FINDING: four\nCONFIDENCE: high"})
        result = await worker.ask()
        assert (result.content, result.model) == ("4", "phi4:14b")
        assert _called(app) == ["phi4:14b"]  # confident in tier one: tier two never runs


async def test_a_forced_ensemble_fleet_asks_both_tiers(
        infra: dict[str, str], namespace: str, openai_server: tuple[str, Any]) -> None:
    url, app = openai_server
    servers = json.dumps([{"name": "gpu", "url": url, "max_retries": 0, "timeout_s": 30}])
    async with stage(infra, namespace, inference_servers=servers, expert_force_ensemble=True,
                     model_assignments=json.dumps({"default": ["phi4:14b"]}),
                     expert_templates=json.dumps({"math": SIZED})) as worker:
        _script(app, {"phi4:14b": "CORE_FINDING: 4\nCONFIDENCE: high",
                      "qwq:32b": "CORE_FINDING: four\nCONFIDENCE: medium"})
        result = await worker.ask()
        assert sorted(_called(app)) == SIZED  # both, though tier one was confident
        assert (result.model, result.content) == ("phi4:14b", "4")  # the more confident of the two


async def test_ratings_on_the_feedback_topic_put_the_best_scored_model_first(
        infra: dict[str, str], namespace: str, openai_server: tuple[str, Any], redis: Redis) -> None:
    url, app = openai_server
    servers = json.dumps([{"name": "gpu", "url": url, "max_retries": 0, "timeout_s": 30}])
    async with stage(infra, namespace, inference_servers=servers, score_min_ratings=2,
                     model_assignments=json.dumps({"default": ["alpha:7b"]}),
                     expert_templates=json.dumps({"general": PEERS})) as worker:
        replies = {m: f"CORE_FINDING: {m}\nCONFIDENCE: high" for m in PEERS}
        _script(app, replies)
        assert (await worker.ask(category="general")).model == "alpha:7b"  # no ratings: the template order
        for i in range(2):
            await worker.send(Feedback(response_id=f"{namespace}-fb{i}", tenant_id="t", deadline_at=deadline_in(60),
                                       rating=5, models_used=[ModelUse(model="beta:8b", category="general")]),
                              worker.bus.topics.feedback)
        board = ScoreBoard(redis, namespace, min_score=0.3, min_ratings=2, half_life_s=0)
        refs = [ModelRef(model=m) for m in PEERS]
        for _ in range(150):  # until the stage has counted both ratings (it consumes the feedback topic)
            if [r.model for r in await board.usable("general", refs, "t")] == ["beta:8b", "alpha:7b"]:
                break
            await asyncio.sleep(0.1)
        assert (await board.score("general", "beta:8b", "t")).n == 2
        _script(app, replies)
        result = await worker.ask(category="general")
        assert result.model == "beta:8b" and _called(app) == ["beta:8b"]  # best score first; it answered


async def _loaded(redis: Redis, namespace: str, server: str) -> list[str] | None:
    raw = await redis.hget(f"inference:{namespace}:server:{server}", "loaded")
    return json.loads(raw) if raw is not None else None


async def _until_beat(redis: Redis, namespace: str, want: dict[str, list[str]]) -> None:
    """Wait until the stage's heartbeat has read every server's /api/ps as `want` (server -> loaded models)."""
    seen: dict[str, list[str] | None] = {}
    for _ in range(300):
        seen = {name: await _loaded(redis, namespace, name) for name in want}
        if seen == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the heartbeat never saw {want}: {seen}")


async def test_ollama_warm_models_feed_floating_and_sticky_selection_and_an_expert_call_unloads(
        infra: dict[str, str], namespace: str, ollama_servers: dict[str, tuple[str, Any]], redis: Redis) -> None:
    apps = {name: app for name, (_, app) in ollama_servers.items()}
    for app in apps.values():
        app.state.scripted.clear_calls()
    apps["a"].state.scripted.set_loaded([])
    apps["b"].state.scripted.set_loaded([OLLAMA_MODEL])
    servers = json.dumps([
        {"name": "a", "url": ollama_servers["a"][0], "api": "ollama", "unload_after_expert": True, "max_retries": 0},
        {"name": "b", "url": ollama_servers["b"][0], "api": "ollama", "max_retries": 0}])
    async with stage(infra, namespace, inference_servers=servers, inference_heartbeat_s=1,
                     model_assignments=json.dumps({"default": [OLLAMA_MODEL]}),
                     expert_templates=json.dumps({"math": [OLLAMA_MODEL]})) as worker:  # floating: no @server
        await _until_beat(redis, namespace, {"a": [], "b": [OLLAMA_MODEL]})
        assert (await worker.ask(user="alice")).server == "b"  # warm on b only (a comes first in the list)
        assert await redis.get(f"inference:{namespace}:affinity:alice:{OLLAMA_MODEL}") == "b"

        apps["b"].state.scripted.set_loaded([])  # b's model expired from its memory; a loaded it meanwhile
        apps["a"].state.scripted.set_loaded([OLLAMA_MODEL])
        await _until_beat(redis, namespace, {"a": [OLLAMA_MODEL], "b": []})
        assert (await worker.ask(user="alice")).server == "b"  # sticky: alice stays where she was answered
        assert (await worker.ask(user="bob")).server == "a"  # a new user: the warm server
        bob = [c for c in apps["a"].state.scripted.get_calls()]
        assert [c["body"].get("keep_alive") for c in bob] == [0]  # a unloads after an expert's call
        assert all("keep_alive" not in c["body"] for c in apps["b"].state.scripted.get_calls())  # b keeps it
        await _until_beat(redis, namespace, {"a": [], "b": [OLLAMA_MODEL]})  # /api/ps: gone from a; b loaded
        # it again for alice's call (an Ollama call loads its model)
        assert (await worker.ask(user="carol")).server == "b"  # warm on b now
