"""The admin APIs' one query-string reader: a bad value is a 400 in the API's envelope naming the parameter."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from moe_core.runtime import query_params
from moe_core.runtime.openai_error import OpenAIError

pytestmark = pytest.mark.unit


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []})


def test_absent_parameters_take_their_defaults() -> None:
    r = _request("")
    assert query_params.integer(r, "limit", 50, 1, 500) == 50
    assert query_params.number(r, "depth", 2.5, 1, 20) == 2.5
    assert query_params.choice(r, "kind", ("a", "b")) is None
    assert query_params.choice(r, "kind", ("a", "b"), "b") == "b"
    assert query_params.hours(r, 24) == 24


def test_good_values_are_read() -> None:
    r = _request("limit=7&depth=3.5&kind=a&hours=0.5")
    assert query_params.integer(r, "limit", 50, 1, 500) == 7
    assert query_params.number(r, "depth", 2, 1, 20) == 3.5
    assert query_params.choice(r, "kind", ("a", "b")) == "a"
    assert query_params.hours(r, 24) == 0.5


@pytest.mark.parametrize(("query", "read", "says"), [
    ("limit=0", lambda r: query_params.integer(r, "limit", 50, 1, 500), "limit must be an integer from 1 to 500"),
    ("limit=-3", lambda r: query_params.integer(r, "limit", 50, 1, 500), "limit must be an integer from 1 to 500"),
    ("limit=5.0", lambda r: query_params.integer(r, "limit", 50, 1, 500), "limit must be an integer from 1 to 500"),
    ("limit=%D9%A3", lambda r: query_params.integer(r, "limit", 50, 1, 500), "limit must be an integer"),
    ("depth=soon", lambda r: query_params.number(r, "depth", 2, 1, 20), "depth must be a number between 1 and 20"),
    ("depth=nan", lambda r: query_params.number(r, "depth", 2, 1, 20), "depth must be a number between 1 and 20"),
    ("depth=inf", lambda r: query_params.number(r, "depth", 2, 1, 20), "depth must be a number between 1 and 20"),
    ("hours=-1", lambda r: query_params.hours(r, 24), "hours must be a number between 0.01 and 8784"),
    ("kind=c", lambda r: query_params.choice(r, "kind", ("a", "b")), "kind must be one of a, b"),
])
def test_a_bad_value_is_a_400_naming_the_parameter(query: str, read, says: str) -> None:
    with pytest.raises(OpenAIError) as bad:
        read(_request(query))
    name = query.partition("=")[0]
    assert (bad.value.status, bad.value.param, bad.value.code) == (400, name, "invalid_value")
    assert says in bad.value.body()["error"]["message"]
