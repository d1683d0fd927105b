"""Every mode id is listed, accepted and routed by both APIs, streamed and not (a gateway alone on the
real broker; the backend's behaviour per mode is tested with the planner and merger)."""

from __future__ import annotations

import asyncio
import uuid

import anthropic
import openai
import pytest

from moe_core.contracts import Usage
from moe_core.llm.modes import MODES
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
MODE_IDS = ["moe-orchestrator", "moe-orchestrator-code", "moe-orchestrator-concise", "moe-orchestrator-agent",
            "moe-orchestrator-agent-orchestrated", "moe-orchestrator-research", "moe-orchestrator-report",
            "moe-orchestrator-plan"]
ROUTES = [(mode, i % 2 == 1) for i, mode in enumerate(MODE_IDS)]  # each SDK: every mode, half of them streamed


async def test_both_sdks_list_every_mode(bare_gateway: ServiceProcess, api_key: str) -> None:
    oai = openai.AsyncOpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0)
    ant = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0)
    assert [m.id async for m in oai.models.list()] == MODE_IDS == list(MODES)
    assert [m.id async for m in ant.models.list()] == MODE_IDS
    assert (await ant.models.retrieve("moe-orchestrator-plan")).display_name == "moe-orchestrator-plan"


async def _answer_when_asked(driver: BusDriver, marker: str, mode: str, stream: bool) -> None:
    request = await driver.request(marker)
    assert (request.mode, request.stream) == (mode, stream)
    await driver.answer(request, f"answer in {mode}", usage=Usage(prompt_tokens=4, completion_tokens=3))


@pytest.mark.parametrize(("mode", "stream"), ROUTES)
async def test_openai_routes_every_mode(bare_gateway: ServiceProcess, api_key: str, driver: BusDriver,
                                        mode: str, stream: bool) -> None:
    client = openai.AsyncOpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=30)
    m = f"M{uuid.uuid4().hex[:8]}"
    backend = asyncio.create_task(_answer_when_asked(driver, m, mode, stream))
    messages = [{"role": "user", "content": f"Question {m}"}]
    if stream:
        chunks = [c async for c in await client.chat.completions.create(model=mode, messages=messages,  # type: ignore[arg-type]
                                                                           stream=True)]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert {c.model for c in chunks} == {mode}
    else:
        response = await client.chat.completions.create(model=mode, messages=messages)  # type: ignore[arg-type]
        text = response.choices[0].message.content
        assert response.model == mode and response.usage is not None and response.usage.total_tokens == 7
    await backend
    assert text == f"answer in {mode}"


@pytest.mark.parametrize(("mode", "stream"), [(mode, not stream) for mode, stream in ROUTES])
async def test_anthropic_routes_every_mode(bare_gateway: ServiceProcess, api_key: str, driver: BusDriver,
                                           mode: str, stream: bool) -> None:
    client = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=30)
    m = f"M{uuid.uuid4().hex[:8]}"
    backend = asyncio.create_task(_answer_when_asked(driver, m, mode, stream))
    messages = [{"role": "user", "content": f"Question {m}"}]
    if stream:
        async with client.messages.stream(model=mode, max_tokens=64, messages=messages) as events:  # type: ignore[arg-type]
            message = await events.get_final_message()
    else:
        message = await client.messages.create(model=mode, max_tokens=64, messages=messages)  # type: ignore[arg-type]
    await backend
    assert message.model == mode
    assert [b.text for b in message.content if b.type == "text"] == [f"answer in {mode}"]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
