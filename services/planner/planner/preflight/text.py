"""Hashes, Base64, checksums, text measures and JSON checks. The text argument is the quoted text, exactly as
quoted; without quotes only a short bare argument at the end of the question ("md5 of hello world") is
taken, and never one that reads like a description ("the SHA-256 of a file", "of my password")."""

from __future__ import annotations

import re
from typing import Any

from planner.preflight.lexicon import Question, strip_request

I = re.IGNORECASE  # noqa: E741 - the regex flag, as in re.I
HASHES = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha 1": "sha1", "sha224": "sha224", "sha-224": "sha224",
          "sha256": "sha256", "sha-256": "sha256", "sha 256": "sha256", "sha2": "sha256", "sha-2": "sha256",
          "sha384": "sha384", "sha-384": "sha384", "sha512": "sha512", "sha-512": "sha512",
          "sha3-224": "sha3_224", "sha3_224": "sha3_224", "sha3-256": "sha3_256", "sha3_256": "sha3_256",
          "sha3-384": "sha3_384", "sha3_384": "sha3_384", "sha3-512": "sha3_512", "sha3_512": "sha3_512",
          "blake2b": "blake2b", "blake2s": "blake2s"}
CHECKSUMS = {"crc32": "crc32", "crc-32": "crc32", "crc 32": "crc32", "crc": "crc32", "adler32": "adler32",
             "adler-32": "adler32", "crc16": "crc16_ccitt", "crc-16": "crc16_ccitt",
             "crc-16/ccitt-false": "crc16_ccitt",
             "crc16-ccitt": "crc16_ccitt", "crc-16-ccitt": "crc16_ccitt", "crc-ccitt": "crc16_ccitt"}
# words that make a bare argument a description rather than the text itself
DESCRIPTIVE = re.compile(r"\b(?:a|an|the|my|your|our|their|this|that|these|those|it|its|file|files|folder|"
                         r"password|string|text|word|message|document|input|data|value|hash|base ?64|of|in|to|for|"
                         r"with|using|and|or|from|encoding|encoded|decoded)\b", I)
ARG_LEAD = r"(?:the (?:word|string|text|phrase|message) )?"
SLOT = r"QUOTED\d"


def alternation(table: dict[str, str]) -> str:
    """A regex alternation of the table's names, longest first (so "sha-256" wins over "sha")."""
    return "|".join(re.escape(n) for n in sorted(table, key=len, reverse=True))


HASH_NAMES, CHECKSUM_NAMES = alternation(HASHES), alternation(CHECKSUMS)  # built once, used by every match


def argument(q: Question, token: str) -> str | None:
    """The text a quoted slot stands for, or a short bare argument (at most three plain words)."""
    quoted = q.slot(token)
    if quoted is not None:
        return quoted
    bare = token.strip()
    if not bare or re.search(SLOT, bare) or len(bare.split()) > 3 or DESCRIPTIVE.search(bare):
        return None
    return bare if re.fullmatch(r"[\w.,:;@#$&*+=/-]+(?: [\w.,:;@#$&*+=/-]+){0,2}", bare) else None


HASH_SHAPES = [re.compile(shape, I) for shape in (  # compiled once, as the ones below (issue 52)
    rf"(?:the )?(?P<alg>{HASH_NAMES})(?: (?:hash|digest|checksum|sum|value|hex digest))? (?:of|for) {ARG_LEAD}"
    rf"(?P<t>.+)", rf"(?P<alg>{HASH_NAMES}) (?P<t>{SLOT}|\S+)",
    rf"hash {ARG_LEAD}(?P<t>{SLOT}|\S+) (?:with|using|in) (?P<alg>{HASH_NAMES})",
    rf"(?P<t>{SLOT}) (?:hashed )?(?:with|using|in|as) (?P<alg>{HASH_NAMES})")]
B64 = r"base[ -]?64"
B64_RE = re.compile(B64, I)
B64_TEXT = re.compile(r"[A-Za-z0-9+/]+={0,2}")
ENCODE = [re.compile(shape, I) for shape in (
    rf"{B64}[- ]?encode {ARG_LEAD}(?P<t>.+)",
    rf"encode {ARG_LEAD}(?P<t>.+?) (?:in|to|as|with|using|into) {B64}",
    rf"(?P<t>{SLOT}|\S+) (?:in|as|to) {B64}",
    rf"(?:the )?{B64}(?: encoding| encoded form)? of {ARG_LEAD}(?P<t>.+)",
    rf"convert (?P<t>{SLOT}|\S+) (?:to|into) {B64}")]
DECODE = [re.compile(shape, I) for shape in (
    rf"{B64}[- ]?decode (?:the )?(?:string )?(?P<t>\S+)",
    rf"decode (?:the )?(?:{B64} )?(?:string )?(?P<t>\S+)(?: (?:from|using|as) {B64})?",
    rf"(?:what )?does (?P<t>\S+) decode to(?: (?:in|from) {B64})?",
    rf"(?P<t>\S+) (?:from|decoded from) {B64}")]


def hashing(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    for shape in HASH_SHAPES:
        m = shape.fullmatch(body)
        text = argument(q, m["t"]) if m else None
        if m and text is not None:
            return "hash_text", {"text": text, "algorithm": HASHES[m["alg"].lower()]}
    return None


def base64(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    for shape in ENCODE:
        m = shape.fullmatch(body)
        text = argument(q, m["t"]) if m else None
        if m and text is not None:
            return "base64_codec", {"operation": "encode", "text": text}
    for shape in DECODE:
        m = shape.fullmatch(body)
        text = (q.slot(m["t"]) or m["t"]) if m else None
        if m and text and B64_RE.search(body) and B64_TEXT.fullmatch(text) and \
                len(text) % 4 == 0:
            return "base64_codec", {"operation": "decode", "text": text}
    return None


# the grammars every question meets, compiled once (issue 52)
CHECKSUM_OF = re.compile(rf"(?:the )?(?P<alg>{CHECKSUM_NAMES})(?: (?:checksum|sum|hash|value))? (?:of|for) "
                         rf"{ARG_LEAD}(?P<t>.+)", I)
CHECKSUM_BARE = re.compile(rf"(?P<alg>{CHECKSUM_NAMES}) (?P<t>{SLOT}|\S+)", I)
JSON_ASKED = [re.compile(pattern, I | re.DOTALL) for pattern in (
    r"(?:is|are)\s+(?:this\s+|the following\s+)?(?P<j>[\[{].*[\]}])\s+(?:valid|well-formed)\s+json",
    r"(?:validate|check)\s+(?:this|the following)\s+json:?\s+(?P<j>[\[{].*[\]}])",
    r"is\s+(?:this|the following)\s+(?:valid|well-formed)\s+json:?\s+(?P<j>[\[{].*[\]}])")]


def checksum(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    m = CHECKSUM_OF.fullmatch(body) or CHECKSUM_BARE.fullmatch(body)
    if m and (text := argument(q, m["t"])) is not None:
        return "checksum", {"text": text, "algorithm": CHECKSUMS[m["alg"].lower()]}
    card = r"(?P<n>\d[\d -]{0,40}\d)"
    m = re.fullmatch(rf"(?:is|does) {card} (?:a )?(?:valid )?(?:luhn(?: number)?|pass(?: the)? luhn(?: check)?|"
                     rf"valid (?:according to|under) luhn)", body, I) or \
        re.fullmatch(rf"(?:the )?luhn check (?:of|for) {card}", body, I)
    if m:
        return "checksum", {"text": m["n"], "algorithm": "luhn"}
    return None


def text_measure(q: Question) -> tuple[str, dict[str, Any]] | None:
    body = strip_request(q.text)
    m = re.fullmatch(rf"(?:how many|count the|the number of|number of) (?P<k>words|characters|letters|sentences|lines)"
                     rf" (?:are )?(?:there )?(?:in|does) (?P<t>{SLOT})(?: (?:have|contain))?", body, I) or \
        re.fullmatch(rf"(?:the )?(?P<k>word|character|letter) count (?:of|for) (?P<t>{SLOT})", body, I)
    if m and (text := q.slot(m["t"])) is not None:
        return "text_analyze", {"text": text}
    m = re.fullmatch(r"how many (?:times does )?(?:the letter )?(?P<c>[a-z])(?:'s|s)?\s+(?:are |appear |is |occur )?"
                     r"(?:there )?in (?:the word )?(?P<w>[a-z-]{2,60}|QUOTED\d)", body, I) or \
        re.fullmatch(r"how many times does (?:the letter )?(?P<c>[a-z]) (?:appear|occur) in (?:the word )?"
                     r"(?P<w>[a-z-]{2,60}|QUOTED\d)", body, I)
    if m:
        word = q.slot(m["w"]) or m["w"]
        return "text_analyze", {"text": word, "count": m["c"]}
    return None


def compare(q: Question) -> tuple[str, dict[str, Any]] | None:
    """"The Levenshtein distance between 'kitten' and 'sitting'" (two quoted texts, or two single words)."""
    body = strip_request(q.text)
    m = re.fullmatch(r"(?:the )?(?:levenshtein|edit) distance (?:between|of) (?P<a>QUOTED\d|[\w-]{1,60}) (?:and|to) "
                     r"(?P<b>QUOTED\d|[\w-]{1,60})", body, I)
    if not m:
        return None
    first, second = q.slot(m["a"]), q.slot(m["b"])
    first = m["a"] if first is None and not m["a"].startswith("QUOTED") else first
    second = m["b"] if second is None and not m["b"].startswith("QUOTED") else second
    return ("text_compare", {"first": first, "second": second}) if first is not None and second is not None else None


def json_valid(raw: str) -> tuple[str, dict[str, Any]] | None:
    """"Is {...} valid JSON?" / "validate this JSON: {...}" (read from the raw question: JSON has quotes)."""
    text = raw.strip().rstrip("?").strip()  # the JSON exactly: no whitespace collapsed
    m = next((m for pattern in JSON_ASKED if (m := pattern.fullmatch(text))), None)
    return ("structured_validate", {"format": "json", "text": m["j"]}) if m else None
