# ruff: noqa: RUF002  (this file is about look-alike characters: they are meant)
"""PII detectors: each finds candidate spans with a pattern and keeps those its checksum (where the
identifier has one) accepts, so a random number of the right length is not reported.

- email: an address (local part, @, a domain with a dot).
- iban: ISO 13616, two letters, two check digits, 11-30 letters or digits (groups of four may be spaced),
  in either case; the ISO 7064 MOD 97-10 checksum must hold (of a longer run, the longest prefix that holds).
- credit_card: 13-19 digits (spaces, dashes, dots or slashes between groups) passing the Luhn check.
- phone: an international number (+ and country code) or a German national one (0 and area code), 7 to 15
  digits in all.
- de_tax_id: the German tax identification number (Steuer-IdNr.): 11 digits, not starting with 0, one digit
  of the first ten repeated two or three times, the ISO 7064 MOD 11,10 check digit.

The detectors see the folded text (moe_core.runtime.normalise: a full-width `＠` or digit is ASCII,
zero-width characters are gone). Every search runs under a time limit (the `regex` module's `timeout`): a
search that does not finish raises TimeoutError, and the engine blocks the text (fail closed).

The checks are the standard algorithms (a dozen lines each) rather than a new dependency; the tests run them
against published valid and invalid examples.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Literal

import regex

Detector = Literal["email", "iban", "credit_card", "phone", "de_tax_id"]
Span = tuple[int, int]

VERSION = "2"  # raised whenever a pattern or check changes: named in every guardrail audit record
_EMAIL = regex.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
                       r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
_IBAN = regex.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b")
_CARD = regex.compile(r"(?<![\d./-])\d(?:[ ./-]?\d){12,18}(?![\d-])")
_PHONE = regex.compile(r"(?<![\w+])(?:\+\d{1,3}|\b0\d{2,5})(?:[ ./-]?\(?\d{1,5}\)?){1,5}(?!\d)")
_TAX_ID = regex.compile(r"(?<!\d)[1-9]\d(?: ?\d){9}(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    iban = text.replace(" ", "").upper()
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def de_tax_id_valid(digits: str) -> bool:
    if len(digits) != 11 or not digits.isdigit() or digits[0] == "0":
        return False
    counts = Counter(digits[:10]).values()
    if sorted(counts, reverse=True)[0] not in (2, 3) or sum(1 for c in counts if c > 1) != 1:
        return False
    product = 10
    for ch in digits[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _phone_ok(text: str) -> bool:
    return 7 <= len(_digits(text)) <= 15


def _card_ok(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _iban_end(text: str) -> int:
    """The length of the longest prefix of a candidate run that is a valid IBAN (0: none): a run may go on into
    the words after the number ("de89 3704 0044 0532 0130 00 is mine")."""
    for end in range(len(text), 14, -1):
        if text[end - 1] != " " and (end == len(text) or text[end] == " ") and iban_valid(text[:end]):
            return end
    return 0


_CHECKS: dict[Detector, tuple[regex.Pattern[str], Callable[[str], bool]]] = {
    "email": (_EMAIL, lambda _: True),
    "iban": (_IBAN, iban_valid),
    "credit_card": (_CARD, _card_ok),
    "de_tax_id": (_TAX_ID, lambda m: de_tax_id_valid(_digits(m))),
    "phone": (_PHONE, _phone_ok),
}
DETECTORS: tuple[Detector, ...] = tuple(_CHECKS)
_CHECKSUMMED: tuple[Detector, ...] = ("iban", "credit_card", "de_tax_id")


def find(detector: Detector, text: str, timeout_s: float | None = None) -> Iterator[Span]:
    """The spans of `text` the detector recognises (pattern and checksum); TimeoutError past `timeout_s`."""
    pattern, valid = _CHECKS[detector]
    # a phone number's pattern also fits digit groups inside an IBAN, a card or a tax id: those are not phones
    taken = [s for d in _CHECKSUMMED for s in find(d, text, timeout_s)] if detector == "phone" else []
    for match in pattern.finditer(text, timeout=timeout_s):
        start, end = match.span()
        if detector == "iban":
            end = start + _iban_end(match.group(0))
            if end > start:
                yield start, end
        elif valid(match.group(0)) and not any(start < b and a < end for a, b in taken):
            yield start, end
