"""A scripted SearXNG for the e2e fleet's research service (MOE_SEARXNG_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.scripted_llm import start_server_thread
from tests.support.scripted_searxng import create_app


class Searx:
    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url

    def script(self, rules: list[dict[str, Any]]) -> None:
        self.app.state.searxng.set_script({"rules": rules})

    def calls(self) -> list[dict[str, str]]:
        return self.app.state.searxng.get_calls()  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def searxng_server() -> Iterator[Searx]:
    app = create_app({})
    url, stop = start_server_thread(app=app)
    yield Searx(app, url)
    stop()


@pytest.fixture
def searxng(searxng_server: Searx) -> Searx:
    searxng_server.script([])
    return searxng_server
