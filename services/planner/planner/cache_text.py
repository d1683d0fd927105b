"""Question text for the semantic cache: normalisation, and the deterministic guards a hard hit must pass.

Embedding distance alone cannot tell "turn on the wifi" from "turn off the wifi" (cosine distance 0.18,
the same as a true paraphrase) or "15% of 200" from "15% of 300". A hard hit therefore also needs:
the same numbers, the same negation, no opposite word pair across the two questions (on/off, enable/
disable, good/bad, un-/dis- prefixes, ...), every named entity of one question present in the other, and
no subject word swapped for an unrelated one ("a cello and a walrus" / "a cello and a lynx": in a long
question one swapped noun moves the embedding by less than a paraphrase does).
Measured on tests/data/cache_pairs.yaml by deploy/local/cache_threshold_report.py (docs/semantic-cache.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from moe_core.llm.exact_cache import normalise, plain

__all__ = ["conflict", "features", "normalise", "words"]

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+(?:['][a-z]+)?")
_RAW_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'.\-]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\s*[\"'(]?([A-Za-z][\w'\-]*)")

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "half": 0.5, "twice": 2, "double": 2, "triple": 3,
    "dozen": 12, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "tenth": 10,
}
_NEGATIONS = {"not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without", "nowhere"}

# Opposite pairs: (side A, side B) as whole-word patterns. Only a conflict counts: one question with side A
# and the other with side B of the same pair (a paraphrase may drop the word altogether).
_OPPOSITES: list[tuple[str, str]] = [
    (r"enabl\w*", r"disabl\w*"), (r"activat\w*", r"deactivat\w*"), (r"install\w*", r"uninstall\w*"),
    (r"increas\w*", r"decreas\w*"), (r"raise|raises|raised|raising", r"lower|lowers|lowered|lowering"),
    (r"connect\w*", r"disconnect\w*"), (r"lock|locks|locked|locking", r"unlock\w*"),
    (r"encrypt\w*", r"decrypt\w*"), (r"compress\w*", r"decompress\w*"), (r"mount\w*", r"unmount\w*"),
    (r"subscrib\w*", r"unsubscrib\w*"), (r"import|imports|imported|importing", r"export|exports|exported|exporting"),
    (r"upload\w*", r"download\w*"), (r"push|pushes|pushed|pushing", r"pull|pulls|pulled|pulling"),
    (r"buy|buys|buying|bought|purchas\w*", r"sell|sells|selling|sold"),
    (r"start|starts|started|starting|begin\w*|launch\w*", r"stop|stops|stopped|stopping|end|ends|ended|ending|"
     r"finish\w*|quit|quits|quitting"),
    (r"open|opens|opened|opening", r"close|closes|closed|closing|shut|shuts|shutting"),
    (r"add|adds|added|adding|insert|inserts|inserted|inserting",
     r"remove|removes|removed|removing|delete|deletes|deleted|deleting|drop|drops|dropped|dropping"),
    (r"allow\w*|permit\w*", r"deny|denies|denied|block|blocks|blocked|blocking|forbid\w*"),
    (r"show|shows|showed|shown|showing|display|displays|displayed|unhide", r"hide|hides|hidden|hiding"),
    (r"includ\w*", r"exclud\w*"), (r"login|log-in|signin|sign-in", r"logout|log-out|signout|sign-out"),
    (r"zip|zips|zipped|zipping", r"unzip\w*"), (r"encod\w*", r"decod\w*"), (r"serializ\w*", r"deserializ\w*"),
    (r"min|minimum|minimi[sz]\w*|minimal", r"max|maximum|maximi[sz]\w*|maximal"),
    (r"more", r"less|fewer"), (r"most", r"least"), (r"good|better|best", r"bad|worse|worst"),
    (r"high|higher|highest", r"low|lower|lowest"), (r"fast|faster|fastest|quick|quicker|quickest|quickly",
                                                      r"slow|slower|slowest|slowly"),
    (r"big|bigger|biggest|large|larger|largest", r"small|smaller|smallest"), (r"long|longer|longest",
                                                                               r"short|shorter|shortest"),
    (r"hot|hotter|hottest|warm|warmer|warmest", r"cold|colder|coldest|cool|cooler|coolest"),
    (r"before", r"after"), (r"first", r"last"), (r"true", r"false"), (r"safe|safer|safest|safely",
                                                                      r"unsafe|dangerous|harmful"),
    (r"healthy", r"unhealthy"), (r"legal", r"illegal"), (r"possible", r"impossible"),
    (r"win|wins|winning|won|winner", r"lose|loses|losing|lost|loser"), (r"advantages?", r"disadvantages?"),
    (r"pros", r"cons"), (r"benefits?", r"risks?|drawbacks?|downsides?"), (r"gain|gains|gained", r"loss|losses"),
    (r"profit\w*", r"loss|losses"), (r"positive", r"negative"), (r"left", r"right"), (r"north\w*", r"south\w*"),
    (r"east|eastern", r"west|western"), (r"male", r"female"), (r"men|man", r"women|woman"),
    (r"input\w*", r"output\w*"), (r"inside|inner|internal", r"outside|outer|external"), (r"above", r"below"),
    (r"upper|uppercase", r"lower|lowercase"), (r"ascending", r"descending"), (r"early|earlier", r"late|later"),
    (r"old|older|oldest", r"new|newer|newest|young|younger|youngest"), (r"send|sends|sending|sent",
                                                                         r"receiv\w*"),
    (r"accept\w*", r"reject\w*|declin\w*"), (r"agree|agrees|agreed", r"disagree\w*"),
    (r"like|likes|liked", r"dislike\w*|hate|hates"), (r"love|loves|loved", r"hate|hates|hated"),
    (r"borrow\w*", r"lend|lends|lending|lent"), (r"arriv\w*", r"depart\w*"), (r"cheap\w*", r"expensive"),
    (r"heavy|heavier|heaviest", r"light|lighter|lightest"), (r"strong|stronger|strongest", r"weak|weaker|weakest"),
    (r"rich|richer|richest", r"poor|poorer|poorest"), (r"easy|easier|easiest", r"hard|harder|hardest|difficult"),
    (r"yes", r"no"), (r"always", r"never"), (r"all", r"none"), (r"with", r"without"),
    (r"plus", r"minus|subtract\w*"), (r"multipl\w*", r"divid\w*"),
]
# Particles are only opposites after a verb: "turn on" / "turn the wifi off", "round up" / "round down".
_PARTICLE_VERBS = (r"turn\w*|switch\w*|power\w*|toggl\w*|flip\w*|log\w*|sign\w*|put\w*|set\w*|shut\w*|round\w*|"
                   r"scal\w*|speed\w*|zoom\w*|ramp\w*|mov\w*|go|goes|going|count\w*|step\w*|climb\w*|walk\w*|check\w*")
_PARTICLES = [("on", "off"), ("up", "down"), ("in", "out")]
_PREFIXES = ("un", "dis", "non", "in", "im", "il", "ir", "de", "anti", "mis")

_NOT_ENTITIES = {
    "i", "what", "whats", "how", "why", "who", "when", "where", "which", "whose", "whom", "is", "are", "was",
    "were", "am", "be", "can", "could", "do", "does", "did", "should", "would", "will", "shall", "may",
    "might", "must", "tell", "explain", "give", "list", "write", "please", "the", "a", "an", "in", "on", "for",
    "to", "of", "at", "by", "with", "from", "and", "or", "but", "if", "my", "your", "our", "their", "its",
    "translate", "describe", "name", "show", "find", "calculate", "compute", "compare", "define", "summarize",
    "summarise", "help", "hi", "hello", "hey", "thanks", "thank", "ok", "okay", "yes", "no", "it", "this",
    "that", "these", "those", "there", "here", "let", "make", "create", "generate", "draft", "suggest",
    "recommend", "convert", "check", "fix", "review", "any", "some", "dear", "you",
    "we", "they", "he", "she", "me", "us", "them", "also", "now", "then", "so", "just", "q",
}


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def _numbers(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for raw in _NUMBER.findall(plain(text)):
        value = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw) else raw
        found.append(value.replace(",", "."))
    for word in words(text):
        if word in _NUMBER_WORDS:
            value = _NUMBER_WORDS[word]
            found.append(str(int(value)) if float(value).is_integer() else str(value))
    return tuple(sorted(found))


_OPPOSITE_RES = [(i, side, re.compile(rf"\b(?:{pattern})\b"))
                 for i, pair in enumerate(_OPPOSITES) for side, pattern in enumerate(pair)]
_PARTICLE_RES = [(len(_OPPOSITES) + j, side, re.compile(rf"\b(?:{_PARTICLE_VERBS})\b(?:\s+\S+){{0,3}}?\s+{particle}\b"))
                 for j, pair in enumerate(_PARTICLES) for side, particle in enumerate(pair)]


_RUN = re.compile(r"\w+")
_VERB = re.compile(rf"\b(?:{_PARTICLE_VERBS})\b")


def _opposite_sides(tokens: list[str]) -> set[tuple[int, int]]:
    """The (pair, side) of every opposite-word pattern the question's words match. Each pattern of _OPPOSITE_RES is
    `\b(?:...)\b` over word characters, so it matches a maximal run of them whole or not at all: the runs' sides are
    remembered per run (~150 searches of every question before, about 2 ms). A particle pattern is searched only
    where its verb and ` particle` occur. A hyphen (words() never keeps one; "log-in" spans two runs): every
    pattern, as it was."""
    text = " ".join(tokens)
    if "-" in text:
        return {(group, side) for group, side, pattern in (*_OPPOSITE_RES, *_PARTICLE_RES) if pattern.search(text)}
    runs = set(_RUN.findall(text))
    # a run that starts with a digit (a year, an id: new in almost every question) matches none: every word of the
    # patterns starts with a letter
    found = {side for run in runs if not run[0].isdigit() for side in _run_sides(run)}
    if any(_is_verb(run) for run in runs):
        found.update((group, side) for group, side, pattern in _PARTICLE_RES
                     if f" {_PARTICLES[group - len(_OPPOSITES)][side]}" in text and pattern.search(text))
    return found


@lru_cache(maxsize=8192)
def _run_sides(run: str) -> tuple[tuple[int, int], ...]:
    return tuple((group, side) for group, side, pattern in _OPPOSITE_RES if pattern.search(run))


@lru_cache(maxsize=8192)
def _is_verb(run: str) -> bool:
    return _VERB.search(run) is not None


def _entities(text: str) -> set[str]:
    """Capitalised words that do not start a sentence, acronyms and letter-digit identifiers (lower-cased)."""
    text = plain(text)
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    found: set[str] = set()
    for match in _RAW_WORD.finditer(text):
        raw = match.group(0).strip(".-'")
        if not raw:
            continue
        token = re.sub(r"[']s$", "", raw)
        has_digit = any(c.isdigit() for c in token)
        has_alpha = any(c.isalpha() for c in token)
        is_acronym = len(token) >= 2 and token.isupper() and has_alpha
        # a capitalised word that starts a sentence is usually not a name: only the distance judges it
        capitalised = token[:1].isupper() and token.lower() not in _NOT_ENTITIES and match.start() not in starts
        if (has_digit and has_alpha) or is_acronym or capitalised:
            found.add(token.lower())
    return found


# Words that carry no subject: a question may add or drop them freely, and they never count as swapped.
_FUNCTION_WORDS = _NOT_ENTITIES | _NEGATIONS | {
    "about", "after", "again", "all", "am", "as", "because", "been", "being", "both", "did", "doing", "each",
    "else", "ever", "every", "few", "get", "gets", "got", "had", "has", "have", "having", "her", "hers", "him",
    "his", "into", "itself", "much", "many", "more", "most", "myself", "off", "once", "only", "other", "out",
    "over", "own", "same", "such", "than", "too", "under", "until", "up", "very", "via", "way", "ways",
    "yours", "yourself", "whether", "while", "exactly", "actually", "really", "basically", "briefly", "simply",
    "kindly", "step", "steps", "method", "explanation", "example", "examples", "detail", "details", "detailed",
    "thing", "things", "mean", "means", "someone", "something", "anything", "everything", "one", "ones",
    "like", "want", "wants", "need", "needs", "know", "type", "kind", "sort", "lot", "lots",
    "using", "use", "used", "able", "onto", "upon", "per", "between",
    "among", "through", "during", "within", "across", "along", "around", "toward", "towards", "down",
}
# Words a paraphrase may swap for each other (beyond shared stems): one group per meaning.
_SYNONYM_GROUPS: list[frozenset[str]] = [frozenset(g.split()) for g in (
    "turn switch", "write wrote written writes writing author writer", "population people inhabitants",
    "kid kids child children", "picture image photo", "car automobile", "buy purchase", "big large",
    "small little tiny", "fix repair", "error bug fault", "problem issue", "make create build",
    "begin start", "end finish", "quick fast rapid", "show display", "remove delete erase", "cost price",
    "job work", "doctor physician", "medicine medication drug", "illness disease sickness",
    "answer reply respond", "help assist", "choose pick select", "shop store", "movie film",
    "smart clever intelligent", "home house", "autumn fall", "holiday vacation", "trip journey",
)]
_SYNONYM = {word: group for group in _SYNONYM_GROUPS for word in group}
_SUFFIXES = ("ations", "ation", "ness", "ments", "ment", "ence", "ance", "ings", "ing", "ies", "ied", "ed", "ly")


def _stem(word: str) -> str:
    """A light suffix stripper: enough to tell "symptoms"/"symptom" and "boil"/"boiling" apart from a swap."""
    word = re.sub(r"'s$", "", word)
    if word.endswith("es") and word[:-2].endswith(("s", "x", "z", "ch", "sh")) and len(word) > 4:
        return word[:-2]  # boxes, wishes
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ies")) and len(word) > 3:
        word = word[:-1]  # holes, symptoms, vaccines
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            return stem + "y" if suffix in ("ies", "ied") else stem
    return word


def _related(a: str, b: str) -> bool:
    """The same word in another form (symptom/symptoms, virus/viral, summarize/summarise) or a synonym."""
    if a == b or (a in _SYNONYM and b in _SYNONYM[a]):
        return True
    sa, sb = _stem(a), _stem(b)
    common = len(_common_prefix(sa, sb))
    return sa == sb or (common >= 3 and len(sa) - common <= 2 and len(sb) - common <= 2)


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _content(tokens: frozenset[str]) -> set[str]:
    return {t for t in tokens if t not in _FUNCTION_WORDS and not any(c.isdigit() for c in t) and len(t) > 1}


def _swapped(a: frozenset[str], b: frozenset[str]) -> tuple[list[str], list[str]] | None:
    """Subject words each question has and the other lacks. A paraphrase may add words ("the play Hamlet")
    but when BOTH sides carry a word the other has no relative of, a subject was replaced ("a cello and a
    walrus" / "a cello and a lynx"): distance cannot see that in a long question."""
    ca, cb = _content(a), _content(b)
    only_a = sorted(w for w in ca if not any(_related(w, v) for v in cb))
    only_b = sorted(w for w in cb if not any(_related(w, v) for v in ca))
    return (only_a, only_b) if only_a and only_b else None


@dataclass(frozen=True)
class QuestionFeatures:
    numbers: tuple[str, ...]
    negated: bool
    opposites: frozenset[tuple[int, int]]
    entities: frozenset[str]
    tokens: frozenset[str]
    order: tuple[str, ...] = ()


@lru_cache(maxsize=1024)
def features(question: str) -> QuestionFeatures:
    """(Memoised: a pure function of the text, and a lookup compares the query with the same nearest entries'
    questions again and again. About 2.3 KB an entry: at most ~2.4 MB, full after a few hundred lookups.)"""
    tokens = words(question)
    return QuestionFeatures(
        numbers=_numbers(question),
        negated=any(t in _NEGATIONS for t in tokens),
        opposites=frozenset(_opposite_sides(tokens)),
        entities=frozenset(_entities(question)),
        tokens=frozenset(tokens),
        order=tuple(tokens),
    )


_DIRECTIONAL = {"to", "into", "onto", "from", "than", "vs", "versus", "over", "before", "after", "toward", "towards"}


def _reversed(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    """The content words on either side of a directional word of `a` ("kilometres to miles", "a dog faster than a
    cat") standing in the other order in `b`: the same words, another question. No embedding sees this well (a
    static one, a mean of its tokens, not at all: "convert 5 kilometres to miles" / "convert 5 miles to
    kilometres" are at distance 0.000, and 0.008 with MiniLM)."""
    where: dict[str, int] = {}
    for i, word in enumerate(b):
        where.setdefault(word, i)
    content = [i for i, w in enumerate(a) if w not in _FUNCTION_WORDS and not w.isdigit() and len(w) > 1]
    for i, word in enumerate(a):
        if word not in _DIRECTIONAL:
            continue
        before = next((a[j] for j in reversed(content) if j < i), None)
        after = next((a[j] for j in content if j > i), None)
        if before and after and before != after and before in where and after in where and where[before] > where[after]:
            return f"word order reversed: {before} {word} {after}"
    return None


def _prefixed_antonym(a: frozenset[str], b: frozenset[str]) -> str | None:
    for word in a - b:
        for prefix in _PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 4 and word[len(prefix):] in b:
                return f"{word[len(prefix):]}/{word}"
    return None


def conflict(a: str, b: str) -> str | None:
    """Why two questions that embed close together must not share an answer; None when no guard objects."""
    fa, fb = features(a), features(b)
    if fa.numbers != fb.numbers:
        return f"numbers differ: {list(fa.numbers)} / {list(fb.numbers)}"
    if fa.negated != fb.negated:
        return "one question is negated"
    for group, side in fa.opposites:
        if (group, 1 - side) in fb.opposites and (group, side) not in fb.opposites:
            return "opposite words"
    for group, side in fb.opposites:
        if (group, 1 - side) in fa.opposites and (group, side) not in fa.opposites:
            return "opposite words"
    prefixed = _prefixed_antonym(fa.tokens, fb.tokens) or _prefixed_antonym(fb.tokens, fa.tokens)
    if prefixed:
        return f"opposite words: {prefixed}"
    missing = sorted(e for e in fa.entities if not _mentions(fb, e)) + sorted(
        e for e in fb.entities if not _mentions(fa, e))
    if missing:
        return f"entities differ: {missing}"
    reversed_order = _reversed(fa.order, fb.order) or _reversed(fb.order, fa.order)
    if reversed_order:
        return reversed_order
    swapped = _swapped(fa.tokens, fb.tokens)
    if swapped:
        return f"subject words swapped: {swapped[0]} / {swapped[1]}"
    return None


def _mentions(f: QuestionFeatures, entity: str) -> bool:
    if entity in f.entities:
        return True
    parts = _WORD.findall(entity)
    return bool(parts) and all(p in f.tokens for p in parts)
