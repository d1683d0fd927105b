"""Ollama at the original's depth, on a scripted server that speaks Ollama's API (in-process): an expert's call
to a server configured to unload carries keep_alive 0 and the model leaves the server's memory (/api/ps), while
the judge's call and other servers keep it; the original's CLUSTER_HARDWARE as load per GPU and GPU-class
priority in the order of a floating model's servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from expert_worker.tiers import TieredExpert
from moe_core.contracts import ExpertTask, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceServer, ModelRef
from moe_core.llm.inference.fleet import ServerView, order_servers
from tests.support.scripted_llm import create_app

pytestmark = pytest.mark.unit
EXPERT, JUDGE = "qwen2.5:7b", "gemma3:4b"


def _server(name: str, **fields: Any) -> InferenceServer:
    return InferenceServer(name=name, url=f"http://{name}", **fields)


def test_load_per_gpu_then_gpu_class_priority_then_configuration_order() -> None:
    small, big, best = _server("small"), _server("big", gpu_count=4), _server("best", priority=10)
    views = {"small": ServerView("small", inflight=1), "big": ServerView("big", inflight=3),
             "best": ServerView("best", inflight=1)}
    # 3 calls on 4 GPUs (0.75) are less load than 1 call on 1 GPU; of two equally loaded, the higher priority
    assert [s.name for s in order_servers("m", [small, big, best], views, None)] == ["big", "best", "small"]
    idle = {name: ServerView(name) for name in views}  # an idle fleet sends work to its best GPUs first
    assert [s.name for s in order_servers("m", [small, big, best], idle, None)] == ["best", "small", "big"]
    idle["small"].loaded = {"m"}  # a warm model still comes before priority and load
    assert [s.name for s in order_servers("m", [small, big, best], idle, None)] == ["small", "best", "big"]


def test_unloading_is_ollamas_and_the_fields_are_checked() -> None:
    with pytest.raises(ValidationError, match="unload_after_expert needs api 'ollama'"):
        _server("llamacpp", unload_after_expert=True)
    with pytest.raises(ValidationError, match="gpu_count"):
        _server("none", gpu_count=0)
    assert not _server("default", api="ollama").unload_after_expert  # opt-in (docs/seed-defaults.md says why)


@pytest.fixture
async def ollama() -> AsyncIterator[dict[str, Any]]:
    """Two scripted Ollama servers, `unloads` configured to unload after an expert's call, `keeps` not."""
    apps = {name: create_app({"models": [EXPERT, JUDGE], "rules": [
        {"model": EXPERT, "reply": "CORE_FINDING: 4\nCONFIDENCE: high"}, {"model": JUDGE, "reply": "Four."}]})
        for name in ("unloads", "keeps")}
    yield apps


def _client(apps: dict[str, Any], pinned: str) -> InferenceClient:
    servers = [InferenceServer(name="unloads", url="http://unloads", api="ollama", unload_after_expert=True,
                               max_retries=0),
               InferenceServer(name="keeps", url="http://keeps", api="ollama", max_retries=0)]
    config = InferenceConfig(servers=servers, roles={"judge": [ModelRef(model=JUDGE, server=pinned)],
                                                    "default": [ModelRef(model=JUDGE, server=pinned)]},
                             experts={"math": [ModelRef(model=EXPERT, server=pinned)]})
    mounts = {f"http://{name}": httpx.ASGITransport(app=app) for name, app in apps.items()}
    return InferenceClient(config, httpx.AsyncClient(mounts=mounts))


async def _loaded(apps: dict[str, Any], name: str) -> set[str]:
    """What the server's Ollama API says it has in memory (GET /api/ps)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[name]), base_url="http://x") as http:
        return {m["name"] for m in (await http.get("/api/ps")).json()["models"]}


def _task() -> ExpertTask:
    return ExpertTask(response_id="r1", tenant_id="t", deadline_at=deadline_in(30), task_id="t1",
                      category="math", instruction="2+2?", question="2+2?")


async def test_an_experts_call_unloads_its_model_and_the_judges_call_keeps_its_own(ollama: dict[str, Any]) -> None:
    client = _client(ollama, "unloads")
    assert await _loaded(ollama, "unloads") == {EXPERT, JUDGE}
    expert = TieredExpert(client, None, max_tokens=100, max_output_chars=1000, parallel=1)
    result = await expert.run(_task(), [{"role": "user", "content": "2+2?"}])
    assert (result.content, result.server) == ("4", "unloads")
    [call] = ollama["unloads"].state.scripted.get_calls()
    assert call["body"]["keep_alive"] == 0 and call["model"] == EXPERT
    assert await _loaded(ollama, "unloads") == {JUDGE}  # the expert's model left VRAM for the judge

    judged = await client.chat(client.config.for_role("judge"), [{"role": "user", "content": "merge"}])
    assert judged.content == "Four."
    assert "keep_alive" not in ollama["unloads"].state.scripted.get_calls()[-1]["body"]  # the judge stays
    assert await _loaded(ollama, "unloads") == {JUDGE}
    await client.aclose()


async def test_a_server_not_configured_to_unload_keeps_the_experts_model(ollama: dict[str, Any]) -> None:
    client = _client(ollama, "keeps")
    result = await TieredExpert(client, None, max_tokens=100, max_output_chars=1000, parallel=1).run(
        _task(), [{"role": "user", "content": "2+2?"}])
    assert result.server == "keeps"
    assert "keep_alive" not in ollama["keeps"].state.scripted.get_calls()[0]["body"]
    assert await _loaded(ollama, "keeps") == {EXPERT, JUDGE}
    assert ollama["unloads"].state.scripted.get_calls() == []
    await client.aclose()
