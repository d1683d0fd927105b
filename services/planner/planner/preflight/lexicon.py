"""The preflight's shared vocabulary: quoted arguments, numbers (digits, thousands separators, English number
words), and the lead-in words of a request ("what's", "could you work out", "Was ist", "Combien font")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
INT = r"\d{1,3}(?:,\d{3})+|\d+"
QUOTE_PAIRS = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "'": "'", "\u2018": "\u2019", "`": "`"}
# a quote opens at the start or after a space/bracket/colon and closes before the end, a space or punctuation
QUOTED = re.compile(r"""(?:(?<=^)|(?<=[\s(\[:=,]))(?P<open>["\u201c\u201e'\u2018`])(?P<body>.*?)"""
                    r"""(?P<close>["\u201d\u201c'\u2019`])(?=$|[\s?!.,:;)\]])""", re.DOTALL)
SLOT = "QUOTED{}"  # a quoted argument's placeholder in the question the grammars read

ONES = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
        "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_WORD = "|".join(sorted([*ONES, *TENS, *SCALES], key=len, reverse=True))
# a run of number words: "one hundred and twenty", "forty-two", "a thousand", "two million"
WORD_RUN = re.compile(rf"\b(?:an?\s+(?=(?:hundred|thousand|million|billion)\b))?(?:{_WORD})"
                      rf"(?:(?:\s+and\s+|\s+|-)(?:{_WORD}))*\b", I)
DIGIT_SCALE = re.compile(rf"(?<![\w.])(?P<n>{NUM})\s+(?P<s>thousand|million|billion|trillion)\b", I)

LEAD = re.compile(
    r"^(?:(?:hey|hi|hello|ok(?:ay)?|so|um+|quick (?:one|question))[,!:]?\s+)*"
    r"(?:(?:can|could|would|will) you(?: please)?\s+(?:tell me\s+)?|please\s+|i(?:'d| would) like to know\s+|"
    r"do you know\s+|i (?:want|need|wanted) to know\s+)?"
    r"(?:(?:what(?:'s| is| are| was)|whats|how much (?:is|are)|calculate|compute|evaluate|work out|figure out|"
    r"tell me|give me|show(?: me)?|find|get me|was (?:ist|sind|ergibt)|wie ?viel (?:ist|sind|ergibt)|berechne|rechne|"
    r"combien (?:font|fait|vaut)|calcule[zr]?|que vaut|cu[a\u00e1]nto (?:es|son)|calcula)\s+)?", I)
TAIL = re.compile(r"(?:\s*,?\s+(?:for me|please|thanks|thank you|bitte|s'il (?:te|vous) pla[i\u00ee]t|por favor))+$", I)


@dataclass
class Question:
    """A question as the grammars read it: whitespace collapsed, quoted arguments replaced by slots
    (QUOTED0 ...) whose text is kept exactly as quoted."""

    raw: str
    text: str
    quoted: list[str] = field(default_factory=list)

    def slot(self, token: str) -> str | None:
        """The exact quoted text behind a slot token, else None."""
        m = re.fullmatch(r"QUOTED(\d)", token.strip())
        return self.quoted[int(m[1])] if m and int(m[1]) < len(self.quoted) else None


def take_quotes(raw: str) -> tuple[str, list[str]]:
    """Replace each quoted span by a slot; returns the text and the spans exactly as quoted."""
    quoted: list[str] = []

    def keep(m: re.Match[str]) -> str:
        if QUOTE_PAIRS.get(m["open"]) != m["close"]:
            return m[0]
        quoted.append(m["body"])
        return f" {SLOT.format(len(quoted) - 1)} "

    return QUOTED.sub(keep, raw), quoted


def words_to_number(run: str) -> int | None:
    """English number words as an integer ("one hundred and twenty" -> 120); None when malformed."""
    tokens = [t for t in re.split(r"[\s-]+", run.lower()) if t and t != "and"]
    if tokens and tokens[0] in ("a", "an"):
        tokens[0] = "one"
    total, current, last = 0, 0, None
    for token in tokens:
        if token in ONES or token in TENS:
            value = ONES.get(token, TENS.get(token, 0))
            if last in ("ones", "teen") or (last == "tens" and (token in TENS or value >= 10)):
                return None  # "five six", "twenty thirty": not one number
            current += value
            last = "tens" if token in TENS else ("teen" if value >= 10 else "ones")
        elif token == "hundred":  # noqa: S105 - a number word, not a password
            if current == 0 or current >= 100:
                return None
            current *= 100
            last = "scale"
        else:
            scale = SCALES[token]
            if current == 0:
                return None
            total += current * scale
            current, last = 0, "scale"
    return total + current


NOT_ENGLISH = re.compile(r"\b(?:was ist|wie ?viel|ist|sind|combien|font|fait|vaut|cu[a\u00e1]nto|es|son|mal|fois|von|"
                         r"geteilt|durch|und|hoch|prozent|moins|divis[e\u00e9]|pour|por|menos|m[a\u00e1]s|entre|"
                         r"ciento)\b", I)


@lru_cache(maxsize=1024)  # a pure function the preflight's readers call several times on one question
def numbers_from_words(text: str) -> str | None:
    """Number words (and "2 million") as digits; None when a run of number words is not one number. Number
    words are read in English only ("Billion" is 10^12 in German): other questions keep their words."""
    if NOT_ENGLISH.search(text):
        return text
    failed = False

    def digits(m: re.Match[str]) -> str:
        nonlocal failed
        value = words_to_number(m[0])
        if value is None:
            failed = True
            return m[0]
        return str(value)

    out = DIGIT_SCALE.sub(lambda m: _scaled(m["n"], m["s"]), text)
    out = WORD_RUN.sub(digits, out)
    return None if failed else out


def _scaled(number: str, scale: str) -> str:
    from decimal import Decimal

    value = Decimal(number.replace(",", "")) * SCALES[scale.lower()]
    return format(value.normalize(), "f")


def plain_number(text: str) -> str:
    return text.replace(",", "").lstrip("+")


@lru_cache(maxsize=1024)  # a pure function the preflight's readers call about 30 times on one question
def strip_request(text: str) -> str:
    """The question without its lead-in and courtesy tail: 'hey, could you work out 3 + 4 for me' -> '3 + 4'."""
    text = TAIL.sub("", text.strip())
    return LEAD.sub("", text, count=1).strip()


def balanced(text: str) -> bool:
    """Every bracket closed, none closed before it opened."""
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def stray_quote(text: str) -> bool:
    """A quote mark left after the closed quotes are taken out (a quote not closed): what is quoted is unknown."""
    return bool(STRAY_QUOTE.search(text))


STRAY_QUOTE = re.compile(r"[\"\u201c\u201d\u201e`]|(?:^|\s)['\u2018]|['\u2019](?:\s|$)")


# Words that change nothing a typed reader binds: articles, pronouns, auxiliaries, courtesy and request verbs
# (issue 30, round 3). Never here: words that change a value or an operation (not, without, except, per, each,
# total, about, by, then, more, less, than, before, after, plus, minus, times, half, double, instead, assume).
COMMON = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "is", "are", "was", "were", "be", "been", "am",
    "do", "does", "did", "can", "could", "would", "will", "shall", "should", "may", "might", "i", "me", "my", "we",
    "our", "us", "you", "your", "please", "kindly", "thanks", "thank", "hey", "hi", "hello", "ok", "okay", "so",
    "well", "just", "quick", "quickly", "question", "tell", "give", "show", "know", "want", "wanted", "like", "need",
    "help", "find", "get", "figure", "work", "out", "calculate", "compute", "determine", "what", "whats", "which",
    "how", "much", "many", "there", "here", "for", "of", "on", "in", "at", "to", "with", "as", "and", "exactly",
    "value", "result", "answer", "s", "d", "ll", "m", "re", "ve", "bitte", "mir", "mal", "du", "sie", "ich", "wir",
    "ist", "sind", "welche", "welcher", "welches", "der", "die", "das", "den", "dem", "des", "ein", "eine",
    "einen", "einem", "einer", "von", "für", "zu", "im", "berechne", "gib", "sag", "kannst", "können",
})
