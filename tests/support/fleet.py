"""Run the fleet's services as real processes (for end-to-end tests), isolated by topic namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import moe_core.stage.registry as stage_registry
from tests.support.broker_principals import Principals
from tests.support.ports import free_port
from tests.support.store_auth import neo4j_env

REPO = Path(__file__).resolve().parents[2]
LOGS = REPO / ".data" / "logs"
MODULES = {s.name: s.package for s in stage_registry.FLEET}
# Started only when a test asks for them (Fleet(extra=...)): they call models after an answer is given,
# which would add calls to other journeys' recorded model calls.
# codex-lineage: only the audit and lineage journeys need it (one more consumer of every topic).
ON_DEMAND = frozenset({"graph-ingest", "gap-healer", "codex-lineage"})
GRAPH_SERVICES = frozenset({"graph-rag", "graph-ingest", "gap-healer"})


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = LOGS / f"test-{self.env['MOE_TOPIC_NAMESPACE']}-{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(  # the service stops by itself if this test session is killed
                [sys.executable, "-m", MODULES[self.name]], env={**self.env, "MOE_EXIT_WITH_PID": str(os.getpid())},
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 180) -> None:  # a loaded 2-core machine starts slowly
        end = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log}\n{self.tail()}")
            try:
                response = httpx.get(f"{self.url}/ready", timeout=10)  # /ready pings Kafka: slow under load
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s ({last}); log: {self.log}\n{self.tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM to its process group: its graceful stop begins (`stopped` waits for it)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stopped(self, timeout_s: float = 20) -> None:
        """After `terminate`: wait for the exit, SIGKILL when it does not come within `timeout_s`."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=max(timeout_s, 0.1))
            except subprocess.TimeoutExpired:
                self.kill()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
            self.stopped()

    def tail(self, lines: int = 30) -> str:
        """The log's last lines, after its first traceback or error (the cause, which a long shutdown pushes out
        of the tail)."""
        if not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").splitlines()
        first = next((i for i, line in enumerate(text) if "Traceback" in line or " ERROR " in line), None)
        cause = text[first:first + 40] if first is not None and first < len(text) - lines else []
        return "\n".join([*cause, *(["[...]"] if cause else []), *text[-lines:]])


@contextmanager
def running(service: ServiceProcess, timeout_s: float = 180) -> Iterator[ServiceProcess]:
    """The service started and ready (within `timeout_s`); stopped on exit."""
    try:
        service.start()
        service.wait_ready(timeout_s)
        yield service
    finally:
        service.stop()


class Fleet:
    """The fleet's services (ON_DEMAND ones when asked for) with one environment: start all, wait for all."""

    def __init__(self, env: dict[str, str], gateway_workers: int = 2, extra: tuple[str, ...] = (),
                 own_principals: bool = True) -> None:
        self.services: dict[str, ServiceProcess] = {}
        names = [n for n in MODULES if n not in ON_DEMAND or n in extra]
        if GRAPH_SERVICES & set(names):
            named = {"MOE_NEO4J_URL": env["MOE_NEO4J_URL"]} if "MOE_NEO4J_URL" in env else {}  # else the shared one
            env = {"MOE_NEO4J_URL": named.get("MOE_NEO4J_URL") or _ensure_neo4j(), **neo4j_env(), **env}
        if "codex-lineage" in names and "MOE_AUDIT_SIGNING_KEY" not in env:
            env = {**audit_keys(), **env}
        roles = _roles(env)
        self.principals = Principals({**os.environ, **env}, names, own_principals)  # False: as in `env`
        self.producer_keys = producer_keys()  # each service's own signing key, and the list of them all
        for name in names:
            port = free_port()
            service_env = {**os.environ, **env, **self.principals.env(name), "MOE_HTTP_PORT": str(port),
                           **roles.get(name, {}), **producer_env(self.producer_keys, name)}
            if name == "gateway":
                service_env["MOE_GATEWAY_WORKERS"] = str(gateway_workers)
            self.services[name] = ServiceProcess(name, port, service_env)

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.services[name]

    def start(self, attempts: int = 2) -> None:
        """Start all, then wait for all. A service that exits while starting is started again (on a new port)
        up to `attempts` times in all, as a supervisor would, and says so with the cause from its log: a free
        port taken by another process before the service bound it, or a failure the service does not retry."""
        self.principals.set_up()
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            for attempt in range(1, attempts + 1):
                try:
                    service.wait_ready()
                    break
                except RuntimeError as exc:
                    if attempt == attempts or service.proc is None or service.proc.poll() is None:
                        raise
                    print(f"fleet: {service.name} exited while starting (attempt {attempt}); starting it again:\n"
                          f"{str(exc)[:4000]}", file=sys.stderr)
                    warnings.warn(f"{service.name} exited while starting and was started again: {str(exc)[:600]}",
                                  RuntimeWarning, stacklevel=2)
                    service.port = free_port()
                    service.env["MOE_HTTP_PORT"] = str(service.port)
                    service.start()

    def stop(self) -> None:
        """Every service stopped as `ServiceProcess.stop` does, all at once (one after another, each service's
        graceful stop added up to half a minute per fleet)."""
        for service in self.services.values():
            service.terminate()
        end = time.monotonic() + 20
        for service in self.services.values():
            service.stopped(end - time.monotonic())
        self.principals.tear_down()

    def __enter__(self) -> Fleet:
        """Started and ready (what did start is stopped again if one service does not get ready)."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _roles(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each service that touches Postgres logs in as its own role (as fleetctl starts it), unless the test
    gave another DSN; codex-lineage migrating its own store at start keeps the fleet's role (one role)."""
    from fleetlib import api  # deploy/local (tests/conftest puts it on the path)

    eps = api.endpoints()
    if env.get("MOE_POSTGRES_DSN", eps["postgres"]) != eps["postgres"]:
        return {}
    single = env.get("MOE_AUDIT_MIGRATE_ON_START", "").lower() == "true"
    return {name: {"MOE_POSTGRES_DSN": eps[f"postgres-{name}"]} for name in MODULES
            if f"postgres-{name}" in eps and not (name == "codex-lineage" and single)}


def producer_keys() -> Path:
    """A test fleet's own producer keys (moe_core.stage.producers): every service of the registry's, in a folder of
    its own."""
    import tempfile

    from moe_core.stage import producers

    folder = Path(tempfile.mkdtemp(prefix="producer-keys-"))
    producers.generate(folder)
    return folder


def producer_env(folder: Path, name: str) -> dict[str, str]:
    """Service `name`'s signing key and the producers' key list of a folder `producer_keys` made."""
    from moe_core.stage import producers

    return {"MOE_PRODUCER_SIGNING_KEY": str(producers.key_file(folder, name)),
            "MOE_PRODUCER_KEYS": str(folder / producers.LIST)}


def audit_keys(migrate: bool = True) -> dict[str, str]:
    """codex-lineage refuses to start without its signing key: a key pair of this fleet's own; its store is
    made at its start with the fleet's role (migrate=False: it logs in as its own role, as fleetctl starts it,
    into the store the infrastructure's start migrated)."""
    import tempfile

    from fleetlib import audit_key  # deploy/local (tests/conftest puts it on the path)

    folder = Path(tempfile.mkdtemp(prefix="audit-keys-"))
    private, public = audit_key.ensure(folder / "audit-signing-key.pem", folder / "audit-public-key.pem")
    return {"MOE_AUDIT_SIGNING_KEY": str(private), "MOE_AUDIT_PUBLIC_KEY": str(public),
            "MOE_AUDIT_MIGRATE_ON_START": "true" if migrate else "false"}  # true: one role for everything


def _ensure_neo4j() -> str:
    """The graph services need Neo4j: start it if it is not running; its bolt URL."""
    local = str(REPO / "deploy" / "local")
    if local not in sys.path:
        sys.path.insert(0, local)
    from fleetlib import api

    api.ensure_up(["neo4j"])
    return api.endpoints()["neo4j"]
