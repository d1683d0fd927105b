"""An evidence bundle's versions.jsonl: per signed record, what the stage run that made it ran with — the service,
the SHA-256 of its configuration and of each prompt template it sent a model (moe_core.runtime.run_versions in the
fleet).
One line per record that carries them, in chain order:

    {"tenant_id", "seq", "response_id", "message_type", "stage", "service", "config", "prompts": {name: digest},
     "policies": {decision path: version of the policies}}

The verifier recomputes the file from the signed entries (a changed digest there is a changed entry, whose
signature fails) and, given the digests an auditor approved (--expect-versions, the `summary` format below),
names every stage run that ran with a configuration or a prompt template not among them."""

from __future__ import annotations

import json
import re
from typing import Any

from moe_audit_verify.segment import Entry, Problem

NAME = "versions.jsonl"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """The versions the signed record entries carry, in chain order (tenant, seq)."""
    out = []
    for e in sorted(entries, key=lambda x: (str(x.content.get("tenant_id")), x.seq)):
        c = e.content
        if c.get("kind") != "record":
            continue
        try:
            versions = json.loads(str(c.get("payload"))).get("versions")
        except (ValueError, AttributeError):
            continue
        if isinstance(versions, dict):
            out.append({"tenant_id": c.get("tenant_id"), "seq": c.get("seq"), "response_id": c.get("response_id"),
                        "message_type": c.get("message_type"), "stage": c.get("stage"),
                        "service": versions.get("service"), "config": versions.get("config"),
                        "prompts": versions.get("prompts") or {}, "policies": versions.get("policies") or {}})
    return out


def problems(given: list[dict[str, Any]] | None, signed: list[dict[str, Any]]) -> list[Problem]:
    """versions.jsonl (None: not in the bundle) against what the signed entries hold, and every digest's form."""
    found = []
    if given is None:
        if signed:
            found.append(Problem(NAME, f"missing, while {len(signed)} signed records carry versions"))
    elif given != signed:
        found.append(Problem(NAME, f"holds {len(given)} rows that are not the {len(signed)} the signed records carry: "
                                   "changed, added or removed"))
    for row in signed:
        digests = [row["config"], *row["prompts"].values()] if isinstance(row["prompts"], dict) else [None]
        if not all(isinstance(d, str) and DIGEST.match(d) for d in digests):
            found.append(Problem(_where(row), "its versions are not sha256:<hex> digests"))
    return found


def summary(signed: list[dict[str, Any]]) -> dict[str, Any]:
    """Every digest the bundle's runs used, by service: {service: {"config": [...], "prompts": {name: [...]}}} — the
    format --expect-versions reads (an auditor keeps the one of a reviewed deployment)."""
    out: dict[str, Any] = {}
    for row in signed:
        service = out.setdefault(str(row["service"]), {"config": [], "prompts": {}})
        if row["config"] not in service["config"]:
            service["config"].append(row["config"])
        for name, d in sorted(row["prompts"].items()):
            seen = service["prompts"].setdefault(name, [])
            if d not in seen:
                seen.append(d)
    return out


def unexpected(signed: list[dict[str, Any]], expected: dict[str, Any]) -> list[Problem]:
    """Each stage run whose configuration or prompt template digest the approved list does not hold."""
    found = []
    for row in signed:
        allowed = expected.get(str(row["service"])) or {}
        if row["config"] not in (allowed.get("config") or []):
            found.append(Problem(_where(row), f"{row['service']} ran with configuration {row['config']}, not an "
                                              "approved one"))
        for name, d in sorted(row["prompts"].items()):
            if d not in ((allowed.get("prompts") or {}).get(name) or []):
                found.append(Problem(_where(row), f"{row['service']} sent prompt template {name} {d}, not an "
                                                  "approved one"))
    return found


def _where(row: dict[str, Any]) -> str:
    return f"seq {row['seq']} ({row['tenant_id']}, {row['message_type']} of {row['response_id']})"
