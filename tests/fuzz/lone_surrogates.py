"""A Hypothesis strategy over a generated request body that puts text which is not Unicode into it: a lone
UTF-16 surrogate (or a pair's halves reversed) inserted into one of its strings or object keys, at any
character. Schemathesis never generates one itself (its strings are UTF-8-encodable); json.dumps spells it
as an escape (`"\\ud800"`), which is valid JSON, so the request reaches the gateway as a client's would."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

Slot = tuple[tuple[Any, ...], str | None]  # (path to a string, or to an object; the object's key, for a key)
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
LOW, HIGH = st.integers(0xDC00, 0xDFFF).map(chr), st.integers(0xD800, 0xDBFF).map(chr)
NOT_UNICODE = st.one_of(SURROGATE, st.tuples(LOW, HIGH).map("".join))  # lone, or a pair reversed


def with_lone_surrogate(body: Any) -> st.SearchStrategy[Any]:
    """`body` with one string or key holding a lone surrogate; `body` itself when it has neither."""
    slots = list(_slots(body, ()))
    if not slots:
        return st.just(body)
    return st.tuples(st.sampled_from(slots), NOT_UNICODE, st.floats(0, 1)).map(
        lambda drawn: _inject(body, *drawn))


def _slots(value: Any, path: tuple[Any, ...]) -> Any:
    if isinstance(value, str):
        yield path, None
    elif isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _slots(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _slots(item, (*path, i))


def _inject(body: Any, slot: Slot, text: str, where: float) -> Any:
    path, key = slot
    if not path and key is None:  # the body is one string
        return _insert(body, text, where)
    out = copy.deepcopy(body)
    parent = out
    for step in path[:-1] if key is None else path:
        parent = parent[step]
    if key is None:
        parent[path[-1]] = _insert(parent[path[-1]], text, where)
    else:  # a key: renamed in place (order kept); no other key holds a surrogate, so none collides
        renamed = _insert(key, text, where)
        items = [(renamed if k == key else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
    return out


def _insert(text: str, inserted: str, where: float) -> str:
    at = round(where * len(text))
    return text[:at] + inserted + text[at:]
