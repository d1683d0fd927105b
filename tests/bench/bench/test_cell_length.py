"""How long a benchmark cell runs (bench.loadgen.run_cell): until its seconds or its request budget end, but not
before its least requests were sent (a 3 s cell at concurrency 1 held 17 full requests, too few for the headline's
CPU per request), unless its longest time passed. Against a real HTTP server on this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bench import config, loadgen

pytestmark = pytest.mark.infra


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[int]]]:
    served: list[int] = []

    async def chat(request: web.Request) -> web.Response:
        served.append(1)
        return web.json_response({"id": f"chatcmpl-{len(served)}", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1", served
    finally:
        await runner.cleanup()


def _target(url: str) -> loadgen.Target:
    return loadgen.Target("direct", url, "m", "k", check=lambda _: None, question=str)


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_cell_past_its_seconds_still_sends_its_least_requests_exactly(
        server: tuple[str, list[int]], concurrency: int) -> None:
    url, served = server
    async with aiohttp.ClientSession() as http:
        cell = await loadgen.run_cell(http, _target(url), concurrency=concurrency, stream=False, run=1,
                                      max_requests=3000, max_seconds=0, min_requests=7, longest_s=600)
    assert len(cell.records) == len(served) == 7
    assert all(r.error is None for r in cell.records)


async def test_without_least_requests_or_past_its_longest_time_a_cell_ends_at_its_seconds(
        server: tuple[str, list[int]]) -> None:
    url, served = server
    async with aiohttp.ClientSession() as http:
        none = await loadgen.run_cell(http, _target(url), concurrency=2, stream=False, run=1,
                                      max_requests=3000, max_seconds=0)
        capped = await loadgen.run_cell(http, _target(url), concurrency=2, stream=False, run=1,
                                        max_requests=3000, max_seconds=0, min_requests=7, longest_s=0)
        budget = await loadgen.run_cell(http, _target(url), concurrency=2, stream=False, run=1,
                                        max_requests=4, max_seconds=600, min_requests=7)
    assert (len(none.records), len(capped.records), len(budget.records)) == (0, 0, 4)
    assert len(served) == 4


def test_the_full_profile_asks_for_least_requests_and_the_quick_one_does_not() -> None:
    assert config.BenchConfig().cell_min_requests == 40
    assert config.quick().cell_min_requests == 0
    assert config.parse(["--min-requests", "12"]).cell_min_requests == 12
