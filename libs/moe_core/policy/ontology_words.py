"""What the base ontology already knows, as words for the domain resolver (moe_core.policy.domains): every name
and alias of its entities and classes (Ibuprofen, Advil, NSAID, heart attack, habeas corpus, ...) is evidence of
that entity's domain wherever it appears in a name, a type or a text, not only as a whole name the graph lookup
matches. A short list of words a look-alike spelling or a brand name steps around is not the resolver: the
ontology's hundreds of names are, after the text is folded (moe_core.runtime.normalise, UTS #39).

Names shorter than MIN_CHARS ("MI", "ASA", "AF") are left out: as words they mean too many other things."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from moe_core.knowledge.graph import ontology

MIN_CHARS = 4
NO_EVIDENCE = frozenset({"general"})
_WORD = re.compile(r"[a-z0-9]+")


def words_of(folded: str) -> list[str]:
    """The words of a folded, lower-case text (moe_core.knowledge.graph.names.fold)."""
    return _WORD.findall(folded)


@dataclass(frozen=True)
class Phrases:
    """{a name's words: the domains the ontology files that name in}, and the longest name in words."""

    domains: dict[tuple[str, ...], frozenset[str]]
    longest: int

    def of_words(self, words: list[str]) -> set[str]:
        """The domains of every ontology name that occurs in `words` as a run of whole words."""
        found: set[str] = set()
        for start in range(len(words)):
            for n in range(1, min(self.longest, len(words) - start) + 1):
                hit = self.domains.get(tuple(words[start:start + n]))
                if hit:
                    found |= hit
        return found


def index(entities: Iterable[ontology.SeedEntity]) -> Phrases:
    found: dict[tuple[str, ...], set[str]] = {}
    for entity in entities:
        if entity.domain in NO_EVIDENCE:
            continue
        for key in (entity.key, *entity.alias_keys):
            words = tuple(words_of(key))
            if len(key) >= MIN_CHARS and words:
                found.setdefault(words, set()).add(entity.domain)
    return Phrases({k: frozenset(v) for k, v in found.items()}, max((len(k) for k in found), default=0))


@cache
def base_ontology() -> Phrases:
    """The phrases of the ontology file shipped with the fleet (the one seeded into the shared tenant)."""
    return index(ontology.load().entities)
