"""compose is safe by default and has one public address: no password works unless generated (a missing one stops
compose with its name), compose/init_secrets.py makes every one the files require, only the proxy binds beyond
127.0.0.1, and the proxy sends each client route to the service that answers it. (CI's container stage runs it all
for real: deploy/containers/compose_ci.sh.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import COMPOSE, REPO, compose_secrets, run
from tests.deploy.test_deploy_files import compose_binary

pytestmark = pytest.mark.unit

CLIENT_ROUTES = {  # the public address: what a client or tool of the API uses, and who answers it
    "/v1/chat/completions": "gateway", "/v1/messages": "gateway", "/v1/responses": "gateway",
    "/v1/models": "gateway", "/v1/feedback": "control_plane", "/v1/provider-status": "control_plane",
    "/v1/memory/ingest": "control_plane", "/graph/search": "control_plane", "/graph/stats": "control_plane"}


def _config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in compose_secrets()}
    return run([compose_binary(), "-f", str(COMPOSE / "compose.yaml"), *args, "config", "--format", "json"],
               env={**clean, **env})


def test_no_password_ships_and_a_missing_one_is_named() -> None:
    dotenv = (COMPOSE / ".env").read_text()
    assert not re.search(r"^[A-Z_]*(PASSWORD|SECRET)[A-Z_]*=.", dotenv, re.M), "a password in compose/.env"
    result = _config({})
    assert result.returncode != 0
    named = (r"required variable [A-Z0-9_]+ is missing a value: "
             r"missing secret \(python3 compose/init_secrets.py makes it\)")
    assert re.search(named, result.stderr), result.stderr


def test_init_secrets_makes_every_required_one_once(tmp_path: Path) -> None:
    out, key = tmp_path / "secrets.env", tmp_path / "audit-signing-key.pem"
    script = [sys.executable, str(COMPOSE / "init_secrets.py"), "--out", str(out), "--key", str(key)]
    subprocess.run(script, check=True, capture_output=True, timeout=60)
    first = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert set(first) == set(compose_secrets())
    passwords = [v for k, v in first.items() if k != "MOE_AUDIT_SIGNING_KEY_FILE"]
    assert len(set(passwords)) == len(passwords) and min(map(len, passwords)) >= 24
    assert first["MOE_AUDIT_SIGNING_KEY_FILE"] == str(key) and b"PRIVATE KEY" in key.read_bytes()
    assert out.stat().st_mode & 0o077 == 0 and key.stat().st_mode & 0o077 == 0
    subprocess.run(script, check=True, capture_output=True, timeout=60)  # again: nothing replaced
    assert dict(line.split("=", 1) for line in out.read_text().splitlines()) == first
    rendered = _config({}, "--env-file", str(COMPOSE / ".env"), "--env-file", str(out))
    assert rendered.returncode == 0, rendered.stderr


def _published(model: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [p.get("host_ip", "") for p in service.get("ports") or []]
            for name, service in model["services"].items() if service.get("ports")}


def test_only_the_proxy_binds_beyond_localhost() -> None:
    result = _config(compose_secrets())
    assert result.returncode == 0, result.stderr
    published = _published(json.loads(result.stdout))
    assert published.pop("proxy") == ["0.0.0.0"]
    assert "gateway" not in published  # behind the proxy
    assert published["control-plane"] == ["127.0.0.1"]  # the admin API and the console: this host only
    assert all(ip == "127.0.0.1" for ips in published.values() for ip in ips), published
    kept = json.loads(_config({**compose_secrets(), "PUBLIC_BIND": "127.0.0.1"}).stdout)
    assert _published(kept)["proxy"] == ["127.0.0.1"]


def _locations(text: str) -> dict[str, str]:
    """nginx `location [=] PATH { proxy_pass http://UPSTREAM; }` -> PATH: UPSTREAM."""
    return {m[1]: m[2] for m in re.finditer(r"location (?:= )?(\S+) \{ proxy_pass http://(\w+); \}", text)}


def _upstream(locations: dict[str, str], path: str) -> str | None:
    """nginx's choice for a path: an exact location, else the longest prefix."""
    prefixes = [p for p in locations if path.startswith(p)]
    return locations[max(prefixes, key=len)] if prefixes else None


def test_the_proxy_sends_each_client_route_to_its_service() -> None:
    routes = _locations((COMPOSE / "proxy" / "routes.conf").read_text())
    for path, upstream in CLIENT_ROUTES.items():
        assert _upstream(routes, path) == upstream, path
    for private in ("/v1/admin/keys", "/v1/audit/x", "/console", "/v1/usage", "/metrics", "/ready"):
        assert _upstream(routes, private) is None, f"{private} reaches a service at the public address"
    common = (COMPOSE / "proxy" / "common.conf").read_text()
    assert "server gateway:8002" in common and "server control-plane:8110" in common
    assert "proxy_buffering off" in common  # streams
    tls = (COMPOSE / "proxy" / "https.conf").read_text()
    assert "listen 8002 ssl" in tls and "/etc/moe/tls/tls.crt" in tls


def test_the_deploy_guide_gives_the_steps_ci_runs() -> None:
    """docs/deploy.md's compose steps are the ones CI's container stage runs (deploy/containers/compose_ci.sh), and
    its table of the public address lists every client route the proxy serves."""
    doc = (REPO / "docs" / "deploy.md").read_text()
    ci = (REPO / "deploy" / "containers" / "compose_ci.sh").read_text()
    for step in ("compose/init_secrets.py", "--env-file compose/.env", "ec_paramgen_curve:P-256", "up -d",
                 "--wait", "control_plane.keys create --new-tenant", "--role admin", "down -v"):
        assert step in doc and step in ci, step
    for path in CLIENT_ROUTES:
        assert path in doc, path
