"""Real agent clients through the whole fleet (scripted models): Claude Code (npm, `claude -p`, pointed at
the gateway with ANTHROPIC_BASE_URL, sending its own default model id), OpenAI's Codex CLI (npm, `codex
exec`, a Responses API provider on the gateway, its default model id) and the OpenAI Agents SDK (PyPI, on
the Responses API). Each completes a computation the precision tools answer exactly (no model call) and a
tool-use turn: the client's own tool is called and its result used in the answer.

The clients are pinned and installed by `make install` (deploy/local/fleetlib/npmtools.py: .data/npm;
openai-agents from requirements.lock). Their telemetry and other network calls are off (environment)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import openai
import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from fleetlib import npmtools

from tests.conftest import Scripted
from tests.e2e.helpers import calls_for, marker, plan_reply
from tests.support.fleet import REPO, Fleet
from tests.support.topic_reader import TopicReader

pytestmark = pytest.mark.e2e
CLI_TIMEOUT_S = 150
QUIET_ENV = {  # no telemetry, update checks, error reports or other traffic besides the gateway
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
    "OPENAI_AGENTS_DISABLE_TRACING": "1", "NO_PROXY": "127.0.0.1,localhost",
}


@pytest.fixture(scope="module")
def claude() -> Path:
    npmtools.ensure()  # done by `make install`; a no-op when the pinned version is there
    return npmtools.binary("claude")


def _claude_p(claude: Path, fleet: Fleet, api_key: str, prompt: str, workdir: Path, *extra: str,
              headers: str = "", ok: bool = True, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """`claude -p` with its default model; the JSON result (type result, is_error, result, num_turns)."""
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": fleet["gateway"].url,
           "ANTHROPIC_API_KEY": api_key, **QUIET_ENV, **(env_extra or {})}
    if headers:
        env["ANTHROPIC_CUSTOM_HEADERS"] = headers
    done = subprocess.run([str(claude), "-p", prompt, "--output-format", "json", *extra], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)
    if ok:
        assert done.returncode == 0, f"claude exited {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["type"] == "result" and result["is_error"] is (not ok), result
    return result


def test_claude_code_gets_an_exact_computation(claude: Path, fleet: Fleet, api_key: str, scripted: Scripted,
                                               tmp_path: Path) -> None:
    result = _claude_p(claude, fleet, api_key, "What is 17% of 2340?", tmp_path)
    assert result["result"] == "17% of 2,340 = 397.8"  # the precision tool's sentence: exact, no model involved
    assert scripted.calls() == [], "Claude Code's system prompt and tools must not turn this into a model call"


def test_claude_code_uses_its_own_tool(claude: Path, fleet: Fleet, api_key: str, scripted: Scripted,
                                       tmp_path: Path) -> None:
    m = marker()
    secret = f"AMBER-{uuid.uuid4().hex[:6]}"
    notes = tmp_path / "notes.txt"
    notes.write_text(f"The code word is {secret}.\n")
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Read the notes {m}"))},
        {"model": "expert-model", "contains": m, "times": 1,
         "tool_calls": [{"name": "Read", "arguments": {"file_path": str(notes)}}]},
        {"model": "expert-model", "contains": m, "reply": f"The code word is {secret}.\nCONFIDENCE: high"},
    ])
    result = _claude_p(claude, fleet, api_key, f"What is the code word in notes.txt? {m}", tmp_path,
                       "--allowedTools", "Read")
    expert_calls = calls_for(scripted.calls("expert-model"), m)
    assert len(expert_calls) == 2  # the tool call, then the answer
    assert "Read" in [t["function"]["name"] for t in expert_calls[0]["body"]["tools"]]  # Claude Code's own tools
    # Claude Code ran its Read tool and sent the file's text back: the model answered from that result.
    results = [x for x in expert_calls[1]["messages"] if x.get("role") == "tool"]
    assert len(results) == 1 and secret in results[0]["content"]
    assert result["result"] == f"The code word is {secret}." and result["num_turns"] >= 2


def test_claude_code_is_told_plainly_when_a_request_cannot_finish(claude: Path, fleet: Fleet, api_key: str,
                                                                   scripted: Scripted, tmp_path: Path) -> None:
    m = marker()
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain {m}"))},
        {"model": "expert-model", "contains": m, "delay_ms": 15_000, "reply": "too late\nCONFIDENCE: high"},
    ])
    result = _claude_p(claude, fleet, api_key, f"Explain the history of the abacus. {m}", tmp_path,
                       headers="X-Request-Timeout: 3", ok=False)
    assert "The request did not finish in time: no answer from general." in result["result"]
    assert "too late" not in result["result"] and "->" not in result["result"]  # no stand-in, no graph facts


def test_claude_codes_memory_hook_sends_the_turn_to_memory_ingest_with_the_users_key(
        claude: Path, fleet: Fleet, api_key: str, scripted: Scripted, infra: dict[str, str], tmp_path: Path) -> None:
    """deploy/claude-code/moe_memory_hook.py as a user installs it (a Stop hook in Claude Code's settings): the
    turn's question and answer reach POST /v1/memory/ingest with the user's key, and the ingest topic."""
    m = marker()
    answer = f"Basalt forms when lava cools quickly at the surface, {m}; granite cools slowly underground."
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Explain basalt {m}"))},
        {"model": "expert-model", "contains": m, "reply": f"{answer}\nCONFIDENCE: high"},
    ])
    (tmp_path / "home" / ".claude").mkdir(parents=True)
    log = tmp_path / "hook.log"  # what the hook says (stderr), for a failure's message
    hook = f"{sys.executable} {REPO / 'deploy' / 'claude-code' / 'moe_memory_hook.py'} 2>>{log}"
    (tmp_path / "home" / ".claude" / "settings.json").write_text(json.dumps(
        {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": hook}]}]}}))
    ingest = f"{fleet['gateway'].env['MOE_TOPIC_NAMESPACE']}.ingest.v1"

    async def sent() -> list[dict[str, Any]]:
        async with TopicReader(infra["kafka"], ingest) as reader:
            await asyncio.to_thread(_claude_p, claude, fleet, api_key, f"How does basalt form? {m}", tmp_path,
                                    env_extra={"MOE_MEMORY_URL": f"{fleet['control-plane'].url}/v1/memory/ingest"})
            return await reader.wait(ingest, lambda e: m in e.get("answer", "") and e["source_expert"] == "memory-api",
                                     timeout_s=60)  # (the merger publishes the answer for learning too)

    try:
        [event] = asyncio.run(sent())
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the hook said: {log.read_text() if log.exists() else '(it never ran)'}") from exc
    assert event["answer"] == answer and m in event["question"] and event["tenant_id"] == "tenant-e2e"
    assert event["review_domains"] == []


# -- OpenAI's Codex CLI on the Responses API ------------------------------------------------------------

CODEX_CONFIG = """model_provider = "moe"
check_for_update_on_startup = false

[model_providers.moe]
name = "MoE Sovereign Fleet"
base_url = "{url}/v1"
env_key = "MOE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


@pytest.fixture(scope="module")
def codex() -> Path:
    npmtools.ensure()
    return npmtools.binary("codex")


def _codex_exec(codex: Path, fleet: Fleet, api_key: str, prompt: str, workdir: Path) -> str:
    """`codex exec` with its default model id (a provider on the gateway's Responses API); the last message."""
    home = workdir / "codex-home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(CODEX_CONFIG.format(url=fleet["gateway"].url))
    last = workdir / "last-message.txt"
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "CODEX_HOME": str(home), "MOE_API_KEY": api_key,
           **QUIET_ENV}
    done = subprocess.run([str(codex), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox",
                           "--output-last-message", str(last), prompt], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"codex exited {done.returncode}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return last.read_text().strip()


def test_codex_gets_an_exact_computation(codex: Path, fleet: Fleet, api_key: str, scripted: Scripted,
                                         tmp_path: Path) -> None:
    assert _codex_exec(codex, fleet, api_key, "What is 17% of 2340?", tmp_path) == "17% of 2,340 = 397.8"
    assert scripted.calls() == []


def test_codex_uses_its_own_tool(codex: Path, fleet: Fleet, api_key: str, scripted: Scripted,
                                 tmp_path: Path) -> None:
    m = marker()
    secret = f"AMBER-{uuid.uuid4().hex[:6]}"
    (tmp_path / "notes.txt").write_text(f"The code word is {secret}.\n")
    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Read the notes {m}"))},
        {"model": "expert-model", "contains": m, "times": 1,
         "tool_calls": [{"name": "shell_command", "arguments": {"command": "cat notes.txt"}}]},
        {"model": "expert-model", "contains": m, "reply": f"The code word is {secret}.\nCONFIDENCE: high"},
    ])
    answer = _codex_exec(codex, fleet, api_key, f"What is the code word in notes.txt? {m}", tmp_path)
    expert_calls = calls_for(scripted.calls("expert-model"), m)
    assert len(expert_calls) == 2
    tools = {t["function"]["name"]: t["function"] for t in expert_calls[0]["body"]["tools"]}
    assert "shell_command" in tools and tools["apply_patch"]["parameters"]["required"] == ["input"]  # custom tool
    # Codex ran `cat notes.txt` itself and sent the output back: the model answered from that result.
    results = [x for x in expert_calls[1]["messages"] if x.get("role") == "tool"]
    assert len(results) == 1 and secret in results[0]["content"]
    assert answer == f"The code word is {secret}."


# -- the OpenAI Agents SDK on the Responses API ---------------------------------------------------------


@pytest.fixture
def agent_model(fleet: Fleet, api_key: str) -> OpenAIResponsesModel:
    set_tracing_disabled(True)  # the SDK would export traces to OpenAI's servers
    client = openai.AsyncOpenAI(base_url=f"{fleet['gateway'].url}/v1", api_key=api_key, max_retries=0, timeout=90)
    return OpenAIResponsesModel(model="gpt-4.1", openai_client=client)  # a client's own id: the model map


async def test_openai_agent_gets_an_exact_computation(agent_model: OpenAIResponsesModel, scripted: Scripted) -> None:
    @function_tool
    def unused(topic: str) -> str:
        """Looks something up (not needed here)."""
        raise AssertionError("the precision answer needs no tool")

    agent = Agent(name="calculator", instructions="Answer exactly.", model=agent_model, tools=[unused])
    result = await Runner.run(agent, "What is 17% of 2340?")
    assert result.final_output == "17% of 2,340 = 397.8"
    assert scripted.calls() == []


async def test_openai_agent_uses_its_own_tool_streamed(agent_model: OpenAIResponsesModel, scripted: Scripted) -> None:
    m = marker()
    secret = f"AMBER-{uuid.uuid4().hex[:6]}"
    looked_up: list[str] = []

    @function_tool
    def lookup_code_word(project: str) -> str:
        """The code word of a project."""
        looked_up.append(project)
        return f"The code word of {project} is {secret}."

    scripted.script([
        {"model": "planner-model", "contains": m, "reply": plan_reply(("general", f"Code word {m}"))},
        {"model": "expert-model", "contains": m, "times": 1,
         "tool_calls": [{"name": "lookup_code_word", "arguments": {"project": m}}]},
        {"model": "expert-model", "contains": m, "reply": f"The code word is {secret}.\nCONFIDENCE: high"},
    ])
    agent = Agent(name="assistant", instructions="Use your tools.", model=agent_model, tools=[lookup_code_word],
                  model_settings=ModelSettings(tool_choice="auto"))
    run = Runner.run_streamed(agent, f"What is the code word of project {m}?")
    kinds = [event.type async for event in run.stream_events()]
    assert looked_up == [m]  # the agent's own tool ran, with the arguments the fleet's model chose
    assert run.final_output == f"The code word is {secret}."
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    answered = calls_for(scripted.calls("expert-model"), m)[-1]["messages"]
    assert any(x.get("role") == "tool" and secret in x["content"] for x in answered)
