"""Markers that are true: every test belongs to exactly one tier, and a `unit` test needs no infrastructure.

- A test with no tier marker (unit, infra, e2e, chaos) is a collection error. The closest marker is the
  test's tier: `@pytest.mark.infra` on a function in a `unit` module makes that one test infra (select
  the unit tier alone with `-m "unit and not (infra or e2e or chaos)"`, as `make test-unit` does).
- A `unit` test that asks for an infrastructure fixture is a collection error; one that opens a connection
  to a store's port (Kafka, Redis, Postgres, Neo4j, Chroma, the local model, Prometheus) fails with the
  address it tried: mark it `infra` (and put it in a tier that starts what it needs).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

TIERS = ("unit", "infra", "e2e", "chaos")
INFRA_FIXTURES = frozenset({"infra", "redis", "endpoints"})
STORE_PORTS = ("kafka", "kafka-controller", "redis", "postgres", "neo4j", "neo4j-http", "chroma", "llm",
               "prometheus")


def check(items: list[pytest.Item]) -> None:
    """Raise a UsageError naming every test whose markers are missing or untrue."""
    wrong: list[str] = []
    for item in items:
        found = tier(item)
        if found is None:
            wrong.append(f"{item.nodeid}: no tier marker (one of {', '.join(TIERS)})")
        elif found == "unit":
            used = INFRA_FIXTURES & set(getattr(item, "fixturenames", ()))
            if used:
                wrong.append(f"{item.nodeid}: marked unit but uses {sorted(used)}: mark it infra")
    if wrong:
        raise pytest.UsageError("tests with untrue markers:\n  " + "\n  ".join(wrong))


# Modules of a tier package that run as a scope of their own (on another worker, with the package's fixtures started
# again there): the chaos tier's cases with a fleet of their own (the three-broker cluster, the restore drill) run
# beside its shared fleet's cases, so that neither half is the run's tail (the whole tier was ~960 s on one worker).
SPLIT = {"chaos/fleet/test_cluster.py": "chaos-own-fleets",
         "chaos/control_plane/test_restore_drill.py": "chaos-own-fleets"}

# Modules that run after the rest of their scope, one after the other: those sharing a package-scoped fleet that the
# rest of the scope does not use (the lineage tier's graph fleet), so that it starts late and is not left idle.
LAST_IN_SCOPE = frozenset({"lineage/codex_lineage/test_fact_lineage.py",
                           "lineage/codex_lineage/test_replay_graph_reproduces.py"})
# ... and before it: the dead-server journey needs scripted-b as the fleet's first choice for fleet-model, which some
# journey of the tier leaves otherwise (not found yet; it ran seventh of the flat files, before any of them, and its
# own first step now makes sure scripted-b is up and known healthy).
FIRST_IN_SCOPE = frozenset({"e2e/planner/test_cache_and_feedback.py"})


def _place(nodeid: str) -> int:
    module = nodeid.split("::", 1)[0].removeprefix("tests/")
    return 0 if module in FIRST_IN_SCOPE else 2 if module in LAST_IN_SCOPE else 1

# Seconds each scope takes (setup + call + teardown of its tests, as the run's "time per tier package" summary
# prints them; measured on the 2-core machine). Only an ordering hint: the longest scopes start first, so the
# workers end together (a long scope started last is the run's tail). Unlisted scopes go last.
# Session 41's CI (ci41b).
EXPECTED_S = {"lineage": 407, "chaos": 394, "e2e": 365, "chaos-own-fleets": 216, "infra": 215, "graph": 190,
              "console": 182, "deploy": 181, "unit": 158, "bench": 110, "broker": 94, "observability": 42, "fuzz": 16}


def package(nodeid: str) -> str:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else nodeid


def scope(nodeid: str) -> str:
    """The worker scope of a test: its tier package, or the scope SPLIT names for its module."""
    module = nodeid.split("::", 1)[0].removeprefix("tests/")
    return SPLIT.get(module, package(nodeid))


def longest_first(items: list[pytest.Item]) -> None:
    """Order the items by their scope's expected time, longest first (stable within a scope)."""
    items.sort(key=lambda item: (-EXPECTED_S.get(scope(item.nodeid), 0), _place(item.nodeid)))


class TierScheduling(LoadScopeScheduling):
    """pytest-xdist: each tier's tests (its package under tests/, or a SPLIT scope) go to one worker, so its
    package-scoped fleet starts once there, and tiers run side by side (their namespaces, tenants and ports are
    their own). xdist's own `--dist loadgroup` does not work with pytest 9 (it renames a node through `_nodeid`,
    which pytest 9 no longer reads), so the scope is taken from the node id here."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        config.option.loadscopereorder = False  # keep the collection's order: longest_first
        super().__init__(config, log)

    def _split_scope(self, nodeid: str) -> str:
        return scope(nodeid)


def tier(item: pytest.Item) -> str | None:
    """The closest tier marker's name (a function's own before its module's)."""
    return next((m.name for m in item.iter_markers() if m.name in TIERS), None)


class StoreGuard:
    """While a unit test runs, a connection to a store's port is refused with the test's name."""

    def __init__(self, ports: set[int], test: str = "") -> None:
        self.ports = ports
        self.test = test  # named in the refusal: a task the test left behind can raise it after the test ended
        self._connect = socket.socket.connect
        self._connect_ex = socket.socket.connect_ex

    def _refuse(self, address: Any) -> None:
        if isinstance(address, tuple) and len(address) >= 2 and address[1] in self.ports:
            raise AssertionError(f"a unit test ({self.test}) connected to {address[0]}:{address[1]} (a store): "
                                 "mark it infra")

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        guard, connect, connect_ex = self, self._connect, self._connect_ex

        def guarded(sock: socket.socket, address: Any) -> None:
            guard._refuse(address)
            connect(sock, address)

        def guarded_ex(sock: socket.socket, address: Any) -> int:
            guard._refuse(address)
            return connect_ex(sock, address)

        monkeypatch.setattr(socket.socket, "connect", guarded)
        monkeypatch.setattr(socket.socket, "connect_ex", guarded_ex)


def guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, ports: set[int]) -> Iterator[None]:
    if isinstance(request.node, pytest.Item) and tier(request.node) == "unit":
        StoreGuard(ports, request.node.nodeid).patch(monkeypatch)
    yield
