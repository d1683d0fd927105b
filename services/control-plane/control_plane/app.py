"""control-plane: everything an operator, an administrator or an auditor does — tenants and keys, usage,
knowledge imports and quarantine review, tenant documents, the audit and lineage API, operator endpoints,
feedback and the console. The request path is the edge's (services/gateway); both share only libs/."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from redis.asyncio import Redis

from control_plane.admin.api import AdminApi
from control_plane.admin.principals import PrincipalsApi
from control_plane.audit.api import AuditApi
from control_plane.audit.lists import AuditLists
from control_plane.audit.requests_api import RequestsApi
from control_plane.console import mount_console
from control_plane.console.oidc_settings import OidcSettings
from control_plane.declaration import SERVICE
from control_plane.feedback import FeedbackApi
from control_plane.fleet_config.api import FleetConfigApi
from control_plane.knowledge.api import KnowledgeApi
from control_plane.knowledge.graph_api import GraphApi
from control_plane.memory.api import MemoryApi
from control_plane.ops import provider_status
from control_plane.ops.api import OpsApi
from control_plane.ops.config_api import ConfigApi
from control_plane.policy.api import PolicyApi
from control_plane.policy.bundle_server import PolicyBundles
from control_plane.policy.bundle_server import from_settings as policy_bundles
from control_plane.policy.egress_changes import in_force_change
from control_plane.policy.egress_changes_api import EgressChangesApi
from control_plane.policy.egress_reconcile import EgressReconciler
from control_plane.policy.gate import PolicyGate
from control_plane.policy.guardrail_changes import GuardrailChanges
from control_plane.policy.guardrails_api import GuardrailsApi
from control_plane.policy.proposals_api import ProposalsApi, reconcile_rules
from control_plane.policy.simulation_api import SimulationApi
from control_plane.settings import ControlPlaneSettings
from control_plane.templates.api import TemplatesApi
from control_plane.usage.api import UsageApi
from control_plane.usage.recorder import UsageRecorder
from control_plane.usage.settle_sweep import SettleSweeper
from moe_core.access.key_events import KeyEvents
from moe_core.access.key_guard import KeyGuard
from moe_core.access.keystore import KeyStore
from moe_core.access.limits import Limiter
from moe_core.access.settler import Settler
from moe_core.access.throttle import Throttle
from moe_core.access.usage_store import UsageStore
from moe_core.llm.inference import InferenceConfig
from moe_core.llm.input_limits import InputLimits
from moe_core.policy import PolicyClient
from moe_core.policy.classes import ClassFile
from moe_core.policy.domains import Keywords, KeywordsError, load_keywords
from moe_core.runtime.bus import Bus
from moe_core.runtime.openai_error import install_error_handlers
from moe_core.runtime.service import create_service_app
from moe_core.runtime.stores import redis_client
from moe_core.stage.consumer import stage_router

log = logging.getLogger(__name__)


class Stores:
    """The key store (`app.state.key_store`, what every route's key check reads) and the usage rows, opened at
    start-up (or given by a test)."""

    OPEN_WAIT_S = 60.0

    def __init__(self, settings: ControlPlaneSettings, keystore: KeyStore | None) -> None:
        self.settings = settings
        self.given = keystore
        self._keys = keystore
        self._usage: UsageStore | None = None
        self._opened = asyncio.Event()

    def keys(self) -> KeyStore:
        if self._keys is None:
            raise RuntimeError("the key store is not open yet")
        return self._keys

    def usage(self) -> UsageStore:
        if self._usage is None:
            raise RuntimeError("the usage store is not open yet")
        return self._usage

    async def usage_opened(self) -> UsageStore:
        """The usage store once start-up opened it (the usage subscriber may get a charge before): a transient
        error (redelivered) if it does not open in time."""
        try:
            await asyncio.wait_for(self._opened.wait(), self.OPEN_WAIT_S)
        except TimeoutError:
            raise ConnectionError("the usage store did not open") from None
        return self.usage()

    async def open(self) -> KeyStore:
        if self._keys is None:
            self._keys = await KeyStore.connect(self.settings.postgres_dsn, self.settings.key_cache_ttl_s,
                                                self.settings.key_negative_ttl_s)
        # the usage charges on a pool of their own (not reset between statements), unless a test gave the keys
        self._usage = (UsageStore(self._keys.pool) if self.given
                       else await UsageStore.connect(self.settings.postgres_dsn))
        self._opened.set()
        return self._keys

    async def close(self) -> None:
        self._opened.clear()
        if self._usage is not None:
            await self._usage.close()
        if self.given is None and self._keys is not None:
            await self._keys.close()
            self._keys = None


def domain_keywords(settings: ControlPlaneSettings) -> Keywords | str:
    """The words that resolve knowledge domains, or why they cannot be read (the routes needing them: 503)."""
    try:
        return load_keywords(settings.keywords_path())
    except KeywordsError as exc:
        log.error("knowledge imports and memory ingest disabled: %s", exc)
        return str(exc)


@dataclass(frozen=True)
class Parts:
    """What the control plane's APIs are built from (create_app)."""

    settings: ControlPlaneSettings
    bus: Bus
    redis: Redis
    stores: Stores
    limiter: Limiter
    throttle: Throttle
    events: KeyEvents
    opa: PolicyClient
    gate: PolicyGate
    keywords: Keywords | str  # or why they cannot be read (domain_keywords)
    inference: InferenceConfig
    bundles: PolicyBundles | None  # OPA's signed policy bundle, when the control plane signs one


def _parts(settings: ControlPlaneSettings, bus: Bus, keystore: KeyStore | None) -> Parts:
    redis = redis_client(settings.redis_url, settings.redis_ca_file)
    stores = Stores(settings, keystore)
    limiter = Limiter(redis, settings.topic_namespace)
    opa = PolicyClient.from_settings(settings)
    keywords = domain_keywords(settings)
    if not isinstance(keywords, str):  # the protected domains travel with every decision (policy/opa/domains.rego)
        opa.context["domain_rules"] = keywords.rules()
    return Parts(settings, bus, redis, stores, limiter,
                 Throttle(limiter, settings),  # per-key limits of uploads, verifications, exports
                 KeyEvents(redis, settings.topic_namespace, lambda: stores.keys().invalidate()),  # every replica
                 opa, PolicyGate(opa, bus),  # write decisions by Open Policy Agent, each an audit record
                 keywords, InferenceConfig.from_settings(settings),
                 policy_bundles(settings, lambda: in_force_change(stores.keys().pool, settings.topic_namespace)))


def _routers(p: Parts, graph: GraphApi, audit: AuditApi, memory: MemoryApi, templates: TemplatesApi,
             fleet_config: FleetConfigApi) -> list[APIRouter]:
    stores, bus, gate = p.stores, p.bus, p.gate
    return [api.router for api in (
        fleet_config,  # /v1/admin/fleet-config: servers, model assignment, client profiles, in force at once
        AdminApi(bus, stores.keys, p.events, gate, p.inference.templates, p.settings.model_map,  # /v1/admin/*
                 ClassFile(p.settings.classes_path())),  # a key's data class: one of policy/data-classes.yaml
        ConfigApi(p.settings, p.inference, stores.keys, audit.store, gate),  # GET /v1/admin/config (the operator)
        PolicyApi(p.settings, p.opa, stores.keys),  # GET /v1/admin/policy: the version in force, the last error
        PrincipalsApi(bus, stores.keys, gate, p.events),  # /v1/admin/principals (scoped by the policy)
        templates,  # /v1/admin/templates (per tenant), published into Redis for the edge
        UsageApi(stores.usage, stores.keys, p.limiter, gate),  # GET /v1/usage
        provider_status,  # GET /v1/provider-status: the calling key's limits, used and left (read only)
        graph,
        audit,
        AuditLists(stores.keys, audit.store, gate),  # GET /v1/audit, /v1/tool-calls (recent, own tenants)
        RequestsApi(stores.keys, audit.store, gate, frozenset(  # GET /v1/requests, /v1/requests/overview
            t.strip() for t in p.settings.hidden_question_tenants.split(",") if t.strip())),
        KnowledgeApi(bus, stores.keys, lambda: graph.db, p.throttle, gate, p.keywords,  # four-eyes imports
                     documents=memory.document),  # an import's source document: one of the tenant's
        FeedbackApi(bus, p.redis, p.settings.topic_namespace, p.settings.feedback_window_s),  # POST /v1/feedback
        OpsApi(p.settings, p.redis, stores.keys, lambda: graph.db),  # operators' endpoints
        memory,
        GuardrailsApi(stores.keys, p.redis, p.settings.topic_namespace),  # /v1/guardrails/*: quarantine, journal
        SimulationApi(p.settings, bus, stores.keys, audit.store),  # POST /v1/guardrails/simulations
        ProposalsApi(p.settings, bus, stores.keys, gate),  # a simulated candidate applied by a second person
        EgressChangesApi(p.settings, bus, stores.keys, audit.store, p.opa, gate, p.bundles),  # /v1/egress/*
    )] + ([p.bundles.router] if p.bundles else [])  # GET /v1/opa/bundles/policies.tar.gz: what OPA polls


async def _reconcile_rules(settings: ControlPlaneSettings, stores: Stores, bus: Bus) -> None:
    try:
        await reconcile_rules(settings, GuardrailChanges(stores.keys().pool, settings.topic_namespace), bus)
    except OSError as exc:  # the folder is not writable: the approved rules are not in force, say so loudly
        log.error("an approved guardrail proposal's rules file could not be written at start: %s", exc)


def _egress_reconciler(p: Parts) -> EgressReconciler:
    """The approved egress policy kept in force at OPA (at start, then every MOE_EGRESS_RECONCILE_S)."""
    return EgressReconciler(p.settings, lambda: p.stores.keys().pool, p.opa,
                            lambda event: p.bus.publish(event, p.bus.topics.audit), p.settings.topic_namespace,
                            p.bundles)


def create_app(settings: ControlPlaneSettings | None = None, *, bus: Bus | None = None,
               keystore: KeyStore | None = None, manage_broker: bool = True,
               oidc: OidcSettings | None = None) -> FastAPI:
    settings = settings or ControlPlaneSettings()
    bus = bus or Bus(settings)
    p = _parts(settings, bus, keystore)
    redis, stores, events = p.redis, p.stores, p.events
    graph = GraphApi(settings, bus, stores.keys, p.gate, p.keywords)  # /graph/*, quarantine review, memory ingest
    audit = AuditApi(settings, stores.keys, p.throttle, p.gate)  # GET /v1/audit/{id}, /v1/lineage/{id}
    # the edge's usage charges -> usage_requests, usage_daily (group commit: control_plane.usage.writes)
    usage = UsageRecorder(stores.usage_opened, settings.usage_write_linger_ms / 1000, settings.consumer_in_flight)
    # the requests whose edge replica died, settled here (their charges go out on `usage` like the edge's)
    sweeper = SettleSweeper(settings, settings, Settler(redis, settings.topic_namespace,
                                                        lambda charge: bus.publish(charge, bus.topics.usage)),
                            proven=bus.proven_record)  # only a declared producer's Answer is charged
    # The subscriptions are the declared ones (control_plane.declaration), each to its handler, on the stages'
    # consumer (moe_core.stage.consumer: records in flight in order per key, offsets committed together): with
    # the usage store's own pool, 2.78 -> 2.33 ms of control-plane + Postgres CPU per charge
    # (python -m bench.usage_write_costs).
    handlers: dict[str, Callable[[Any], Awaitable[None]]] = {"record_usage": usage.handle}
    bus.broker.include_router(stage_router(SERVICE, settings, bus, handlers)[0])
    memory = MemoryApi(settings, settings.topic_namespace, bus, stores.keys, redis, p.throttle, p.gate,  # documents
                       p.keywords)  # a protected domain's document is held for review (memory.rego)
    templates = TemplatesApi(bus, stores.keys, p.gate, p.inference, p.inference.templates, redis,
                             settings.topic_namespace)
    fleet_config = FleetConfigApi(bus, stores.keys, p.gate, p.inference, settings.client_profiles, redis,
                                  settings.topic_namespace, audit.store)
    routers = _routers(p, graph, audit, memory, templates, fleet_config)
    egress = _egress_reconciler(p)

    async def start() -> None:
        app.state.key_store = await stores.open()
        await _reconcile_rules(settings, stores, bus)  # an approval whose rules file a crash left unwritten
        await events.start()
        sweeper.start()
        await templates.start()  # every tenant's templates into Redis, where the edge reads them
        await fleet_config.start()  # the console's configuration changes into Redis, where every stage reads them
        egress.start()

    async def stop() -> None:
        await egress.close()
        await sweeper.close()
        await events.close()
        await stores.close()
        await redis.aclose()

    async def postgres_ready() -> None:
        await stores.keys().ping()

    app = create_service_app(settings, bus, checks={"postgres": postgres_ready}, on_startup=[start],
                             on_shutdown=[graph.close, audit.close, p.opa.close, stop], manage_broker=manage_broker)
    app.state.policy = p.opa  # the policy engine's client (its url: MOE_OPA_URL)
    app.state.limit_reader = p.limiter  # the edge's limit counters, read by GET /v1/provider-status
    app.state.key_guard = KeyGuard(p.limiter, settings.limit_failed_key_lookups_per_minute)  # failed key lookups
    app.add_middleware(InputLimits, limits=settings)  # body size, JSON depth, lists, strings, Unicode
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    mount_console(app, settings, bus, redis, stores.keys, oidc)  # /console (admin UI; OIDC sign-in)
    return app
