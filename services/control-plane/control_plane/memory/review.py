"""The review of tenant documents held for it (a protected domain, policy/opa/memory.rego action
memory.document_upload): POST /v1/memory/documents/{id}/approve and /reject. Both are Open Policy Agent's decisions
(memory.document_approve, memory.document_reject): an admin of the tenant, never the uploader's principal (with any
of its keys), a person where two approvals or more are needed, one principal counted once. The approvals a
document needs are fixed when it is held (the same number a knowledge import of its domains needs); when it has
them it moves into the searched collection. A rejected document is deleted, text and vectors: the reviewers judged
it unfit to answer from, so nothing can release it by mistake later, and a wrongly uploaded record (a patient's
data) is not kept; what it was (SHA-256, title, source, uploader, domains) and who decided stays in the audit log.
Decisions on one document are serialised by a Redis lock, so two approvals at once are both counted."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, NamedTuple, NoReturn

from fastapi import Request
from redis.asyncio import Redis
from redis.exceptions import RedisError

from control_plane.knowledge.exchange import DecisionBody
from control_plane.memory import audit as memory_audit
from control_plane.memory.store import MemoryStore, Review
from control_plane.ops.resources import not_found
from control_plane.policy.gate import PolicyGate, principal
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import authenticate
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body

log = logging.getLogger(__name__)
LOCK_S = 120.0  # longest a decision may hold a document (a release copies every chunk)
WAIT_S = 10.0  # how long a second decision waits for the first


class Held(NamedTuple):
    key: ApiKey
    note: str
    meta: dict[str, Any]
    review: Review
    doc: dict[str, Any]
    tenant: str


class MemoryReview:
    def __init__(self, store: MemoryStore, gate: PolicyGate, keystore: Callable[[], KeyStore], redis: Redis,
                 namespace: str, bus: Bus, changed: Callable[[str], Awaitable[None]],
                 store_errors: Callable[[], AbstractContextManager[None]]) -> None:
        self.store, self.gate, self.keystore, self.redis = store, gate, keystore, redis
        self.namespace, self.bus, self.changed, self.store_errors = namespace, bus, changed, store_errors

    async def approve(self, document_id: str, request: Request) -> dict[str, Any]:
        async with self._deciding(request, document_id, "approve") as held:
            who = principal(held.key)["id"]
            review = Review(held.review.domains, held.review.required, [*held.review.approvals, {
                "principal": who, "key_id": held.key.id, "at": int(time.time()), "note": held.note}])
            released = len(review.approvers) >= review.required
            with self.store_errors():  # a failed release records no approval: the approver tries again
                if released:
                    doc = await self.store.release(held.tenant, document_id, review)
                else:
                    doc = await self.store.set_review(held.meta, review)
        extra = {"principal": who, "key_id": held.key.id, "note": held.note, "approvals": len(review.approvers)}
        await self._audit("memory_document_approved", held, doc, extra)
        if released:  # graph-rag's cached contexts of the tenant do not have it yet
            await self.changed(held.tenant)
            await self._audit("memory_document_released", held, doc, {
                "approvers": review.approvers, "note": held.note})
        return doc

    async def reject(self, document_id: str, request: Request) -> dict[str, Any]:
        async with self._deciding(request, document_id, "reject") as held:
            with self.store_errors():
                await self.store.drop_held(held.tenant, document_id)
        await self._audit("memory_document_rejected", held, held.doc, {
            "principal": principal(held.key)["id"], "key_id": held.key.id, "note": held.note,
            "approvers": held.review.approvers})
        return {"object": "memory.document.rejected", "id": document_id, "rejected": True, "deleted": True}

    @asynccontextmanager
    async def _deciding(self, request: Request, document_id: str, verb: str) -> AsyncIterator[Held]:
        """A key's decision on a held document of its tenant, under the document's lock, if the policy allows it."""
        key = await authenticate(request, self.keystore())
        note = parse_json_body(await request.body() or b"{}", DecisionBody).note
        tenant = key.default_tenant
        async with self.locked(document_id):
            with self.store_errors():
                doc = await self.store.get(tenant, document_id)
                held = await self.store.held(tenant, document_id) if doc is not None else None
            if doc is None:
                raise not_found("document", document_id)
            if held is None:
                await self._refuse(key, tenant, doc, verb, OpenAIError(
                    409, f"the document is {doc['status']}, not pending review: there is nothing to {verb}",
                    code="not_pending_review"))
            meta, review = held
            decision = await self.gate.ask(key, "moe/memory/decision", f"memory.document_{verb}", tenant, {
                "uploaded_by": meta.get("uploaded_by") or None, "approvers": review.approvers,
                "approvals_required": review.required, "domains": review.domains}, document_id)
            if not decision.allowed:
                first = (decision.denials or [{"code": "policy_denied", "reason": "the policy does not allow it"}])[0]
                await self._refuse(key, tenant, doc, verb, OpenAIError(
                    int(first.get("status", 403)), str(first.get("reason")), "permission_error",
                    code=str(first.get("code"))))
            yield Held(key, note, meta, review, doc, tenant)

    @asynccontextmanager
    async def locked(self, document_id: str) -> AsyncIterator[None]:
        """One decision (or deletion) of a held document at a time, on every replica."""
        lock = self.redis.lock(f"memory:review-lock:{self.namespace}:{document_id}", timeout=LOCK_S,
                               blocking_timeout=WAIT_S)
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise OpenAIError(503, "the review lock (Redis) is unavailable", "server_error",
                              code="review_unavailable") from exc
        if not acquired:
            raise OpenAIError(409, "another decision on this document is in progress: try again",
                              code="review_in_progress")
        try:
            yield
        finally:
            try:
                await lock.release()
            except RedisError:  # expired (LOCK_S) or Redis gone: the lock's timeout frees it
                log.warning("could not release the review lock of document %s", document_id)

    async def _refuse(self, key: ApiKey, tenant: str, doc: dict[str, Any], verb: str, exc: OpenAIError) -> NoReturn:
        await memory_audit.publish(self.bus, "memory_document_review_refused", tenant, f"key:{key.id}", doc, {
            "decision": verb, "principal": principal(key)["id"], "key_id": key.id, "code": exc.code,
            "status_code": exc.status}, reason=exc.message)
        raise exc

    async def _audit(self, action: str, held: Held, doc: dict[str, Any], extra: dict[str, Any]) -> None:
        await memory_audit.publish(self.bus, action, held.tenant, f"key:{held.key.id}", doc, extra,
                                   reason=held.note or action)
