"""Argument binding for the preflight's intent path (intent): every argument from a typed value found in
the text, never a guess. Each binder finds its family's typed values (round 1's readers: netfacts, money, bases,
dates_typed, stats_typed, units), refuses when an argument has no candidate or two, and hands the values in a
canonical phrasing to the strict reader of its tool, so the arguments pass the same checks (ranges, valid
numerals, convertible units, compounding words) as on the strict path. None: the planner decides."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from planner.preflight import german
from planner.preflight.bases import BASES, number_base
from planner.preflight.dates import parse_date
from planner.preflight.dates_typed import DATES, DURATION, dates_typed
from planner.preflight.lexicon import INT, NUM, Question, numbers_from_words
from planner.preflight.money import AMOUNT, CURRENCY, FREQUENCY_WORD, PER_PERIOD, PERCENT, finance_typed
from planner.preflight.money import DURATION as YEARS
from planner.preflight.netfacts import ANY, CIDR, IP, PREFIX
from planner.preflight.numbers import primes
from planner.preflight.stats_typed import LIST, statistics_typed
from planner.preflight.units import convert, unit_name, units_convertible

Hit = tuple[str, dict[str, Any]]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
LITERAL = re.compile(r"(?<![\w.])0(?P<k>[xbo])(?P<d>[0-9a-f]+)(?![\w.])", I)
INTEGER = re.compile(rf"(?<![\w.,/:-])(?:{INT})(?![\w./%-]|:\d|[.,]\d)")  # "7918: largest ..." is no time
NUMBER = re.compile(rf"(?<![\w.,/:-])(?P<v>{NUM})\s?(?P<u>[^\W\d_][\w/^\u00b0\u00b5]*(?:\s+[^\W\d_]+){{0,2}})", I)
BASE_WORD = re.compile(r"\b(?:hexadecimal|hexadezimal|hexzahl|hex|binary|binär\w*|bin|octal|oktal|decimal|dezimal|"
                       r"dec)\b", I)
# an arrow is the terse register's "to": "66792 -> binary", "921.2 miles => feet", "10.0.0.0/22 -> broadcast"
ARROW_TO = re.compile(r"\s*(?:->|=>|\u2192)\s*")
TARGET = re.compile(r"(?:\b(?:in|into|to|as|nach|umgerechnet in|how many|wie ?viele?)|=\s*\??)\s+"
                    r"(?P<t>[^\W\d_][\w/^\u00b0\u00b5]*(?:\s+[^\W\d_]+){0,2})", I)
EVERY_TARGET = re.compile(rf"(?={TARGET.pattern})", I)  # overlapping: each connective with what follows it
# a numeral named by its base word ("hex ab12", "binary 1011"): a typed value of that base
NAMED = re.compile(r"\b(?P<w>hexadecimal|hex|binary|bin|octal|oct)\s+(?:number\s+|value\s+)?(?P<d>[0-9a-f]+)\b"
                   r"(?!\s+(?:in|to|into|as)\s+(?:hex|bin|oct))", I)
NAMED_BASE = {"hexadecimal": 16, "hex": 16, "binary": 2, "bin": 2, "octal": 8, "oct": 8}
INSIDE = re.compile(r"\b(?:in|inside|within|part of|belongs?|contain\w*|includes?|im|innerhalb|gehört|liegt)\b", I)
SIZE = re.compile(r"\b(?:mask|netmask|maske|netzmaske|wildcard|hosts?|devices?|addresses|adressen|usable|nutzbare\w*|"
                  r"size|größe)\b", I)
PREFIX_ASKED = re.compile(r"\b(?:cidr|prefix|präfix|slash|notation|length)\b", I)


# "one" as a pronoun ("quick one: 5 km in miles", "which one is the broadcast"): after a determiner or before a
# pause, not a number
PRONOUN_ONE = re.compile(r"\b(?:(?<=which )|(?<=this )|(?<=that )|(?<=the )|(?<=each )|(?<=any )|(?<=quick )|"
                         r"(?<=another ))one\b|\bone\b(?=\s*(?:[:;!?]|\s-\s|$))", I)
# a base named as the result ("when written in decimal", "expressed as hex"): the other base word is the source's
TARGET_BASE = re.compile(r"\b(?:written|expressed|converted|shown|represented|displayed)\s+(?:in|as|into|to)\s+"
                         r"(?P<w>hexadecimal|hexadezimal|hex|binary|bin|octal|oktal|decimal|dezimal|dec)\b", I)


def _numbers(text: str) -> str:
    text = PRONOUN_ONE.sub("it", text)
    return numbers_from_words(text) or text


def _list_end(text: str) -> str:
    """A comma or a full stop after a list before the words go on ("4, 8, 15, what's the median", "4, 8, 15. What's
    the median") is not part of the list."""
    return re.sub(r"(?<=\d)([,.])(?=\s+[^\W\d_])", r" \1", text)


def typed_families(text: str) -> set[str]:
    """The families whose typed values the text holds (what the scoring's 2 points are for)."""
    plain = _numbers(text)
    found: set[str] = set()
    if CIDR.search(text) or IP.search(text) or PREFIX.search(text):
        found.add("subnet")
    if DATES.search(text) or DATES.search(german.decimal_commas(text) or text):
        found.add("dates")
    currencies = {m[0].lower() for m in CURRENCY.finditer(text)}
    if currencies - {"pounds"} or (currencies and not _mass_pounds(plain)) or \
            (PERCENT.search(text) and YEARS.search(text)):
        found.add("finance")
    listed = LIST.search(_list_end(plain))
    if listed and len(re.findall(r"\d+(?:\.\d+)?", listed[0])) >= 3:
        found.add("statistics")
    if "subnet" not in found and "dates" not in found:
        if LITERAL.search(text) or NAMED.search(text) or (INTEGER.search(plain) and BASE_WORD.search(plain)):
            found.add("bases")
        if INTEGER.search(plain) and re.search(r"\bprim", plain, I):
            found.add("primes")
        german_plain = german.decimal_commas(plain) or plain if german.UNIT_WORD.search(plain) else plain
        if any(_longest_unit(m["u"]) for m in NUMBER.finditer(german.units_in_english(german_plain))):
            found.add("units")
    return found


def _mass_pounds(text: str) -> bool:
    """'833.8 pounds => ounces': pounds converted to a mass unit are a weight, not a currency."""
    return any(unit_name(m["t"].split()[0]) and units_convertible("pound", unit_name(m["t"].split()[0]) or "")
               for m in TARGET.finditer(ARROW_TO.sub(" to ", text)))


def subnet(text: str) -> Hit | None:
    nets, ips, prefixes = CIDR.findall(text), IP.findall(text), [m["n"] for m in PREFIX.finditer(text)]
    rest = PREFIX.sub(" ", IP.sub(" ", CIDR.sub(" ", text)))
    if re.search(r"\d", _numbers(rest)):
        return None  # a number (or a number word: "two /24 blocks") no subnet value binds
    if re.search(r"\b(?:first|last|highest|lowest|erste\w*|letzte\w*)\b", rest, I) and \
            not re.search(r"\b(?:usable|hosts?|nutzbare\w*|verwendbare\w*)\b", rest, I):
        return None  # "the last address": the broadcast address or the last usable host?
    if len(nets) == 1 and not ips and not prefixes:
        return "subnet_calc", {"network": nets[0]}
    if len(nets) == 1 and len(ips) == 1 and not prefixes and INSIDE.search(rest):
        return "subnet_calc", {"network": nets[0], "contains": ips[0]}
    if not nets and not ips and len(prefixes) == 1 and SIZE.search(rest) and 0 <= int(prefixes[0]) <= 32:
        return "subnet_calc", {"network": f"{ANY}/{prefixes[0]}"}
    if not nets and not prefixes and len(ips) == 1 and PREFIX_ASKED.search(rest) and ips[0] != ANY:
        try:
            ipaddress.IPv4Network(f"{ANY}/{ips[0]}")
        except ValueError:
            return None  # not a contiguous mask
        return "subnet_calc", {"network": f"{ANY}/{ips[0]}"}
    return None


def bases(text: str) -> Hit | None:
    plain = _numbers(text)
    named = [m for m in NAMED.finditer(plain) if _valid(m["d"], NAMED_BASE[m["w"].lower()])]
    if len(named) == 1 and not LITERAL.search(plain):  # "hex ab12": the numeral and its base are one typed value
        prefix = _PREFIX[NAMED_BASE[named[0]["w"].lower()]]
        plain = plain[:named[0].start()] + f"{prefix}{named[0]['d']}" + plain[named[0].end():]
    literals, integers = list(LITERAL.finditer(plain)), INTEGER.findall(LITERAL.sub(" ", plain))
    names = {_base_of(w) for w in BASE_WORD.findall(LITERAL.sub(" ", plain))}
    if len(literals) + len(integers) != 1 or 0 in names or re.search(r"\d", INTEGER.sub(" ", LITERAL.sub(" ", plain))):
        return None
    if literals:
        source = {"x": 16, "b": 2, "o": 8}[literals[0]["k"].lower()]
        targets = names - {source}
        value = literals[0][0]
    else:
        targets, value = names, integers[0].replace(",", "")
        marked = {_base_of(m["w"]) for m in TARGET_BASE.finditer(plain)}
        if len(targets) == 2 and len(marked) == 1 and marked < targets:  # "1010 in binary when written in decimal"
            source = (targets - marked).pop()
            attached = re.search(rf"(?<![\w.]){re.escape(value)}\s+(?:in|as)\s+(?P<w>{BASE_WORD.pattern})", plain, I)
            if not attached or _base_of(attached["w"]) != source or not _valid(value, source) or \
                    re.search(r"\b(?:and|und|or|oder)\b", plain, I):
                return None  # the other base word is not the numeral's own ("10 written in hex and in binary")
            value, targets = f"{_PREFIX[source]}{value}" if source != 10 else value, marked
    if len(targets) != 1:
        return None  # no target base, or two ("what is 1010 in binary when written in decimal": which way?)
    name = {2: "binary", 8: "octal", 10: "decimal", 16: "hex"}[targets.pop()]
    return number_base(Question(raw=text, text=f"{value} to {name}"))


_PREFIX = {16: "0x", 2: "0b", 8: "0o"}


def _base_of(word: str) -> int:
    w = word.lower()
    return BASES.get(w, 16 if w.startswith("hex") else 2 if w.startswith("bin") else 0)


def _valid(digits: str, base: int) -> bool:
    try:
        int(digits, base)
    except ValueError:
        return False
    return True


def prime(text: str) -> Hit | None:
    plain = _numbers(text)
    integers = INTEGER.findall(plain)
    if len(integers) != 1 or re.search(r"\d", INTEGER.sub(" ", plain)):
        return None  # no number or two, or a digit no integer binds ("the 3rd largest")
    n = integers[0].replace(",", "")
    if re.search(r"\b(?:largest|biggest|greatest|highest|größte\w*|höchste\w*)\b", text, I):
        canonical = f"largest prime factor of {n}"
    elif re.search(r"\b(?:smallest|lowest|least|kleinste\w*)\b", text, I):
        canonical = f"smallest prime factor of {n}"
    elif re.search(r"\b(?:factor\w*|primfaktor\w*|zerleg\w*)\b", text, I):
        canonical = f"prime factorization of {n}"
    else:
        return None  # "is it prime", "the next prime", "primes below": not this reader's question
    return primes(Question(raw=text, text=canonical))


MONTHLY = re.compile(r"\b(?:monthly|(?:a|per|each) month|monatsrate|monatliche\w*)\b", I)  # what a payment is per


def finance(text: str) -> Hit | None:
    body = german.decimal_commas(text) if re.search(r"\d,\d{1,2}\b", text) else text
    if body is None:
        return None
    percents, years = PERCENT.findall(body), YEARS.findall(body)
    rest = YEARS.sub(" ", PERCENT.sub(" ", body))
    amounts = [a or b for a, b in AMOUNT.findall(rest)]
    if len(percents) != 1 or len(amounts) != 1 or len(years) > 1:
        return None
    amount, rate = f"${amounts[0]}", f"{percents[0]}%"
    duration = f"{years[0][0]} {years[0][1]}" if years else ""
    frequencies = [m[0].lower() for m in FREQUENCY_WORD.finditer(body)]  # "deposit monthly ... compounded monthly": two
    kinds = {kind for kind, cue in (
        ("tip", r"\b(?:tip|gratuity|trinkgeld)\b"), ("loan", r"\b(?:loan|mortgage|borrow\w*|kredit|darlehen|monatsrate|"
                                                          r"monthly payment)\b"),
        ("compound", r"\b(?:compound\w*|zinseszins\w*)\b"), ("simple", r"\bsimple\b")) if re.search(cue, body, I)}
    if len(kinds) != 1 or len(frequencies) > 1:
        return None  # no operation named, or two: which one?
    kind = kinds.pop()
    per_period = PER_PERIOD.search(body) or re.search(r"\b(?:a|per|each|every|pro) (?:month|monat|week|woche|day|"
                                                      r"tag)\b", body, I)
    if (kind == "tip" and re.search(r"\b(?:total|per|each|with|plus|including|split|altogether)\b", body, I)) or \
            (kind == "loan" and (re.search(r"\b(?:total|overall|interest paid|altogether)\b", body, I) or
                                 not MONTHLY.search(body))) or \
            (kind != "loan" and per_period):
        return None  # the bill with the tip, a tip per person, the total paid, a monthly deposit: not the reading
    if kind == "tip":
        canonical = f"tip {rate} on {amount}" if not years and not frequencies else ""
    elif kind == "loan":
        canonical = f"monthly payment on a {amount} loan at {rate} for {duration}" if years and \
            not [f for f in frequencies if f != "monthly"] else ""
    elif kind == "compound":
        every = f" compounded {frequencies[0]}" if frequencies else ""
        canonical = f"compound interest on {amount} at {rate}{every} for {duration}" if years else ""
    else:
        canonical = f"simple interest on {amount} at {rate} for {duration}" if years and not frequencies else ""
    return finance_typed(Question(raw=text, text=canonical)) if canonical else None


def dates(text: str) -> Hit | None:
    plain = _numbers(text)
    found = [m[0] for m in DATES.finditer(plain)]
    if any(parse_date(d) is None and german.parse_date(d) is None for d in found):
        return None
    skeleton = DATES.sub(" ", plain)
    durations = list(DURATION.finditer(skeleton))
    if re.search(r"\d", DURATION.sub(" ", skeleton)):
        return None  # a number no date value binds
    reversed_order = len(found) == 2 and re.search(rf"\b(?:from|since|vom|von|seit)\s+(?:the\s+|dem\s+)?"
                                                   rf"{re.escape(found[1])}", plain, I)
    if len(found) == 2 and not durations and not reversed_order and re.search(r"\b(?:days|tage)\b", skeleton, I):
        canonical = f"days between {found[0]} and {found[1]}"
    elif len(found) == 1 and not durations and re.search(r"\b(?:weekday|day of the week|wochentag)\b", skeleton, I):
        canonical = f"what weekday is {found[0]}"
    elif len(found) == 1 and len(durations) == 1:
        after = re.search(r"\b(?:after|later|plus|from|nach|since)\b|\+", skeleton, I)
        before = re.search(r"\b(?:before|earlier|prior|minus|ago|vor)\b", skeleton, I)
        if bool(after) == bool(before):
            return None  # which way?
        canonical = f"{durations[0][0]} {'after' if after else 'before'} {found[0]}"
    else:
        return None
    return dates_typed(Question(raw=text, text=canonical))


def units(text: str) -> Hit | None:
    plain = german.units_in_english(german.decimal_commas(text) or text) if german.UNIT_WORD.search(text) else text
    plain = _numbers(plain)
    sources = [(m["v"], _longest_unit(m["u"])) for m in NUMBER.finditer(plain)]
    sources = [(v, u) for v, u in sources if u]
    targets = {_longest_unit(m["t"]) for m in EVERY_TARGET.finditer(plain)} - {None}  # "to m to cm": two
    if len(sources) != 1 or len(re.findall(r"\d+(?:[.,]\d+)?", plain)) != 1:
        return None
    value, source = sources[0]
    if re.search(r"\b(?:and|und|or|oder)\b", plain[plain.index(value):], I):
        return None  # "in Fahrenheit and Kelvin": two targets
    targets = {t for t in targets if t and unit_name(t) != unit_name(source or "")}
    if len(targets) != 1:
        return None  # no target unit, or two
    return convert(Question(raw=text, text=f"{value} {source} to {targets.pop()}"))


# words pint reads as units (or as the start of one) that are none here
NOT_UNITS = {"in", "a", "an", "as", "at", "to", "of", "on", "by", "or", "and", "the", "is", "for", "percent", "prozent"}


# one-letter unit symbols with one meaning after a number ("168 lb -> g", "207.3 min to s"); k, K, M, t stay out
SYMBOLS = {"g", "m", "s", "h", "l", "L", "J"}


def _longest_unit(words: str) -> str | None:
    """The longest run of leading words (up to three) that names a unit: 'miles per hour here' -> 'miles per hour'.
    A function word is in no unit ('meters in' is no meter-inch); a capitalised name ('Yards', German nouns) is
    read in lower case when only that form is a unit."""
    parts = words.split()
    if not parts or parts[0].lower() in NOT_UNITS:
        return None
    for n in range(min(3, len(parts)), 0, -1):
        candidate = " ".join(parts[:n])
        if any(p.lower() in NOT_UNITS for p in parts[:n]) or (len(candidate) == 1 and candidate not in SYMBOLS):
            continue
        if unit_name(candidate):
            return candidate
        if len(candidate) > 2 and candidate[0].isupper() and candidate[1:].islower() and unit_name(candidate.lower()):
            return candidate.lower()
    return None


def statistics(text: str) -> Hit | None:
    text = _list_end(text)
    lists = LIST.findall(text)
    if len(lists) != 1 or re.search(r"\d", LIST.sub(" ", text)):
        return None
    return statistics_typed(Question(raw=text, text=f"mean of {lists[0]}"))


BINDERS: dict[str, Callable[[str], Hit | None]] = {
    "subnet": subnet, "bases": bases, "primes": prime, "finance": finance, "dates": dates, "units": units,
    "statistics": statistics,
}
