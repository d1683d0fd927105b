"""A Kafka broker of one's own for measuring the broker (issue 52, bench.kafka_costs): fleetlib.kafka's broker
(server.properties, JVM flags, SASL/SCRAM, ACLs) in a throwaway folder on other ports, with the local fleet's
admin password (copied from .data/secrets.json), so the bench's fleet can use it as it uses fleetctl's broker
while no other user's load reaches it. Extra server.properties lines and JVM flags can be given to compare
settings (later keys win in server.properties; --jvm flags replace fleetlib's heap, GC and JIT flags).

    python -m bench.kafka_broker start DIR [--port 19392] [--prop key=value ...] [--jvm=FLAG ...]
        prints the environment to measure with (MOE_KAFKA_PORT, MOE_BENCH_KAFKA_PID)
    python -m bench.kafka_broker stop DIR        # SIGTERM to the broker started there (its own pid file)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.config import REPO


def start(folder: Path, ports: tuple[int, int, int], props: list[str], jvm_flags: list[str]) -> int:
    """The broker started in `folder` (formatted on first use) on (client, controller, TLS) ports; its pid once its
    client port accepts. In a process of its own: fleetlib.config reads MOE_DATA_DIR when it is first imported."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / ".data" / "secrets.json", folder / "secrets.json")
    port = ports[0]
    os.environ.update({"MOE_DATA_DIR": str(folder), "MOE_KAFKA_PORT": str(port),
                       "MOE_KAFKA_CONTROLLER_PORT": str(ports[1]), "MOE_KAFKA_TLS_PORT": str(ports[2])})
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    from fleetlib import kafka  # after MOE_DATA_DIR: fleetlib.config reads it when imported

    (folder / "logs").mkdir(exist_ok=True)
    command = kafka.prepare()
    if props:
        with kafka.PROPS.open("a") as out:
            out.write("# bench.kafka_broker --prop\n" + "".join(f"{p}\n" for p in props))
    if jvm_flags:  # instead of fleetlib's heap, GC and JIT flags (those before its first -D)
        first_property = next(i for i, arg in enumerate(command) if arg.startswith("-D"))
        command = [command[0], *jvm_flags, *command[first_property:]]
    with (folder / "kafka.out").open("ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    (folder / "kafka.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the broker exited ({proc.returncode}): see {folder / 'kafka.out'}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc.pid
        time.sleep(1)
    raise SystemExit(f"the broker did not open port {port} within 120 s")


def stop(folder: Path) -> None:
    pid = int((folder / "kafka.pid").read_text())
    os.killpg(pid, signal.SIGTERM)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_broker")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=19392, help="client port")
    parser.add_argument("--controller-port", type=int, help="default: the client port + 1")
    parser.add_argument("--tls-port", type=int, help="default: the client port + 2")
    parser.add_argument("--prop", action="append", default=[], help="an extra server.properties line")
    parser.add_argument("--jvm", action="append", default=[],
                        help="a heap, GC or JIT flag; given, they replace fleetlib's (e.g. the flags before a change)")
    args = parser.parse_args(argv)
    if args.action == "stop":
        stop(args.folder)
        return
    ports = (args.port, args.controller_port or args.port + 1, args.tls_port or args.port + 2)
    pid = start(args.folder.resolve(), ports, args.prop, args.jvm)
    print(json.dumps({"MOE_KAFKA_PORT": str(args.port), "MOE_BENCH_KAFKA_PID": str(pid)}))


if __name__ == "__main__":
    main(sys.argv[1:])
