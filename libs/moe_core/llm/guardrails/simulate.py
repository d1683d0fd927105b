"""A candidate rule file tried on recorded traffic before it is put in force (issue 50, "policy simulated"):
each recorded request's texts — its messages as the edge received them (every role, tool-call arguments) and
its answer as drafted before the output check — go through the tenant's rules in force and through the
candidate's, and every request whose decision would change is listed (allow, redact or block, and by which
rules). No model is called; the texts come from the signed record. The result names rule ids, classes and
counts, never the text."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moe_core.llm.guardrails.engine import DEFAULT_TIMEOUT_S, check
from moe_core.llm.guardrails.rules import Direction, Rule, RuleFile

ORDER = {"pass": 0, "redact": 1, "block": 2}


@dataclass(frozen=True)
class Recorded:
    """One request's texts of one direction, as the record holds them."""

    response_id: str
    tenant: str
    direction: Direction
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    action: str  # pass, redact or block: the strongest over the request's texts
    rules: tuple[str, ...] = ()  # the rules that matched, in the file's order

    def listed(self) -> dict[str, Any]:
        return {"action": self.action, "rules": list(self.rules)}


def decide(rules: list[Rule], texts: Iterable[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> Outcome:
    """What `rules` decide for a request whose texts are `texts` (a failed check blocks, as in force)."""
    action, matched = "pass", dict[str, None]()
    for text in texts:
        verdict = check(text, rules, timeout_s)
        if ORDER[verdict.action] > ORDER[action]:
            action = verdict.action
        if verdict.blocked_by is not None and verdict.errors:
            matched[verdict.blocked_by.id] = None
        matched.update((h.rule.id, None) for h in verdict.hits)
    return Outcome(action, tuple(matched))


@dataclass
class Simulation:
    candidate: str  # sha256 of the candidate rule file's text
    requests: Counter[str] = field(default_factory=Counter)  # per tenant: requests tried
    changed: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per tenant: requests tried, decisions changed, and how many would now be blocked, redacted, passed."""
        out = {t: {"requests": n, "changed": 0, "to_block": 0, "to_redact": 0, "to_pass": 0}
               for t, n in sorted(self.requests.items())}
        for change in self.changed:
            counts = out[change["tenant"]]
            counts["changed"] += 1
            counts[f"to_{change['after']['action']}"] += 1
        return out

    def listed(self, limit: int) -> dict[str, Any]:
        return {"object": "guardrails.simulation", "candidate": self.candidate, "tenants": self.summary(),
                "changed": self.changed[:limit], "truncated": len(self.changed) > limit}


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def simulate(recorded: Iterable[Recorded], current: RuleFile, candidate: RuleFile, candidate_text: str,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> Simulation:
    """Every recorded request under both rule files; the ones whose decision differs, in the order given."""
    result = Simulation(digest(candidate_text))
    seen: set[str] = set()
    for item in recorded:
        if item.response_id not in seen:
            seen.add(item.response_id)
            result.requests[item.tenant] += 1
        before = decide(_rules(current, item), item.texts, timeout_s)
        after = decide(_rules(candidate, item), item.texts, timeout_s)
        if before != after:
            result.changed.append({"response_id": item.response_id, "tenant": item.tenant,
                                   "direction": item.direction, "before": before.listed(),
                                   "after": after.listed()})
    return result


def _rules(rule_file: RuleFile, item: Recorded) -> list[Rule]:
    tenant = rule_file.tenants.get(item.tenant)
    return tenant.of(item.direction) if tenant is not None else []


def request_texts(payload: dict[str, Any]) -> tuple[str, ...]:
    """A recorded ChatRequest's texts as the input rules see them: every message's content, of every role, and
    the arguments of earlier tool calls (moe_core.llm.guardrails.inputs)."""
    texts: list[str] = []
    for message in payload.get("messages") or []:
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str) and message["content"]:
            texts.append(message["content"])
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str) and arguments:
                texts.append(arguments)
    return tuple(texts)


def from_record(rows: Iterable[tuple[str, str, str, dict[str, Any]]]) -> list[Recorded]:
    """The texts to try, from recorded messages (response id, tenant, message type, payload; in recorded order):
    the request as the edge received it (ChatRequest), the answer as drafted before the output check (the last
    Draft), else the final Answer — not a refusal, whose text is the fleet's own."""
    inputs: dict[str, Recorded] = {}
    drafts: dict[str, Recorded] = {}
    answers: dict[str, Recorded] = {}
    for rid, tenant, message_type, payload in rows:
        if message_type == "ChatRequest":
            inputs.setdefault(rid, Recorded(rid, tenant, "input", request_texts(payload)))
        elif message_type == "Draft" and isinstance(payload.get("answer"), dict):
            drafts[rid] = Recorded(rid, tenant, "output", (str(payload["answer"].get("content") or ""),))
        elif message_type == "Answer" and payload.get("finish_reason") != "content_filter":
            answers[rid] = Recorded(rid, tenant, "output", (str(payload.get("content") or ""),))
    return [*inputs.values(), *{**answers, **drafts}.values()]
