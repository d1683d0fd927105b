"""Normalised names and stable ids: the same entity or relation always gets the same id."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_DROP = re.compile(r"[^\w+#.\-' ]+", re.UNICODE)
_SPACE = re.compile(r"\s+")
MAX_NAME_CHARS = 120


def normalize(name: str) -> str:
    """Lower case, accents folded, punctuation (but + # . - ') dropped, whitespace collapsed; a name's length."""
    return fold(name)[:MAX_NAME_CHARS]


def fold(text: str) -> str:
    """normalize without the bound: all of a text (the words a text's domains are resolved from)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _DROP.sub(" ", text.replace("_", " "))
    return _SPACE.sub(" ", text).strip(" .-'")


def clean_name(name: str) -> str:
    """A display name: trimmed, inner whitespace collapsed, bounded."""
    return _SPACE.sub(" ", name).strip()[:MAX_NAME_CHARS]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def entity_uid(tenant: str, key: str) -> str:
    return "e" + _digest("entity", tenant, key)


def relation_id(tenant: str, subject_uid: str, relation: str, object_uid: str) -> str:
    return "r" + _digest("relation", tenant, subject_uid, relation, object_uid)


def quarantine_id(tenant: str, response_id: str, subject: str, relation: str, obj: str) -> str:
    return "q" + _digest("quarantine", tenant, response_id, normalize(subject), relation, normalize(obj))


def synthesis_id(tenant: str, response_id: str) -> str:
    return "s" + _digest("synthesis", tenant, response_id)
