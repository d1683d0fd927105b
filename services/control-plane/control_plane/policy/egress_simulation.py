"""A candidate egress policy (policy/opa/egress.rego's module, package moe.egress) tried on recorded egress
decisions, by Open Policy Agent itself: the inputs are rebuilt from the signed egress records (class, kind, server,
model, region, sovereignty, a tool's name and reach) and decided twice by `opa eval` (the `opa` binary,
MOE_OPA_BINARY) in a scratch directory: once with the modules OPA has in force, once with the candidate in place of
the egress module. Nothing is loaded into the running OPA and no model is called. An allowed tool is tried again
from its reach as recorded (`tools.allow_by_reach`); a record written before the reach was recorded names its allowed
tools only: those are counted as not decided again (`not_redecided`), never guessed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVAL_TIMEOUT_S = 60.0
PACKAGE = "moe.egress"
EGRESS_PACKAGE = re.compile(r"^package\s+moe\.egress\s*$", re.MULTILINE)
QUERY = "[d | some x in input.items; d := data.moe.egress.decision with input as x]"


class EvalError(RuntimeError):
    """The candidate does not parse or compile, or gives no decision (OPA's own message)."""


def candidate_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def egress_module(modules: dict[str, str]) -> str:
    """The id of the module in force that is package moe.egress (the one a candidate replaces)."""
    found = [mid for mid, raw in modules.items() if EGRESS_PACKAGE.search(raw)]
    if len(found) != 1:
        raise EvalError(f"OPA has {len(found)} modules of package {PACKAGE} in force: expected exactly one")
    return found[0]


@dataclass(frozen=True)
class Recorded:
    """One recorded decision: the request it belongs to and what OPA was asked."""

    response_id: str
    tenant_id: str
    target: str
    input: dict[str, Any]
    recorded: str  # allow | deny, as the record says
    not_redecided: str = ""  # why OPA's input cannot be rebuilt from the record ("": it can)


NO_REACH = "an allowed tool of a record written before the tools' reach was recorded (tools.allow_by_reach)"


def _tool_input(data_class: str, name: str, reach: str) -> dict[str, Any]:
    """What the planner's egress gate asks OPA of a tool (moe_core.policy.egress.EgressPolicy._ask)."""
    return {"class": data_class, "kind": "tool", "model": "", "server": {"name": name, "region": "",
            "sovereignty": ""}, "tool": {"name": name, "reach": reach}}


def _recorded_tools(response_id: str, tenant_id: str, data_class: str, tools: dict[str, Any]) -> list[Recorded]:
    """A record's tools: the denied ones with their reach; the allowed ones with their reach from
    `allow_by_reach`, or, in a record without it, marked as not decided again."""
    out = [Recorded(response_id, tenant_id, f"tool {t.get('tool')}",
                    _tool_input(data_class, str(t.get("tool", "")), str(t.get("reach", ""))), "deny")
           for t in tools.get("deny") or []]
    reach = {name: r for r, names in (tools.get("allow_by_reach") or {}).items() for name in names}
    for name in tools.get("allow") or []:
        if name in reach:
            out.append(Recorded(response_id, tenant_id, f"tool {name}", _tool_input(data_class, name, reach[name]),
                                "allow"))
        else:
            out.append(Recorded(response_id, tenant_id, f"tool {name}", {"class": data_class}, "allow", NO_REACH))
    return out


def recorded_decisions(response_id: str, tenant_id: str, details: dict[str, Any]) -> list[Recorded]:
    """The decisions of one egress record (egress.decided or egress.refused) with the inputs OPA was given."""
    data_class = str(details.get("data_class", ""))
    out = []
    for d in details.get("decisions") or []:
        asked = {"class": data_class, "kind": d.get("kind", ""), "model": d.get("model", ""),
                 "server": {"name": d.get("server", ""), "region": d.get("region", ""),
                            "sovereignty": d.get("sovereignty", "")}}
        label = d.get("kind") if d.get("kind") in ("research", "cache") else f"{d.get('server')}/{d.get('model')}"
        out.append(Recorded(response_id, tenant_id, f"{d.get('role', '')} {label}", asked, d.get("outcome", "")))
    return out + _recorded_tools(response_id, tenant_id, data_class, details.get("tools") or {})


async def evaluate(binary: str, modules: dict[str, str], inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """data.moe.egress.decision for each input, by `opa eval` over `modules` (id -> Rego text) in a scratch
    directory; EvalError with OPA's own message when they do not compile or give no decision."""
    if not inputs:
        return []
    with tempfile.TemporaryDirectory(prefix="egress-sim-") as scratch:
        root = Path(scratch)
        (root / "policy").mkdir()
        for n, text in enumerate(modules.values()):
            (root / "policy" / f"m{n}.rego").write_text(text)
        (root / "input.json").write_text(json.dumps({"items": inputs}))
        proc = await asyncio.create_subprocess_exec(
            binary, "eval", "--format", "json", "--fail", "--data", str(root / "policy"), "--input",
            str(root / "input.json"), QUERY, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), EVAL_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise EvalError("opa eval did not finish") from None
    text = out.decode(errors="replace")
    if proc.returncode:
        raise EvalError(_complaint(text or err.decode(errors="replace"), root))
    values = json.loads(text)["result"][0]["expressions"][0]["value"]
    if len(values) != len(inputs):
        raise EvalError(f"the policy gave {len(values)} decisions for {len(inputs)} inputs "
                        "(data.moe.egress.decision undefined for some)")
    return [{"allow": bool(v.get("allow")), "rule": str(v.get("rule", ""))} for v in values]


def _complaint(text: str, root: Path) -> str:
    try:
        errors = json.loads(text).get("errors") or []
        text = "; ".join(f"{e.get('message')} (line {(e.get('location') or {}).get('row', '?')})" for e in errors)
    except (ValueError, AttributeError):
        pass
    return text.replace(str(root), "").strip()[:2000] or "opa eval failed"


@dataclass
class EgressSimulation:
    """Each recorded decision decided by the policy in force and by the candidate; those whose outcome differs."""

    candidate: str
    decisions: int = 0  # decided again
    requests: set[str] = field(default_factory=set)
    changed: list[dict[str, Any]] = field(default_factory=list)
    not_redecided: list[dict[str, Any]] = field(default_factory=list)  # recorded, but OPA's input is not in the record

    def counts(self) -> dict[str, int]:
        to_deny = sum(1 for c in self.changed if c["after"]["outcome"] == "deny")
        return {"requests": len(self.requests), "decisions": self.decisions, "changed": len(self.changed),
                "to_deny": to_deny, "to_allow": len(self.changed) - to_deny,
                "requests_changed": len({c["response_id"] for c in self.changed}),
                "not_redecided": len(self.not_redecided)}

    def per_tenant(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for c in [*self.changed, *self.not_redecided]:
            t = out.setdefault(c["tenant_id"], {"changed": 0, "to_deny": 0, "to_allow": 0, "not_redecided": 0})
            if "why" in c:
                t["not_redecided"] += 1
            else:
                t["changed"] += 1
                t["to_deny" if c["after"]["outcome"] == "deny" else "to_allow"] += 1
        return out


async def simulate(binary: str, in_force: dict[str, str], candidate: str,
                   recorded: list[Recorded]) -> EgressSimulation:
    """`candidate` (package moe.egress) against the modules `in_force` over the `recorded` decisions."""
    if not EGRESS_PACKAGE.search(candidate):
        raise EvalError(f"the candidate is not a module of package {PACKAGE}")
    with_candidate = {**in_force, egress_module(in_force): candidate}
    decidable = [r for r in recorded if not r.not_redecided]
    unique = list({json.dumps(r.input, sort_keys=True): r.input for r in decidable}.values())
    before = await evaluate(binary, in_force, unique)
    after = await evaluate(binary, with_candidate, unique)
    decided = {json.dumps(i, sort_keys=True): (b, a) for i, b, a in zip(unique, before, after, strict=True)}
    result = EgressSimulation(candidate_digest(candidate), len(decidable), {r.response_id for r in recorded},
                              not_redecided=[{"response_id": r.response_id, "tenant_id": r.tenant_id,
                                              "data_class": r.input["class"], "target": r.target,
                                              "recorded": r.recorded, "why": r.not_redecided}
                                             for r in recorded if r.not_redecided])
    for r in decidable:
        b, a = decided[json.dumps(r.input, sort_keys=True)]
        if b["allow"] != a["allow"]:
            result.changed.append({
                "response_id": r.response_id, "tenant_id": r.tenant_id, "data_class": r.input["class"],
                "target": r.target, "recorded": r.recorded,
                "before": {"outcome": "allow" if b["allow"] else "deny", "rule": b["rule"]},
                "after": {"outcome": "allow" if a["allow"] else "deny", "rule": a["rule"]}})
    return result
