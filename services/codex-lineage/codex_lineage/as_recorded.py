"""`replay rerun --as-recorded RESPONSE_ID`: the request re-presented stage by stage exactly as the signed record
holds it (the audit store, so it outlives the topics' retention): what was asked, the plan and the model that
made it, every task with the model and server that answered it and a digest of its instruction and output, and
the answer with the models it used. Pure functions over the request's records; the command verifies the record
first (signatures, chain, checkpoints, timestamps) and says so, then re-executes the request with the recorded
model outputs and compares (codex_lineage.reproduce; `--no-execute`: the listing only)."""

from __future__ import annotations

import json
import sys
from typing import Any

from codex_lineage.digests import digest
from codex_lineage.reproduce import reproduce
from codex_lineage.settings import LineageSettings
from moe_core.audit.records import AuditRecord
from moe_core.audit.store import AuditStore
from moe_core.audit.verify import load_trust

NOT_RECORDED = ("the re-execution answers model calls, precision tool results, web searches and knowledge-graph "
                "reads from the record (and the plan's few-shot examples and learned patterns); it re-runs the stage "
                "code itself, so a changed prompt template, configuration or planner rule shows in its stage")


def versions(payload: dict[str, Any]) -> dict[str, Any]:
    """The service, configuration digest, prompt template digests and policy versions the stage run stamped on its
    message (moe_core.runtime.run_versions; {} when it recorded none)."""
    recorded = payload.get("versions")
    if not isinstance(recorded, dict):
        return {}
    return {"service": recorded.get("service"), "config": recorded.get("config"),
            "prompts": dict(sorted((recorded.get("prompts") or {}).items())),
            "policies": dict(sorted((recorded.get("policies") or {}).items()))}


STAGE_ORDER = {"request": 0, "plan": 1, "task": 2, "draft": 3, "answer": 4}


def stages(records: list[AuditRecord]) -> list[dict[str, Any]]:
    """One row per stage run, in the pipeline's order (request, plan, tasks, draft, answer; runs of one stage in
    the order the record holds them), each with the versions it ran with. The record holds them in the order the
    audit consumer received them from their topics, so a task's result can precede its plan there."""
    rows: list[dict[str, Any]] = []
    instructions = {str(t.get("task_id")): str(t.get("instruction")) for r in records if r.message_type == "Plan"
                    for t in r.payload.get("tasks") or []}
    for record in records:
        p, kind = record.payload, record.message_type
        if kind == "ChatRequest":
            rows.append({"stage": "request", "mode": p.get("mode"), "messages": len(p.get("messages") or []),
                         "digest": digest(p.get("messages"))})
        elif kind == "Plan":
            tasks = [f"{t.get('kind')}:{t.get('category')}" for t in p.get("tasks") or []]
            rows.append({"stage": "plan", "source": p.get("source"), "model": p.get("planner_model"),
                         "tasks": tasks, "digest": digest(p.get("tasks"))})
        elif kind == "TaskResult":
            tid = str(p.get("task_id"))
            rows.append({"stage": "task", "task_id": tid, "task": f"{p.get('kind')}:{p.get('category')}",
                         "model": p.get("model"), "server": p.get("server"), "confidence": p.get("confidence"),
                         "error": p.get("error"), "instruction": digest(instructions[tid]) if tid in instructions
                         else None, "output": digest(p.get("content") or p.get("data") or ""),
                         "chars": len(str(p.get("content") or ""))})
        elif kind in ("Draft", "Answer"):
            answer = p.get("answer", p) if kind == "Draft" else p
            rows.append({"stage": "draft" if kind == "Draft" else "answer", "by": record.stage,
                         "models": {m.get("category"): m.get("model") for m in answer.get("models_used") or []},
                         "experts": answer.get("experts_used") or [], "cache_hit": bool(answer.get("cache_hit")),
                         "digest": digest(str(answer.get("content") or "")),
                         "chars": len(str(answer.get("content") or ""))})
        else:
            continue
        rows[-1]["versions"] = versions(p)
    return sorted(rows, key=lambda row: STAGE_ORDER[row["stage"]])


def _short(value: Any) -> str:
    return str(value)[:23] if value else "-"


def versions_line(row: dict[str, Any]) -> str:
    """The versions of a stage run as the indented line under it (digests shortened; --json has them whole)."""
    v = row.get("versions") or {}
    if not v:
        return "         versions not recorded"
    prompts = " ".join(f"{name}={_short(d)}" for name, d in v["prompts"].items()) or "none"
    policies = " ".join(f"{name}={_short(d)}" for name, d in (v.get("policies") or {}).items())
    return f"         {v['service']} config {_short(v['config'])}  prompts {prompts}" + (
        f"  policies {policies}" if policies else "")


def line(row: dict[str, Any]) -> str:
    """A stage run as one line of the command's output."""
    stage = row["stage"]
    if stage == "request":
        return f"request  {row['mode']}, {row['messages']} messages, {row['digest']}"
    if stage == "plan":
        return (f"plan     {row['source']} by {row['model'] or '-'}: {len(row['tasks'])} tasks "
                f"({', '.join(row['tasks'])}), {row['digest']}")
    if stage == "task":
        failed = f"  error {row['error']}" if row["error"] else ""
        return (f"task     {row['task_id']} {row['task']}  {row['model'] or '-'} @ {row['server'] or '-'}  "
                f"confidence {row['confidence']}  instruction {row['instruction'] or '-'}  output {row['output']} "
                f"({row['chars']} chars){failed}")
    models = ", ".join(f"{c}={m}" for c, m in sorted(row["models"].items())) or "-"
    return (f"{stage:<8} by {row['by']}  models {models}  content {row['digest']} ({row['chars']} chars)"
            + ("  (cache hit)" if row["cache_hit"] else ""))


async def present(settings: LineageSettings, response_id: str, as_json: bool, execute: bool = True,
                  timeout_s: float = 300.0) -> int:
    """Print the request's stage runs from the audit store and (execute) re-execute it with the recorded model
    outputs; exit 0 when it verifies (and reproduces), 1 when its record does not verify or the answer is not
    reproduced, 2 when there is no record."""

    store = await AuditStore.connect(settings.postgres_dsn, settings.audit_schema, migrate=False)
    try:
        records = await store.records(response_id)
        if not records:
            print(f"no stored record of {response_id}", file=sys.stderr)
            return 2
        trust = load_trust(settings.audit_public_key, settings.audit_tsa_chain, settings.audit_timestamp_skew_s,
                           settings.audit_keyring)
        verdict = await store.verify(response_id, trust)
    finally:
        await store.close()
    rows = stages(records)
    outcome: dict[str, Any] | None = None
    if execute and verdict["verified"]:
        outcome = await reproduce(settings, records, timeout_s)
    elif execute:  # a record that does not verify proves nothing: it is not re-executed
        outcome = {"replay_id": None, "reproduced": False, "answered_from_record": 0,
                   "lines": ["NOT REPRODUCED: the record does not verify, so it is not re-executed"]}
    if as_json:
        print(json.dumps({"response_id": response_id, "tenant_id": records[0].tenant_id,
                          "verified": verdict["verified"], "problems": verdict["problems"], "stages": rows,
                          "reproduction": outcome, "not_recorded": NOT_RECORDED}, indent=1, ensure_ascii=False))
    else:
        state = "verified" if verdict["verified"] else "NOT verified"
        print(f"as recorded: {response_id} (tenant {records[0].tenant_id}): {len(records)} records, {state} "
              "(signatures, chain, checkpoints, timestamps)")
        for problem in verdict["problems"]:
            print(f"FAILED   {problem['record']}: {problem['problem']}")
        for row in rows:
            print(line(row))
            print(versions_line(row))
        print(f"note     {NOT_RECORDED}")
        for text in (outcome or {}).get("lines", []):
            print(text)
    if not verdict["verified"]:
        return 1
    return 0 if outcome is None or outcome["reproduced"] else 1
