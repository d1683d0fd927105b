"""A recorded value's short digest and the task kinds a re-execution compares (codex_lineage.as_recorded,
reproduce, rerun)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

TASKS = ("ExpertTask", "ToolTask", "ResearchTask", "GraphTask")


def digest(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
