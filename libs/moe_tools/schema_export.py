"""Generate JSON Schema for every message into schemas/: `python -m moe_tools.schema_export DIR`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from moe_core.contracts.messages import MESSAGE_MODELS
from moe_core.contracts.topics import TOPIC_MESSAGES, Topics, topic_key


def render() -> dict[str, str]:
    """File name -> content of every generated schema file."""
    files: dict[str, str] = {}
    for name, model in MESSAGE_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"moe-sovereign-fleet/{name}.schema.json"
        files[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    topics = Topics.for_namespace("moe")
    index = {getattr(topics, field): {"message": msg, "schema": f"{msg}.schema.json",
                                      "key": topic_key(field)}
             for field, msg in TOPIC_MESSAGES.items()}
    files["topics.json"] = json.dumps(index, indent=2, sort_keys=True) + "\n"
    return files


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if stale.name not in render():
            stale.unlink()
    for name, content in render().items():
        (directory / name).write_text(content)
    return sorted(render())


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")
    print(f"wrote {len(write(target))} files to {target}/")
