"""Per-call timeouts like the original's (judge and expert 900 s, planner 300 s) as settings, each bounded by the
request's deadline too, and a default request deadline that holds their chain (docs/operations.md, timeout
profiles). Behaviour on a scripted server over real HTTP (its replies delayed): an expert call that outlasts
MOE_EXPERT_TIMEOUT_S fails over to the next model although its request has time left."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from expert_worker.settings import ExpertSettings
from expert_worker.tiers import TieredExpert
from gateway.settings import GatewaySettings
from merger.settings import MergerSettings
from moe_core.contracts import ExpertTask, deadline_in
from moe_core.llm.inference import InferenceClient, InferenceConfig, InferenceServer, ModelRef
from planner.settings import PlannerSettings
from tests.support.scripted_llm import create_app, start_server_thread

pytestmark = pytest.mark.unit


def test_the_defaults_are_the_originals_and_the_deadline_holds_their_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MOE_EXPERT_TIMEOUT_S", "MOE_JUDGE_TIMEOUT_S", "MOE_PLANNER_TIMEOUT_S", "MOE_REQUEST_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    expert, judge = ExpertSettings().expert_timeout_s, MergerSettings().judge_timeout_s
    planner = PlannerSettings().planner_timeout_s
    assert (expert, judge, planner) == (900, 900, 300)
    assert GatewaySettings().request_timeout_s >= planner + expert + judge
    assert InferenceServer(name="s", url="http://s").timeout_s >= max(expert, judge)


@pytest.fixture
def server() -> Iterator[tuple[str, Any]]:
    app = create_app({"models": ["slow", "quick"], "rules": []})
    url, stop = start_server_thread(app=app)
    yield url, app
    stop()


def _task(deadline_s: float) -> ExpertTask:
    return ExpertTask(response_id="r1", tenant_id="t", deadline_at=deadline_in(deadline_s), task_id="t1",
                      category="math", instruction="2+2?", question="2+2?")


async def test_an_expert_call_past_its_timeout_fails_over_within_a_long_deadline(server: tuple[str, Any]) -> None:
    url, app = server
    app.state.scripted.set_script({"models": ["slow", "quick"], "rules": [
        {"model": "slow", "reply": "CORE_FINDING: 4\nCONFIDENCE: high", "delay_ms": 3000},
        {"model": "quick", "reply": "CORE_FINDING: four\nCONFIDENCE: high"}]})
    config = InferenceConfig(servers=[InferenceServer(name="s", url=url, max_retries=0)],
                             roles={"default": [ModelRef(model="slow")]},
                             experts={"math": [ModelRef(model="slow"), ModelRef(model="quick")]})
    async with httpx.AsyncClient() as http:
        expert = TieredExpert(InferenceClient(config, http), None, max_tokens=100, max_output_chars=1000,
                              parallel=1, timeout_s=0.5)
        task = _task(60)
        assert expert.call_timeout(task) == 0.5  # the per-call timeout, not the minute the request has
        result = await expert.run(task, [{"role": "user", "content": "2+2?"}])
        near = TieredExpert(InferenceClient(config, http), None, max_tokens=100, max_output_chars=1000, parallel=1,
                            timeout_s=900)
        assert near.call_timeout(_task(5)) <= 5  # the request's deadline bounds a long per-call timeout
    assert (result.model, result.content) == ("quick", "four")  # slow timed out: its failover answered
