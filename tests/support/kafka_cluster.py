"""A three-node Kafka cluster for chaos tests (deploy/local/fleetlib/kafka_cluster.py): started as processes of this
session on free ports in a throwaway folder; a node can be killed (SIGKILL of its own process group) and started
again; the leaders of a topic's partitions are read from the cluster's metadata. Only processes started here are
ever signalled."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from moe_core.runtime.kafka_clients import client_kwargs
from moe_core.runtime.settings import FleetSettings
from tests.support.ports import free_port


class KafkaCluster:
    """`start()` the three nodes and wait until all are brokers of the cluster; `kill(id)`, `restart(id)`."""

    def __init__(self, admin_password: str, size: int = 3) -> None:
        from fleetlib import kafka_cluster  # deploy/local (tests/conftest puts it on the path)

        self._lib = kafka_cluster
        self.dir = Path(tempfile.mkdtemp(prefix="moe-kafka-cluster-"))
        self.nodes = kafka_cluster.nodes(self.dir, [(free_port(), free_port()) for _ in range(size)])
        self.admin_password, self._controller = admin_password, secrets.token_urlsafe(18)
        self._id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=").lstrip("-") or "moe"
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    def settings(self) -> FleetSettings:
        """The admin's client settings."""
        return FleetSettings(kafka_bootstrap=self.bootstrap, kafka_security_protocol="SASL_PLAINTEXT",
                             kafka_sasl_mechanism="SCRAM-SHA-512", kafka_username="admin",
                             kafka_password=SecretStr(self.admin_password))

    def start(self, *ids: int) -> None:
        """Start the nodes (default: all) that are not running."""
        for node in self.nodes:
            if (ids and node.node_id not in ids) or self.running(node.node_id):
                continue
            command = self._lib.prepare(node, self.nodes, self._id, self.admin_password, self._controller)
            with open(node.home / "kafka.out", "ab") as out:
                self.procs[node.node_id] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                            start_new_session=True)

    def running(self, node_id: int) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def kill(self, node_id: int) -> None:
        """SIGKILL: the node neither flushes nor says goodbye (its partitions' leadership moves on once the
        controllers fence it)."""
        proc = self.procs[node_id]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def wait_ready(self, timeout_s: float = 180) -> None:
        """Until every node is a broker of the cluster (the admin authenticated on each)."""
        asyncio.run(self._until(lambda brokers, _: len(brokers) == len(self.nodes), "every node to join", timeout_s))

    def wait_in_sync(self, topics: list[str], timeout_s: float = 180) -> None:
        """Until every partition of `topics` has all its replicas in sync (a restarted node caught up)."""
        asyncio.run(self._until(lambda _, described: all(
            len(p["isr"]) == len(p["replicas"]) for t in described for p in t["partitions"]),
            "every replica to be in sync", timeout_s, topics))

    def leaders(self, topic: str) -> dict[int, int]:
        """{partition: the node leading it}."""
        async def read() -> dict[int, int]:
            async with _admin(self.settings()) as admin:
                [described] = await admin.describe_topics([topic])
            return {p["partition"]: p["leader"] for p in described["partitions"]}

        return asyncio.run(read())

    async def _until(self, done: object, what: str, timeout_s: float, topics: list[str] | None = None) -> None:
        end, last = time.monotonic() + timeout_s, ""
        while time.monotonic() < end:
            for node_id, proc in self.procs.items():
                if proc.poll() is not None and node_id not in self._killed():
                    raise RuntimeError(f"kafka node {node_id} exited with {proc.returncode}:\n{self.tail(node_id)}")
            try:
                async with _admin(self.settings()) as admin:
                    brokers = (await admin.describe_cluster())["brokers"]
                    described = await admin.describe_topics(topics) if topics else []
                if done(brokers, described):  # type: ignore[operator]
                    return
                last = f"{len(brokers)} brokers"
            except (TimeoutError, KafkaError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)
        raise RuntimeError(f"kafka cluster: timed out after {timeout_s}s waiting for {what} ({last})\n"
                           + "\n".join(self.tail(n.node_id) for n in self.nodes))

    def _killed(self) -> set[int]:
        return {i for i, p in self.procs.items() if p.returncode == -signal.SIGKILL}

    def tail(self, node_id: int, lines: int = 20) -> str:
        log = self.dir / f"node-{node_id}" / "kafka.out"
        text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
        return f"--- node {node_id}\n" + "\n".join(text)

    def close(self) -> None:
        """Thrown away: every node SIGKILLed at once, then its folder removed (a SIGTERM one node at a time made the
        last ones wait half a minute each for a controlled shutdown the cluster could no longer give them)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for node_id, proc in self.procs.items():
            proc.wait(timeout=30)
            print(f"kafka cluster node {node_id} stopped")
        shutil.rmtree(self.dir, ignore_errors=True)


class _admin:
    def __init__(self, settings: FleetSettings) -> None:
        self.client = AIOKafkaAdminClient(**client_kwargs(settings), request_timeout_ms=5000)

    async def __aenter__(self) -> AIOKafkaAdminClient:
        await asyncio.wait_for(self.client.start(), 10)
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()
