"""Printed at the end of `make up`: the local admin key and how to send a first request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    key = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "gateway.keys", "ensure", "--file", str(REPO / ".data" / "local-admin.key")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    print(f"""
The fleet is up: gateway on http://127.0.0.1:8002 (`make status`, `make logs`, `make down`).
Local admin key (`make key` prints it again): {key}

  curl -s http://127.0.0.1:8002/v1/chat/completions -H "Authorization: Bearer {key}" \\
       -H 'Content-Type: application/json' \\
       -d '{{"model": "moe-orchestrator", "messages": [{{"role": "user", "content": "What is Kafka?"}}]}}'

  python:  from openai import OpenAI
           client = OpenAI(base_url="http://127.0.0.1:8002/v1", api_key="{key}")
           print(client.chat.completions.create(model="moe-orchestrator",
                 messages=[{{"role": "user", "content": "What is Kafka?"}}]).choices[0].message.content)
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
