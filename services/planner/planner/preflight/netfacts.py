"""Subnet questions read by their typed values (issue 30): the CIDR blocks, addresses, masks and bare prefixes
("a /26") in the text are bound first, the words around them decide the question, and every other word must
be a known subnet or filler word (English or German), else the question goes to the planner. One network,
or one bare prefix for the facts that do not depend on the network (mask, wildcard, host counts), or one
mask for its prefix length, or one address and one network for "is it inside"; two of a kind: ambiguous."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from planner.preflight.lexicon import COMMON, Question, stray_quote, strip_request

Hit = tuple[str, dict[str, Any]]
CIDR = re.compile(r"(?<![\w.:/])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7})/\d{1,3}(?![\w./])",
                  re.I)
ANY = "0.0.0.0"  # noqa: S104 - the network of a bare prefix or mask (their facts do not depend on it), not a bind
IP = re.compile(r"(?<![\w.:/])\d{1,3}(?:\.\d{1,3}){3}(?![\w./])")
PREFIX = re.compile(r"(?<![\w./])/(?P<n>\d{1,2})(?![\w./])")
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# words that name what is asked (first the facts a bare prefix determines, then the network-bound ones)
SIZE = {"mask", "netmask", "subnetmask", "wildcard", "hostmask", "hosts", "host", "addresses", "ips", "usable",
        "netzmaske", "subnetzmaske", "maske", "nutzbare", "nutzbaren", "adressen", "size", "big", "large",
        "wildcardmaske", "hostanzahl", "anzahl", "größe", "verwendbare", "verwendbaren"}
BOUND = {"broadcast", "network", "first", "last", "range", "id", "netzadresse", "netzwerkadresse", "erste", "erster",
         "letzte", "letzter", "bereich", "details", "info", "information", "broadcastadresse", "bcast", "ersten",
         "letzten", "adressbereich"}
MASKS = {"mask", "netmask", "subnetmask", "netzmaske", "subnetzmaske", "maske"}
PREFIX_WORDS = {"prefix", "length", "cidr", "notation", "slash", "präfix", "präfixlänge", "länge"}
INSIDE = {"in", "inside", "within", "belong", "belongs", "part", "contained", "contain", "contains", "include",
          "includes", "fall", "falls", "im", "innerhalb", "gehört", "liegt", "enthalten", "enthält"}
FILLER = {"what", "whats", "s", "is", "are", "the", "a", "an", "of", "for", "on", "to", "does", "do", "have", "has",
          "hold", "how", "many", "which", "there", "can", "be", "subnet", "net", "block", "address", "ip", "total",
          "number", "and", "me", "tell", "give", "i", "need", "with", "ipv4", "hey", "hi", "so", "quick", "question",
          "von", "vom", "für", "ein", "einem", "eine", "einer", "das", "die", "der", "des", "den", "ist", "hat", "wie",
          "viele", "adresse", "gibt", "es", "was", "welche", "welcher", "welches", "sind", "bei", "zu", "netz",
          "subnetz", "hosts", "mit", "available", "possible", "it", "this", "that", "as", "mean", "corresponds",
          "correspond", "entspricht", "zur", "zum", "hostadresse", "hostadressen", "netzwerk", "netzwerks", "netzes",
          "subnetzes", "im", "in", "dem", "addr", "addrs", "fit", "put", "just", "check", "checking"} | COMMON


def _contiguous_mask(text: str) -> bool:
    try:
        ipaddress.IPv4Network(f"{ANY}/{text}")
    except ValueError:
        return False
    return True


def subnet_typed(q: Question) -> Hit | None:
    body = strip_request(q.text)
    if q.quoted or stray_quote(body):
        return None
    nets, ips, prefixes = CIDR.findall(body), IP.findall(body), [m["n"] for m in PREFIX.finditer(body)]
    rest = PREFIX.sub(" ", IP.sub(" ", CIDR.sub(" ", body)))
    if re.search(r"\d", rest):
        return None  # a number the grammar did not bind
    words = {w.lower() for w in WORD.findall(rest)}
    if not words or not words <= SIZE | BOUND | PREFIX_WORDS | INSIDE | FILLER:
        return None
    facts = words & (SIZE | BOUND | PREFIX_WORDS)
    if len(nets) == 1 and not ips and not prefixes:
        return ("subnet_calc", {"network": nets[0]}) if facts or words & {"subnet", "subnetz"} else None
    if len(nets) == 1 and len(ips) == 1 and not prefixes and words & INSIDE and not facts:
        return "subnet_calc", {"network": nets[0], "contains": ips[0]}
    if nets or len(ips) + len(prefixes) != 1 or ("ipv4" not in words and re.search(r"ipv6|v6", body, re.I)):
        return None
    if prefixes and facts and facts <= SIZE and int(prefixes[0]) <= 32:
        return "subnet_calc", {"network": f"{ANY}/{prefixes[0]}"}
    if ips and words & PREFIX_WORDS and not facts - PREFIX_WORDS - MASKS and ips[0] != ANY and \
            _contiguous_mask(ips[0]):  # a dotted mask asked for its prefix length
        return "subnet_calc", {"network": f"{ANY}/{ips[0]}"}
    return None
