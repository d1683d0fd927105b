"""hash_text, base64_codec, regex_extract (with the regex package's own timeout), text_analyze."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import Counter
from typing import Any

import regex

from mcp_service.tools.base import ToolError, ToolOutput, wrong

REGEX_TIMEOUT_S = 2.0  # the worker's hard time bound still applies; this one ends the match cleanly first
FLAGS = {"ignorecase": regex.IGNORECASE, "multiline": regex.MULTILINE, "dotall": regex.DOTALL}
HASH_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224", "sha256": "SHA-256", "sha384": "SHA-384",
              "sha512": "SHA-512", "sha3_224": "SHA3-224", "sha3_256": "SHA3-256", "sha3_384": "SHA3-384",
              "sha3_512": "SHA3-512", "blake2b": "BLAKE2b",
              "blake2s": "BLAKE2s"}
WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def hash_text(args: dict[str, Any]) -> ToolOutput:
    algorithm = args.get("algorithm", "sha256")
    digest = hashlib.new(algorithm, args["text"].encode("utf-8")).hexdigest()
    name = HASH_NAMES.get(algorithm, algorithm)
    return ToolOutput(f"{name}({_quote(args['text'], 200)}) = {digest}",
                      {"algorithm": algorithm, "hex": digest, "bytes": len(args["text"].encode("utf-8"))})


def base64_codec(args: dict[str, Any]) -> ToolOutput:
    text, url_safe = args["text"], bool(args.get("url_safe"))
    if args["operation"] == "encode":
        raw = text.encode("utf-8")
        out = (base64.urlsafe_b64encode if url_safe else base64.b64encode)(raw).decode("ascii")
        return ToolOutput(f"Base64 of {_quote(text)} = {out}", {"operation": "encode", "result": out})
    compact = "".join(text.split())
    try:
        if url_safe:
            raw = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        else:
            raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise wrong(f"not valid Base64: {exc}") from None
    try:
        decoded, is_text = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        decoded, is_text = raw.hex(), False
    label = "" if is_text else " (bytes, as hex)"
    return ToolOutput(f"{_quote(compact)} decoded from Base64 = {_quote(decoded, 200)}{label}",
                      {"operation": "decode", "result": decoded, "utf8": is_text, "bytes": len(raw)})


def regex_extract(args: dict[str, Any]) -> ToolOutput:
    flags = 0
    for name in args.get("flags", []):
        flags |= FLAGS[name]
    limit = args.get("max_matches", 100)
    try:
        pattern = regex.compile(args["pattern"], flags)
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        raise wrong(f"invalid regular expression: {exc}") from None
    matches: list[dict[str, Any]] = []
    truncated = False
    try:
        for match in pattern.finditer(args["text"], timeout=REGEX_TIMEOUT_S):
            if len(matches) == limit:
                truncated = True
                break
            matches.append({"match": match.group(0), "start": match.start(), "end": match.end(),
                            "groups": list(match.groups()), "named": match.groupdict()})
    except TimeoutError:
        raise ToolError("timeout", f"the pattern took longer than {REGEX_TIMEOUT_S} s (catastrophic backtracking?)")\
            from None
    shown = ", ".join(_quote(m["match"], 30) for m in matches[:10])
    more = "…" if len(matches) > 10 or truncated else ""
    return ToolOutput(f"{len(matches)}{'+' if truncated else ''} match{'es' if len(matches) != 1 else ''}"
                      f"{': ' + shown + more if matches else ''}",
                      {"count": len(matches), "truncated": truncated, "matches": matches})


def text_analyze(args: dict[str, Any]) -> ToolOutput:
    text = args["text"]
    words = WORD.findall(text)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]
    result: dict[str, Any] = {
        "characters": len(text), "characters_no_spaces": sum(1 for c in text if not c.isspace()),
        "letters": sum(1 for c in text if c.isalpha()), "digits": sum(1 for c in text if c.isdigit()),
        "words": len(words), "unique_words": len({w.lower() for w in words}), "sentences": len(sentences),
        "lines": len(text.splitlines()) if text else 0,
        "paragraphs": len([p for p in re.split(r"\n\s*\n", text) if p.strip()]),
        "average_word_length": round(sum(map(len, words)) / len(words), 2) if words else 0,
        "top_words": Counter(w.lower() for w in words).most_common(10),
    }
    if "count" in args:
        needle = args["count"]
        case = bool(args.get("case_sensitive"))
        hay, pin = (text, needle) if case else (text.casefold(), needle.casefold())
        result["count"] = {"substring": needle, "occurrences": hay.count(pin), "case_sensitive": case}
        occurrences = result["count"]["occurrences"]
        return ToolOutput(f"{_quote(needle)} occurs {occurrences} time{'s' if occurrences != 1 else ''} in "
                          f"{_quote(text)}{'' if case else ' (ignoring case)'}.", result)
    return ToolOutput(f"{result['words']} words, {result['characters']} characters ({result['letters']} letters, "
                      f"{result['characters_no_spaces']} without spaces), {result['sentences']} sentences, "
                      f"{result['lines']} lines.", result)
