"""The broker's requests by API and by client (issue 52): a broker of one's own (bench.kafka_broker) whose request
logger (`kafka.request.logger`) writes one line per completed request at DEBUG to DIR/requests.log, and a counter of
that log's lines. JMX (bench.kafka_requests) counts requests by type only; the log also names the client (the
service's `client_id`) and, for a fetch or a commit, what it carried, so an avoidable request has an owner.

    python -m bench.kafka_costs_log start DIR [--port 19392]   # prints MOE_KAFKA_PORT, MOE_BENCH_KAFKA_PID and the log
    MOE_BENCH_KAFKA_LOG=DIR/requests.log MOE_BENCH_KAFKA_PID=... MOE_KAFKA_PORT=... python -m bench.kafka_costs ...
    python -m bench.kafka_costs_log count DIR/requests.log [--skip N]      # counts by API and client from line N on
    python -m bench.kafka_broker stop DIR
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

from bench import kafka_broker
from bench.config import REPO

REQUEST_LOG = """\
appender.requests.type = File
appender.requests.name = REQUESTS
appender.requests.fileName = {path}
appender.requests.layout.type = PatternLayout
appender.requests.layout.pattern = %m%n
logger.request.name = kafka.request.logger
logger.request.level = DEBUG
logger.request.additivity = false
logger.request.appenderRef.requests.ref = REQUESTS
"""
_API = re.compile(r'"requestApiKeyName":"(\w+)"')
_CLIENT = re.compile(r'"clientId":"([^"]*)"')
_FETCHED = re.compile(r'"request":\{[^{]*?"topics":\[(.*?)\],"forgottenTopicsData"')
_TOPIC = re.compile(r'"topic":"(?:[^".]*\.)?([^"]*?)(?:\.v\d+)?"')
_FETCH_BYTES = re.compile(r'"recordsSizeInBytes":(\d+)')


def start(folder: Path, ports: tuple[int, int, int]) -> dict[str, str]:
    """bench.kafka_broker's broker in `folder`, its request logger at DEBUG into folder/requests.log."""
    folder = folder.resolve()
    os.environ["MOE_DATA_DIR"] = str(folder)  # fleetlib.config reads it when first imported
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    from fleetlib import kafka

    log = folder / "requests.log"
    base = kafka.LOG4J_TEXT.replace("logger.request.name = kafka.request.logger\nlogger.request.level = WARN\n", "")
    kafka.LOG4J_TEXT = base + REQUEST_LOG.format(path=log)  # prepare() writes it before the broker starts
    pid = kafka_broker.start(folder, ports, [], [])
    return {"MOE_KAFKA_PORT": str(ports[0]), "MOE_BENCH_KAFKA_PID": str(pid), "MOE_BENCH_KAFKA_LOG": str(log)}


def lines(path: Path) -> int:
    """How many lines the log holds now (a mark: count from there on)."""
    with path.open("rb") as log:
        return sum(1 for _ in log)


def count(path: Path, skip: int = 0, until: int | None = None) -> dict[str, Counter[str]]:
    """Completed requests from line `skip` to `until`: {"api": {Fetch: n}, "client": {"Fetch planner": n},
    "empty": {"planner": n} (fetches answered without a record)}."""
    out: dict[str, Counter[str]] = {"api": Counter(), "client": Counter(), "empty": Counter()}
    with path.open(encoding="utf-8", errors="replace") as log:
        for i, line in enumerate(log):
            if i < skip:
                continue
            if until is not None and i >= until:
                break
            api = _API.search(line)
            if not api:
                continue
            client = _CLIENT.search(line)
            who = client.group(1) if client else "?"
            if api.group(1) == "FETCH":  # which consumer of the client: the topics it fetches
                fetched = _FETCHED.search(line)
                topics = sorted(set(_TOPIC.findall(fetched.group(1)))) if fetched else []
                who += f" [{','.join(topics) if len(topics) < 4 else f'{len(topics)} topics'}]"
            out["api"][api.group(1)] += 1
            out["client"][f"{api.group(1)} {who}"] += 1
            if api.group(1) == "FETCH" and _empty(line):
                out["empty"][who] += 1
    return out


def _empty(line: str) -> bool:
    """A fetch answered without a record (every partition of the response carries 0 bytes of records)."""
    return not any(int(size) for size in _FETCH_BYTES.findall(line))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_costs_log")
    sub = parser.add_subparsers(dest="action", required=True)
    started = sub.add_parser("start")
    started.add_argument("folder", type=Path)
    started.add_argument("--port", type=int, default=19392, help="client port")
    started.add_argument("--controller-port", type=int, help="default: the client port + 1")
    started.add_argument("--tls-port", type=int, help="default: the client port + 2")
    counted = sub.add_parser("count")
    counted.add_argument("log", type=Path)
    counted.add_argument("--skip", type=int, default=0)
    args = parser.parse_args(argv)
    if args.action == "start":
        ports = (args.port, args.controller_port or args.port + 1, args.tls_port or args.port + 2)
        print(json.dumps(start(args.folder, ports)))
        return
    result = count(args.log, args.skip)
    print(json.dumps({k: dict(v.most_common()) for k, v in result.items()}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
