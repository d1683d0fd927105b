"""Credentials of the local stores for tests that connect themselves: the fleet's endpoints carry them
exactly when a store was initialised with a password (deploy/local/fleetlib/secrets.py)."""

from __future__ import annotations

import sys
from pathlib import Path

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"


def neo4j_auth() -> tuple[str, str]:
    """(user, password) of the local Neo4j; ("", "") when it runs without authentication."""
    if str(LOCAL) not in sys.path:
        sys.path.insert(0, str(LOCAL))
    from fleetlib import api

    eps = api.endpoints()
    return eps.get("neo4j-user", ""), eps.get("neo4j-password", "")


def neo4j_env() -> dict[str, str]:
    """MOE_NEO4J_USER / MOE_NEO4J_PASSWORD for a service started by a test."""
    user, password = neo4j_auth()
    return {"MOE_NEO4J_USER": user, "MOE_NEO4J_PASSWORD": password}
