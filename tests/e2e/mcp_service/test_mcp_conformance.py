"""The official MCP conformance suite (npm `@modelcontextprotocol/conformance`, pinned in deploy/local/npm and
installed by `make install`) against the mcp service's /mcp: every scenario of its active server suite is run;
the ones that pass must pass, and each one that fails must fail for the reason listed here (and in docs/api.md).

The suite cannot send an API key (it has no header option) and /mcp needs one: it talks to the service through
a proxy that adds the in-cluster service key, as a configured client would. Pinned at 0.1.13: later releases
need Node 22 (deploy/local/fleetlib/npmtools.py)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetlib import npmtools  # deploy/local (on the path: tests/conftest.py)

from tests.support.auth_proxy import start_auth_proxy
from tests.support.lone_service import lone_service

pytestmark = pytest.mark.e2e
SERVICE_KEY = f"svc-{secrets.token_urlsafe(16)}"
PASSING = {"server-initialize", "ping", "tools-list", "tools-call-simple-text", "tools-call-error",
           "dns-rebinding-protection"}
# a WARNING (no FAILURE), which the suite's baseline mode counts as a failure
WARNED = {"server-sse-multiple-streams": "stateless server: no Mcp-Session-Id, so the suite cannot open several "
                                         "SSE streams of one session (SEP-1699; sessions are optional)"}
# scenario -> why it fails: these scenarios test the suite's reference server (its test_* tools, prompts and
# resources) and optional MCP features the precision-tools server does not offer (it advertises only `tools`).
NOT_OFFERED = {
    "logging-set-level": "no `logging` capability: logging/setLevel is -32601 Method not found",
    "completion-complete": "no `completions` capability (no prompts or resource templates to complete)",
    "tools-call-image": "no tool returns image content (the tools return text and structured JSON)",
    "tools-call-audio": "no tool returns audio content",
    "tools-call-embedded-resource": "no tool returns embedded resources",
    "tools-call-mixed-content": "no tool returns image or resource content",
    "tools-call-with-logging": "no `logging` capability: tools send no log notifications",
    "tools-call-with-progress": "tools answer at once: no progress notifications",
    "tools-call-sampling": "no tool asks the client for sampling (the server is stateless)",
    "tools-call-elicitation": "no tool asks the client for input (elicitation; stateless server)",
    "elicitation-sep1034-defaults": "no elicitation (stateless server)",
    "elicitation-sep1330-enums": "no elicitation (stateless server)",
    "resources-list": "no `resources` capability: resources/list is -32601",
    "resources-read-text": "no `resources` capability",
    "resources-read-binary": "no `resources` capability",
    "resources-templates-read": "no `resources` capability",
    "resources-subscribe": "no `resources` capability",
    "resources-unsubscribe": "no `resources` capability",
    "prompts-list": "no `prompts` capability: prompts/list is -32601",
    "prompts-get-simple": "no `prompts` capability",
    "prompts-get-with-args": "no `prompts` capability",
    "prompts-get-embedded-resource": "no `prompts` capability",
    "prompts-get-with-image": "no `prompts` capability",
}


@pytest.fixture(scope="module")
def mcp_url(infra: dict[str, str]) -> Iterator[str]:
    npmtools.ensure()  # done by `make install`; a no-op when the pinned version is there
    with lone_service("mcp", infra, "mcpconf", 300, MOE_TOOL_WORKERS="1", MOE_MCP_SERVICE_KEY=SERVICE_KEY) as service:
        url, stop = start_auth_proxy(service.url, SERVICE_KEY)
        try:
            yield f"{url}/mcp"
        finally:
            stop()


def _results(out: Path) -> dict[str, list[dict[str, object]]]:
    """scenario -> its checks (the suite writes out/server-<scenario>-<timestamp>/checks.json)."""
    found = {}
    for checks in out.glob("server-*/checks.json"):
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z$", "", checks.parent.name.removeprefix("server-"))
        found[scenario] = json.loads(checks.read_text())
    return found


def test_the_official_conformance_suite(mcp_url: str, tmp_path: Path) -> None:
    baseline = tmp_path / "expected-failures.yml"
    baseline.write_text("server:\n" + "".join(f"  - {name}\n" for name in sorted(NOT_OFFERED | WARNED.keys())))
    run = subprocess.run(
        [str(npmtools.binary("conformance")), "server", "--url", mcp_url, "-o", str(tmp_path / "out"),
         "--expected-failures", str(baseline)], capture_output=True, text=True, timeout=600, check=False)
    results = _results(tmp_path / "out")
    failed = {s for s, checks in results.items() if any(c["status"] == "FAILURE" for c in checks)}
    warned = {s for s, checks in results.items() if any(c["status"] == "WARNING" for c in checks)} - failed
    assert set(results) == PASSING | NOT_OFFERED.keys() | WARNED.keys(), run.stdout[-3000:]
    assert failed == set(NOT_OFFERED), {s: [c for c in results[s] if c["status"] == "FAILURE"] for s in failed}
    assert warned == set(WARNED)
    assert all(c["status"] == "SUCCESS" for s in PASSING for c in results[s] if c["status"] != "INFO")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
