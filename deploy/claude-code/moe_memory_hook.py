#!/usr/bin/env python3
"""Claude Code's memory hook for MoE Sovereign Fleet: when a turn ends (Claude Code's `Stop` hook), the last
question (from the session's transcript) and Claude's answer (the hook input's `last_assistant_message`, else the
transcript) are sent to the fleet's `POST /v1/memory/ingest` with the user's own key, so the
knowledge graph of the user's tenant learns from the session (the same extraction, conflict checks and write
policy as any answer; a protected domain waits in the quarantine for review).

Install (docs/claude-code.md): in `~/.claude/settings.json` or a project's `.claude/settings.json`

    {"hooks": {"Stop": [{"hooks": [{"type": "command",
                                    "command": "python3 /path/to/moe_memory_hook.py"}]}]}}

Environment (Claude Code passes its own to the hook):
    MOE_MEMORY_URL        the control plane's ingest URL (default http://127.0.0.1:8110/v1/memory/ingest)
    MOE_API_KEY           the key to send; else ANTHROPIC_API_KEY (the key Claude Code uses at the gateway)
    MOE_MEMORY_MIN_CHARS  answers shorter than this are not sent (default 40)
    MOE_MEMORY_TIMEOUT_S  how long the hook waits for the fleet (default 5)

Standard library only, so it runs with any python3. It never fails the session: whatever happens it exits 0 and
says what it did on stderr (Claude Code shows a hook's stderr in its debug output)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

MAX_TEXT, MAX_QUESTION = 20_000, 2_000


def _text(content: Any, *, skip_tool_results: bool = True) -> str:
    """The text of a message's content: a string, or its text parts (tool calls and results left out)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(t for t in parts if t).strip()


def last_turn(transcript: Path) -> tuple[str, str]:
    """(question, answer): the last text the user typed and the assistant's text after it."""
    question, answer_parts = "", []
    for line in transcript.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        message = entry.get("message") if isinstance(entry, dict) else None
        if not isinstance(message, dict):
            continue
        text = _text(message.get("content"))
        if entry.get("type") == "user" and message.get("role") == "user" and text:
            question, answer_parts = text, []  # a new question: the answer starts again
        elif entry.get("type") == "assistant" and text:
            answer_parts.append(text)
    return question, "\n\n".join(answer_parts).strip()


def post(url: str, key: str, body: dict[str, Any], timeout_s: float) -> tuple[int, str]:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"MOE_MEMORY_URL must be an http(s) URL, not {url[:80]!r}")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "User-Agent": "moe-memory-hook/1"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (checked above)
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def main() -> int:
    try:
        event = json.loads(sys.stdin.read() or "{}")
        if event.get("stop_hook_active"):  # Claude Code is already continuing because of a hook: once is enough
            return 0
        transcript = Path(str(event.get("transcript_path") or "")).expanduser()
        question, answer = last_turn(transcript) if transcript.is_file() else ("", "")
        if isinstance(event.get("last_assistant_message"), str):  # Claude Code 2.1+: the turn's answer itself (the
            answer = event["last_assistant_message"].strip()     # transcript may not hold it yet when the hook runs)
        if len(answer) < int(os.environ.get("MOE_MEMORY_MIN_CHARS", "40")):
            print("moe-memory-hook: the answer is too short to learn from, nothing sent", file=sys.stderr)
            return 0
        key = os.environ.get("MOE_API_KEY") or os.environ.get("ANTHROPIC_API_KEY") or ""
        if not key:
            print("moe-memory-hook: no MOE_API_KEY or ANTHROPIC_API_KEY, nothing sent", file=sys.stderr)
            return 0
        status, reply = post(os.environ.get("MOE_MEMORY_URL", "http://127.0.0.1:8110/v1/memory/ingest"), key,
                             {"text": answer[:MAX_TEXT], "question": question[:MAX_QUESTION]},
                             float(os.environ.get("MOE_MEMORY_TIMEOUT_S", "5")))
        print(f"moe-memory-hook: {status} {reply[:500]}", file=sys.stderr)
    except Exception as exc:  # a hook never breaks the session
        print(f"moe-memory-hook: not sent: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
