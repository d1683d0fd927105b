"""Client profiles at the edge (gateway.client_profiles; a gateway alone on the real broker with the profiles
below, a BusDriver playing the fleet, the official SDKs as the clients): Claude Code, recognised by its
User-Agent, runs its own model ids in the agent-orchestrated mode with its tool cap; Open WebUI's key gets its
default max_tokens and the <think> block; X-MOE-Profile names one; an unknown name is a 404 in each API's
envelope; a request with no profile still gets the edge's TOOL_MAX_TOKENS."""

from __future__ import annotations

import asyncio
import uuid

import anthropic
import openai
import pytest

from moe_core.contracts import ChatRequest
from tests.e2e.gateway_fixtures import WEBUI_KEY
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess
from tests.support.keys import create_key

pytestmark = pytest.mark.e2e
TOOL = {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object"}}


async def _served(driver: BusDriver, marker: str, shown: asyncio.Event | None = None) -> ChatRequest:
    """The fleet's side: the request taken and answered; with `shown`, a progress event first, and the answer only
    once the client has been shown it (progress and answers travel on different topics: an answer published at
    once can overtake it, and a stream whose answer came first opens without it, as the gateway's transcript says)."""
    request = await driver.request(marker)
    if shown is not None:
        await driver.progress(request, "planner", "started", "planning")
        await asyncio.wait_for(shown.wait(), 30)
    await driver.answer(request, "done")
    return request


async def test_claude_code_gets_its_mode_and_tool_cap(bare_gateway: ServiceProcess, api_key: str,
                                                      driver: BusDriver) -> None:
    claude = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=30,
                                      default_headers={"User-Agent": "claude-cli/2.0.14 (external, cli)"})
    m = f"P{uuid.uuid4().hex[:8]}"
    served = asyncio.create_task(_served(driver, m))
    await claude.messages.create(model="claude-opus-4-7", max_tokens=32000, tools=[TOOL],  # type: ignore[list-item]
                                 messages=[{"role": "user", "content": f"Fix the bug {m}"}])
    request = await served
    assert (request.mode, request.params.max_tokens) == ("moe-orchestrator-agent-orchestrated", 4096)

    m = f"P{uuid.uuid4().hex[:8]}"  # our own mode id keeps its mode; no tools in a plain mode: untouched
    served = asyncio.create_task(_served(driver, m))
    await claude.messages.create(model="moe-orchestrator", max_tokens=30000,
                                 messages=[{"role": "user", "content": f"Explain {m}"}])
    request = await served
    assert (request.mode, request.params.max_tokens) == ("moe-orchestrator", 30000)


async def test_open_webuis_key_gets_its_defaults_and_the_think_block(bare_gateway: ServiceProcess,
                                                                     infra: dict[str, str],
                                                                     driver: BusDriver) -> None:
    secret = await create_key(infra["postgres"], WEBUI_KEY, "user", ["tenant-e2e"])
    webui = openai.AsyncOpenAI(base_url=f"{bare_gateway.url}/v1", api_key=secret, max_retries=0, timeout=30)
    m = f"P{uuid.uuid4().hex[:8]}"
    shown = asyncio.Event()
    served = asyncio.create_task(_served(driver, m, shown))
    chunks = []
    async for chunk in await webui.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": f"Tides {m}"}]):
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            shown.set()  # the progress is on the client's screen: the answer may come
    request = await served
    assert (request.mode, request.params.max_tokens) == ("moe-orchestrator", 2048)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("<think>") and text.endswith("\n</think>\n\ndone")


async def test_the_header_names_a_profile_and_an_unknown_one_is_404(bare_gateway: ServiceProcess, api_key: str,
                                                                    driver: BusDriver) -> None:
    client = openai.AsyncOpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=30)
    m = f"P{uuid.uuid4().hex[:8]}"
    served = asyncio.create_task(_served(driver, m))
    await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"Hi {m}"}],
                                         extra_headers={"X-MOE-Profile": "claude-code"})
    assert (await served).mode == "moe-orchestrator-agent-orchestrated"

    m = f"P{uuid.uuid4().hex[:8]}"  # no profile: the edge's TOOL_MAX_TOKENS (8192, the original's)
    served = asyncio.create_task(_served(driver, m))
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    await client.chat.completions.create(model="gpt-4o", max_tokens=20000, tools=[tool],  # type: ignore[list-item]
                                         messages=[{"role": "user", "content": f"Hi {m}"}])
    assert (await served).params.max_tokens == 8192

    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                             extra_headers={"X-MOE-Profile": "cursor"})
    assert (err.value.code, err.value.param) == ("profile_not_found", "x-moe-profile")
    assert "claude-code, open-webui" in err.value.message
    claude = anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=30)
    with pytest.raises(anthropic.NotFoundError) as nf:
        await claude.messages.create(model="claude-opus-4-7", max_tokens=8, extra_headers={"X-MOE-Profile": "x"},
                                     messages=[{"role": "user", "content": "Hi"}])
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
