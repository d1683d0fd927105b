"""Command line of fleetctl: install / up / down / status / logs."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from . import config, install, proc, registry, supervisor

USAGE_COMPONENTS = f"components or groups: {', '.join([*registry.GROUPS, *registry.BY_NAME])}"


def _logs(names: list[str], lines: int, follow: bool) -> int:
    comps = registry.resolve(names, default="all")
    paths = [(c.name, config.log_path(c.name)) for c in comps if config.log_path(c.name).exists()]
    if not paths:
        print("no logs yet")
        return 0
    for name, path in paths:
        if len(paths) > 1:
            print(f"==> {name}: {path} <==")
        print(proc.tail(path, lines))
    if not follow:
        return 0
    offsets = {path: path.stat().st_size for _, path in paths}
    try:
        while True:
            for name, path in paths:
                with path.open("rb") as fh:
                    fh.seek(offsets[path])
                    chunk = fh.read()
                    offsets[path] = fh.tell()
                for line in chunk.decode(errors="replace").splitlines():
                    print(f"{name} | {line}" if len(paths) > 1 else line, flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleetctl", description="Local infrastructure supervisor "
                                     "for the MoE Sovereign Fleet (see deploy/local/README.md).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd, helptext in [("install", "install what is missing (jars, apt packages)"),
                          ("up", "start and wait for readiness (default: infra)"),
                          ("down", "stop what fleetctl started (default: all)"),
                          ("status", "one line per component (default: all)")]:
        p = sub.add_parser(cmd, help=helptext)
        p.add_argument("components", nargs="*", help=USAGE_COMPONENTS)
    p = sub.add_parser("logs", help="tail the logs (default: all)")
    p.add_argument("components", nargs="*", help=USAGE_COMPONENTS)
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--lines", type=int, default=40)
    args = parser.parse_args(argv)

    for noisy in ("aiokafka", "kafka", "neo4j", "httpx", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    if args.cmd == "install":
        try:
            install.ensure([c.name for c in registry.resolve(args.components, "infra") if c.group == "infra"])
        except install.InstallError as exc:
            print(f"fleetctl install failed: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "up":
        return supervisor.up(registry.resolve(args.components, "infra"))
    if args.cmd == "down":
        return supervisor.down(registry.resolve(args.components, "all"))
    if args.cmd == "status":
        return supervisor.status(registry.resolve(args.components, "all"))
    return _logs(args.components, args.lines, args.follow)
