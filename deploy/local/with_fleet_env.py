"""Run a command with a local service's environment (endpoints with their generated credentials,
.data/fleet.env, then the caller's own variables), as `make up` starts the service:

    python deploy/local/with_fleet_env.py codex-lineage python -m codex_lineage.replay timeline <id>

Used by `make replay`, so operator commands reach the same stores as the running fleet."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlib import config, services


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in services.SERVICES:
        print(f"usage: with_fleet_env.py <{'|'.join(services.SERVICES)}> <command> [args…]", file=sys.stderr)
        return 2
    if argv[0] in config.PG_SERVICES:  # its tables and grants exist before its command runs (`make key` before `up`)
        try:
            services.migrate_fleet_store()
        except (OSError, asyncpg.PostgresError) as exc:  # Postgres down or refusing: one line, not a traceback
            print(f"the local Postgres ({config.endpoints()['postgres'].rsplit('@', 1)[-1]}) cannot be used: {exc}. "
                  "Is it running? `make status` shows it, `make up` starts it", file=sys.stderr)
            return 2
    env = services.service_env(argv[0])
    if argv[0] == "codex-lineage":  # an operator's replay: rebuild writes scratch schemas as the store's owner
        env.setdefault("MOE_AUDIT_MIGRATOR_DSN", config.endpoints()["postgres-audit-migrator"])
    os.execvpe(argv[1], argv[1:], env)  # noqa: S606  (an operator's own command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
