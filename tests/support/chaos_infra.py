"""Private infrastructure for chaos tests: Kafka and the stores started by fleetctl in a throwaway data
directory on free ports (never the shared instances other sessions use), so a test may stop, restart or
freeze (SIGSTOP) them. Only processes started here are ever signalled: their pids come from the private
run directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.support.fleet import REPO, free_port

LOCAL = REPO / "deploy" / "local"
PORT_VARS = {"kafka": ("MOE_KAFKA_PORT", "MOE_KAFKA_CONTROLLER_PORT", "MOE_KAFKA_TLS_PORT"),
             "redis": ("MOE_REDIS_PORT",), "postgres": ("MOE_POSTGRES_PORT",),
             "neo4j": ("MOE_NEO4J_BOLT_PORT", "MOE_NEO4J_HTTP_PORT"), "chroma": ("MOE_CHROMA_PORT",)}
MIGRATE = (sys.executable, "-c", "from fleetlib import api; api.migrate()")
STOP_SIGNAL = {"postgres": signal.SIGINT}  # postgres: "fast" shutdown, as fleetctl does
# A throwaway Neo4j starts with C1 alone and the serial collector (fleetlib/neo4j.py): ~10 s of CPU instead of ~17
# for a fresh start, which the chaos tiers pay twice, and once more for each Neo4j restart of their cases.
JVM_FLAGS = {"MOE_NEO4J_JVM_FLAGS": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"}


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


class PrivateInfra:
    """`up()` the given components in a temp dir; `endpoints()` with their generated passwords."""

    def __init__(self, components: tuple[str, ...]) -> None:
        self.components = components
        self.dir = Path(tempfile.mkdtemp(prefix="moe-chaos-"))
        self.env = {"MOE_DATA_DIR": str(self.dir), **JVM_FLAGS}
        for name in components:
            for var in PORT_VARS[name]:
                self.env[var] = str(free_port())
        self._endpoints: dict[str, str] = {}
        self._share_kafka_admin()

    def _share_kafka_admin(self) -> None:
        """The private broker's admin gets the shared one's password: the session's own Kafka clients connect as
        the admin (MOE_KAFKA_* of its environment) to either broker."""
        from fleetlib import secrets  # deploy/local (tests/conftest puts it on the path)

        path = self.dir / "secrets.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps({"kafka-admin": secrets.generate("kafka-admin")}))

    def _fleetlib(self, *args: str, timeout_s: float = 300) -> str:
        result = subprocess.run(args, env={**os.environ, **self.env}, cwd=LOCAL, capture_output=True, text=True,
                                timeout=timeout_s, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def up(self, *names: str, timeout_s: float = 300) -> None:
        """Start (or start again) and wait until ready: fleetctl's own start and readiness checks; a private
        Postgres gets the fleet store's tables and roles as fleetctl makes them before the services start. The
        migration (~14 s on the loaded machine) begins once fleetctl has found Postgres ready, while the slower
        stores (Neo4j, Kafka) are still starting; it waited for all of them before."""
        names = names or self.components
        fleetctl = subprocess.Popen([sys.executable, "fleetctl.py", "up", *names], env={**os.environ, **self.env},
                                    cwd=LOCAL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        watchdog = threading.Timer(timeout_s, fleetctl.kill)
        watchdog.start()
        migrating: subprocess.Popen[str] | None = None
        output: list[str] = []
        try:
            assert fleetctl.stdout is not None
            for line in fleetctl.stdout:
                output.append(line)
                if "postgres" in names and migrating is None and line.startswith("postgres: ready"):
                    migrating = subprocess.Popen(MIGRATE, env={**os.environ, **self.env}, cwd=LOCAL,
                                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            fleetctl.wait()
        finally:
            watchdog.cancel()
            migrated = migrating.communicate(timeout=timeout_s)[0] if migrating is not None else ""
        if fleetctl.returncode != 0:
            raise RuntimeError(f"fleetctl up {' '.join(names)} failed ({fleetctl.returncode}):\n{''.join(output)}")
        if migrating is not None and migrating.returncode != 0:
            raise RuntimeError(f"the private Postgres' migration failed:\n{migrated}")
        if "postgres" in names and migrating is None:  # it was running already: fleetctl said nothing of it
            self._fleetlib(*MIGRATE)

    def endpoints(self) -> dict[str, str]:
        if not self._endpoints:
            code = "import json; from fleetlib import api; print(json.dumps(api.endpoints()))"
            self._endpoints = json.loads(self._fleetlib(sys.executable, "-c", code))
        return self._endpoints

    def service_env(self) -> dict[str, str]:
        """What a fleet's services need to use these instances instead of the shared ones."""
        eps = self.endpoints()
        env = {"MOE_KAFKA_BOOTSTRAP": eps["kafka"], "MOE_REDIS_URL": eps["redis"],
               "MOE_POSTGRES_DSN": eps["postgres"], "MOE_NEO4J_URL": eps["neo4j"],
               "MOE_NEO4J_USER": eps["neo4j-user"], "MOE_NEO4J_PASSWORD": eps["neo4j-password"],
               "MOE_CHROMA_URL": eps["chroma"]}
        names = {"MOE_KAFKA_BOOTSTRAP": "kafka", "MOE_REDIS_URL": "redis", "MOE_POSTGRES_DSN": "postgres",
                 "MOE_NEO4J_URL": "neo4j", "MOE_NEO4J_USER": "neo4j", "MOE_NEO4J_PASSWORD": "neo4j",
                 "MOE_CHROMA_URL": "chroma"}
        picked = {k: v for k, v in env.items() if names[k] in self.components}
        if "kafka" in self.components:  # the admin (the test's own clients); each service gets its principal
            picked |= {"MOE_KAFKA_SECURITY_PROTOCOL": eps["kafka-security-protocol"],
                       "MOE_KAFKA_USERNAME": eps["kafka-admin-user"], "MOE_KAFKA_PASSWORD": eps["kafka-admin-password"]}
        return picked

    def pid(self, name: str) -> int | None:
        try:
            pid = int((self.dir / "run" / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return None if _gone(pid) else pid

    def _signal_group(self, name: str, sig: int) -> None:
        pid = self.pid(name)
        if pid is None:
            raise RuntimeError(f"private {name} is not running")
        os.killpg(pid, sig)  # its own session (fleetctl)
        for child in _descendants(pid):  # postgres' backends call setsid(): not in the group
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)

    def pause(self, name: str) -> None:
        """Hang it: the process group stops (SIGSTOP); connections stay open and get no answer."""
        self._signal_group(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self._signal_group(name, signal.SIGCONT)

    def stop(self, name: str, timeout_s: float = 40) -> None:
        """Stop it the way an operator would (SIGTERM; SIGKILL when it does not exit in time)."""
        self._stop_all([name], timeout_s)

    def _stop_all(self, names: list[str], timeout_s: float) -> None:
        """Each stopped as `stop` does, all at once."""
        pids = {name: pid for name in names if (pid := self.pid(name)) is not None}
        for name, pid in pids.items():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
            os.kill(pid, STOP_SIGNAL.get(name, signal.SIGTERM))
        end = time.monotonic() + timeout_s
        while not all(_gone(pid) for pid in pids.values()):
            if time.monotonic() > end:
                for pid in pids.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                end = time.monotonic() + 10
            time.sleep(0.1)

    def close(self) -> None:
        """Every component stopped at once (one after another added up their shutdowns), the folder removed. Neo4j is
        killed (SIGKILL): its graceful stop checkpoints a store that is deleted next (11-17 s on the loaded machine)."""
        try:
            if "neo4j" in self.components and self.pid("neo4j") is not None:
                self._signal_group("neo4j", signal.SIGKILL)
            self._stop_all(list(self.components), 40)
        except OSError as exc:
            print(f"chaos: could not stop the private stores: {exc}")
        shutil.rmtree(self.dir, ignore_errors=True)
