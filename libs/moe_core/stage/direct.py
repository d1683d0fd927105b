"""A group subscription's records handled without FastStream's per-message machinery (issue 52: the CPU of a hop).

FastStream hands each record to `process_message`: an exit stack, its context repository's scopes, an
acknowledgement and a logging middleware around the broker's, the parser, the handler's fast_depends model (which
validates the decoded message again, and the handler's None return), and the response publishers. Here, for the
subscriptions the runtime already dispatches itself (moe_core.runtime.key_ordered), a record goes through what the
fleet's guarantees need, and nothing else:

- FastStream's own parser (the same KafkaAckableMessage: headers, body, the record, its consumer);
- the broker's and the router's middlewares, in FastStream's order (the run clock and the overhead ledger, the
  spans, then moe_core.stage.consumer's StageMiddleware: dead letters, redelivery, `moe_stage_seconds`, the
  response_id on the log lines, the deferred offset commit);
- the decoder (the producer's signature, the model's one validation) and the handler in its run scope;
- a record the subscription skips by its headers (Consumes.skip_marked) acknowledged right after the parser, before
  any middleware (no span, no run clock, no parse of its payload);
- the acknowledgement as FastStream's AckPolicy.NACK_ON_ERROR makes it: acknowledged (the offset noted,
  moe_core.runtime.offset_commits) when the handling returned, nacked (retried in place) when it raised, nothing
  when it was cancelled (a stop: the record is fetched again by the next owner);
- the subscriber's lock, which a service's stop waits on (MOE_SHUTDOWN_GRACE_S, moe_core.runtime.service), and its
  `running` flag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

log = logging.getLogger(__name__)
Call = Callable[[Any], Awaitable[Any]]


def direct_handling(subscriber: Any, decode: Callable[[Any], Awaitable[Any]],
                    handler: Callable[[Any], Awaitable[None]],
                    skip: Callable[[Any], Awaitable[bool]] | None = None) -> Callable[[Any], Awaitable[None]] | None:
    """The record handler KeyOrdered calls in place of the subscriber's `consume_one` (None: a subscriber of another
    kind than FastStream's one-record Kafka subscriber keeps FastStream's handling). `skip`: asked first of each
    parsed record (its headers; moe_core.stage.consumer._skipper): True when it acknowledged a record the
    subscription does not want, which then sees no middleware, no decoder and no handler."""
    if not hasattr(subscriber, "parser"):
        return None

    async def innermost(msg: Any) -> None:
        await handler(await decode(msg))

    async def handle(raw: Any) -> None:
        if not subscriber.running:
            return
        config = subscriber._outer_config
        msg = await subscriber.parser.parse_message(raw)
        with subscriber.lock:
            if skip is not None and await skip(msg):
                return
            call: Call = innermost
            for middleware in reversed(subscriber._broker_middlewares):  # the first is the outermost, as FastStream's
                call = partial(middleware(msg, context=config.context).consume_scope, call)
            try:
                await call(msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # StageMiddleware logged it and asked for a redelivery (a transient failure)
                await msg.nack()
                return
            await msg.ack()

    return handle
