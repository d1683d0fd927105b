"""One message from a process that runs no broker of its own (an operator's command line: the key CLI, the audit
key's rotation): the topics ensured, the broker started, the message published and acknowledged, the broker
stopped. `reachable` asks first, for a change that cannot be undone once made."""

from __future__ import annotations

import asyncio
import logging
import os
import pwd

from moe_core.contracts import AuditEvent
from moe_core.runtime.bus import Bus
from moe_core.runtime.settings import FleetSettings

log = logging.getLogger(__name__)


async def publish_alone(settings: FleetSettings, event: AuditEvent, timeout_s: float = 10.0) -> bool:
    """Publish one event from a process without a running broker (the CLI); False if Kafka is unreachable."""
    bus = Bus(settings)
    try:
        await asyncio.wait_for(bus.ensure_topics(), timeout_s)  # as every service does at start
        await asyncio.wait_for(bus.broker.start(), timeout_s)
        await asyncio.wait_for(bus.publish(event, bus.topics.audit), timeout_s)
        return True
    except Exception as exc:  # reported to the operator by the caller
        log.warning("audit event %s %s not published: %s", event.action, event.subject, exc)
        return False
    finally:
        await bus.close()


async def reachable(settings: FleetSettings, timeout_s: float = 10.0) -> bool:
    """Whether the CLI could publish an audit event now (its topics there, the broker answering). Asked with
    FastStream's aiokafka producer, which connects at the broker's start (with librdkafka the broker starts no
    client at all: nothing would have been asked)."""
    bus = Bus(settings.model_copy(update={"kafka_producer": "aiokafka"}))
    try:
        await asyncio.wait_for(bus.ensure_topics(), timeout_s)
        await asyncio.wait_for(bus.broker.start(), timeout_s)
        return True
    except Exception as exc:  # reported to the operator by the caller
        log.warning("Kafka unreachable: %s", exc)
        return False
    finally:
        await bus.close()


def os_actor() -> str:
    """`cli:<account>`: the operating-system account running the command, by the process's user id ($USER and
    $LOGNAME are the caller's to set)."""
    try:
        return f"cli:{pwd.getpwuid(os.getuid()).pw_name}"
    except KeyError:  # a user id without an account (a container's arbitrary uid)
        return f"cli:uid-{os.getuid()}"
