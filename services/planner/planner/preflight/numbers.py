"""Subnets, Roman numerals, primes (and the largest/smallest prime factor), gcd/lcm, statistics on a list and
money (interest, loans, percent change): each a small grammar over the whole question."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.lexicon import INT, NUM, Question, numbers_from_words, plain_number, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
Hit = tuple[str, dict[str, Any]]
CIDR = r"\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}/\d{1,3}"
IP = r"\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}"
FACT = (r"(?:(?:sub)?net ?mask|mask|wildcard(?: mask)?|host ?mask|broadcast(?: address)?|network(?: address| id)?|"
        r"(?:usable )?(?:host|ip|address) range|range|prefix(?: length)?|(?:total )?(?:number of )?(?:usable )?"
        r"(?:hosts?|addresses|ips|ip addresses)|(?:first|last)(?: usable)? (?:host|address|ip)(?: address)?|"
        r"details|info(?:rmation)?|cidr|facts)")
# Roman-looking words and abbreviations: without "roman" or "numeral" in the question they are not numerals
COLLISIONS = {"MIX", "DIV", "DC", "CD", "MD", "CV", "MC", "DL", "LI", "MI", "DI", "CI", "VI", "MM", "CC", "XL", "XXL",
              "XXX", "CLI", "MIL", "LIV", "CIV", "DIX", "LX", "DCC", "MCC", "CCC", "ML", "MDC", "CM", "DM", "MIV", "XI"}
ROMAN = r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})"
LIST = rf"(?P<ns>(?:{NUM})(?:(?:\s*,\s*|\s+and\s+|,\s*and\s+|\s+)(?:{NUM}))+)"
MONEY = r"[$\u20ac\u00a3]?\s?(?P<p>" + NUM + r")(?:\s?(?:dollars|euros?|pounds|usd|eur|gbp))?"


def subnet(q: Question) -> Hit | None:
    body = strip_request(q.text)
    nets = re.findall(CIDR, body, I)
    if len(nets) != 1:
        return None
    net = rf"(?:the |a |an )?(?:subnet |network |range |block )?(?:{CIDR})(?: (?:subnet|network|block|range))?"
    m = re.fullmatch(rf"(?:is|does)\s+(?P<ip>{IP})\s+(?:in|inside|within|part of|belong to|fall in|fall within|"
                     rf"contained in|included in)\s+{net}", body, I)
    if m and not re.fullmatch(CIDR, m["ip"]):
        return "subnet_calc", {"network": nets[0], "contains": m["ip"]}
    shapes = [rf"(?:the )?{FACT}(?:(?:,| and| &) (?:the )?{FACT})* (?:of|for|in|on) {net}",
              rf"how many (?:usable )?(?:hosts|addresses|ips|ip addresses) (?:are |can )?(?:there )?(?:be )?"
              rf"(?:in|on|for) {net}", rf"how many (?:usable )?(?:hosts|addresses) (?:can|does) {net} (?:have|hold)",
              rf"(?:subnet|cidr|calculate|analy[sz]e|details of|info on) {net}",
              rf"{net}(?: subnet)?(?: details| info)?"]
    if any(re.fullmatch(shape, body, I) for shape in shapes):
        return "subnet_calc", {"network": nets[0]}
    return None


def _compiled(*shapes: str) -> list[re.Pattern[str]]:
    return [re.compile(shape, I) for shape in shapes]


def _first(shapes: list[re.Pattern[str]], body: str) -> re.Match[str] | None:
    return next((m for shape in shapes if (m := shape.fullmatch(body))), None)


# compiled once: the preflight reads every question with them (issue 52)
TO_ROMAN = _compiled(
    rf"(?P<n>{INT})\s+(?:in|as|to|into)\s+(?:a\s+)?roman(?: numerals?)?",
    rf"(?:convert|write|express) (?P<n>{INT}) (?:in|as|to|into) (?:a )?roman(?: numerals?)?",
    rf"(?:the )?roman numerals? (?:for|of) (?P<n>{INT})")
FROM_ROMAN = _compiled(
    r"(?:(?:convert|translate) )?(?:the roman numerals? )?(?P<r>[ivxlcdm]{1,15})(?: (?:in|to|into|as) "
    r"(?:an? )?(?:arabic |decimal |normal |regular )?(?:numbers?|numerals?|integer|digits)| mean| in "
    r"roman numerals?)?",
    r"(?:what )?(?:number )?(?:is|does) (?:the roman numeral )?(?P<r>[ivxlcdm]{1,15})(?: mean|"
    r" stand for| as an? (?:number|integer)| in (?:arabic |roman )?(?:numbers?|numerals?|digits))?",
    r"(?:the )?roman numeral (?P<r>[ivxlcdm]{1,15})")
ROMAN_RE = re.compile(ROMAN)
PRIMES = _compiled(
    rf"(?:the )?(?:prime factori[sz]ation|prime factors|prime decomposition|factori[sz]ation) of (?P<n>{INT})",
    rf"(?:factori[sz]e|factor) (?P<n>{INT})",
    rf"is (?P<n>{INT}) (?:a )?prime(?: number)?",
    rf"(?:die )?(?:primfaktoren|primfaktorzerlegung|primzahlzerlegung|zerlegung in primfaktoren) "
    rf"(?:von|f\u00fcr|der zahl) (?P<n>{INT})|zerlege (?P<d>{INT}) in primfaktoren")


def roman(q: Question) -> Hit | None:
    body = strip_request(q.text)
    m = _first(TO_ROMAN, body)
    if m:
        return "roman_numeral", {"value": int(plain_number(m["n"]))}
    m = _first(FROM_ROMAN, body)
    if not m or not ROMAN_RE.fullmatch(m["r"].upper()):
        return None
    named = re.search(r"roman|numeral", body, I)
    if not named and (m["r"] != m["r"].upper() or m["r"] in COLLISIONS or len(m["r"]) < 3):
        return None  # "what does DIV mean": a word or an abbreviation, not a numeral
    if m[0] == m["r"] or not re.search(r"roman|number|numeral|integer|digits|mean|stand", body, I):
        return None
    return "roman_numeral", {"value": m["r"].upper()}


# the grammars every question meets, compiled once (issue 52)
IN_WORDS = [re.compile(pattern, I) for pattern in (
    rf"(?:(?:write|spell|say|express)(?: out)? )?(?P<n>-?(?:{INT})) (?:spelled out |written out )?"
    rf"in (?:english )?words",
    rf"(?:how (?:do you|to) )?(?:write|spell|say) (?P<n>-?(?:{INT})) in (?:english )?words")]
_RATE = rf"(?P<r>{NUM})\s?(?:%|percent)"
_PERIOD = r"(?: (?:compounded|compounding) (?P<c>annually|yearly|monthly|quarterly|daily|semi-annually))?"
INTEREST = [re.compile(pattern, I) for pattern in (
    rf"(?:the )?(?P<k>compound|simple) interest on {MONEY} at {_RATE}(?: (?:a|per) year| annual(?:ly)?)?"
    rf"{_PERIOD} (?:for|over) (?P<y>\d{{1,3}}) years?",
    rf"(?:how much )?(?:what )?will {MONEY} (?:grow to|be worth) at {_RATE}{_PERIOD} (?:for|over|in|after) "
    rf"(?P<y>\d{{1,3}}) years?")]


def in_words(q: Question) -> Hit | None:
    body = strip_request(q.text)
    m = next((m for pattern in IN_WORDS if (m := pattern.fullmatch(body))), None)
    return ("number_words", {"value": int(plain_number(m["n"]))}) if m else None


def primes(q: Question) -> Hit | None:
    body = strip_request(q.text)
    m = _first(PRIMES, body)
    if not m:
        extreme = r"(?:the )?(?:largest|biggest|greatest|highest|smallest|lowest|least) prime"
        m = re.fullmatch(rf"{extreme} (?:factor|divisor) of (?P<n>{INT})|"
                         rf"{extreme} (?:that|which) (?:divides|goes into|fits into) (?P<d>{INT})",
                         numbers_from_words(body) or "", I)
        if m and int(plain_number(m["n"] or m["d"])) < 2:
            return None  # 0 and 1 have no prime factor
    n = plain_number(m["n"] or m["d"]) if m else ""
    return ("prime_factorize", {"n": n}) if m and len(n) <= 40 else None


def gcd_lcm(q: Question) -> Hit | None:
    body = strip_request(q.text)
    m = re.fullmatch(r"(?:the )?(?:gcd|gcf|hcf|greatest common (?:divisor|factor)|highest common factor|lcm|"
                     r"least common multiple|lowest common multiple) of "
                     r"(?P<ns>\d+(?:(?:\s*,\s*|\s+and\s+|,\s*and\s+)\d+)+)", body, I)
    return ("gcd_lcm", {"numbers": [int(n) for n in re.findall(r"\d+", m["ns"])]}) if m else None


def statistics(q: Question) -> Hit | None:
    body = strip_request(q.text)
    m = re.fullmatch(rf"(?:the )?(?:(?:arithmetic )?mean|average|median|mode|(?:sample |population )?"
                     rf"(?:standard deviation|variance)|range|sum|std ?dev)\s+of\s+"
                     rf"(?:the (?:numbers|values|data|list)\s+)?{LIST}", body, I)
    if not m:
        return None
    values = [plain_number(v) for v in re.findall(rf"{NUM}", re.sub(r",\s+", " , ", m["ns"]))]
    if any("," in v for v in values) or len(values) < 2:
        return None
    return "statistics_calc", {"values": values}


def finance(q: Question) -> Hit | None:
    body = numbers_from_words(strip_request(q.text)) or ""
    p, r = MONEY, _RATE
    per = {"annually": 1, "yearly": 1, "monthly": 12, "quarterly": 4, "daily": 365, "semi-annually": 2}
    m = next((m for pattern in INTEREST if (m := pattern.fullmatch(body))), None)
    if m:
        kind = m.groupdict().get("k") or "compound"
        args: dict[str, Any] = {"operation": f"{kind.lower()}_interest", "principal": plain_number(m["p"]),
                                "rate_percent": plain_number(m["r"]), "years": int(m["y"])}
        if m["c"]:
            if kind.lower() == "simple":
                return None
            args["periods_per_year"] = per[m["c"].lower()]
        return "decimal_finance", args
    m = re.fullmatch(rf"(?:the )?monthly (?:payment|repayment|installment) (?:on|for) (?:a |an )?{p} (?:loan|mortgage)"
                     rf" at {r}(?: interest)? (?:over|for) (?P<t>\d{{1,4}}) (?P<u>years?|months?)", body, I)
    if m:
        months = int(m["t"]) * (12 if m["u"].lower().startswith("y") else 1)
        return "decimal_finance", {"operation": "loan_payment", "principal": plain_number(m["p"]),
                                   "rate_percent": plain_number(m["r"]), "months": months}
    m = re.fullmatch(rf"(?:the )?(?:percentage|percent) (?:change|increase|decrease) from (?P<a>{NUM}) to (?P<b>{NUM})",
                     body, I)
    if m:
        return "decimal_finance", {"operation": "percent_change", "from_value": plain_number(m["a"]),
                                   "to_value": plain_number(m["b"])}
    return None
