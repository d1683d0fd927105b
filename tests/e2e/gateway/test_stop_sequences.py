"""Stop sequences through a real gateway and Kafka (a BusDriver plays the fleet, streaming the answer in pieces):
Anthropic `stop_sequences` with the anthropic SDK — the text ends before the first sequence, stop_reason
"stop_sequence" with `stop_sequence` set, streamed or not, and nothing past the sequence is ever streamed, also
when it arrives split across pieces — and OpenAI `stop` with the openai SDK (finish_reason "stop")."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest

from moe_core.contracts import Usage
from tests.e2e.helpers import marker
from tests.support.bus_driver import BusDriver
from tests.support.fleet import ServiceProcess

pytestmark = pytest.mark.e2e
MODE = "moe-orchestrator"
ANSWER = "Tides come from the moon.\n### Notes for the judge: internal"


@pytest.fixture
def ant(bare_gateway: ServiceProcess, api_key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=bare_gateway.url, api_key=api_key, max_retries=0, timeout=30)


async def _answer(driver: BusDriver, marker: str, pieces: list[str] | None = None, content: str = ANSWER) -> None:
    request = await driver.request(marker)
    for seq, piece in enumerate(pieces or []):
        await driver.delta(request, seq, piece)
    await driver.answer(request, content, usage=Usage(prompt_tokens=7, completion_tokens=12))


async def test_anthropic_stop_sequences_end_the_message(ant: anthropic.AsyncAnthropic, driver: BusDriver) -> None:
    m = marker("S")
    backend = asyncio.create_task(_answer(driver, m))
    message = await ant.messages.create(model=MODE, max_tokens=64, stop_sequences=["STOP", "\n###"],
                                        messages=[{"role": "user", "content": f"Why tides? {m}"}])
    await backend
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Tides come from the moon."  # type: ignore[union-attr]
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "\n###")
    assert message.usage.output_tokens == 12  # what the models generated

    m = marker("S")  # no stop sequence in the answer: an ordinary end
    backend = asyncio.create_task(_answer(driver, m, content="Tides come from the moon."))
    message = await ant.messages.create(model=MODE, max_tokens=64, stop_sequences=["###"],
                                        messages=[{"role": "user", "content": f"Why tides? {m}"}])
    await backend
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)


async def test_anthropic_stream_never_shows_text_past_a_stop_sequence(
        ant: anthropic.AsyncAnthropic, driver: BusDriver) -> None:
    m = marker("S")
    pieces = ["Tides come ", "from the moon.\n#", "## Notes", " for the judge: internal"]  # the stop split in two
    backend = asyncio.create_task(_answer(driver, m, pieces))
    texts: list[str] = []
    deltas: list[Any] = []
    async with ant.messages.stream(model=MODE, max_tokens=64, stop_sequences=["\n###"],
                                   messages=[{"role": "user", "content": f"Why tides? {m}"}]) as stream:
        async for event in stream:
            if event.type == "text":
                texts.append(event.text)
            elif event.type == "message_delta":
                deltas.append(event.delta)
        final = await stream.get_final_message()
    await backend
    assert "".join(texts) == "Tides come from the moon." and not any("#" in t for t in texts)
    assert [(d.stop_reason, d.stop_sequence) for d in deltas] == [("stop_sequence", "\n###")]
    assert final.content[-1].text == "Tides come from the moon."  # type: ignore[union-attr]
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "\n###")


async def test_openai_stop(bare_gateway: ServiceProcess, api_key: str, driver: BusDriver) -> None:
    client = openai.AsyncOpenAI(base_url=f"{bare_gateway.url}/v1", api_key=api_key, max_retries=0, timeout=30)
    m = marker("S")
    backend = asyncio.create_task(_answer(driver, m))
    response = await client.chat.completions.create(model=MODE, stop="###",
                                                    messages=[{"role": "user", "content": f"Why tides? {m}"}])
    await backend
    assert response.choices[0].message.content == "Tides come from the moon.\n"
    assert response.choices[0].finish_reason == "stop"

    m = marker("S")
    backend = asyncio.create_task(_answer(driver, m, ["Tides come from ", "the moon.\n##", "# Notes"]))
    chunks = [c async for c in await client.chat.completions.create(
        model=MODE, stop=["\n###", "never"], stream=True, messages=[{"role": "user", "content": f"Why tides? {m}"}])]
    await backend
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Tides come from the moon."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
