"""Claude Code's memory hook (deploy/claude-code/moe_memory_hook.py) without a fleet: which turn it reads from a
transcript, and that it never fails the session (the journey with the real Claude Code is in
tests/e2e/gateway/test_agent_clients.py)."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.fleet import REPO

pytestmark = pytest.mark.unit


def _hook() -> ModuleType:
    path = REPO / "deploy" / "claude-code" / "moe_memory_hook.py"
    spec = importlib.util.spec_from_file_location("moe_memory_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _line(kind: str, content: object) -> str:
    return json.dumps({"type": kind, "message": {"role": kind, "content": content}})


def test_the_last_question_and_the_text_answered_after_it(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    transcript.write_text("\n".join([
        _line("user", "first question"), _line("assistant", [{"type": "text", "text": "first answer"}]),
        _line("user", [{"type": "text", "text": "How does basalt form?"}]),
        _line("assistant", [{"type": "tool_use", "name": "Read", "input": {}}]),
        _line("user", [{"type": "tool_result", "content": "file text"}]),  # a tool result is not a question
        "not json",
        _line("assistant", [{"type": "text", "text": "Lava cools fast."}, {"type": "text", "text": "At the surface."}]),
    ]))
    assert _hook().last_turn(transcript) == ("How does basalt form?", "Lava cools fast.\nAt the surface.")


@pytest.mark.parametrize(("event", "env", "said"), [
    ({"last_assistant_message": "short"}, {"MOE_API_KEY": "k"}, "too short"),
    ({"last_assistant_message": "x" * 100}, {}, "no MOE_API_KEY"),
    ({"last_assistant_message": "x" * 100}, {"MOE_API_KEY": "k", "MOE_MEMORY_URL": "file:///etc/passwd"},
     "must be an http(s) URL"),
    ("not json", {"MOE_API_KEY": "k"}, "not sent"),
])
def test_it_sends_nothing_and_still_exits_0(event: object, env: dict[str, str], said: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("MOE_API_KEY", "ANTHROPIC_API_KEY", "MOE_MEMORY_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdin", io.StringIO(event if isinstance(event, str) else json.dumps(event)))
    assert _hook().main() == 0
    assert said in capsys.readouterr().err
