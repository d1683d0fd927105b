"""Pure graph-rag logic: ranking facts, keeping maximal requirement chains, the judge-facing text,
the cache key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from moe_core.contracts import Source


def rank_facts(rows: list[dict[str, Any]], matched: set[str], limit: int) -> list[dict[str, Any]]:
    """Facts between two asked-about entities first, then one hop away, then two; IS_A last; trust.
    Two hops away, IS_A only lists siblings of a class (noise), so it is left out."""

    def key(row: dict[str, Any]) -> tuple[int, int, bool, float, str]:
        touching = (row["subject_uid"] in matched) + (row["object_uid"] in matched)
        return (-touching, row["hop"], row["type"] == "IS_A", -(row["trust"] or 0.0), row["id"])

    unique = {row["id"]: row for row in rows if not (row["hop"] > 1 and row["type"] == "IS_A")}
    return sorted(unique.values(), key=key)[:limit]


def maximal_chains(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Drop every chain that is the beginning of a longer one; longest first."""
    chains = sorted({tuple(r["ids"]): r for r in rows}.values(), key=lambda r: (-len(r["ids"]), r["ids"]))
    kept: list[dict[str, Any]] = []
    for chain in chains:
        ids = tuple(chain["ids"])
        if any(tuple(k["ids"][:len(ids)]) == ids for k in kept):
            continue
        kept.append(chain)
    return kept[:limit]


def fact_title(fact: dict[str, Any]) -> str:
    return f"{fact['subject']} {fact['type']} {fact['object']}"


def chain_text(chain: dict[str, Any]) -> str:
    names, types = chain["names"], chain["types"]
    parts = [names[0]]
    for rel, name in zip(types, names[1:], strict=True):
        parts.append(f"{rel} {name}")
    return " -> ".join(parts)


def document_label(doc: dict[str, Any]) -> str:
    """Where a chunk comes from, as the judge and the client see it: the document's title and source."""
    meta = doc.get("metadata") or {}
    title, source = meta.get("title"), meta.get("source")
    if title and source and title != source:
        return f"{title} ({source})"
    return str(title or source or doc["text"][:80])


PROCEDURAL_BLOCK = "[Procedural Requirements]"


def content(facts: list[dict[str, Any]], chains: list[dict[str, Any]], documents: list[dict[str, Any]],
            document_chars: int = 300, procedural: bool = False) -> str:
    """The compact text the judge reads. Empty when there is nothing (the merger then ignores it). For a
    procedural question the requirement chains come first, as the original's [Procedural Requirements]
    block."""
    lines: list[str] = []
    if chains and procedural:
        lines.append(f"{PROCEDURAL_BLOCK} (action -> what it requires / where it happens; follow them in order):")
        lines += [f"- {chain_text(c)}" for c in chains]
    if facts:
        lines.append("Knowledge graph facts (trust in brackets):")
        lines += [f"- {fact_title(f)} [{(f['trust'] or 0.0):.2f}]" for f in facts]
    if chains and not procedural:
        lines.append("Requirements (action -> what it requires / where it happens):")
        lines += [f"- {chain_text(c)}" for c in chains]
    if documents:
        lines.append("Related documents:")
        lines += [_document_line(d, document_chars) for d in documents]
    return "\n".join(lines)


def _document_url(doc: dict[str, Any]) -> str | None:
    """A tenant document (POST /v1/memory/documents) can be read back by the same tenant's key."""
    document_id = (doc.get("metadata") or {}).get("document_id")
    return f"/v1/memory/documents/{document_id}" if document_id else None


def _document_line(doc: dict[str, Any], chars: int) -> str:
    text = " ".join(doc["text"].split())[:chars]
    meta = doc.get("metadata") or {}
    if meta.get("source") or meta.get("title"):
        return f"- [source: {document_label(doc)}] {text}"
    return f"- {text}"


def sources(facts: list[dict[str, Any]], chains: list[dict[str, Any]],
            documents: list[dict[str, Any]]) -> list[Source]:
    out = {f["id"]: Source(kind="graph", ref=f["id"], title=fact_title(f)) for f in facts}
    for chain in chains:
        for rid, subject, rel, obj in zip(chain["ids"], chain["names"], chain["types"], chain["names"][1:],
                                          strict=False):
            out.setdefault(rid, Source(kind="graph", ref=rid, title=f"{subject} {rel} {obj}"))
    docs = [Source(kind="document", ref=d["ref"], title=document_label(d), url=_document_url(d)) for d in documents]
    return [*out.values(), *docs]


def cache_key(tenant: str, question: str, filters: dict[str, Any], versions: dict[str, int],
              settings_tag: str) -> str:
    blob = json.dumps([tenant, " ".join(question.lower().split()), filters, sorted(versions.items()), settings_tag],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
