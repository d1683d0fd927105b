"""Open Policy Agent: the control plane's write decisions (knowledge imports, memory ingest, learned triples
in protected domains, key and tenant administration) over the Rego policies in policy/opa/ (fleetlib.gotools
builds `opa` from the Go module proxy into .data/bin).

`--watch` reloads a changed policy without a restart; a file that does not parse or compile is refused and
the previous policies stay in force (OPA logs the error; the control plane's GET /v1/admin/policy reports
the version in force and the files that are not). The *_test.rego files are `opa test`'s (tests/unit).
With MOE_OPA_BUNDLE=true OPA polls the control plane's signed bundle instead (fleetlib.opa_bundle).
"""

from __future__ import annotations

from . import config, gotools, opa_bundle
from .component import Component

POLICY_DIR = config.REPO / "policy" / "opa"


def prepare() -> list[str]:
    gotools.ensure_tool("opa")
    argv = [str(gotools.binary("opa")), "run", "--server", "--addr", f"{config.HOST}:{config.port('opa')}",
            "--skip-version-check", "--disable-telemetry", "--log-format", "json", "--log-level", "info"]
    if opa_bundle.enabled():  # the control plane's signed bundle, polled (fleetlib.opa_bundle)
        return [*argv, "--config-file", str(opa_bundle.config_file())]
    return [*argv, "--watch", "--ignore", "*_test.rego", str(POLICY_DIR)]


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
