"""Money questions read by their typed values (issue 30): one amount (with or without a currency), one
percentage, at most one duration and a compounding frequency are bound first; the words around them decide
the operation (interest, a loan's monthly payment, a tip); every other word must be a known money or filler
word, else the question goes to the planner. Unbound or doubled values, a rate per month, or interest that
is neither called simple nor compound: the planner decides, never a guess."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.german import decimal_commas
from planner.preflight.lexicon import (
    COMMON,
    NUM,
    Question,
    numbers_from_words,
    plain_number,
    stray_quote,
    strip_request,
)

Hit = tuple[str, dict[str, Any]]
I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
PERCENT = re.compile(rf"(?<![\w.])(?P<v>{NUM})\s?(?:%|percent\b|per cent\b|prozent\b)", I)
DURATION = re.compile(r"(?<![\w.])(?P<v>\d{1,4})[\s-](?P<u>years?|yrs?|months?|jahre?n?|monate?n?)\b", I)
AMOUNT = re.compile(rf"(?:[$\u20ac\u00a3]\s?(?P<a>{NUM})|(?<![\w.])(?P<b>{NUM})(?:\s?(?:dollars|euros?|pounds|usd|"
                    rf"eur|gbp|bucks)\b)?)", I)
CURRENCY = re.compile(r"[$\u20ac\u00a3]|\b(?:dollars|euros?|pounds|usd|eur|gbp|bucks)\b", I)
FREQUENCY = {"annually": 1, "yearly": 1, "annual": 1, "monthly": 12, "quarterly": 4, "daily": 365,
             "semi-annually": 2}
COMPOUNDING = re.compile(r"\bcompound(?:ed|ing)?(?: interest)?(?: (?P<f>annually|yearly|monthly|quarterly|daily|"
                         r"semi-annually))?\b", I)
PER_PERIOD = re.compile(r"(?:%|percent|per cent|prozent)\s+(?:a|per|each|every|pro|im|je)\s+(?:month|week|day|quarter|"
                        r"monat|woche|tag|quartal)|(?:%|percent|per cent)\s+monthly", I)
# German: "Zinseszins" is compound interest; its frequency is the one German frequency word of the question
GERMAN = re.compile(r"\b(?:zinseszins\w*|zinsen|zins|verzinst|prozent|jahren?|kredit|darlehen|trinkgeld|rate)\b", I)
ZINSESZINS = re.compile(r"\bzinseszins(?:en)?\b", I)
FREQUENCY_DE = {"jährlich": 1, "monatlich": 12, "vierteljährlich": 4, "quartalsweise": 4, "täglich": 365,
                "halbjährlich": 2}
# every compounding frequency the question names, wherever it stands ("compound interest compounded quarterly")
FREQUENCY_WORD = re.compile(r"(?<![\w-])(?:semi-annually|annually|yearly|monthly|quarterly|daily|vierteljährlich|"
                            r"halbjährlich|jährlich|monatlich|täglich|quartalsweise)(?![\w-])", I)
SIMPLE = {"simple", "einfache", "einfachen", "einfacher"}
INTEREST = {"interest", "invest", "deposit", "put", "save", "grow", "grows", "worth", "end", "compound", "compounded",
            "compounding", "simple", "balance", "have", "bank", "savings", "saving",
            "zinseszins", "zinseszinsen", "zinsen", "zins", "verzinst",
            "angelegt", "anlegen", "lege", "habe", "ende", "endbetrag", "guthaben", "einfache", "einfachen",
            "einfacher", "jährlich", "monatlich", "vierteljährlich", "quartalsweise", "täglich", "halbjährlich"}
LOAN = {"loan", "mortgage", "borrow", "payment", "repayment", "installment", "instalment", "pay", "repay", "kredit",
        "darlehen", "rate", "monatliche", "hypothek"}
TIP = {"tip", "gratuity", "trinkgeld"}
FILLER = {"if", "i", "at", "for", "over", "in", "after", "years", "year", "months", "month", "how", "much", "do",
          "does", "will", "would", "up", "with", "get", "it", "be", "to", "the", "a", "an", "of", "on", "rate", "per",
          "annual", "annually", "yearly", "monthly", "quarterly", "daily", "what", "whats", "s", "is", "my", "me",
          "bill", "check", "meal", "dollars", "dollar", "euros", "euro", "pounds", "usd", "eur", "gbp", "bucks",
          "percent", "cent", "yrs", "yr", "back", "each", "and", "then", "should", "leave", "give", "tell", "total",
          "money", "amount", "account", "term", "annum", "p", "semi", "as", "mit", "zu", "über", "für", "jahre",
          "jahren", "monate", "monaten", "ich", "wie", "viel", "am", "bei", "auf", "nach", "einem", "einen", "einer",
          "ein", "eine", "dem", "der", "die", "das", "von", "was", "ist", "wird", "habe", "hat", "prozent", "laufzeit",
          "into"} | COMMON


JUDGEMENT = re.compile(r"\bworth\s+it\b|\blohnt\b", I)  # "is it worth it to invest $1000 at 5% ...": advice, not a sum


def finance_typed(q: Question) -> Hit | None:
    body = numbers_from_words(strip_request(q.text))
    if body and GERMAN.search(body):
        body = decimal_commas(body)  # "3,5 %"; "1.500 Euro" (1500 or 1.5?) goes to the planner
    if not body or q.quoted or stray_quote(body) or PER_PERIOD.search(body) or JUDGEMENT.search(body):
        return None
    percents, durations = PERCENT.findall(body), list(DURATION.finditer(body))
    rest = DURATION.sub(" ", PERCENT.sub(" ", body))
    amounts = [a or b for a, b in AMOUNT.findall(rest)]
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", AMOUNT.sub(" ", rest))}
    if len(percents) != 1 or len(amounts) != 1 or len(durations) > 1 or not words <= INTEREST | LOAN | TIP | FILLER:
        return None
    amount, rate = plain_number(amounts[0]), plain_number(percents[0])
    if words & TIP:
        if durations or words & (INTEREST | LOAN) or words & {"total", "per", "each"}:
            return None  # "the total with a tip", "the tip per person": not the tip itself
        return "decimal_finance", {"operation": "percent_of", "value": amount, "percent": rate}
    if not durations and re.fullmatch(rf"{PERCENT.pattern}\s+of\s+{AMOUNT.pattern}", body, I) and CURRENCY.search(body):
        return "decimal_finance", {"operation": "percent_of", "value": amount, "percent": rate}  # "5% of $200"
    if not durations or (words & INTEREST and words & LOAN):
        return None
    count, unit = int(durations[0]["v"]), durations[0]["u"].lower()
    months = count * 12 if unit.startswith(("y", "j")) else count
    if words & LOAN:
        monthly = re.search(r"\bmonthly\b|\b(?:a|per|each) month\b|\bmonatliche\b", body, I)
        if not monthly or COMPOUNDING.search(body) or "total" in words or not 1 <= months <= 1200:
            return None  # a payment per what? the total paid? say it
        return "decimal_finance", {"operation": "loan_payment", "principal": amount, "rate_percent": rate,
                                   "months": months}
    return _interest(body, words, amount, rate, months)


def _interest(body: str, words: set[str], amount: str, rate: str, months: int) -> Hit | None:
    frequencies = [m[0].lower() for m in FREQUENCY_WORD.finditer(body)]
    compound = bool(COMPOUNDING.search(body) or ZINSESZINS.search(body))
    if months % 12 or len(frequencies) > 1 or re.search(r"\b(?:a|per|each|pro) (?:month|monat)\b", body, I):
        return None  # part years; two frequencies or a monthly amount ("save 100 a month ... compounded monthly")
    if compound == bool(words & SIMPLE) or (frequencies and not compound) or ("total" in words and "interest" in words):
        return None  # neither (or both) simple and compound, or simple interest "monthly": which interest?
    per_year = (FREQUENCY | FREQUENCY_DE)[frequencies[0]] if frequencies else None
    return _args("compound_interest" if compound else "simple_interest", amount, rate, months, per_year)


def _args(operation: str, amount: str, rate: str, months: int, per_year: int | None) -> Hit | None:
    if months % 12:
        return None
    args: dict[str, Any] = {"operation": operation, "principal": amount, "rate_percent": rate, "years": months // 12}
    if per_year:
        args["periods_per_year"] = per_year
    return "decimal_finance", args
