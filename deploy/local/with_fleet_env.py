"""Run a command with a local service's environment (endpoints with their generated credentials,
.data/fleet.env, then the caller's own variables), as `make up` starts the service:

    python deploy/local/with_fleet_env.py replay python -m codex_lineage.replay timeline <id>

Used by `make key`, `make keys` and `make replay`, so operator commands reach the same stores as the running fleet.
`replay` is codex-lineage's environment without its signing key, its writer role and the audit store's owner: the
audit store's read-only role (services.replay_env), run as root as the OS user `moe-replay` (fleetlib.osusers): what
it writes (`export --out`) goes to a folder that user may write."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlib import config, osusers, services


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in (*services.SERVICES, "replay"):
        print(f"usage: with_fleet_env.py <{'|'.join(services.SERVICES)}|replay> <command> [args…]", file=sys.stderr)
        return 2
    if argv[0] in (*config.PG_SERVICES, "replay"):  # its tables and grants exist before its command runs
        try:
            services.migrate_fleet_store()
        except (OSError, asyncpg.PostgresError) as exc:  # Postgres down or refusing: one line, not a traceback
            print(f"the local Postgres ({config.endpoints()['postgres'].rsplit('@', 1)[-1]}) cannot be used: {exc}. "
                  "Is it running? `make status` shows it, `make up` starts it", file=sys.stderr)
            return 2
    # replay: read-only (services.replay_env: no signing key, no writer or migrator role)
    env = services.replay_env() if argv[0] == "replay" else services.service_env(argv[0])
    user = osusers.user_of("replay") if argv[0] == "replay" else None
    if user:  # as root: moe-replay, which cannot read any key of the fleet's (fleetlib.osusers), so it signs nothing
        env.pop("MOE_PRODUCER_SIGNING_KEY", None)  # `replay rerun`'s request is then unsigned: a finding
        env.update(osusers.home(user))
        osusers.drop_to(user)
    os.execvpe(argv[1], argv[1:], env)  # noqa: S606  (an operator's own command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
