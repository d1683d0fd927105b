"""Precision preflight: a deterministic recogniser for questions a tool answers exactly. The whole
question must match one rule (anchored patterns), so a mixed question ("17% of 2,340 and why?") is left
to the planner. A recognised question becomes one tool task with its arguments: no LLM call."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from moe_core.contracts import PlannedTask
from moe_core.contracts.tools import PRECISION_CATEGORY
from planner.preflight_units import units_convertible
from planner.tool_catalogue import ToolCatalogue

Hit = tuple[str, dict[str, Any]]
Rule = Callable[[str], Hit | None]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I

NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
         r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
DATE = (rf"\d{{4}}-\d{{2}}-\d{{2}}|{MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
        rf"|\d{{1,2}}(?:st|nd|rd|th)? {MONTH}\.?,? \d{{4}}")
ASK = r"(?:(?:what(?:'s| is| are)|calculate|compute|evaluate|how much is|find|tell me|give me|work out)\s+(?:the\s+)?)?"
WORDS = [(r"\bto the power of\b", "^"), (r"\bmultiplied by\b", "*"), (r"\bdivided by\b", "/"), (r"\btimes\b", "*"),
         (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\bover\b", "/"), (r"\bmod(?:ulo)?\b", "%"), (r"\bsquared\b", "^2"),
         (r"\bcubed\b", "^3"), (r"\bx\b", "*")]
FUNCS = r"sqrt|cbrt|exp|ln|log10|log2|log|sin|cos|tan|asin|acos|atan|sinh|cosh|tanh|abs|round|floor|ceil|factorial|pi"
EXPRESSION = re.compile(rf"^(?:[\d\s.+\-*/^%(),]|{FUNCS}|\be\b)+$", I)
MATHS = re.compile(rf"^(?:[\d\s.+\-*/^%()=,]|{FUNCS}|(?<![a-z])[a-z](?![a-z]))+$", I)
HASHES = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha224": "sha224", "sha-224": "sha224", "sha256": "sha256",
          "sha-256": "sha256", "sha384": "sha384", "sha-384": "sha384", "sha512": "sha512", "sha-512": "sha512",
          "sha3-256": "sha3_256", "sha3_256": "sha3_256", "sha3-512": "sha3_512", "sha3_512": "sha3_512",
          "blake2b": "blake2b", "blake2s": "blake2s"}


def number(text: str) -> str:
    return text.replace(",", "")


def iso_date(text: str) -> str | None:
    clean = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.strip().replace(".", "").replace(",", ""), flags=I)
    for fmt in ("%Y-%m-%d", "%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y"):
        try:
            return datetime.strptime(clean, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def unquote(text: str) -> str:
    text = text.strip()
    for left, right in (('"', '"'), ("'", "'"), ("`", "`"), ("\u201c", "\u201d"), ("\u2018", "\u2019")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            return text[1:-1]
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


# --- rules: each takes the normalised question and returns (tool, args) or None ----------------------


def percent_of(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?P<p>{NUM})\s*(?:%|percent)\s+of\s+(?P<x>{NUM})", q, I)
    return ("calculate", {"expression": f"{number(m['p'])}% of {number(m['x'])}"}) if m else None


def arithmetic(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?P<e>.+)", q, I)
    if not m:
        return None
    expr = m["e"]
    if re.search(r"\d{4}-\d{2}-\d{2}", expr) or re.fullmatch(r"[\d\s]+(?:-[\d\s]+)+", expr):
        return None  # a date or a phone number, not a subtraction
    for pattern, symbol in WORDS:
        expr = re.sub(pattern, symbol, expr, flags=I)
    expr = re.sub(r"\bsquare root of\s+(\S+)", r"sqrt(\1)", expr, flags=I)
    if not EXPRESSION.fullmatch(expr) or not re.search(r"\d", expr) or not _balanced(expr):
        return None
    if not re.search(rf"[+\-*/^%]|\b(?:{FUNCS})\b", expr.strip().lstrip("+-"), I):
        return None  # a bare number is not a calculation
    if not re.search(r"[a-z]", expr, I):
        expr = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", expr)  # thousands separators (no function arguments)
    return "calculate", {"expression": re.sub(r"\s+\^", "^", " ".join(expr.split()))}


UNIT = r"[a-z\u00b0\u00b5][a-z\u00b0\u00b5/^\d. ]{0,30}?"


def convert(q: str) -> Hit | None:
    patterns = [rf"(?:convert\s+)(?P<v>{NUM})\s*(?P<f>{UNIT})\s+(?:to|into|in)\s+(?P<t>{UNIT})",
                rf"{ASK}(?P<v>{NUM})\s*(?P<f>{UNIT})\s+(?:in|to|into|in terms of)\s+(?P<t>{UNIT})",
                rf"how many\s+(?P<t>{UNIT})\s+(?:are\s+)?(?:there\s+)?(?:in|is|are)\s+(?P<v>{NUM})\s*(?P<f>{UNIT})",
                rf"how many\s+(?P<t>{UNIT})\s+(?:are\s+)?(?:there\s+)?in\s+(?:a|an|one)\s+(?P<f>{UNIT})"]
    for pattern in patterns:
        m = re.fullmatch(pattern, q, I)
        if m:
            value = number(m["v"]) if m.groupdict().get("v") else "1"
            source, target = m["f"].strip(), m["t"].strip()
            if units_convertible(source, target):
                return "unit_convert", {"value": value, "from_unit": source, "to_unit": target}
    return None


def date_diff(q: str) -> Hit | None:
    m = re.fullmatch(rf"(?:how many|(?:what is )?the number of|count the)\s+(?:days|weeks|calendar days)\s+(?:are\s+)?"
                     rf"(?:there\s+)?(?:between|from)\s+(?P<a>{DATE})\s+(?:and|to|until|till)\s+(?P<b>{DATE})", q, I)
    if not m:
        m = re.fullmatch(rf"(?:days|number of days) (?:between|from) (?P<a>{DATE}) (?:and|to) (?P<b>{DATE})", q, I)
    start, end = (iso_date(m["a"]), iso_date(m["b"])) if m else (None, None)
    return ("date_diff", {"start": start, "end": end}) if start and end else None


def weekday(q: str) -> Hit | None:
    m = re.fullmatch(rf"(?:on\s+)?(?:what|which)\s+(?:day of the week|weekday|day)\s+(?:is|was|will be|falls on)\s+"
                     rf"(?P<d>{DATE})", q, I)
    day = iso_date(m["d"]) if m else None
    return ("day_of_week", {"date": day}) if day else None


def date_add(q: str) -> Hit | None:
    m = re.fullmatch(rf"what (?:date|day) (?:is|was|will it be)\s+(?P<n>\d{{1,5}})\s+(?P<u>days?|weeks?|months?|years?)"
                     rf"\s+(?P<dir>after|from|before)\s+(?P<d>{DATE})", q, I)
    if not m:
        m = re.fullmatch(rf"(?P<d>{DATE})\s+(?P<dir>plus|\+|minus|-)\s+(?P<n>\d{{1,5}})\s+"
                         rf"(?P<u>days?|weeks?|months?|years?)", q, I)
    day = iso_date(m["d"]) if m else None
    if not m or not day:
        return None
    sign = -1 if m["dir"].lower() in ("before", "minus", "-") else 1
    unit = m["u"].lower().rstrip("s") + "s"
    return "date_add", {"date": day, unit: sign * int(m["n"])}


def calendar(q: str) -> Hit | None:
    m = re.fullmatch(r"(?:is|was|will)\s+(?:the year\s+)?(?P<y>\d{1,4})\s+(?:be\s+)?a leap year", q, I) or \
        re.fullmatch(r"when (?:is|was|will be) easter(?: sunday)?(?: in)? (?P<y>\d{4})", q, I)
    if m:
        return "calendar_facts", {"year": int(m["y"])}
    m = re.fullmatch(rf"how many days (?:are |were )?(?:there )?in (?P<m>{MONTH}) (?P<y>\d{{4}})", q, I)
    if m:
        month = datetime.strptime(m["m"][:3].title(), "%b").month
        return "calendar_facts", {"year": int(m["y"]), "month": month}
    return None


def hashing(q: str) -> Hit | None:
    names = "|".join(re.escape(h) for h in sorted(HASHES, key=len, reverse=True))
    m = re.fullmatch(rf"{ASK}(?P<alg>{names})(?:\s+(?:hash|digest|checksum|sum))?\s+(?:of|for)\s+(?P<t>.+)", q, I)
    return ("hash_text", {"text": unquote(m["t"]), "algorithm": HASHES[m["alg"].lower()]}) if m else None


def base64(q: str) -> Hit | None:
    encode = re.fullmatch(r"(?:base ?64[- ]?encode|encode)\s+(?P<t>.+?)(?:\s+(?:in|to|as|with|using)\s+base ?64)?", q,
                          I) or re.fullmatch(rf"{ASK}(?P<t>.+?)\s+in base ?64", q, I) or \
        re.fullmatch(rf"{ASK}(?:the )?base ?64(?: encoding)? of\s+(?P<t>.+)", q, I)
    if encode and re.search(r"base ?64", q, I) and not re.match(r"(?:the )?base ?64", encode["t"], I):
        return "base64_codec", {"operation": "encode", "text": unquote(encode["t"])}
    decode = re.fullmatch(r"(?:base ?64[- ]?decode|decode)\s+(?:the\s+)?(?:base ?64\s+)?(?:string\s+)?(?P<t>.+?)"
                          r"(?:\s+(?:from|using)\s+base ?64)?", q, I)
    if decode and re.search(r"base ?64", q, I) and re.fullmatch(r"[A-Za-z0-9+/=_-]+", unquote(decode["t"])):
        return "base64_codec", {"operation": "decode", "text": unquote(decode["t"])}
    return None


CIDR = r"\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}/\d{1,3}"


SUBNET_FACT = (r"(?:subnet(?: mask)?|netmask|mask|broadcast(?: address)?|network(?: address)?|host range|range|"
               r"(?:number of )?(?:usable )?(?:hosts?|addresses)|(?:first|last)(?: usable)? (?:host|address)|details|"
               r"info(?:rmation)?|cidr)")


def subnet(q: str) -> Hit | None:
    nets = re.findall(CIDR, q, I)
    if len(nets) != 1:
        return None
    net = rf"(?:the )?(?:subnet |network |range |block )?(?:{CIDR})"
    m = re.fullmatch(rf"(?:is|does)\s+(?P<ip>[\d.]+|[0-9a-f:]+)\s+(?:in|inside|part of|belong to)\s+{net}", q, I)
    if m:
        return "subnet_calc", {"network": nets[0], "contains": m["ip"]}
    shapes = [rf"{ASK}{SUBNET_FACT}(?: and (?:the )?{SUBNET_FACT})* (?:of|for|in|on) {net}",
              rf"how many (?:usable )?(?:hosts|addresses|ips|ip addresses) (?:are |can )?(?:there )?(?:be )?"
              rf"(?:in|on|for) {net}", rf"(?:subnet|cidr|calculate|analy[sz]e|explain) {net}",
              rf"{net}(?: subnet)?(?: details| info| calculation)?"]
    if any(re.fullmatch(shape, q, I) for shape in shapes):
        return "subnet_calc", {"network": nets[0]}
    return None


def primes(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?:prime factori[sz]ation|prime factors|factori[sz]ation) of (?P<n>\d{{1,40}})", q, I) or \
        re.fullmatch(r"(?:factori[sz]e|factor) (?P<n>\d{1,40})", q, I) or \
        re.fullmatch(r"is (?P<n>\d{1,40}) (?:a )?prime(?: number)?", q, I)
    return ("prime_factorize", {"n": m["n"]}) if m else None


def roman(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?P<n>\d{{1,4}}) (?:in|as|to) roman(?: numerals?)?", q, I) or \
        re.fullmatch(r"(?:convert|write) (?P<n>\d{1,4}) (?:in|as|to|into) (?:a )?roman(?: numerals?)?", q, I) or \
        re.fullmatch(r"(?:what is )?(?:the )?roman numeral (?:for|of) (?P<n>\d{1,4})", q, I)
    if m:
        return "roman_numeral", {"value": int(m["n"])}
    m = re.fullmatch(r"(?:what (?:number )?(?:is|does)|convert) (?:the roman numeral )?(?P<r>[ivxlcdm]{1,15})"
                     r"(?: mean| in roman numerals?| in (?:arabic )?numbers?| in arabic(?: numerals?)?"
                     r"| to (?:a |an )?(?:arabic )?(?:number|numeral|integer))?", q, I)
    if m and re.search(r"roman|arabic|numeral|number|mean", q, I):
        return "roman_numeral", {"value": m["r"].upper()}
    return None


def gcd_lcm(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?:gcd|gcf|hcf|greatest common (?:divisor|factor)|highest common factor|lcm|least common"
                     r" multiple|lowest common multiple) of (?P<ns>\d+(?:(?:\s*,\s*|\s+and\s+|,\s*and\s+)\d+)+)", q, I)
    return ("gcd_lcm", {"numbers": [int(n) for n in re.findall(r"\d+", m["ns"])]}) if m else None


def letters(q: str) -> Hit | None:
    m = re.fullmatch(r"how many (?:times does )?(?:the letter )?['\"]?(?P<c>[a-z])['\"]?(?:'s|s)?\s+"
                     r"(?:are |appear |is )?(?:there )?in (?:the word )?['\"]?(?P<w>[\w-]{1,60})['\"]?", q, I)
    return ("text_analyze", {"text": m["w"], "count": m["c"]}) if m else None


def solve(q: str) -> Hit | None:
    m = re.fullmatch(r"solve\s+(?:for\s+(?P<v>[a-z])\s*[:,]?\s+)?(?P<eq>[^=]+=[^=]+?)(?:\s+for\s+(?P<v2>[a-z]))?", q, I)
    if not m or not MATHS.fullmatch(m["eq"]) or not _balanced(m["eq"]):
        return None
    args: dict[str, Any] = {"equation": " ".join(m["eq"].split())}
    if m["v"] or m["v2"]:
        args["variable"] = m["v"] or m["v2"]
    return "solve_equation", args


def calculus(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?:derivative of|differentiate|d/d(?P<d>[a-z]) (?:of )?)\s*(?P<e>.+?)"
                     r"(?: with respect to (?P<v>[a-z]))?", q, I)
    if m and MATHS.fullmatch(m["e"]) and _balanced(m["e"]):
        args: dict[str, Any] = {"operation": "derivative", "expression": m["e"].strip()}
        if m["v"] or m["d"]:
            args["variable"] = m["v"] or m["d"]
        return "math", args
    m = re.fullmatch(rf"{ASK}(?:integral of|integrate)\s+(?P<e>.+?)(?: d(?P<v>[a-z]))?"
                     rf"(?: from (?P<a>{NUM}|pi) to (?P<b>{NUM}|pi|oo))?", q, I)
    if m and MATHS.fullmatch(m["e"]) and _balanced(m["e"]):
        args = {"operation": "integral", "expression": m["e"].strip()}
        if m["v"]:
            args["variable"] = m["v"]
        if m["a"] is not None:
            args.update(lower=number(m["a"]), upper=number(m["b"]))
        return "math", args
    return None


def statistics(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?:mean|average|median|mode|standard deviation|variance|range)\s+of\s+(?:the numbers\s+)?"
                     rf"(?P<ns>(?:{NUM})(?:(?:\s*,\s*|\s+and\s+|,\s*and\s+|\s+)(?:{NUM}))+)", q, I)
    if not m:
        return None
    values = re.findall(r"[-+]?\d+(?:\.\d+)?|[-+]?\.\d+", m["ns"].replace(", ", " , "))
    return ("statistics_calc", {"values": values}) if len(values) >= 2 else None


ZONE = r"[A-Za-z]+(?:/[A-Za-z_+-]+){1,2}|UTC|GMT"


def timezone(q: str) -> Hit | None:
    m = re.fullmatch(rf"{ASK}(?:convert\s+)?(?P<d>\d{{4}}-\d{{2}}-\d{{2}})[ T](?P<t>\d{{1,2}}:\d{{2}})\s+"
                     rf"(?:in\s+|from\s+)?(?P<f>{ZONE})\s+(?:to|in|into)\s+(?P<to>{ZONE})(?: time)?", q, I)
    if not m:
        return None
    hour, minute = m["t"].split(":")
    return "timezone_convert", {"datetime": f"{m['d']}T{int(hour):02d}:{minute}", "from_tz": m["f"],
                                "to_tz": m["to"]}


# Order matters: specific shapes first, the general arithmetic rule last.
RULES: list[Rule] = [percent_of, date_diff, weekday, date_add, calendar, timezone, hashing, base64, subnet, primes,
                     roman, gcd_lcm, letters, solve, calculus, statistics, convert, arithmetic]


def normalise(question: str) -> str:
    text = " ".join(question.strip().split())
    text = re.sub(r"^(?:please|hey|hi)[,!]?\s+|\s+please$", "", text, flags=I)
    text = re.sub(r"^(?:can|could) you (?:please )?(?:tell me )?", "", text, flags=I)
    return text.rstrip("?!. ").strip()


def recognise(question: str, tools: ToolCatalogue) -> PlannedTask | None:
    """One tool task for a tool-answerable question, or None (the question takes the usual routes)."""
    if not question or len(question) > 400 or "\n" in question.strip():
        return None
    q = normalise(question)
    for rule in RULES:
        hit = rule(q)
        if hit is None:
            continue
        tool, args = hit
        if not tools.valid(tool, args):
            continue  # the tool is off or the arguments do not fit its schema: no shortcut by this rule
        return PlannedTask(task_id="t1", kind="tool", category=PRECISION_CATEGORY, instruction=question.strip()[:2000],
                           tool=tool, args=args)
    return None
