"""The knowledge-graph API of the control plane: statistics, search, the quarantine review (list, approve,
reject) and POST /v1/memory/ingest. Every call needs a key; quarantine decisions need an admin key, memory
ingest any key (a user's Claude Code memory hook too). A key acts only on its own tenants (and reads the shared
ontology). Memory ingest is Open Policy Agent's decision
(policy/opa/memory.rego, over the domains the server resolves from the text), an audit record with the
policy's version; a text in a protected domain is learned for review only: graph-ingest holds every triple
extracted from it in the quarantine (IngestEvent.review_domains)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from control_plane.policy.gate import PolicyGate, principal, words
from control_plane.settings import ControlPlaneSettings
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import authenticate, require_admin
from moe_core.contracts import IngestEvent
from moe_core.contracts.envelope import deadline_in
from moe_core.contracts.messages import Confidence
from moe_core.knowledge.graph import GraphDB, GraphStore, GraphUnavailable, reads, visible_tenants
from moe_core.knowledge.graph.audit import audit_event
from moe_core.knowledge.graph.quarantine import Quarantine, Status
from moe_core.knowledge.graph.semantic_search import EntityVectors
from moe_core.knowledge.graph.semantic_search import search as semantic_search
from moe_core.policy import PolicyUnavailable
from moe_core.policy.domains import Keywords, resolve_text
from moe_core.runtime import query_params
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body

INGEST_DEADLINE_S = 3600.0
STATUSES = ("pending", "approved", "rejected", "all")


class IngestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20_000, description="The knowledge to learn (an answer, a note)")
    question: str = Field(default="", max_length=2000)
    knowledge_type: str = Field(default="general", max_length=64)
    confidence: Confidence = "medium"
    synthesis_insight: str | None = Field(default=None, max_length=4000)
    tenant: str | None = Field(default=None, description="One of the key's tenants (default: its first)")


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


def _approvals(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The item's approvals so far: who (principal, key) and when."""
    keys, times = item.get("approved_keys") or [], item.get("approved_at") or []
    return [{"principal": p, "key_id": keys[i] if i < len(keys) else None, "at": times[i] if i < len(times) else None}
            for i, p in enumerate(item.get("approved_by") or [])]


def _tenants(key: ApiKey) -> list[str]:
    out: list[str] = []
    for tenant in key.tenant_ids:
        out += [t for t in visible_tenants(tenant) if t not in out]
    return out


def _own(key: ApiKey) -> list[str]:
    return list(key.tenant_ids)


async def _json_body(request: Request, model: type[BaseModel], required: bool) -> Any:
    raw = await request.body()
    if not raw.strip() and not required:
        return model()
    return parse_json_body(raw, model)



class GraphApi:
    def __init__(self, settings: ControlPlaneSettings, bus: Bus, keystore: Callable[[], KeyStore], gate: PolicyGate,
                 keywords: Keywords | str) -> None:
        self.settings = settings
        self.gate = gate
        self.keywords = keywords
        self.bus = bus
        self.keystore = keystore
        self._db: GraphDB | None = None
        self._vectors: EntityVectors | None = None
        self.router = APIRouter()
        self._routes()

    @property
    def db(self) -> GraphDB:
        if self._db is None:
            self._db = GraphDB.from_settings(self.settings)
        return self._db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()

    def _routes(self) -> None:
        r = self.router
        r.add_api_route("/graph/stats", self.stats, methods=["GET"])
        r.add_api_route("/graph/search", self.search, methods=["GET"])
        r.add_api_route("/graph/quarantine", self.quarantine_list, methods=["GET"])
        r.add_api_route("/graph/quarantine/{item_id}/approve", self.approve, methods=["POST"])
        r.add_api_route("/graph/quarantine/{item_id}/reject", self.reject, methods=["POST"])
        r.add_api_route("/v1/memory/ingest", self.ingest, methods=["POST"], status_code=202)

    async def stats(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        tenants = _tenants(key)
        with _graph_errors():
            body = await reads.stats(self.db, tenants)
        return {"object": "graph.stats", "tenants": tenants, **body}

    async def search(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        q = request.query_params.get("q", "").strip()
        if not q or len(q) > 200:
            raise OpenAIError(400, "q must be 1 to 200 characters", param="q", code="invalid_value")
        limit = query_params.integer(request, "limit", 10, 1, 100)
        with _graph_errors():
            found = await semantic_search(self.db, self.vectors, _tenants(key), q, limit=limit,
                                          min_similarity=self.settings.graph_search_min_similarity,
                                          max_candidates=self.settings.graph_search_candidates)
        return {"object": "list", "query": q, "data": found}

    @property
    def vectors(self) -> EntityVectors:
        """Entity names' vectors for the semantic search (the embedding model loads on the first search)."""
        if self._vectors is None:
            from moe_core.knowledge.embeddings import get_embedder
            self._vectors = EntityVectors(get_embedder())
        return self._vectors

    async def quarantine_list(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        status = request.query_params.get("status", "pending")
        if status not in STATUSES:
            raise OpenAIError(400, f"status must be one of {', '.join(STATUSES)}", param="status",
                              code="invalid_value")
        limit = query_params.integer(request, "limit", 50, 1, 500)
        with _graph_errors():
            chosen = None if status == "all" else cast(Status, status)
            items = await self._quarantine().pending(_own(key), chosen, limit)
        return {"object": "list", "data": [{**item, "approvals": _approvals(item),
                                            "approvals_required": await self._shown_required(key, item)}
                                           for item in items]}

    async def _shown_required(self, key: ApiKey, item: dict[str, Any]) -> int | None:
        """How many approvals the item needs, for display: fixed at its first approval, else what the policy says
        now (asked without an audit record: nothing is decided here); None when the policy cannot be asked."""
        if item.get("approvals_required") or item.get("status") != "pending":
            return int(item.get("approvals_required") or 1)
        input_ = {"action": "graph.quarantine_approve", "principal": principal(key), "tenant": item["tenant"],
                  "resource": {"domains": item.get("domains") or [item.get("domain") or "general"],
                               "approvers": [], "submitted_by": item.get("submitted_by") or ""}}
        try:
            decision = await self.gate.client.decide("moe/quarantine/decision", input_)
        except PolicyUnavailable:
            return None
        return int(decision.result.get("approvals_required") or 1)

    async def approve(self, item_id: str, request: Request) -> dict[str, Any]:
        return await self._decide(item_id, request, approve=True)

    async def reject(self, item_id: str, request: Request) -> dict[str, Any]:
        return await self._decide(item_id, request, approve=False)

    async def _decide(self, item_id: str, request: Request, *, approve: bool) -> dict[str, Any]:
        """Reject (one admin, final) or approve: four-eyes by principals, as many as the policy asks for the item's
        domains (policy/opa/quarantine.rego); the approval that reaches the number writes the triple."""
        key = await require_admin(request, self.keystore())
        body: DecisionBody = await _json_body(request, DecisionBody, required=False)
        quarantine = self._quarantine()
        actor = f"key:{key.id}"
        with _graph_errors():
            item = await self._pending(quarantine, item_id, key)
            if approve:
                required = await self._approvals_required(key, item)
                decision = await quarantine.approve(item_id, _own(key), principal(key)["id"], key.id, actor,
                                                    body.note, required)
            else:
                decision = await quarantine.reject(item_id, _own(key), actor, body.note, principal=key.principal,
                                                   key_id=key.id)
            if decision is None:  # decided or approved by this principal in the meantime
                await self._pending(quarantine, item_id, key)
                raise OpenAIError(409, "this principal has approved the item already", code="already_approved")
        item = decision.item
        applied = item.get("status") == "approved"
        if approve:
            await self._audit(actor, "quarantine_approval", item_id, item, key, body.note)
        if applied or not approve:
            await self._audit(actor, "quarantine_approved" if approve else "quarantine_rejected", item_id, item, key,
                              body.note)
        if decision.gap is not None:  # a gap-healer classification: its gap may be classified again (gap-healer)
            await self._audit_gap(actor, decision.gap, item, key, body.note)
        return {"object": "graph.quarantine_item", **item, "approvals": _approvals(item),
                "approvals_required": item.get("approvals_required") or 1}

    async def _pending(self, quarantine: Quarantine, item_id: str, key: ApiKey) -> dict[str, Any]:
        """The key's tenants' pending item (404 unknown or another tenant's; 409 decided or expired)."""
        item = await quarantine.get(item_id, _own(key))
        if item is None:
            raise OpenAIError(404, f"no quarantined item {item_id!r}", param="id", code="not_found")
        if item["status"] != "pending":
            raise OpenAIError(409, f"the item was already {item['status']}", code="already_decided")
        return item

    async def _approvals_required(self, key: ApiKey, item: dict[str, Any]) -> int:
        """The policy's number of approvals for the item (an audit record); its refusal in the API's envelope."""
        decision = await self.gate.decide(key, "moe/quarantine/decision", "graph.quarantine_approve", item["tenant"], {
            "domains": item.get("domains") or [item.get("domain") or "general"],
            "approvers": item.get("approved_by") or [], "submitted_by": item.get("submitted_by") or ""}, item["id"])
        return int(decision.result.get("approvals_required") or 1)

    async def _audit(self, actor: str, action: str, item_id: str, item: dict[str, Any], key: ApiKey,
                     note: str) -> None:
        details = {"triple": {k: item.get(k) for k in ("subject", "relation", "object", "confidence")},
                   "relation_id": item.get("relation_id"), "note": note, "principal": key.principal_id,
                   "approvals": len(item.get("approved_by") or []),
                   "approvals_required": item.get("approvals_required") or 1, "domains": item.get("domains")}
        event = audit_event(None, actor=actor, action=action, subject=item_id, response_id=item.get("response_id")
                            or item_id, tenant=item["tenant"], reason=note or action, details=details)
        await self.bus.publish(event, self.bus.topics.audit)

    async def _audit_gap(self, actor: str, gap: dict[str, Any], item: dict[str, Any], key: ApiKey, note: str) -> None:
        """`gap_review_rejected`: the rejection's effect on the ontology gap the classification was held for."""
        details = {"term": gap.get("term"), "state": gap.get("state"), "quarantine_id": item["id"],
                   "rejected_class": item.get("object"), "principal": key.principal, "note": note,
                   "review_rejections": gap.get("review_rejections"), "rejected_classes": gap.get("rejected_classes")}
        event = audit_event(None, actor=actor, action="gap_review_rejected", subject=str(gap["id"]),
                            response_id=item.get("response_id") or item["id"], tenant=item["tenant"],
                            reason=str(gap.get("reason") or ""), details=details)
        await self.bus.publish(event, self.bus.topics.audit)

    async def ingest(self, request: Request) -> JSONResponse:
        key = await authenticate(request, self.keystore())  # any key, into its own tenants (memory.rego decides)
        body: IngestBody = await _json_body(request, IngestBody, required=True)
        tenant = body.tenant or key.default_tenant
        if tenant not in key.tenant_ids:
            raise OpenAIError(403, f"the key may not write to tenant {tenant!r}", "permission_error",
                              code="tenant_forbidden", param="tenant")
        rid = f"mem-{uuid.uuid4().hex}"
        domains = resolve_text(f"{body.question}\n{body.text}", words(self.keywords))
        decision = await self.gate.decide(key, "moe/memory/decision", "memory.ingest", tenant, {
            "chars": len(body.text), "domains": domains, "knowledge_type": body.knowledge_type}, rid)
        # a protected domain in the text: every triple learned from it waits in the quarantine (graph-ingest asks
        # the same policy per triple, with these domains)
        review = sorted(decision.result.get("protected_domains") or []) if decision.result.get("quarantine") else []
        event = IngestEvent(response_id=rid, deadline_at=deadline_in(INGEST_DEADLINE_S), tenant_id=tenant,
                            question=body.question, answer=body.text, knowledge_type=body.knowledge_type,
                            confidence=body.confidence, synthesis_insight=body.synthesis_insight,
                            source_expert="memory-api", review_domains=review, submitted_by=principal(key)["id"])
        await self.bus.publish(event, self.bus.topics.ingest)
        return JSONResponse({"object": "memory.ingest", "id": rid, "status": "queued", "tenant": tenant,
                             "domains": domains, "review": bool(review), "review_domains": review,
                             "policy_version": decision.version.digest}, status_code=202)

    def _quarantine(self) -> Quarantine:
        return Quarantine(GraphStore(self.db))


@contextmanager
def _graph_errors() -> Iterator[None]:
    """Neo4j being down is a 503 in the API's own error format, not a stack trace."""
    try:
        yield
    except GraphUnavailable as exc:
        raise OpenAIError(503, "the knowledge graph is unavailable", "server_error",
                          code="graph_unavailable") from exc
