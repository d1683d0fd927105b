"""Scripted SearXNG: the `/search?q=...&format=json` API of a SearXNG instance, as a test double.

In-process: ``app = create_app(script)``; ``httpx.AsyncClient(transport=httpx.ASGITransport(app))``.
Thread:     ``url, stop = start_server_thread(app=app)`` (from tests.support.scripted_llm).
State at ``app.state.searxng`` (a ``SearxState``): the script and the recorded calls.

Script: ``{"rules": [{"contains": "tides", "results": [{"title", "url", "content"}], "status": 200,
"delay_ms": 0}], "default": [...]}``. The first rule whose ``contains`` is in the query answers; without
a match the ``default`` results (none unless set). ``format`` other than ``json`` gets 403, like a
SearXNG whose JSON output is not enabled.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


@dataclass
class SearxState:
    script: dict[str, Any] = field(default_factory=lambda: {"rules": [], "default": []})
    calls: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_script(self, script: dict[str, Any] | None) -> None:
        with self._lock:
            self.script = {"rules": [], "default": [], **copy.deepcopy(script or {})}
            self.calls.clear()

    def record(self, params: dict[str, str]) -> None:
        with self._lock:
            self.calls.append(dict(params))

    def get_calls(self) -> list[dict[str, str]]:
        with self._lock:
            return copy.deepcopy(self.calls)

    def match(self, query: str) -> dict[str, Any]:
        with self._lock:
            for rule in self.script["rules"]:
                if rule.get("contains", "") in query:
                    return copy.deepcopy(rule)
            return {"results": copy.deepcopy(self.script["default"])}


def _result(hit: dict[str, Any], position: int) -> dict[str, Any]:
    return {"url": hit["url"], "title": hit.get("title", ""), "content": hit.get("content", ""),
            "engine": hit.get("engine", "scripted"), "engines": [hit.get("engine", "scripted")],
            "positions": [position], "score": 1.0 / position, "category": "general"}


def create_app(script: dict[str, Any] | None = None) -> Starlette:
    state = SearxState()
    state.set_script(script)

    async def search(request: Request) -> Response:
        params = dict(request.query_params)
        state.record(params)
        if params.get("format") != "json":
            return PlainTextResponse("403 Forbidden", status_code=403)
        query = params.get("q", "")
        rule = state.match(query)
        if rule.get("delay_ms"):
            await asyncio.sleep(float(rule["delay_ms"]) / 1000)
        status = int(rule.get("status", 200))
        if status != 200:
            return PlainTextResponse(f"scripted error {status}", status_code=status)
        results = [_result(hit, i) for i, hit in enumerate(rule.get("results", []), 1)]
        return JSONResponse({"query": query, "number_of_results": len(results), "results": results,
                             "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
                             "unresponsive_engines": []})

    app = Starlette(routes=[Route("/search", search, methods=["GET", "POST"])])
    app.state.searxng = state
    return app
