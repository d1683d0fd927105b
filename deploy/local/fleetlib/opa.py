"""Open Policy Agent: the control plane's write decisions (knowledge imports, memory ingest, learned triples
in protected domains, key and tenant administration) over the Rego policies in policy/opa/ (fleetlib.gotools
builds `opa` from the Go module proxy into .data/bin).

`--watch` reloads a changed policy without a restart; a file that does not parse or compile is refused and
the previous policies stay in force (OPA logs the error; the control plane's GET /v1/admin/policy reports
the version in force and the files that are not). The *_test.rego files are `opa test`'s (tests/unit).
"""

from __future__ import annotations

from . import config, gotools
from .component import Component

POLICY_DIR = config.REPO / "policy" / "opa"


def prepare() -> list[str]:
    gotools.ensure_tool("opa")
    return [str(gotools.binary("opa")), "run", "--server", "--addr", f"{config.HOST}:{config.port('opa')}",
            "--watch", "--skip-version-check", "--disable-telemetry", "--log-format", "json", "--log-level", "info",
            "--ignore", "*_test.rego", str(POLICY_DIR)]


async def check() -> None:
    import httpx

    async with httpx.AsyncClient(timeout=3) as client:
        resp = await client.get(f"http://{config.HOST}:{config.port('opa')}/health")
        if resp.status_code != 200:
            raise RuntimeError(f"GET /health returned {resp.status_code}")


COMPONENT = Component(name="opa", group="infra", port_key="opa", prepare=prepare, check=check, deadline=60,
                      # the address, not the policy folder: a worktree's folder is not the running OPA's (main's), and
                      # a mismatch made every worktree drop the shared OPA's pid file and fail on its busy port
                      match=lambda: f"--addr {config.HOST}:{config.port('opa')}",
                      ready="`GET /health` 200 (the policies are loaded)")
