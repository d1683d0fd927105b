"""Redis: the state that matters (feedback scores, learned planner patterns, operator switches, the guardrail's
quarantine and journal, limits and budgets, document versions), not caches, memos or a request's state: each key
as DUMP and PTTL, restored with RESTORE ... REPLACE (its remaining time to live, if it had one)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import redis

from control_plane.ops.backup.settings import BackupSettings

FILE = "redis.jsonl"
# prefixes of libs/moe_core/runtime/redis_keys.py kept by a backup
# (tests/unit/control_plane/test_backup_units.py: all declared)
KEPT = ("expert:score:", "expert:tscore:", "expert:rated:", "expert:disabled:", "mcp:disabled:",
        "planner:success:", "planner:success-count:", "planner:success-seen:", "guardrail:decision:",
        "guardrail:index:", "moe:limits:", "memory:version:", "memory:presence:")


def dump(settings: BackupSettings, folder: Path) -> dict[str, Any]:
    r = redis.Redis.from_url(settings.redis_url.get_secret_value())
    count = 0
    with (folder / FILE).open("w") as out:
        for prefix in KEPT:
            for key in r.scan_iter(match=f"{prefix}*", count=settings.batch):
                value, ttl = r.dump(key), r.pttl(key)
                if value is None:  # expired between SCAN and DUMP
                    continue
                out.write(json.dumps({"key": base64.b64encode(key).decode(),
                                      "value": base64.b64encode(value).decode(), "pttl": ttl}) + "\n")
                count += 1
    r.close()
    return {"file": FILE, "keys": count, "prefixes": list(KEPT)}


def restore(settings: BackupSettings, folder: Path) -> dict[str, int]:
    r = redis.Redis.from_url(settings.redis_url.get_secret_value())
    count = 0
    with (folder / FILE).open() as f, r.pipeline(transaction=False) as pipe:
        for line in f:
            row = json.loads(line)
            ttl = max(int(row["pttl"]), 0)  # -1: no expiry (RESTORE takes 0)
            pipe.restore(base64.b64decode(row["key"]), ttl, base64.b64decode(row["value"]), replace=True)
            count += 1
            if count % settings.batch == 0:
                pipe.execute()
        pipe.execute()
    r.close()
    return {"keys": count}
