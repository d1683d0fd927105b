"""The first five minutes on a fresh clone, through the README's own commands: `make up` exits 0 and prints
a key and a first request; that curl command and the README's Python snippet get answers from the real local
model (non-streamed and streamed, with usage and the model named in the sources); `make down` stops it all.

The tests run in file order and share one `make up`; the last one is `make down`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter

import openai
import pytest

from tests.newcomer.first_steps import REPO, MakeUp, make, make_up, readme_first_python

pytestmark = [pytest.mark.e2e, pytest.mark.llm, pytest.mark.timeout(1800)]

sys.path.insert(0, str(REPO / "deploy" / "local"))
from fleetlib import config, proc  # noqa: E402
from fleetlib.registry import resolve  # noqa: E402


@pytest.fixture(scope="module")
def up() -> MakeUp:
    return make_up()


@pytest.fixture(scope="module")
def client(up: MakeUp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{config.endpoints()['gateway']}/v1", api_key=up.key, max_retries=0,
                         timeout=330)


def _ref() -> int:
    """A number unique to this run, so a second run asks anew instead of hitting the semantic cache."""
    return time.time_ns() % 1_000_000_007


def test_make_up_exits_0_and_prints_a_key_and_a_first_request(up: MakeUp) -> None:
    assert up.returncode == 0, f"make up failed:\n{up.output[-4000:]}"
    assert up.key.startswith("moe-")
    assert f"{config.endpoints()['gateway']}/v1/chat/completions" in up.curl


def test_the_printed_curl_command_gets_an_answer(up: MakeUp) -> None:
    done = subprocess.run(["bash", "-c", up.curl], capture_output=True, text=True, timeout=330, check=False)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["object"] == "chat.completion", body
    assert body["choices"][0]["message"]["content"].strip()


def test_the_readme_python_snippet_runs_as_shown(up: MakeUp) -> None:
    done = subprocess.run([sys.executable, "-c", readme_first_python(up.key)], capture_output=True, text=True,
                          timeout=660, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip()) > 20, done.stdout


def test_the_local_model_answers_non_streamed(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is the capital of France? (ref {_ref()})"}],
        max_tokens=64)
    assert response.choices[0].message.content
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage is not None and response.usage.completion_tokens > 0
    assert response.metadata["sources"][0]["ref"].endswith("smollm2-135m@local")  # type: ignore[index]


def test_the_local_model_answers_streamed(client: openai.OpenAI) -> None:
    """A trivial question's answer arrives as the model writes it (its expert streams it: ExpertTask.stream_answer),
    in several pieces, not in one piece at the end."""
    stream = client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is the population of Japan and its capital city? (ref {_ref()})"}],
        max_tokens=64, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces).strip()
    assert len(pieces) >= 2, pieces
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_the_local_model_does_not_loop(up: MakeUp) -> None:
    """The embedded model's sampling defaults (deploy/local/llm_server.py: the DRY sampler and a repetition
    penalty): greedy, on a question that made it repeat "Kafka-based" eight times in 150 tokens with llama.cpp's
    own defaults, no three words recur more than four times."""
    eps = config.endpoints()
    local = openai.OpenAI(base_url=eps["llm"], api_key="local", max_retries=0, timeout=330)
    response = local.chat.completions.create(
        model=eps["llm-model"], messages=[{"role": "user", "content": "What is Kafka2-based Kafka2-based?"}],
        max_tokens=150, temperature=0)
    words = re.findall(r"\w+", (response.choices[0].message.content or "").lower())
    repeats = Counter(zip(words, words[1:], words[2:], strict=False))
    assert words and max(repeats.values()) <= 4, response.choices[0].message.content


def test_make_down_stops_everything_make_up_started(up: MakeUp) -> None:
    done = make("down", 300)
    assert done.returncode == 0, done.stdout + done.stderr
    running = [c.name for c in resolve(["all"], "all") if proc.alive(c.name, c.match())]
    assert running == [], f"still running after make down: {running}"
