"""Tenant documents ("scoped memory"): POST /v1/memory/documents (JSON text, or a multipart file: Markdown,
plain text, PDF), GET /v1/memory/documents (own, filtered), GET and DELETE /v1/memory/documents/{id},
POST /v1/memory/search (the filtered lookup graph-rag runs for a question). Any verified key; the tenant is
the key's (X-Moe-Tenant picks one of its tenants). A document is deleted by the principal who uploaded it or by
an admin of the tenant (policy/opa/memory.rego, action memory.document_delete: a clinician's key does not delete
the knowledge owner's documents). Additions, deletions and refusals are audit events.

A document in a protected domain (its label, or a domain the server resolves from its text as for memory ingest:
policy/opa/memory.rego, action memory.document_upload) is stored but held: status pending_review, not searched for
answers (graph-rag) nor by POST /v1/memory/search, until as many distinct principals approve it as a knowledge
import of its domains needs (control_plane.memory.review: POST /v1/memory/documents/{id}/approve, /reject)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
from chromadb.errors import ChromaError
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from control_plane.memory import audit as memory_audit
from control_plane.memory.files import Limits, MediaType, MemoryInputError, check_text, chunks, media_type, text_of
from control_plane.memory.pdf_text import PdfWorker
from control_plane.memory.review import MemoryReview
from control_plane.memory.settings import MemorySettings
from control_plane.memory.store import PENDING, SEARCHABLE, MemoryStore, NewDocument, Review, new_document_id
from control_plane.ops.resources import not_found, router, unavailable
from control_plane.policy.gate import PolicyGate, principal, words
from moe_core.access.keystore import ApiKey, KeyStore
from moe_core.access.request_auth import authenticate
from moe_core.access.throttle import Throttle
from moe_core.knowledge.embeddings import get_embedder
from moe_core.knowledge.memory import FilterError, MemoryFilters, collection_name, parse_filters
from moe_core.knowledge.memory.filters import DOMAIN_PATTERN
from moe_core.knowledge.memory.store import version_key
from moe_core.policy.domains import Keywords, resolve_text
from moe_core.runtime import query_params
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import OpenAIError, parse_json_body, parse_object

log = logging.getLogger(__name__)
LIST_PARAMS = ("domain", "document_set", "from", "to", "status", "limit", "offset")
STATUSES = (PENDING, SEARCHABLE, "all")
FORM_FIELDS = ("file", "title", "source", "domain", "document_set", "date")
STORE_ERRORS = (httpx.HTTPError, ConnectionError, ChromaError, ValueError, RuntimeError)  # Chroma down or broken


class DocumentFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    source: str | None = Field(default=None, min_length=1, max_length=500, description="Where it comes from")
    domain: str = Field(default="general", pattern=DOMAIN_PATTERN)
    document_set: str = Field(default="default", pattern=DOMAIN_PATTERN)
    date: dt.date | None = Field(default=None, description="The document's date (default: today)")


class TextDocument(DocumentFields):
    text: str = Field(min_length=1)
    format: MediaType = "text/markdown"


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000)
    filters: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(default=5, ge=1, le=50)


class MemoryApi:
    def __init__(self, settings: MemorySettings, namespace: str, bus: Bus, keystore: Callable[[], KeyStore],
                 redis: Redis, throttle: Throttle, gate: PolicyGate, keywords: Keywords | str,
                 store: MemoryStore | None = None) -> None:
        self.settings = settings
        self.gate = gate
        self.keywords = keywords
        self.throttle = throttle
        self.namespace = namespace
        self.bus = bus
        self.redis = redis
        self.keystore = keystore
        self.store = store or MemoryStore(settings.chroma_url, collection_name(namespace, settings.memory_collection),
                                          get_embedder())
        pdf = PdfWorker(settings.memory_pdf_cpu_s, settings.memory_pdf_timeout_s, settings.memory_pdf_memory_mb,
                        settings.memory_pdf_workers)
        self.limits = Limits(settings.memory_max_file_bytes, settings.memory_max_chars, settings.memory_max_pdf_pages,
                             pdf)
        self.review = MemoryReview(self.store, gate, keystore, redis, namespace, bus, self._changed,
                                   lambda: _store_errors(self.store))
        self.router = router(("POST", "/v1/memory/documents", self.create, 201),
                             ("GET", "/v1/memory/documents", self.documents),
                             ("GET", "/v1/memory/documents/{document_id}", self.get),
                             ("DELETE", "/v1/memory/documents/{document_id}", self.delete),
                             ("POST", "/v1/memory/documents/{document_id}/approve", self.review.approve),
                             ("POST", "/v1/memory/documents/{document_id}/reject", self.review.reject),
                             ("POST", "/v1/memory/search", self.search))

    async def create(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        await self.throttle.spend(key, "uploads")  # before the body is read
        tenant = key.default_tenant
        with _input_errors():
            fields, text, kind = await self._read(request)
        document_id = new_document_id()
        review = await self._review(key, tenant, fields.domain, text, document_id)
        # CPU-bound (tokenising every chunk): off the event loop that streams other requests' answers
        parts = await asyncio.to_thread(chunks, text, kind, self.settings.memory_chunk_tokens,
                                        self.settings.memory_chunk_overlap)
        first = text.split("\n", 1)[0].strip()
        heading = first.lstrip("#").strip() if kind == "text/markdown" and first.startswith("#") else ""
        title = (fields.title or heading or fields.source or first)[:200] or "untitled"
        day = fields.date or dt.datetime.now(dt.UTC).date()
        doc = NewDocument(tenant=tenant, title=title, source=fields.source or title, domain=fields.domain,
                          document_set=fields.document_set, media_type=kind, chars=len(text), chunks=parts,
                          doc_time=int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()),
                          sha256=hashlib.sha256(text.encode()).hexdigest(), uploaded_by=principal(key)["id"],
                          id=document_id)
        with _store_errors(self.store):
            if await self.store.count(tenant) >= self.settings.memory_max_documents:
                raise OpenAIError(409, f"the tenant keeps at most {self.settings.memory_max_documents} documents "
                                       "(MOE_MEMORY_MAX_DOCUMENTS): delete some first", code="too_many_documents")
            body = await self.store.add(doc, review)
        if review is None:
            await self._changed(tenant)
            await self._audit("memory_document_added", tenant, f"key:{key.id}", body)
        else:  # not searched yet: graph-rag's cached contexts are still right
            await self._audit("memory_document_held", tenant, f"key:{key.id}", body)
        return body

    async def _review(self, key: ApiKey, tenant: str, label: str, text: str, document_id: str) -> Review | None:
        """The policy's decision on an upload: None (searchable at once) or the review that holds it."""
        keywords = words(self.keywords)
        domains = await asyncio.to_thread(resolve_text, text, keywords)  # every word of up to 500,000 characters
        decision = await self.gate.decide(key, "moe/memory/decision", "memory.document_upload", tenant,
                                          {"domain": label, "domains": domains}, document_id)
        if not decision.result.get("review"):
            return None
        return Review(sorted(decision.result.get("protected_domains") or []),
                      max(1, int(decision.result.get("approvals_required") or 1)))

    async def _read(self, request: Request) -> tuple[DocumentFields, str, MediaType]:
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/form-data"):
            return await self._read_form(request)
        body: TextDocument = parse_json_body(await request.body(), TextDocument)
        return body, check_text(body.text, self.limits, "text"), body.format

    async def _read_form(self, request: Request) -> tuple[DocumentFields, str, MediaType]:
        try:
            form = await request.form(max_files=1, max_fields=len(FORM_FIELDS), max_part_size=64 * 1024)
        except (MultiPartException, HTTPException, ValueError) as exc:  # malformed, too many files or fields
            raise MemoryInputError(400, f"the multipart body could not be read: {exc}", "invalid_value") from None
        try:
            unknown = sorted(k for k in form if k not in FORM_FIELDS)
            if unknown:
                raise MemoryInputError(400, f"unknown form field {unknown[0]!r}; the fields are "
                                            f"{', '.join(FORM_FIELDS)}", "invalid_value", unknown[0])
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise MemoryInputError(400, "a multipart upload needs a 'file' part", "invalid_value", "file")
            fields = parse_object({k: v for k, v in form.items() if k != "file" and isinstance(v, str)},
                                  DocumentFields)
            if fields.source is None and upload.filename:
                fields = fields.model_copy(update={"source": upload.filename[:500]})
            kind = media_type(upload.filename or "", upload.content_type)
            data = await upload.read(self.limits.max_bytes + 1)
        finally:
            await form.close()
        return fields, await text_of(data, kind, self.limits), kind  # a PDF: in a bounded child process

    async def documents(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        params = request.query_params
        unknown = sorted(k for k in params if k not in LIST_PARAMS)
        if unknown:
            raise OpenAIError(400, f"unknown filter {unknown[0]!r}; the filters are domain, document_set, from, "
                                   "to, status (and limit, offset)", param=unknown[0], code="unknown_filter")
        status = query_params.choice(request, "status", STATUSES, "all")
        raw: dict[str, Any] = {k: params.getlist(k) for k in ("domain", "document_set") if k in params}
        if "from" in params or "to" in params:
            raw["time_range"] = {k: params[k] for k in ("from", "to") if k in params}
        filters = _filters(raw)
        limit = query_params.integer(request, "limit", 100, 1, 1000)
        offset = query_params.integer(request, "offset", 0, 0, 1_000_000)
        with _store_errors(self.store):
            docs = await self.store.documents(key.default_tenant, filters, None if status == "all" else status)
        page = docs[offset:offset + limit]
        return {"object": "list", "data": page, "total": len(docs), "has_more": offset + limit < len(docs)}

    async def get(self, document_id: str, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        return await self._own(key.default_tenant, document_id)

    async def _own(self, tenant: str, document_id: str) -> dict[str, Any]:
        doc = await self.document(tenant, document_id)
        if doc is None:
            raise not_found("document", document_id)
        return doc

    async def document(self, tenant: str, document_id: str) -> dict[str, Any] | None:
        """One of the tenant's documents (None: it has none of that id); the store down is a 503."""
        with _store_errors(self.store):
            return await self.store.get(tenant, document_id)

    async def delete(self, document_id: str, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        doc = await self._own(key.default_tenant, document_id)
        await self.gate.decide(key, "moe/memory/decision", "memory.document_delete", key.default_tenant,
                               {"uploaded_by": doc.get("uploaded_by") or None, "domain": doc.get("domain")},
                               document_id)  # the uploader or a tenant admin; a refusal is a 403, audited
        if doc["status"] == PENDING:  # not while a review releases it into search
            async with self.review.locked(document_id):
                await self._delete(key.default_tenant, document_id)
        else:
            await self._delete(key.default_tenant, document_id)
        await self._changed(key.default_tenant)
        await self._audit("memory_document_deleted", key.default_tenant, f"key:{key.id}", doc)
        return {"object": "memory.document.deleted", "id": document_id, "deleted": True}

    async def _delete(self, tenant: str, document_id: str) -> None:
        with _store_errors(self.store):
            if not await self.store.delete(tenant, document_id):
                raise not_found("document", document_id)

    async def search(self, request: Request) -> dict[str, Any]:
        key = await authenticate(request, self.keystore())
        body: SearchBody = parse_json_body(await request.body(), SearchBody)
        filters = _filters(body.filters)
        with _store_errors(self.store):
            hits = await self.store.search(key.default_tenant, body.query, filters, body.limit,
                                           self.settings.memory_search_max_distance)
        data = [{"object": "memory.chunk", "id": h["ref"].rsplit("/", 1)[-1], "document_id": h["document_id"],
                 "title": h["title"], "source": h["source"], "domain": h["metadata"].get("domain"),
                 "document_set": h["metadata"].get("document_set"), "chunk": h["metadata"].get("chunk"),
                 "distance": h["distance"], "text": h["text"]} for h in hits]
        return {"object": "list", "query": body.query, "filters": filters.dump(), "data": data}

    async def _changed(self, tenant: str) -> None:
        """graph-rag's cached contexts of this tenant are stale now (their key holds this version)."""
        try:
            await self.redis.incr(version_key(self.namespace, tenant))
        except RedisError:  # the change is made; cached contexts expire by their TTL (MOE_GRAPH_CACHE_TTL_S)
            log.exception("could not bump the document version of tenant %s", tenant)

    async def _audit(self, action: str, tenant: str, actor: str, doc: dict[str, Any]) -> None:
        await memory_audit.publish(self.bus, action, tenant, actor, doc)


def _filters(raw: dict[str, Any]) -> MemoryFilters:
    try:
        return parse_filters(raw)
    except FilterError as exc:
        raise OpenAIError(400, str(exc), param=f"filters.{exc.field}" if exc.field else "filters",
                          code="unknown_filter" if "unknown" in str(exc) else "invalid_filter") from None


@contextmanager
def _input_errors() -> Iterator[None]:
    try:
        yield
    except MemoryInputError as exc:
        raise OpenAIError(exc.status, exc.message, code=exc.code, param=exc.param) from None


def _store_errors(store: MemoryStore) -> AbstractContextManager[None]:
    """Chroma being down is a 503 in the API's own envelope, not a stack trace."""
    return unavailable("the document store", "memory_unavailable", STORE_ERRORS, store.forget)
