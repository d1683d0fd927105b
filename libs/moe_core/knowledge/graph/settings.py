"""Settings every graph service shares (env prefix MOE_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from moe_core.knowledge.graph.trust import TrustPolicy
from moe_core.runtime.seed import SEED_ENTERPRISE, SEED_SYSTEM, SeedDefault
from moe_core.runtime.settings import FleetSettings


class GraphSettings(FleetSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    neo4j_url: str = Field(
        default="bolt://127.0.0.1:7687",
        validation_alias=AliasChoices("MOE_NEO4J_URL", "MOE_NEO4J_URI", "neo4j_url"),
        description="Bolt URL of Neo4j (MOE_NEO4J_URI is accepted too)",
    )
    neo4j_user: str = Field(default="", description="Empty = no authentication (local only)")
    neo4j_password: str = Field(default="", description="Neo4j password (empty without authentication)")
    neo4j_database: str = Field(default="neo4j", description="Neo4j database")
    neo4j_ca_file: str = Field(default="", description="CA certificate (PEM) Neo4j's TLS certificate is verified "
                               "against: the connection is encrypted (a bolt:// or neo4j:// URL; empty = as the URL "
                               "says)")
    graph_trust_floor: float = Field(default=0.0, ge=0, le=1, description="Relations below are not retrieved "
                                     "(0: every relation that is not flagged, ranked by trust)")
    graph_trust_decay_days: float = Field(default=365.0, ge=0, description="Trust decays linearly over this "
                                          "many days: max(MOE_GRAPH_TRUST_DECAY_MIN, 1 - age/this); 0 = no decay")
    graph_trust_decay_min: float = Field(default=0.3, ge=0, le=1, description="The decay never goes below this")
    graph_decay_floor: float = Field(default=0.2, ge=0, le=1, description="Lint deletes decayed relations below")
    graph_seed_ontology: bool = Field(default=True, description="Seed the base ontology at start (idempotent)")

    def trust_policy(self) -> TrustPolicy:
        return TrustPolicy(decay_days=self.graph_trust_decay_days, decay_min=self.graph_trust_decay_min,
                           decay_floor=self.graph_decay_floor)


class QuarantineSettings(BaseSettings):
    """A writer that holds triples in the quarantine for review (graph-ingest, gap-healer)."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    graph_quarantine_ttl_s: int = Field(default=7 * 86_400, ge=0, description="A quarantined triple not decided "
                                        "within this long expires (listed as expired, no longer decided); 0 = never")


_TRUST = f"{SEED_ENTERPRISE}: Confidence Decay"
SEED_DEFAULTS = (
    SeedDefault("trust: source weight of the ontology", "1.0", "moe_core.knowledge.graph.trust:WEIGHT_ONTOLOGY", 1.0,
                doc=_TRUST),
    SeedDefault("trust: source weight of the healer", "0.9", "moe_core.knowledge.graph.trust:WEIGHT_HEALER", 0.9,
                doc=_TRUST),
    SeedDefault("trust: source weight of extracted relations", "0.6",
                "moe_core.knowledge.graph.trust:WEIGHT_EXTRACTED", 0.6,
                doc=_TRUST),
    SeedDefault("trust: verified bonus", "1.5x", "moe_core.knowledge.graph.trust:VERIFIED_BONUS", 1.5, doc=_TRUST),
    SeedDefault("trust: decay", "max(0.3, 1 - days/365)", "MOE_GRAPH_TRUST_DECAY_DAYS", 365.0, doc=_TRUST),
    SeedDefault("trust: decay", "max(0.3, 1 - days/365)", "MOE_GRAPH_TRUST_DECAY_MIN", 0.3, doc=_TRUST),
    SeedDefault("trust: relations that never decay", "none (the formula applies to every relation)",
                "moe_core.knowledge.graph.trust:TIMELESS_SOURCES", [], doc=_TRUST),
    SeedDefault("retrieval floor", "none (only flagged relations are left out)", "MOE_GRAPH_TRUST_FLOOR", 0.0,
                doc=f"{SEED_SYSTEM}: 8. GraphRAG"),
    SeedDefault("automatic cleanup", "trust < 0.2, unverified, single assertion", "MOE_GRAPH_DECAY_FLOOR", 0.2,
                doc=_TRUST),
    SeedDefault("base ontology", "loaded on startup, idempotent", "MOE_GRAPH_SEED_ONTOLOGY", True,
                doc=f"{SEED_SYSTEM}: 8. GraphRAG"),
)
