"""Smoke test: the default fleet (as `make up` starts it) answers with the real local model."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import openai
import pytest

from tests.conftest import REPO, fleet

pytestmark = [pytest.mark.e2e, pytest.mark.llm]


def _ref() -> int:
    """A number unique to this run, so a second `make test` asks anew instead of hitting the semantic cache."""
    return time.time_ns() % 1_000_000_007


@pytest.fixture(scope="module")
def local_client(endpoints: dict[str, str]) -> openai.OpenAI:
    fleet.ensure_up(["all"])
    key = subprocess.run(
        [sys.executable, "-m", "gateway.keys", "ensure", "--file", str(REPO / ".data" / "local-admin.key")],
        check=True, capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "MOE_POSTGRES_DSN": endpoints["postgres"]},
    ).stdout.strip()
    return openai.OpenAI(base_url=f"{endpoints['gateway']}/v1", api_key=key, max_retries=0, timeout=330)


def test_real_model_answers_non_streamed(local_client: openai.OpenAI) -> None:
    response = local_client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is the capital of France? (ref {_ref()})"}],
        max_tokens=64)
    assert response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage is not None and response.usage.completion_tokens > 0
    assert response.metadata["sources"][0]["ref"].endswith("smollm2-135m@local")  # type: ignore[index]


def test_real_model_answers_streamed(local_client: openai.OpenAI) -> None:
    stream = local_client.chat.completions.create(
        model="moe-orchestrator", messages=[{"role": "user", "content": f"Name a primary colour. (ref {_ref()})"}],
        max_tokens=64, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
