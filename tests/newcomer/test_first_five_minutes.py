"""The first five minutes on a fresh clone, through the README's own commands: `make up` exits 0 and prints
a key and a first request; that curl command and the README's Python snippet get answers from the real local
model (non-streamed and streamed, with usage and the model named in the sources); `make down` stops it all.

The tests run in file order and share one `make up`; the last one is `make down`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from tests.newcomer.first_steps import REPO, MakeUp, make, make_up, readme_first_python

pytestmark = [pytest.mark.e2e, pytest.mark.llm, pytest.mark.timeout(1800)]

sys.path.insert(0, str(REPO / "deploy" / "local"))
from fleetlib import config, osusers, proc  # noqa: E402
from fleetlib.registry import resolve  # noqa: E402

from tests.newcomer import trust_domains  # noqa: E402 (fleetlib)


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


@pytest.fixture(scope="module")
def answered(client: openai.OpenAI) -> ChatCompletion:
    return client.chat.completions.create(
        model="moe-orchestrator",
        messages=[{"role": "user", "content": f"What is the capital of France? (ref {_ref()})"}],
        max_tokens=64)


def test_the_local_model_answers_non_streamed(answered: ChatCompletion) -> None:
    response = answered
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


def test_the_fleet_records_and_verifies_the_answer(up: MakeUp, answered: ChatCompletion) -> None:
    """The first answer is recorded by codex-lineage (its own user), checkpointed, timestamped and cosigned by the
    TSA's and the witness's (their own users), verified by the audit API, and by `make replay` (as moe-replay)."""
    url = f"{config.endpoints()['control-plane']}/v1/audit/{answered.id}"
    deadline = time.monotonic() + 180  # the checkpoint interval of make up's codex-lineage is 60 s
    while True:
        resp = httpx.get(url, params={"verify": "true"}, headers={"Authorization": f"Bearer {up.key}"}, timeout=60)
        verification = resp.json().get("verification", {}) if resp.status_code == 200 else {}
        if verification.get("anchored") or time.monotonic() > deadline:
            break
        time.sleep(float(resp.headers.get("retry-after") or 3) if resp.status_code == 429 else 3)
    assert resp.status_code == 200, resp.text
    assert verification["verified"] is True and verification["anchored"] is True, verification
    done = subprocess.run(["make", "--no-print-directory", "replay", f"ARGS=verify {answered.id}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "verified: " in done.stdout, done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="separate OS users only when make up runs as root")
def test_as_root_each_component_runs_as_its_own_user_and_alone_reads_its_keys(up: MakeUp) -> None:
    """Issue 47: codex-lineage, the TSA, the witness and every stage under an OS user of its own; each one's keys
    (codex-lineage's audit signing key, the TSA's, the witness's, each producer key) readable by it alone: tried
    by reading them as every other component's user and as `make replay`'s."""
    uids = trust_domains.users()
    assert len(set(uids.values())) == len(uids), uids
    for name, uid in uids.items():
        assert trust_domains.running_uid(name) == uid, f"{name} does not run as {osusers.user_of(name)}"
    replay = osusers.ensure(str(osusers.user_of("replay"))).pw_uid
    for name, paths in trust_domains.secrets().items():
        for path in paths:
            assert trust_domains.private(path, uids[name]) is None, trust_domains.private(path, uids[name])
            assert trust_domains.read_as(uids[name], path).returncode == 0, f"{name} cannot read its own {path}"
            for other, uid in [*uids.items(), ("replay", replay)]:
                if other != name:
                    denied = trust_domains.read_as(uid, path)
                    assert denied.returncode != 0 and "Permission denied" in denied.stderr, (other, path)
    lineage = proc.read_pid("codex-lineage")
    environ = trust_domains.read_as(uids["planner"], Path(f"/proc/{lineage}/environ"))
    assert environ.returncode != 0, "the planner's user reads codex-lineage's environment"


def test_make_down_stops_everything_make_up_started(up: MakeUp) -> None:
    done = make("down", 300)
    assert done.returncode == 0, done.stdout + done.stderr
    running = [c.name for c in resolve(["all"], "all") if proc.alive(c.name, c.match())]
    assert running == [], f"still running after make down: {running}"
