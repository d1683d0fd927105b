"""Pinned agent clients from npm for the end-to-end tests: Claude Code (`claude`) and OpenAI's Codex CLI
(`codex`), exact versions in deploy/local/npm/package.json + package-lock.json, installed with `npm ci`
into .data/npm (project-local, nothing global). A marker holding the lock files' hash records a finished
install; nothing is reinstalled while it matches.

Claude Code 2.1.100 is a release with a plain JavaScript CLI (cli.js) that runs on the machine's Node 20;
later releases ship a native binary per platform, and from 2.1.200 require Node 22. Codex CLI 0.60.1 sends
standard Responses API tools (function tools and one custom tool); current releases (0.169) send them as
`additional_tools` namespaces, which the gateway does not implement. The MCP conformance suite
(`conformance server --url`) is pinned at 0.1.13, the last release that loads on Node 20: from 0.1.14 it
imports `globSync` from `fs` (Node 22), and fails at start-up with a SyntaxError on Node 20.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from . import config

SOURCE = config.LOCAL / "npm"
PREFIX = config.DATA / "npm"
CLIENTS = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex",
           "conformance": "@modelcontextprotocol/conformance"}


class NpmToolError(RuntimeError):
    pass


def binary(tool: str) -> Path:
    return PREFIX / "node_modules" / ".bin" / tool


def version(package: str) -> str:
    """The pinned version of one client (as recorded in docs/api.md)."""
    return str(json.loads((SOURCE / "package.json").read_text())["dependencies"][package])


def ensure() -> bool:
    """Install the pinned clients into .data/npm; True if work was done."""
    lock = (SOURCE / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (SOURCE / "package.json").read_bytes()).hexdigest()
    marker = PREFIX / ".installed"
    if marker.is_file() and marker.read_text().strip() == digest and all(binary(t).exists() for t in CLIENTS):
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise NpmToolError("npm not found (needed for the agent-client and MCP conformance tests): "
                           "apt-get install -y nodejs npm")
    print(f"install: agent clients from npm into {PREFIX} ...", flush=True)
    PREFIX.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SOURCE / name, PREFIX / name)
    res = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(PREFIX)],  # noqa: S603
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-20:])
        raise NpmToolError(f"npm ci failed (exit {res.returncode}):\n{tail}")
    marker.write_text(digest + "\n")
    return True
