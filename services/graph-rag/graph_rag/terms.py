"""Term extraction without an LLM: tokens, n-grams, exact and fuzzy matching against entity names and
aliases, and the leftover content words that the graph does not know (ontology gaps)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz.distance import Levenshtein

from graph_rag.generic import is_generic
from graph_rag.stopwords import is_stopword
from moe_core.knowledge.graph.names import normalize

_TOKEN = re.compile(r"[^\W_][\w+#.\-']*", re.UNICODE)
_CLAUSE = re.compile(r"[,;:!?()\[\]{}\n\"]+|\.(?:\s|$)")
MAX_NGRAM = 5
# Fuzzy matching starts at 8 characters: shorter common words are one edit away from too many names
# (content/consent, price/prime, parts/party); long technical names are where typos happen.
MIN_FUZZY_CHARS = 8
MIN_GAP_CHARS = 4
MAX_GAP_WORDS = 3


@dataclass(frozen=True)
class Entry:
    uid: str
    name: str
    tenant: str


@dataclass
class Lexicon:
    """Normalised names and aliases of the entities one tenant owns, for exact and fuzzy lookup. A key two
    entities share names the one read first (graph_rag.retrieval reads the entities written since in `update`)."""

    keys: dict[str, Entry] = field(default_factory=dict)
    by_initial: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    owned: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # uid -> (name, keys) as read

    @classmethod
    def build(cls, rows: Iterable[dict[str, Any]], tenant: str) -> Lexicon:
        lex = cls()
        lex.update(rows, tenant)
        return lex

    def update(self, rows: Iterable[dict[str, Any]], tenant: str) -> bool:
        """Add the entities written since this lexicon was read. False, and nothing changed, when one of them was
        read before under another name or with a key it no longer has: only a whole read is right then."""
        read = [(str(r["uid"]), str(r["name"]), [str(r["key"]), *[str(a) for a in (r.get("alias_keys") or [])]])
                for r in rows]
        for uid, name, names in read:
            before = self.owned.get(uid)
            if before is not None and (before[0] != name or not before[1] <= set(names)):
                return False
        for uid, name, names in read:
            entry = Entry(uid, name, tenant)
            self.owned[uid] = (name, frozenset(k for k in names if k))
            for key in names:
                if key and key not in self.keys:
                    self.keys[key] = entry
                    self.by_initial.setdefault((key[0], len(key)), []).append(key)
        return True

    def exact(self, phrase: str) -> Entry | None:
        return self.keys.get(phrase)

    def fuzzy(self, phrase: str) -> tuple[Entry, int] | None:
        """The closest key within the allowed edit distance (same first letter), if any."""
        allowed = max_edits(len(phrase))
        if allowed == 0:
            return None
        best: tuple[int, str] | None = None
        for length in range(len(phrase) - allowed, len(phrase) + allowed + 1):
            for key in self.by_initial.get((phrase[0], length), []):
                dist = bounded_levenshtein(phrase, key, allowed)
                if dist is not None and (best is None or (dist, key) < best):
                    best = (dist, key)
        return (self.keys[best[1]], best[0]) if best else None


@dataclass(frozen=True)
class Match:
    uid: str
    name: str
    tenant: str
    term: str
    fuzzy: bool = False


@dataclass
class Extraction:
    matches: list[Match]
    unknown: list[str]

    def uids(self) -> list[str]:
        return list(dict.fromkeys(m.uid for m in self.matches))


def max_edits(length: int) -> int:
    if length < MIN_FUZZY_CHARS:
        return 0
    return 1 if length < 11 else 2


def bounded_levenshtein(a: str, b: str, bound: int) -> int | None:
    """Edit distance of a and b, or None when it exceeds `bound` (rapidfuzz stops early, in C)."""
    distance = Levenshtein.distance(a, b, score_cutoff=bound)
    return distance if distance <= bound else None


def tokens(text: str) -> list[str]:
    out = []
    for raw in _TOKEN.findall(text):
        word = normalize(raw)
        if word.endswith("'s"):
            word = word[:-2]
        if word:
            out.append(word)
    return out


def _variants(phrase: str) -> list[str]:
    """The phrase and a naive singular (diseases -> disease, therapies -> therapy)."""
    out = [phrase]
    if phrase.endswith("ies") and len(phrase) > 5:
        out.append(phrase[:-3] + "y")
    elif phrase.endswith("s") and not phrase.endswith("ss") and len(phrase) > 4:
        out.append(phrase[:-1])
    return out


def _lookup(phrase: str, lexicons: list[Lexicon]) -> Entry | None:
    for variant in _variants(phrase):
        for lex in lexicons:  # the tenant's own lexicon first, then the shared one
            entry = lex.exact(variant)
            if entry is not None:
                return entry
    return None


def _fuzzy(phrase: str, lexicons: list[Lexicon]) -> Entry | None:
    found = [hit for lex in lexicons if (hit := lex.fuzzy(phrase)) is not None]
    return min(found, key=lambda h: h[1])[0] if found else None


def extract(question: str, lexicons: list[Lexicon], max_unknown: int = 3, drop_generic: bool = True) -> Extraction:
    """Greedy longest match over the question's tokens: exact names and aliases first, then fuzzy.
    Neither a name nor an unknown term spans a clause boundary (, ; : ! ? brackets, end of sentence).
    `drop_generic`: no unknown term made only of generic words (graph_rag.generic)."""
    matches: list[Match] = []
    unknown: list[str] = []
    for clause in _CLAUSE.split(question):
        words = tokens(clause)
        unmatched: list[int] = []
        i = 0
        while i < len(words):
            hit = _match_at(words, i, lexicons)
            if hit is None:
                unmatched.append(i)
                i += 1
                continue
            match, width = hit
            if match.uid not in {m.uid for m in matches}:
                matches.append(match)
            i += width
        unknown += [t for t in unknown_terms(words, unmatched, max_unknown, drop_generic) if t not in unknown]
    return Extraction(matches, unknown[:max_unknown])


def _match_at(words: list[str], i: int, lexicons: list[Lexicon]) -> tuple[Match, int] | None:
    for width in range(min(MAX_NGRAM, len(words) - i), 0, -1):
        phrase = " ".join(words[i:i + width])
        if width == 1 and (is_stopword(phrase) or len(phrase) < 2):
            continue
        entry = _lookup(phrase, lexicons)
        if entry is not None:
            return Match(entry.uid, entry.name, entry.tenant, phrase), width
    for width in (2, 1):
        if i + width > len(words) or any(is_stopword(w) for w in words[i:i + width]):
            continue
        phrase = " ".join(words[i:i + width])
        entry = _fuzzy(phrase, lexicons)
        if entry is not None:
            return Match(entry.uid, entry.name, entry.tenant, phrase, fuzzy=True), width
    return None


def _content_word(word: str) -> bool:
    return len(word) >= MIN_GAP_CHARS and not is_stopword(word) and any(c.isalpha() for c in word) \
        and not word.replace(".", "").isdigit()


def unknown_terms(words: list[str], unmatched: list[int], limit: int, drop_generic: bool = True) -> list[str]:
    """Runs of adjacent unmatched content words (at most three words each), in question order; with
    `drop_generic`, not a run made only of generic words (it takes no place of the `limit`)."""
    runs: list[list[str]] = []
    last = -2
    for i in unmatched:
        word = words[i]
        if not _content_word(word):
            last = -2
            continue
        if i == last + 1 and len(runs[-1]) < MAX_GAP_WORDS:
            runs[-1].append(word)
        else:
            runs.append([word])
        last = i
    terms = list(dict.fromkeys(" ".join(run) for run in runs))
    return [t for t in terms if not (drop_generic and is_generic(t))][:limit]
