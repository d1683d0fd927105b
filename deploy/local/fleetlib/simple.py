"""Redis, Chroma and the local LLM: single processes with a plain readiness probe."""

from __future__ import annotations

import asyncio
import os

from . import config, secrets
from .component import Component

REDIS_DIR = config.DATA / "redis"
CHROMA_DIR = config.DATA / "chroma"
LLM_SERVER = config.LOCAL / "llm_server.py"


def redis_prepare() -> list[str]:
    """A fresh Redis (no data directory yet) gets a generated password (requirepass, in a 0600 config file)."""
    if not REDIS_DIR.exists():
        secrets.generate("redis")
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    conf: list[str] = []
    password = secrets.get("redis")
    if password:
        path = REDIS_DIR / "auth.conf"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(f'requirepass "{password}"\n')
        conf = [str(path)]
    return [os.environ.get("MOE_REDIS_SERVER", "/usr/bin/redis-server"), *conf, "--bind", config.HOST,
            "--port", str(config.port("redis")), "--dir", str(REDIS_DIR), "--daemonize", "no",
            "--appendonly", "yes", "--save", "60 1000", "--protected-mode", "yes"]


async def redis_check() -> None:
    """PING over RESP on a raw socket (importing redis-py costs ~1 s, which `status` notices)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(config.HOST, config.port("redis")), 2)
    try:
        password = secrets.get("redis")
        if password:
            writer.write(f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n".encode())
            await writer.drain()
            auth = await asyncio.wait_for(reader.readline(), 2)
            if auth.strip() != b"+OK":
                raise RuntimeError(f"AUTH answered {auth[:40]!r}")
        writer.write(b"PING\r\n")
        await writer.drain()
        reply = await asyncio.wait_for(reader.readline(), 2)
    finally:
        writer.close()
    if reply.strip() != b"+PONG":
        raise RuntimeError(f"PING answered {reply!r}")


def chroma_prepare() -> list[str]:
    CHROMA_DIR.mkdir(parents=True, exist_ok=True)
    return [str(config.VENV_BIN / "chroma"), "run", "--path", str(CHROMA_DIR), "--host", config.HOST,
            "--port", str(config.port("chroma"))]


def chroma_env() -> dict[str, str]:
    return {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY": "False"}


async def chroma_check() -> None:
    import httpx

    base = config.endpoints()["chroma"]
    async with httpx.AsyncClient(timeout=3) as client:
        resp = await client.get(f"{base}/api/v2/heartbeat")
        if resp.status_code == 404:
            resp = await client.get(f"{base}/api/v1/heartbeat")
        resp.raise_for_status()


def llm_prepare() -> list[str]:
    return [str(config.PYTHON), str(LLM_SERVER)]


def llm_env() -> dict[str, str]:
    # .data/fleet.env's MOE_LLM_* (context, slots, threads) as for the services, the caller's environment first
    return {**config.read_env_file(), **os.environ, "MOE_LLM_PORT": str(config.port("llm")),
            "MOE_LLM_HOST": config.HOST, "MOE_LLM_ALIAS": config.LLM_MODEL_ALIAS}


async def llm_check() -> None:
    import httpx

    base = config.endpoints()["llm"]
    async with httpx.AsyncClient(timeout=10) as client:
        health = await client.get(base.removesuffix("/v1") + "/health")
        if health.status_code != 200:
            raise RuntimeError(f"/health returned {health.status_code}")
        resp = await client.post(f"{base}/chat/completions", json={
            "model": config.LLM_MODEL_ALIAS, "max_tokens": 2,
            "messages": [{"role": "user", "content": "Say OK."}]})
        resp.raise_for_status()
        if not resp.json()["choices"]:
            raise RuntimeError("chat completion returned no choices")


REDIS = Component(name="redis", clients=(), group="infra", port_key="redis", prepare=redis_prepare, check=redis_check,
                  deadline=30, match=lambda: f"{config.HOST}:{config.port('redis')}",  # redis rewrites its cmdline
                  ready="`PING` → `+PONG` (after `AUTH` when it has a password)")
CHROMA = Component(name="chroma", group="infra", port_key="chroma", prepare=chroma_prepare,
                   check=chroma_check, deadline=60, match=lambda: f"--path {CHROMA_DIR}", env=chroma_env,
                   ready="`GET /api/v2/heartbeat` (v1 fallback)")
LLM = Component(name="llm", group="infra", port_key="llm", prepare=llm_prepare, check=llm_check,
                # the script's name, not its path: a worktree's path is not the running server's (main's)
                deadline=60, match=lambda: f"deploy/local/{LLM_SERVER.name}", env=llm_env,
                ready=f"`GET /health` 200, then a 2-token chat completion of `{config.LLM_MODEL_ALIAS}`")
