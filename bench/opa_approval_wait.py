"""How long an egress approval waits for OPA to load the new signed bundle (issue 52): the control plane's bundle
server in this process over a copy of policy/opa (tests.support.opa_bundles) and a real OPA polling it, per approval
the seconds from the change in force (as the approval's commit makes it, then PolicyBundles.changed()) to OPA naming
the new revision (PolicyBundles.loaded, as the approval waits), the two configurations alternated round by round:

    python -m bench.opa_approval_wait [N] [ROUNDS]     # default 5 and 2

- `poll`: OPA polling every 1-5 s (opa_config's defaults: what an approval waited for before);
- `long_poll`: OPA long-polling (long_poll_s=5, the local fleet's fleetlib.opa_bundle.LONG_POLL_S): the poll held
  by the control plane is answered when the approval commits."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import infra  # noqa: F401  (puts deploy/local's fleetlib on the path, for the opa binary)
from control_plane.policy.egress_reviewed import reviewed_file
from moe_core.policy import PolicyClient
from tests.support.opa_bundles import served_bundle

CONFIGS = {"poll": 0, "long_poll": 5}  # opa_config's long_poll_s


async def _waits(n: int, long_poll_s: int) -> list[float]:
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory() as work, \
            served_bundle(Path(work), token, long_poll_s=long_poll_s) as (server, engine):
        client = PolicyClient(engine.url, token=token)
        try:
            await server.bundles.loaded(client, (await server.bundles.current()).revision)
            reviewed = reviewed_file(server.policy_dir)
            assert reviewed is not None
            out = []
            for i in range(n):
                await asyncio.sleep(1.5)  # OPA back in its poll (held, or between two)
                started = time.monotonic()
                server.change = {"module": reviewed.text + f"\n# approval {i}\n", "reviewed_file": reviewed.digest}
                server.bundles.changed()
                await server.bundles.loaded(client, (await server.bundles.current()).revision)
                out.append(time.monotonic() - started)
            return out
        finally:
            await client.close()


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 5
    rounds = int(argv[1]) if len(argv) > 1 else 2
    for r in range(rounds):
        for name, long_poll_s in CONFIGS.items():
            waits = asyncio.run(_waits(n, long_poll_s))
            print(f"round {r + 1} {name:9s} approval wait s: median {statistics.median(waits):.2f} "
                  f"min {min(waits):.2f} max {max(waits):.2f}  ({' '.join(f'{w:.2f}' for w in waits)})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
