"""How much machinery a question needs, decided without a model call: trivial, moderate or complex.

trivial  -> one expert, no planner model (and downstream: no graph task, no thinking step);
moderate -> the semantic router may still short-cut it, else the planner model;
complex  -> always the planner model (several parts, analysis, long text).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from moe_core.contracts import Complexity
from moe_core.policy.domains import Keywords, load_keywords

_GREETING = re.compile(
    r"^(hi|hello|hey|hallo|good (morning|afternoon|evening)|thanks|thank you|thx|ok|okay|bye|goodbye|yes|no)\b",
    re.IGNORECASE)
# Asking for explanation, derivation or judgement: never trivial.
_REASONING = re.compile(
    r"\b(why|how (does|do|did|can|could|would|should|is|are)|explain|prove|derive|reason|justify|"
    r"step[- ]by[- ]step|what if|calculate|compute|solve|analy[sz]e|evaluate|assess|debug|review|"
    r"implement|write|design|plan|compare|difference|think (through|about)|decid(e|ing)|decisions?|advi[cs]e|"
    r"recommend)\b", re.IGNORECASE)
# Asking for breadth or several deliverables: complex.
_COMPLEX = re.compile(
    r"\b(compare|comparison|versus|vs\.?|trade-?offs?|pros and cons|advantages and disadvantages|"
    r"in detail|comprehensive|thorough|architecture|strategy|step[- ]by[- ]step plan|report|essay|"
    r"multiple|several|various|evaluate|analy[sz]e .+ and)\b", re.IGNORECASE)
_JOINERS = re.compile(r"\b(and then|and also|as well as|additionally|furthermore|also)\b|;", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", re.MULTILINE)

# A request to translate: the verb opens it (the semantic router weighs the quoted words more than the verb, so
# "Translate 'room number 101' into German." is often farther than the router's threshold from every prototype).
_TRANSLATE = re.compile(r"^\W*(?:(?:please|could you|can you|would you)\s+)?(?:translate|übersetze|übersetzen)\b",
                        re.IGNORECASE)

TRIVIAL_MAX_WORDS = 15  # the original's: <= 15-word simple factual queries (MOE_PLANNER_TRIVIAL_MAX_WORDS)
COMPLEX_MIN_WORDS = 60


def estimate(question: str, trivial_max_words: int = TRIVIAL_MAX_WORDS) -> Complexity:
    text = question.strip()
    words = len(text.split())
    questions = text.count("?")
    parts = questions + len(_JOINERS.findall(text)) + len(_LIST_ITEM.findall(text))
    if "```" in text or words >= COMPLEX_MIN_WORDS or parts >= 3 or _COMPLEX.search(text):
        return "complex"
    if _GREETING.match(text) and words <= trivial_max_words:
        return "trivial"
    if words <= trivial_max_words and questions <= 1 and parts <= 1 and not _REASONING.search(text):
        return "trivial"
    return "moderate"


def trivial_category(question: str, nearest: tuple[str, float] | None, threshold: float,
                     categories: Collection[str]) -> str:
    """The one expert of a trivial question (no planner model): the translator for a request that opens with
    "translate" (its answer then states no facts for graph-ingest to learn: no extraction call, issue 52), else
    the semantic router's nearest category (category, distance) within `threshold`, else general."""
    if "translation" in categories and _TRANSLATE.match(question):
        return "translation"
    if nearest is not None and nearest[1] <= threshold:
        return nearest[0]
    return "general"


class ProtectedDomains:
    """Whether a question's words belong to a domain that is never trivial (MOE_PLANNER_NEVER_TRIVIAL_DOMAINS,
    the words of policy/domain-keywords.yaml as the control plane resolves them): a short clinical or legal
    question still gets the tenant's reviewed knowledge, its documents and the critic (a hospital's trial: "Is
    Vexotrin safe for a sepsis patient with severe kidney disease?" went to one general expert and was answered
    against the approved import's CONTRAINDICATES)."""

    def __init__(self, keywords: Keywords | None, domains: frozenset[str]) -> None:
        self.keywords = keywords
        self.domains = domains

    @classmethod
    def load(cls, path: Path, listed: str) -> ProtectedDomains:
        """The listed domains with the word list (KeywordsError: the planner does not start without it)."""
        domains = frozenset(d.strip() for d in listed.split(",") if d.strip())
        return cls(load_keywords(path) if domains else None, domains)

    def touched(self, question: str) -> set[str]:
        return self.keywords.of_words(question) & self.domains if self.keywords is not None else set()


def with_domains(complexity: Complexity, question: str, protected: ProtectedDomains) -> Complexity:
    """A trivial estimate raised to moderate for a question of a protected domain."""
    return "moderate" if complexity == "trivial" and protected.touched(question) else complexity
