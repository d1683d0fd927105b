"""Text that is not Unicode (moe_core.llm.unicode_text): a lone UTF-16 surrogate found where it is, in document
order, a pair in order left alone; the refusal names the path and the code point, never the text itself."""

from __future__ import annotations

import json

import pytest

from moe_core.llm.unicode_text import find_lone_surrogate, lone_surrogate, replace_lone_surrogates

pytestmark = pytest.mark.unit


def test_where_the_first_lone_surrogate_is() -> None:
    assert lone_surrogate("plain ascii") is None
    assert lone_surrogate(json.loads(r'"caf\u00e9 \ud83d\ude00"')) is None  # a pair in order: one character
    assert lone_surrogate(json.loads(r'"ab\ud800"')) == 2
    assert lone_surrogate(json.loads(r'"\ude00\ud83d"')) == 0  # a pair reversed: two lone halves
    assert lone_surrogate(json.loads(b'"x\xed\xa0\x80"')) == 1  # CESU-8 bytes: json keeps the surrogate


def test_the_refusal_names_the_path_in_document_order_and_never_echoes_the_text() -> None:
    body = json.loads(r'{"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": '
                      r'[{"type": "text", "text": "one \udfff"}]}], "metadata": {"\ud800": 1}}')
    found = find_lone_surrogate(body)
    assert found is not None and found.startswith("messages.1.content.0.text: a string holding")
    assert "U+DFFF at character 4" in found and "\udfff" not in found
    key = find_lone_surrogate({"metadata": body["metadata"]}, "args")
    assert key is not None and key.startswith("args.metadata: a key holding") and "U+D800" in key
    whole = find_lone_surrogate(json.loads(r'"\ud800"'))  # the body is one string
    assert whole is not None and whole.startswith("body: a string holding")
    assert find_lone_surrogate({"n": 1, "t": [True, None, "fine \u00e9"]}) is None


def test_extracted_text_keeps_what_it_can() -> None:
    assert replace_lone_surrogates("a\ud800b\udc00\ud83d") == "a\ufffdb\ufffd\ufffd"
    assert replace_lone_surrogates("smile \U0001f600") == "smile \U0001f600"
