"""Every client-facing id names the request whose response_id it carries."""

from __future__ import annotations

import pytest

from moe_core.contracts.client_ids import bare_response_id

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("client_id", "bare"), [
    ("chatcmpl-abc123", "abc123"), ("msg_abc123", "abc123"), ("resp_abc123", "abc123"),
    ("abc123", "abc123"), ("kcs-42", "kcs-42"), ("msg_", ""),
])
def test_the_response_id_inside_a_client_id(client_id: str, bare: str) -> None:
    assert bare_response_id(client_id) == bare
