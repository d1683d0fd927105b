"""Printed at the end of `make up`: the local admin key and how to send a first request.

The key is made (or read back) by `control_plane.keys ensure` run with the control plane's own environment
(fleetlib.services.run: endpoints with their generated passwords, .data/fleet.env), the one way every
local command that talks to a store gets its settings."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetlib import config, services

KEY_FILE = config.DATA / "local-admin.key"


def admin_key() -> str:
    """The local admin key (created on the first call, the same one afterwards)."""
    done = services.run("control-plane",
                        [str(config.PYTHON), "-m", "control_plane.keys", "ensure", "--file", str(KEY_FILE)])
    if done.returncode != 0:
        raise SystemExit(f"make up: could not make the local admin key (control_plane.keys ensure exited "
                         f"{done.returncode}):\n{done.stderr.strip()}")
    return done.stdout.strip()


def instructions(key: str, base: str, control: str) -> str:
    return f"""
The fleet is up: gateway on {base} (`make status`, `make logs`, `make down`).
Local admin key (`make key` prints it again): {key}
Admin console and API (the control plane): {control}/console, {control}/v1/admin

  curl -s {base}/v1/chat/completions -H "Authorization: Bearer {key}" \\
       -H 'Content-Type: application/json' \\
       -d '{{"model": "moe-orchestrator", "messages": [{{"role": "user", "content": "What is Kafka?"}}]}}'

  python:  from openai import OpenAI
           client = OpenAI(base_url="{base}/v1", api_key="{key}")
           print(client.chat.completions.create(model="moe-orchestrator",
                 messages=[{{"role": "user", "content": "What is Kafka?"}}]).choices[0].message.content)
"""


def main() -> int:
    endpoints = config.endpoints()
    print(instructions(admin_key(), endpoints["gateway"], endpoints["control-plane"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
