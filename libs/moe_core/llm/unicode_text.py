"""Text that is not Unicode: a lone UTF-16 surrogate (U+D800-U+DFFF without its partner).

JSON may spell one (`"\\ud800"`, or a pair reversed: `"\\udc00\\ud800"`) and Python's json decoder keeps it
(a pair in order becomes the one character it encodes), and so does `json.loads` of raw CESU-8/WTF-8 bytes.
No store, no broker message and no tokenizer takes such text (UTF-8 cannot encode it): every door that
reads text refuses it (HTTP 400) with `where` it is, never echoing the text itself.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int | None:
    """Where the first lone surrogate of `text` is (a character index), else None."""
    if text.isascii():  # the common case, without a scan
        return None
    found = _SURROGATE.search(text)
    return found.start() if found else None


def surrogate_message(where: str, text: str, at: int, what: str = "a string") -> str:
    """Why `text` (found at `where`, a path such as messages.0.content) is refused."""
    return (f"{where}: {what} holding a lone UTF-16 surrogate (U+{ord(text[at]):04X} at character {at}), which "
            "is not Unicode text: send UTF-8, or both halves of a surrogate pair, high then low")


def find_lone_surrogate(value: Any, where: str = "") -> str | None:
    """The refusal for the first string or object key of a decoded JSON value holding a lone surrogate (in
    document order, a key before its value), else None. `where` names the value ("": the body itself);
    deeper paths add `.key` and `.index` (messages.0.content)."""
    if isinstance(value, str):
        at = lone_surrogate(value)
        return None if at is None else surrogate_message(where or "body", value, at)
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for name, item in items:
        if isinstance(name, str) and (at := lone_surrogate(name)) is not None:
            return surrogate_message(where or "body", name, at, "a key")
        if (found := find_lone_surrogate(item, f"{where}.{name}" if where else str(name))) is not None:
            return found
    return None


def replace_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (for text a library extracted, not text a client sent)."""
    return text if lone_surrogate(text) is None else _SURROGATE.sub("\ufffd", text)
