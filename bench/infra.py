"""The bench's way to the local infrastructure: endpoints and credentials from where the fleet takes them
(deploy/local fleetlib: ports from MOE_*_PORT, passwords from .data/secrets.json), as tests/conftest.py's
`infra` fixture does. `connect()` also starts what is not running and makes this process's own Kafka
clients (client_kwargs without settings: the MOE_KAFKA_* environment) the broker's admin (SASL/SCRAM)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.config import REPO

sys.path.insert(0, str(REPO / "deploy" / "local"))
from fleetlib import api as fleetapi
from fleetlib import config as fleetconfig

INFRA = ["kafka", "redis", "postgres", "chroma", "neo4j", "opa"]  # opa: the planner decides egress at start


def endpoints() -> dict[str, str]:
    """The infrastructure's addresses with their credentials (Redis and Postgres URLs carry the password)."""
    return fleetapi.endpoints()


def kafka_admin_env() -> dict[str, str]:
    """MOE_KAFKA_* of the broker's admin principal (the bench's namespace is the admin's)."""
    return fleetconfig.kafka_admin_env()


def pid_path(name: str) -> Path:
    """Where fleetctl keeps a component's process id."""
    return fleetconfig.pid_path(name)


def connect(components: list[str] | None = None) -> dict[str, str]:
    """Start `components` (default: everything the bench uses) if they are not running, make the fleet store's
    tables where Postgres is among them (as `fleetctl up` does before the services start: a fresh clone's
    Postgres has none), point this process's Kafka clients at the admin principal, and return the endpoints."""
    fleetapi.ensure_up(components or INFRA)
    if "postgres" in (components or INFRA):
        fleetapi.migrate()
    os.environ.update(kafka_admin_env())
    return endpoints()
