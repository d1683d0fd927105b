"""Approval-gated knowledge imports (the four-eyes rule): export a tenant's subgraph as a bundle, import a
bundle as a pending change set (nothing written), list change sets with their diffs, approve (by admin keys
of principals other than the importer's, as many distinct principals as the policy asks; then applied,
idempotently) or reject. Four-eyes counts principals (moe_core.access.principals), never keys: a principal's
second key is the same pair of eyes. Every step is an audit event keyed by the change set id.

How many approvals a bundle needs and who may approve are Open Policy Agent's decisions (policy/opa/
knowledge.rego, through control_plane.policy.gate: each one an audit record with the policy's version),
over the domains the server resolves from the bundle's entities and the graph (moe_core.policy.domains),
not the importer's labels, and over principals: the importer's and the approvers' (`ApiKey.principal_id`).
policy/knowledge-imports.yaml still bounds a bundle's size.

An import may name its source document (`?document_id=`: a document of the tenant, POST /v1/memory/documents): the
change set keeps its id, digest, title and source, the audit events carry it, and every relation the import writes
keeps the change set and the document as its provenance (docs/codex.md, "Where a fact came from")."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, NamedTuple, NoReturn

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from control_plane.knowledge.exchange import DecisionBody, ExportBody, parse_bundle, read_limited, view
from control_plane.knowledge.policy import ImportPolicy, KnowledgeSettings, PolicyError, load_policy
from control_plane.knowledge.store import ChangeSets, Locked
from control_plane.ops.resources import not_found, router, unavailable
from control_plane.policy.gate import PolicyGate, words
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.principals import own_principal
from moe_core.access.request_auth import authenticate, require_admin
from moe_core.access.throttle import Throttle
from moe_core.knowledge.graph import GraphDB, GraphStore, GraphUnavailable, bundles_graph
from moe_core.knowledge.graph.audit import audit_event
from moe_core.knowledge.graph.bundles import Bundle, Selection
from moe_core.policy import aliases
from moe_core.policy.domains import Keywords, resolve_bundle
from moe_core.runtime import query_params
from moe_core.runtime.bus import Bus
from moe_core.runtime.observability.metrics import KNOWLEDGE_IMPORT_EVENTS, KNOWLEDGE_IMPORTS_PENDING
from moe_core.runtime.openai_error import OpenAIError, parse_json_body

log = logging.getLogger(__name__)
STATUSES = ("pending", "applied", "rejected", "all")
Event = tuple[str, str, dict[str, Any]]
# Actions after which the number of pending change sets is counted again for the gauge.
COUNTED = frozenset({"knowledge_import_created", "knowledge_import_applied", "knowledge_import_rejected"})
Documents = Callable[[str, str], Awaitable[dict[str, Any] | None]]  # (tenant, document id) -> the document or None


class Decision(NamedTuple):
    key: ApiKey
    body: DecisionBody
    lk: Locked
    cs: dict[str, Any]
    tenant: str


class KnowledgeApi:
    def __init__(self, bus: Bus, keystore: Callable[[], KeyStore], graph: Callable[[], GraphDB], throttle: Throttle,
                 gate: PolicyGate, keywords: Keywords | str, policy: ImportPolicy | None = None,
                 settings: KnowledgeSettings | None = None, documents: Documents | None = None) -> None:
        self.bus, self.keystore, self.graph, self.throttle = bus, keystore, graph, throttle
        self.documents = documents
        self.gate, self.keywords = gate, keywords
        self._sets: ChangeSets | None = None
        self.policy_error = ""
        self.policy = policy
        if policy is None:
            path = (settings or KnowledgeSettings()).policy_path()
            try:
                self.policy = load_policy(path)
            except PolicyError as exc:  # the chat API keeps working; these routes answer 503 with the reason
                self.policy_error = str(exc)
                log.error("knowledge imports disabled: %s", exc)
        self.router = router(("POST", "/v1/knowledge/export", self.export),
                             ("POST", "/v1/knowledge/imports", self.create, 201),
                             ("GET", "/v1/knowledge/imports", self.list_sets),
                             ("GET", "/v1/knowledge/imports/{cs_id}", self.get),
                             ("POST", "/v1/knowledge/imports/{cs_id}/approve", self.approve),
                             ("POST", "/v1/knowledge/imports/{cs_id}/reject", self.reject))

    @property
    def sets(self) -> ChangeSets:
        if self._sets is None:
            self._sets = ChangeSets(self.keystore().pool)
        return self._sets

    def _policy(self) -> ImportPolicy:
        if self.policy is None:
            raise OpenAIError(503, self.policy_error, "server_error", code="policy_unavailable")
        return self.policy

    def _store(self) -> GraphStore:
        return GraphStore(self.graph())

    async def _audit(self, key: ApiKey, action: str, cs_id: str, tenant: str, reason: str,
                     details: dict[str, Any]) -> None:
        event = audit_event(None, actor=f"key:{key.id}", action=action, subject=cs_id, response_id=cs_id,
                            tenant=tenant, reason=reason, details={"principal": key.principal_id, **details})
        await self.bus.publish(event, self.bus.topics.audit)
        KNOWLEDGE_IMPORT_EVENTS.labels(action).inc()
        if action in COUNTED:
            KNOWLEDGE_IMPORTS_PENDING.set(await self.sets.pending_count())

    async def _refuse(self, key: ApiKey, cs_id: str, tenant: str, exc: OpenAIError) -> NoReturn:
        await self._audit(key, "knowledge_import_refused", cs_id, tenant, exc.message,
                          {"status": exc.status, "code": exc.code})
        raise exc

    async def export(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        await self.throttle.spend(key, "exports")  # a tenant's subgraph read: limited per key
        body: ExportBody = parse_json_body(await request.body() or b"{}", ExportBody)
        tenant = _own_tenant(key, body.tenant)
        policy = self._policy()
        selection = Selection(domain=body.domain, entities=body.entities)
        with _graph_errors():
            try:
                bundle = await bundles_graph.export(self._store(), tenant, selection, f"key:{key.id}",
                                                    policy.max_relations, policy.max_entities)
            except bundles_graph.TooLarge as exc:
                raise OpenAIError(413, str(exc), code="selection_too_large") from None
            except ValidationError as exc:  # the graph holds something the bundle format cannot carry
                raise OpenAIError(422, f"the selection cannot be exported: {exc.errors()[0]['msg']}",
                                  code="unexportable") from None
        export_id = f"kexp-{uuid.uuid4().hex}"
        await self._audit(key, "knowledge_exported", export_id, tenant, "export",
                          {"digest": bundle["digest"], "selection": selection.model_dump(),
                           "entities": len(bundle["entities"]), "relations": len(bundle["relations"])})
        return bundle

    async def create(self, request: Request) -> JSONResponse:
        key = await require_admin(request, self.keystore())
        tenant = _own_tenant(key, request.query_params.get("tenant"))
        policy = self._policy()
        cs_id = f"kcs-{uuid.uuid4().hex}"
        try:
            raw = await read_limited(request, policy.max_bundle_bytes)
            document, bundle = parse_bundle(raw, policy.max_entities, policy.max_relations)
            source = await self._source_document(tenant, request.query_params.get("document_id"))
        except OpenAIError as exc:
            await self._refuse(key, cs_id, tenant, exc)
        with _graph_errors():
            taken = await aliases.conflicts(self.graph(), tenant, bundle)
            if taken:
                await self._refuse(key, cs_id, tenant, OpenAIError(409, taken[0].message(), param="entities",
                                                                   code="alias_taken"))
            found = await resolve_bundle(self.graph(), tenant, bundle, words(self.keywords))
            plan = (await bundles_graph.diff(self._store(), tenant, bundle)).as_dict()
        decision = await self.gate.decide(key, "moe/knowledge/decision", "knowledge.import", tenant, {
            "domains": found.as_input(), "labels": bundle.domains(), "digest": bundle.digest,
            "entities": len(bundle.entities), "relations": len(bundle.relations)}, cs_id)
        required, domains = int(decision.result["approvals_required"]), list(decision.result["domains"])
        cs = await self.sets.create(id=cs_id, tenant=tenant, status="pending", importer_key=key.id,
                                    importer_principal=key.principal_id, bundle=document, diff=plan,
                                    domains=domains, approvals_required=required,
                                    policy_digest=policy.digest, source_document=source)
        await self._audit(key, "knowledge_import_created", cs_id, tenant, "bundle imported as a pending change set",
                          {"digest": bundle.digest, "origin_tenant": bundle.origin.tenant, "domains": cs["domains"],
                           "labels": bundle.domains(), "unresolved": found.unresolved[:50],
                           "approvals_required": required, "summary": plan["summary"],
                           "policy_digest": policy.digest, "policy_version": decision.version.digest,
                           "document": source})
        if required == 0:
            cs = await self._apply_now(key, cs_id, tenant, "the policy needs no approval for these domains")
        return JSONResponse(view(cs), status_code=201)

    async def _source_document(self, tenant: str, document_id: str | None) -> dict[str, Any] | None:
        """The import's source document, a document of the tenant (404 when it has none of that id)."""
        if document_id is None:
            return None
        if not 0 < len(document_id) <= 200 or self.documents is None:
            raise OpenAIError(400, "document_id must name a document of the tenant (1 to 200 characters)",
                              param="document_id", code="invalid_value")
        found = await self.documents(tenant, document_id)
        if found is None:
            raise not_found("document", document_id)
        return {"id": found["id"], "sha256": f"sha256:{found['sha256']}", "title": found.get("title"),
                "source": found.get("source")}

    async def list_sets(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        status = query_params.choice(request, "status", STATUSES, "pending")
        limit = query_params.integer(request, "limit", 50, 1, 500)
        items = await self.sets.find(list(key.tenant_ids), None if status == "all" else status, limit)
        KNOWLEDGE_IMPORTS_PENDING.set(await self.sets.pending_count())
        return {"object": "list", "data": [view(cs) for cs in items]}

    async def get(self, cs_id: str, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        cs = await self.sets.get(cs_id, list(key.tenant_ids))
        if cs is None:
            raise not_found("change set", cs_id)
        return view(cs)

    @asynccontextmanager
    async def _deciding(self, request: Request, cs_id: str, verb: str) -> AsyncIterator[Decision]:
        """An admin key's decision on a change set, under its row lock, if the policy lets this key's principal
        make it (policy/opa/knowledge.rego, the four-eyes rule: not the importer's principal, with any of its keys;
        not a principal that approved already)."""
        key = await require_admin(request, self.keystore())
        body: DecisionBody = parse_json_body(await request.body() or b"{}", DecisionBody)
        async with self.sets.locked(cs_id, list(key.tenant_ids)) as lk:
            cs = lk.item
            if cs is None:
                raise not_found("change set", cs_id)
            resource = {"importer": importer_of(cs), "approvers": approvers_of(cs),
                        "status": cs["status"], "approvals_required": cs["approvals_required"]}
            decision = await self.gate.ask(key, "moe/knowledge/decision", f"knowledge.{verb}", cs["tenant"],
                                           resource, cs_id)
            if not decision.allowed:
                first = (decision.denials or [{"code": "policy_denied", "reason": "the policy does not allow it"}])[0]
                await self._refuse(key, cs_id, cs["tenant"], OpenAIError(
                    int(first.get("status", 403)), str(first["reason"]), "permission_error", code=str(first["code"])))
            yield Decision(key, body, lk, cs, cs["tenant"])

    async def approve(self, cs_id: str, request: Request) -> dict[str, Any]:
        async with self._deciding(request, cs_id, "approve") as (key, body, lk, cs, tenant):
            actor = f"key:{key.id}"
            if cs["status"] == "rejected":
                raise OpenAIError(409, "the change set was rejected", code="already_decided")
            if cs["status"] == "applied":  # idempotent: nothing is written again
                await self._audit(key, "knowledge_import_already_applied", cs_id, tenant, body.note or "approve",
                                  {"digest": cs["bundle_digest"]})
                return view(cs)
            count = await lk.approve(key.id, key.principal_id, body.note)
            events: list[Event] = [("knowledge_import_approved", body.note or "approved",
                       {"approvals": count, "approvals_required": cs["approvals_required"]})]
            if count >= cs["approvals_required"]:
                events.append(await self._write(lk, cs, body.note, actor))
        for action, reason, details in events:  # after the commit: a failed apply leaves no approval behind
            await self._audit(key, action, cs_id, tenant, reason, details)
        return view(await self._reload(cs_id, tenant))

    async def reject(self, cs_id: str, request: Request) -> dict[str, Any]:
        async with self._deciding(request, cs_id, "reject") as (key, body, lk, cs, tenant):
            if cs["status"] != "pending":
                raise OpenAIError(409, f"the change set was already {cs['status']}", code="already_decided")
            await lk.decide("rejected", f"key:{key.id}", body.note, None)
            await self._audit(key, "knowledge_import_rejected", cs_id, tenant, body.note or "rejected",
                              {"digest": cs["bundle_digest"]})
        return view(await self._reload(cs_id, tenant))

    async def _apply_now(self, key: ApiKey, cs_id: str, tenant: str, note: str) -> dict[str, Any]:
        async with self.sets.locked(cs_id, [tenant]) as lk:
            assert lk.item is not None
            action, reason, details = await self._write(lk, lk.item, note, "policy")
        await self._audit(key, action, cs_id, tenant, reason, details)
        return await self._reload(cs_id, tenant)

    async def _write(self, lk: Locked, cs: dict[str, Any], note: str, actor: str) -> Event:
        """Apply to the graph, then mark applied in the same Postgres transaction (a failure keeps it pending)."""
        bundle = Bundle.model_validate(cs["bundle"])
        with _graph_errors():
            result = await bundles_graph.apply(self._store(), cs["tenant"], bundle, cs["id"], document_ref(cs))
        await lk.decide("applied", actor, note, result)
        return ("knowledge_import_applied", note or "applied",
                {"digest": cs["bundle_digest"], "decided_by": actor, "entities_created": result["entities_created"],
                 "relations_written": len(result["relations_written"]),
                 "relation_ids": result["relations_written"],  # the facts it wrote: their lineage (codex-lineage)
                 "document": cs.get("source_document"), "skipped_conflicting": result["skipped_conflicting"]})

    async def _reload(self, cs_id: str, tenant: str) -> dict[str, Any]:
        cs = await self.sets.get(cs_id, [tenant])
        assert cs is not None
        return cs


def document_ref(cs: dict[str, Any]) -> str | None:
    """The change set's source document as its relations keep it: `<document id>@sha256:<hex>` (None: none)."""
    doc = cs.get("source_document")
    return f"{doc['id']}@{doc['sha256']}" if doc else None


def importer_of(cs: dict[str, Any]) -> str:
    """The principal that imported a change set (one made before principals existed: its key's own account)."""
    return str(cs.get("importer_principal") or own_principal(cs["importer_key"]))


def approvers_of(cs: dict[str, Any]) -> list[str]:
    """The distinct principals that approved a change set (an approval from before principals: its key's own)."""
    return sorted({str(a.get("principal") or own_principal(str(a["key"]).removeprefix("key:")))
                   for a in cs["approvals"]})


def _own_tenant(key: ApiKey, wanted: str | None) -> str:
    tenant = wanted or key.default_tenant
    if tenant not in key.tenant_ids:
        raise OpenAIError(403, f"the key may not act for tenant {tenant!r}", "permission_error",
                          code="tenant_forbidden", param="tenant")
    return tenant


def _graph_errors() -> AbstractContextManager[None]:
    return unavailable("the knowledge graph", "graph_unavailable", (GraphUnavailable,))
