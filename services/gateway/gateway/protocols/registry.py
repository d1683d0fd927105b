"""The protocols the edge serves, in one list: the app includes their routers and renders an error in the
envelope of the protocol its path belongs to; the resume renders a dropped stream with its protocol's frames."""

from __future__ import annotations

from gateway.protocols.anthropic.routes import PROTOCOL as ANTHROPIC
from gateway.protocols.entry import Protocol
from gateway.protocols.models.routes import PROTOCOL as MODELS
from gateway.protocols.openai.routes import PROTOCOL as OPENAI
from gateway.protocols.responses.routes import PROTOCOL as RESPONSES

PROTOCOLS: tuple[Protocol, ...] = (OPENAI, ANTHROPIC, RESPONSES, MODELS)


def serving(path: str) -> Protocol | None:
    """The protocol whose paths `path` is among (None: no protocol's, e.g. /ready)."""
    return next((p for p in PROTOCOLS if path.startswith(p.prefix)), None)


def named(name: str) -> Protocol:
    return next(p for p in PROTOCOLS if p.name == name)
