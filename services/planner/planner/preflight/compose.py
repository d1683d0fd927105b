"""The composition grammar (issue 53): quantities, operations and relations read as one expression a tool
evaluates, with the operations and formulas as DATA (formulas.yaml) and the languages as data (languages.yaml).

    question := LEAD? (phrase | expression) TAIL?
    expression := term (OPERATOR term)*          OPERATOR: the language's infix words ("mal", "divided by")
    term := number | phrase whose slots are quantities ("the square root of {x:q}", "{p:pct} von {x:q}")

A phrase is a formula's wording in one language: literal words, optional words, and typed slots ({x:q} a
quantity, read recursively, so formulas compose; {n:int}, {p:pct}, {a:money}, {d:date}, {r:roman}, {m:matrix3}
typed values, quantities.py). A phrase must match the WHOLE question and every slot must bind as a whole; every
reading of every language is collected, and the question is answered only when they all agree on one tool call
("the square root of 9 plus 16": sqrt(9) + 16 or sqrt(25)? two readings, so the planner gets it)."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from planner.preflight.lexicon import Question, numbers_from_words, stray_quote, strip_request
from planner.preflight.quantities import READERS, number

Hit = tuple[str, dict[str, Any]]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
HERE = Path(__file__).parent
SLOT = re.compile(r"\{(\w+):(\w+)\}")
MAX_DEPTH = 3
MAX_READINGS = 8
VALUE = re.compile(r"\d|\b[IVXLCDM]{1,15}\b")
NEVER = re.compile(r"(?!)")
GROUP = re.compile(r"\(\?P<\w+>")
OPENING_SLOT = "(?:.+?)"  # a slot at the start of a phrase, its group unnamed (GROUP)


@dataclass(frozen=True)
class Phrase:
    formula: dict[str, Any]
    pattern: re.Pattern[str]
    slots: dict[str, str]  # slot name -> type
    bare: bool = False  # nothing but one slot ("{f:frac}"): it reads any text, so no union can rule it out


@dataclass
class Language:
    name: str
    data: dict[str, Any]
    leads: re.Pattern[str]
    tails: re.Pattern[str]
    operators: re.Pattern[str]
    phrases: list[Phrase] = field(default_factory=list)
    terms: list[Phrase] = field(default_factory=list)
    # one pattern that reads a text as a whole when any of the phrases (or terms) with words of their own does:
    # most texts are no phrase at all, and one match of the union costs far less than a match per phrase (issue
    # 52); the bare phrases are read always. Set by `languages`
    any_phrase: re.Pattern[str] = NEVER
    any_term: re.Pattern[str] = NEVER

    def candidates(self, text: str, terms_only: bool = False) -> list[Phrase]:
        """The phrases (or terms) that may read `text` as a whole, in their order."""
        phrases = self.terms if terms_only else self.phrases + self.terms
        if (self.any_term if terms_only else self.any_phrase).fullmatch(text):
            return phrases
        return [p for p in phrases if p.bare]


def _alternation(words: list[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


def _union(phrases: list[Phrase]) -> re.Pattern[str]:
    """The patterns of the phrases that are not bare as one alternation, their groups unnamed (a name may repeat
    across phrases). The phrases that open with a slot (after optional words: `_slot_first`) share one leading `.+?`
    (the same texts match: .+?A|.+?B is .+?(?:A|B)), so a text is scanned once for all of them, not once each."""
    sources = [_slot_first(GROUP.sub("(?:", p.pattern.pattern)) for p in phrases if not p.bare]
    rests = [source.removeprefix(OPENING_SLOT) for source in sources if source.startswith(OPENING_SLOT)]
    alternatives = [f"(?:{source})" for source in sources if not source.startswith(OPENING_SLOT)]
    if rests:
        alternatives.append(f"{OPENING_SLOT}(?:{'|'.join(f'(?:{rest})' for rest in rests)})")
    return re.compile("|".join(alternatives), I) if alternatives else NEVER


def _slot_first(source: str) -> str:
    """A pattern that opens with optional words and then a slot ("(?:the\\s+)?(?:.+?)..."), without the optional
    words: the slot reads them too (a text holds no line break), so the same texts match."""
    if not source.startswith("(?:"):
        return source
    depth, i = 0, 0
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 1
        elif char == "[":
            i = source.index("]", i + 2)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                break
        i += 1
    rest = source[i + 1:]
    return rest[1:] if rest.startswith("?" + OPENING_SLOT) else source


def _compile(text: str, words: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
    slots = {m[1]: m[2] for m in SLOT.finditer(text)}
    source = re.sub(r"<(\w+)>", lambda m: f"(?:{words[m[1]]})", text)
    source = SLOT.sub(lambda m: f"(?P<{m[1]}>.+?)", source)
    return re.compile(source.replace(" ", r"\s+"), I), slots


@lru_cache(maxsize=1)
def languages() -> dict[str, Language]:
    """The languages and their phrases, read once from languages.yaml and formulas.yaml."""
    langs = yaml.safe_load((HERE / "languages.yaml").read_text(encoding="utf-8"))
    formulas = yaml.safe_load((HERE / "formulas.yaml").read_text(encoding="utf-8"))
    out: dict[str, Language] = {}
    for name, data in langs.items():
        ops = [re.escape(o) for o in data["operators"]]
        words_ops = [o for o in ops if re.match(r"\w", o)]
        symbol_ops = [o for o in ops if not re.match(r"\w", o)]
        operators = re.compile(rf"\s+(?P<op>{_alternation(words_ops)})\s+|\s+(?P<sym>{_alternation(symbol_ops)})\s+",
                               I)
        lang = Language(name, data, re.compile(rf"^(?:{_alternation(data['leads'])})\s+", I),
                        re.compile(rf"(?:,?\s+(?:{_alternation(data['tails'])}))+$", I), operators)
        words = formulas.get("words", {}).get(name, {})
        for formula in formulas["formulas"]:
            for text in formula.get("phrases", {}).get(name, []):
                pattern, slots = _compile(text, words)
                phrase = Phrase(formula, pattern, slots, bare=not SLOT.sub("", text).strip())
                (lang.terms if formula.get("term") else lang.phrases).append(phrase)
        lang.any_phrase, lang.any_term = _union(lang.phrases + lang.terms), _union(lang.terms)
        out[name] = lang
    return out


def _wrap(value: str) -> str:
    return value if re.fullmatch(r"\d+(?:\.\d+)?", value) else f"({value})"


def _bind(phrase: Phrase, text: str, lang: Language, depth: int) -> list[dict[str, Any]]:
    """Every binding of the phrase's slots that reads the whole text."""
    m = phrase.pattern.fullmatch(text)
    if not m:
        return []
    choices: list[list[Any]] = []
    for name, kind in phrase.slots.items():
        if kind == "q":
            values: list[Any] = sorted(quantities(m[name], lang, depth + 1))
        else:
            value = READERS[kind](m[name], lang.data)
            values = [] if value is None else [value]
        if not values:
            return []
        choices.append(values)
    names = list(phrase.slots)
    bound = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]
    limits = phrase.formula.get("limits", {})
    return [b for b in bound if all(lo <= float(b[k]) <= hi for k, (lo, hi) in limits.items())]


def _expression(formula: dict[str, Any], values: dict[str, Any]) -> str:
    flat: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, list):
            flat.update({f"{name}{i}": _wrap(v) for i, v in enumerate(value)})
        else:
            flat[name] = _wrap(value)
    return str(formula["expression"]).format(**flat)


@lru_cache(maxsize=2048)
def _quantities(text: str, lang_name: str, depth: int) -> frozenset[str]:
    lang = languages()[lang_name]
    text = text.strip()
    plain = number(text, lang.data) or READERS["money"](text, lang.data)
    if plain is not None:
        return frozenset({plain})
    if depth > MAX_DEPTH:
        return frozenset()
    out: set[str] = set()
    parts = lang.operators.split(text)
    if len(parts) > 1:  # operands and operators alternate: [a, op, None, b, None, sym, c ...]
        operands, symbols = parts[0::3], [(w or s) for w, s in zip(parts[1::3], parts[2::3], strict=True)]
        readings = [sorted(_quantities(o, lang_name, depth + 1)) for o in operands]
        for combo in itertools.product(*readings):
            expression = _wrap(combo[0])
            for symbol, operand in zip(symbols, combo[1:], strict=True):
                expression += f" {lang.data['operators'][symbol.lower()]} {_wrap(operand)}"
            out.add(expression)
    for phrase in lang.candidates(text, terms_only=True):
        out.update(_expression(phrase.formula, b) for b in _bind(phrase, text, lang, depth))
    return frozenset(sorted(out)[:MAX_READINGS + 1])


def quantities(text: str, lang: Language, depth: int = 0) -> frozenset[str]:
    """Every expression the text reads as in the language (a number, an infix expression, a formula's term)."""
    return _quantities(" ".join(text.split()), lang.name, depth)


def _hit(formula: dict[str, Any], values: dict[str, Any]) -> Hit:
    if formula.get("tool", "calculate") == "calculate":
        return "calculate", {"expression": _expression(formula, values)}
    args: dict[str, Any] = {}
    for key, template in formula["args"].items():
        text = str(template).format(**values) if isinstance(template, str) else template
        args[key] = int(text) if key in formula.get("ints", []) else text
    return formula["tool"], args


def _bodies(text: str, lang: Language) -> set[str]:
    """The question without the language's lead-in and courtesy tail (and as it stands: a phrase may name its
    own question words)."""
    text = lang.tails.sub("", text.strip())
    bodies = {text}
    if not any(other.leads.match(text) for other in languages().values() if other.name != lang.name):
        bodies.add(strip_request(text))  # the shared lead-ins, unless another language's own starts the question
    bodies |= {lang.leads.sub("", b, count=1) for b in set(bodies)}
    return {b.strip() for b in bodies if b.strip()}


def readings(q: Question) -> set[tuple[str, str]]:
    """Every (tool, arguments) reading of the question in every language."""
    found: set[tuple[str, str]] = set()
    for lang in languages().values():
        text = numbers_from_words(q.text) if lang.name == "en" else q.text
        for body in _bodies(text or "", lang):
            for phrase in lang.candidates(body):
                for values in _bind(phrase, body, lang, 0):
                    tool, args = _hit(phrase.formula, values)
                    found.add((tool, json.dumps(args, sort_keys=True)))
            if lang.operators.search(body):
                found.update(("calculate", json.dumps({"expression": e})) for e in quantities(body, lang)
                             if number(e, lang.data) is None)
    return found


def compose(q: Question) -> Hit | None:
    """The one tool call every reading of the question agrees on, or None."""
    if q.quoted or stray_quote(q.text) or len(q.text) > 300 or not VALUE.search(numbers_from_words(q.text) or ""):
        return None  # every formula binds a number or a numeral: a question with neither is none of them
    found = readings(q)
    if len(found) != 1:
        return None
    tool, args = next(iter(found))
    return tool, json.loads(args)
