"""Topic namespaces of a test session: `<kind>-<session>-<random>`. The session token lets the session-end
clean-up delete exactly this session's topics, even when another session shares the broker."""

from __future__ import annotations

import uuid

SESSION = uuid.uuid4().hex[:6]


def new_namespace(kind: str = "t") -> str:
    return f"{kind}-{SESSION}-{uuid.uuid4().hex[:8]}"


def of_this_session(topic: str) -> bool:
    return f"-{SESSION}-" in topic.split(".", 1)[0]
