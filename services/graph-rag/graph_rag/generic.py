"""Generic words: the ones a question uses to ask about something (verbs and their participles, evaluative and
generic adjectives, the aspect nouns of "their role", "its value"), kept by hand here, ours. An unknown term made
ONLY of such words ("formed", "scientists study", "economic value") is not a gap: the model would classify a word
of the question, not a concept (issue 52: a third of the classified terms were such words). A term with one word
that is not generic stays whole ("steam engine", "data protection", "machine learning"); so a word that heads or
modifies concepts made of common words (engine, data, learning, change, key, deep, open, natural), and a generic
word that is also a concept on its own (lead, matter, current, origin, form, build, basic, major, affect), is not
listed. No entity name or alias of the base ontology is made only of these words (tests/unit/graph_rag)."""

from __future__ import annotations

_VERBS = """
affected affecting affects appear appeared appears built called consider considered contain contained contains
create created creates described develop developed develops discover discovered discuss discussed evolve
evolved evolves exist existed exists formed forming found founded include included includes including
influence influenced influences invent invented involve involved involves mention mentioned named occur occurred
occurs produce produced produces relate related relates remain remained remains studied studies study studying
threaten threatened threatening threatens understand understood
"""

_ADJECTIVES = """
actual certain cultural daily economic entire everyday exact famous general historical important interesting modern
overall particular popular practical real recent significant similar social specific typical unknown useful various
whole
"""

_NOUNS = """
advantage advantages aspect aspects benefit benefits disadvantage disadvantages effect effects experts feature
features future impact impacts importance meaning meanings past purpose purposes relationship relationships
researchers role roles scientists significance value values
"""

GENERIC = frozenset((_VERBS + _ADJECTIVES + _NOUNS).split())


def is_generic(term: str) -> bool:
    """A term (normalised words, space-separated) made only of generic words."""
    words = term.split()
    return bool(words) and all(w in GENERIC for w in words)
