"""Where a request's time goes, per stage: each service's own Prometheus counters (`/metrics`), read before
and after a cell, divided by the cell's requests.

- `moe_stage_seconds{topic}`: messages a stage handled and the time its handler took (parsing included);
- `moe_inference_seconds`: the stage's model calls and their duration (the zero-latency model: pure overhead);
- `moe_store_seconds{store, op}`: round trips to Redis (one per command or pipeline), Chroma (one per HTTP
  request) and Neo4j (one per query), and their duration.

Per hop, the Kafka timestamps (kafka_trace) give delivery + handling; minus the handler time of the stage
that received the message, what is left is the Kafka hop and the wait in the consumer's queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Snapshot = dict[str, dict[tuple[str, ...], list[float]]]  # service -> (metric, label...) -> [sum, count]
_WANTED = {"moe_stage_seconds": ("topic",), "moe_inference_seconds": ("model",), "moe_store_seconds": ("store",)}
# counters: what codex-lineage recorded, by topic (the cell's window holds all of it: bench.settle), its checkpoints,
# and what each service published, by topic (the fleet's warm-up checks from these that every stage ran)
_COUNTED = {"moe_lineage_records": "topic", "moe_audit_checkpoints": "outcome", "moe_messages_published": "topic"}
_GROUPS = {"moe_stage_seconds": "handlers", "moe_inference_seconds": "model", "moe_store_seconds": "stores",
           "moe_store_ops": "store_ops", "moe_lineage_records": "recorded", "moe_audit_checkpoints": "checkpoints",
           "moe_messages_published": "published"}


async def scrape(http: aiohttp.ClientSession, urls: dict[str, str]) -> Snapshot:
    """Every service's histograms of interest, summed by the labels that matter here."""
    bodies = await asyncio.gather(*(_get(http, f"{url}/metrics") for url in urls.values()))
    return {name: parse(body) for name, body in zip(urls, bodies, strict=True) if body is not None}


async def _get(http: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with http.get(url) as resp:
            return await resp.text() if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def parse(text: str) -> dict[tuple[str, ...], list[float]]:
    out: dict[tuple[str, ...], list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name in _COUNTED:
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    label = _short(sample.labels.get(_COUNTED[family.name], "?"))
                    row = out.setdefault((family.name, label), [0.0, 0.0])
                    row[1] += sample.value  # a count, no time
            continue
        labels = _WANTED.get(family.name)
        if labels is None:
            continue
        for sample in family.samples:
            kind = sample.name[len(family.name):]
            if kind not in ("_sum", "_count"):
                continue
            keys = [(family.name, *(_short(sample.labels.get(label, "?")) for label in labels))]
            if family.name == "moe_store_seconds":  # also by operation (which commands a stage sends)
                keys.append(("moe_store_ops", f"{sample.labels.get('store')}:{sample.labels.get('op')}"))
            for key in keys:
                row = out.setdefault(key, [0.0, 0.0])
                row[0 if kind == "_sum" else 1] += sample.value
    return out


_TIMED = {_GROUPS[name] for name in (*_WANTED, "moe_store_ops")}  # kept in a breakdown even when empty


def _short(value: str) -> str:
    """A topic without the benchmark's namespace (bench1234.tasks.expert.v1 -> tasks.expert)."""
    parts = value.split(".")
    if len(parts) >= 3 and parts[-1][:1] == "v" and parts[-1][1:].isdigit():
        return ".".join(parts[1:-1])
    return value


def per_request(after: Snapshot, before: Snapshot, requests: int) -> dict[str, Any]:
    """Per service: handler messages and ms per topic, model calls and ms, store round trips and ms, messages
    recorded per topic (codex-lineage); all per request of the cell."""
    if not requests:
        return {}
    out: dict[str, Any] = {}
    for service, rows in after.items():
        prev = before.get(service, {})
        entry: dict[str, dict[str, dict[str, float]]] = {g: {} for g in _GROUPS.values()}
        for key, (total, count) in rows.items():
            old = prev.get(key, [0.0, 0.0])
            calls, seconds = count - old[1], total - old[0]
            if calls <= 0:
                continue
            group = _GROUPS[key[0]]
            entry[group][key[1]] = {"per_request": round(calls / requests, 2)}
            if key[0] not in _COUNTED:
                entry[group][key[1]]["ms_per_request"] = round(seconds * 1000 / requests, 2)
        if any(entry.values()):
            out[service] = {g: items for g, items in entry.items() if items or g in _TIMED}
    return out


def merge(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The median-free average of several cells' per-request breakdowns (weights: equal per cell)."""
    if not cells:
        return {}
    out: dict[str, Any] = {}
    for cell in cells:
        for service, groups in cell.items():
            for group, items in groups.items():
                for name, values in items.items():
                    slot = out.setdefault(service, {}).setdefault(group, {}).setdefault(name, {})
                    for k, v in values.items():
                        slot[k] = slot.get(k, 0.0) + v / len(cells)
    return {s: {g: {n: {k: round(v, 2) for k, v in vals.items()} for n, vals in items.items()}
                for g, items in groups.items()} for s, groups in out.items()}
