"""The ids clients see (`chatcmpl-<id>` of OpenAI, `msg_<id>` of Anthropic, `resp_<id>` of the Responses
API) carry the fleet's response_id: any of them names the same request."""

from __future__ import annotations

CLIENT_ID_PREFIXES = ("chatcmpl-", "msg_", "resp_")


def bare_response_id(client_id: str) -> str:
    """The response_id inside a client-facing id; an id without a known prefix is returned as it is."""
    for prefix in CLIENT_ID_PREFIXES:
        if client_id.startswith(prefix):
            return client_id[len(prefix):]
    return client_id
