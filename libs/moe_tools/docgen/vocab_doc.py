"""The knowledge graph's closed vocabulary as a bundle's author needs it (docs/knowledge-bundles.md): every relation
type with the domain it counts in (policy/domain-keywords.yaml), its direction, what it contradicts and whether it
forms requirement chains; then the sources and domains (moe_core.knowledge.graph.vocab)."""

from __future__ import annotations

from pathlib import Path

from moe_core.knowledge.graph import vocab
from moe_core.policy.domains import load_keywords


def table(repo: Path) -> str:
    keywords = load_keywords(repo / "policy" / "domain-keywords.yaml")
    lines = ["| relation | counts in the domain | direction | contradicts | requirement chains |",
             "|---|---|---|---|---|"]
    for relation in vocab.RELATION_TYPES:
        domains = ", ".join(sorted(keywords.of_relation(relation))) or "its entities' only"
        direction = "either way" if relation in vocab.SYMMETRIC_TYPES else "subject → object"
        contradicts = ", ".join(f"`{t}`" for t in vocab.conflicting_types(relation)) or "—"
        chains = "yes" if relation in vocab.PROCEDURAL_TYPES else "—"
        lines.append(f"| `{relation}` | {domains} | {direction} | {contradicts} | {chains} |")
    lines += ["", f"Domains (an entity's `domain`, a bundle's labels): {', '.join(f'`{d}`' for d in vocab.DOMAINS)}. "
              f"Sources (a relation's `source`, informational in a bundle): "
              f"{', '.join(f'`{s}`' for s in vocab.SOURCES)}. Any other relation type is refused "
              "(400 `invalid_bundle`)."]
    return "\n".join(lines)
