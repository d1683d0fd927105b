"""The Produce requests a Bus's producer sends (issue 52): counted on their way to the broker's connection, by the
topics that carry a record of a given key. Counts, never timings."""

from __future__ import annotations

from typing import Any

from moe_core.runtime.bus import Bus


def produce_requests(bus: Bus, key: bytes) -> list[set[str]]:
    """From now on (the bus's broker started): the topics of each Produce request of `bus`'s producer that carries a
    record keyed `key` (the fleet's record batches are not compressed, so the key is in their bytes). The client's
    own send is called on: the requests still go to the broker."""
    producer = bus.broker.config.producer._producer.producer  # type: ignore[attr-defined]
    client, seen = producer.client, []
    send = client.send

    async def counted(node_id: Any, request: Any, **kwargs: Any) -> Any:
        if type(request).__name__ == "ProduceRequest":
            topics = {topic for topic, parts in request._topics if any(key in bytes(data) for _, data in parts)}
            if topics:
                seen.append(topics)
        return await send(node_id, request, **kwargs)

    client.send = counted
    return seen
