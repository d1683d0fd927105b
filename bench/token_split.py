"""Where a request's tokens go (issue 52, item 4): each model call named by its stage and prompt template from the
record, and its prompt split by what it holds, from the inference server's view of the same call.

Pure functions (no I/O); bench.token_stages runs the fleet and feeds them. Tokens are counted with the scripted
server's rule (words, tests/support/scripted_core.py), so a split's parts add up to the count the server reported.

- **The record**: every message a stage run publishes carries the model calls the run made (`Envelope.model_outputs`:
  stage, task, sha256 of the call's system text, prompt and completion tokens) and the prompt templates it sent
  (`Envelope.versions.prompts`: template name -> sha256 of its text). A call whose system text is a template's text
  is named by that template; one whose system text holds more (an expert's few-shot examples after its template)
  by its stage and task category (`expert.<category>`).
- **The parts** (`parts`): the system text is the template, or the template and the few-shot examples the planner
  found in the semantic cache; the last user message is split at the markers the stages write (`Question:`,
  `Thinking so far:`, `Sources:`, the numbered source blocks — a `knowledge graph` block is graph context, a `web`
  block web context —, `[cache]`, `Answer:`, `Term:`, `Terms:`); earlier turns are history; the reply is the completion.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

from tests.support.scripted_core import content_text, count_words

FEW_SHOT_MARK = "\n\nEarlier answers to similar"  # expert_worker.history.few_shot_block
_BLOCK = re.compile(r"^#\d+ (?P<cls>[a-z ]+)/")  # merger.synthesis._blocks: "#1 expert/general, high:"
_MARKERS = (("Question: ", "question"), ("(Question: ", "question"), ("Thinking so far:", "thinking notes"),
            ("Sources:", "sources"), ("[cache]", "cache example"), ("Answer:", "answer (learning input)"),
            ("Term:", "term"), ("Terms:", "term"), ("Seen in the question:", "question"))
LEARNING_STAGES = ("graph-ingest", "gap-healer")  # their calls follow an answer; the pipeline's do not need them
PARTS = ("template", "few-shot", "question", "instruction", "sources", "graph context", "web context",
         "thinking notes", "cache example", "answer (learning input)", "term", "history", "completion")


def system_digest(messages: list[dict[str, Any]]) -> str:
    """sha256 of the call's system text, as moe_core.runtime.replay.digests computes it (the record's `system`)."""
    text = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _user_parts(text: str, questions: set[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    first = text.strip() in questions
    part = "question" if first else "instruction"
    for line in text.splitlines():
        block = _BLOCK.match(line)
        if block:
            cls = block.group("cls")
            part = "graph context" if cls == "knowledge graph" else "web context" if cls == "web" else "sources"
        else:
            part = next((name for mark, name in _MARKERS if line.startswith(mark)), part)
        out[part] += count_words(line)
    return out


def parts(messages: list[dict[str, Any]], reply: str, questions: set[str]) -> dict[str, int]:
    """One call's prompt and completion tokens by what they hold (see the module's docstring)."""
    out: dict[str, int] = defaultdict(int)
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    for i, message in enumerate(messages):
        text = content_text(message.get("content"))
        if message.get("role") == "system":
            cut = text.find(FEW_SHOT_MARK)
            out["template"] += count_words(text if cut < 0 else text[:cut])
            out["few-shot"] += 0 if cut < 0 else count_words(text[cut:])
        elif i == last_user:
            for name, n in _user_parts(text, questions).items():
                out[name] += n
        else:
            out["history"] += count_words(text)
    out["completion"] += count_words(reply)
    return {k: v for k, v in out.items() if v}


def named_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model calls of one request's messages (the record), each with the template or stage that made it."""
    categories = {m["task_id"]: m["category"] for m in messages if m.get("task_id") and m.get("category")}
    calls = []
    for message in messages:
        prompts = (message.get("versions") or {}).get("prompts") or {}
        by_digest = {digest: name for name, digest in prompts.items()}
        for out in message.get("model_outputs") or []:
            name = by_digest.get(out.get("system"))
            if name is None:
                task = out.get("task_id")
                name = f"expert.{categories[task]} (+ examples)" if task in categories else str(out.get("stage"))
            calls.append({"template": name, "stage": out.get("stage"), "system": out.get("system"),
                          "prompt_tokens": int(out.get("prompt_tokens") or 0),
                          "completion_tokens": int(out.get("completion_tokens") or 0)})
    return calls


def join(calls: list[dict[str, Any]], seen: list[dict[str, Any]], questions: set[str]) -> list[dict[str, Any]]:
    """The record's calls with their parts: each joined to a call the server saw with the same system text and the
    same token counts (each server call used once); a call the server's log does not hold stays `unsplit`."""
    pool: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for call in seen:
        key = (system_digest(call["messages"]), call["prompt_tokens"], call["completion_tokens"])
        pool[key].append(call)
    out = []
    for call in calls:
        match = pool.get((call["system"], call["prompt_tokens"], call["completion_tokens"]))
        if match:
            server = match.pop()
            split = parts(server["messages"], server["reply"], questions)
        else:
            split = {"unsplit": call["prompt_tokens"] + call["completion_tokens"]}
        out.append({**call, "parts": split})
    return out


def summarise(joined: list[dict[str, Any]], requests: int) -> dict[str, Any]:
    """Per request: calls, prompt and completion tokens by template, and tokens by part (each template's too)."""
    by_template: dict[str, dict[str, Any]] = {}
    total: dict[str, float] = defaultdict(float)
    for call in joined:
        row = by_template.setdefault(call["template"], {"stage": call["stage"], "calls": 0.0, "prompt_tokens": 0.0,
                                                        "completion_tokens": 0.0, "parts": defaultdict(float)})
        row["calls"] += 1 / requests
        row["prompt_tokens"] += call["prompt_tokens"] / requests
        row["completion_tokens"] += call["completion_tokens"] / requests
        for name, n in call["parts"].items():
            row["parts"][name] += n / requests
            total[name] += n / requests

    def rounded(values: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 1) for k, v in sorted(values.items(), key=lambda kv: -kv[1])}

    templates = {name: {**{k: round(v, 2) if k == "calls" else round(v, 1) if isinstance(v, float) else v
                           for k, v in row.items() if k != "parts"}, "parts": rounded(row["parts"])}
                 for name, row in sorted(by_template.items())}
    tokens = sum(total.values())  # the parts add up to each call's prompt and completion tokens
    by_stage: dict[str, float] = defaultdict(float)
    for call in joined:
        by_stage[str(call["stage"])] += (call["prompt_tokens"] + call["completion_tokens"]) / requests
    learning = sum(v for stage, v in by_stage.items() if stage in LEARNING_STAGES)
    return {"requests": requests, "tokens_per_request": round(tokens, 1), "by_template": templates,
            "by_part": rounded(total), "by_stage": rounded(by_stage),
            "without_learning_per_request": round(tokens - learning, 1)}


def stage_costs(messages: list[list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per stage, per request: the handler's wall time, its model time and its CPU, from the record (each message's
    `Envelope.cost`: its run's cost so far, so a run counts with its last message; the runs of one stage in one
    request, e.g. its tasks, add up). `messages`: each request's messages."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for request in messages:
        runs: dict[tuple[str, str | None], dict[str, Any]] = {}
        for message in request:
            cost = message.get("cost")
            if cost and (key := (cost["stage"], cost.get("task_id"))) and (
                    key not in runs or cost["handler_ms"] >= runs[key]["handler_ms"]):
                runs[key] = cost
        for (stage, _), cost in runs.items():
            for field in ("handler_ms", "model_ms", "cpu_ms"):
                totals[stage][field] += cost.get(field, 0.0) / len(messages)
    return {stage: {k: round(v, 2) for k, v in row.items()} for stage, row in sorted(totals.items())}
