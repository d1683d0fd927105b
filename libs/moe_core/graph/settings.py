"""Settings every graph service shares (env prefix MOE_)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from moe_core.graph.trust import TrustPolicy
from moe_core.settings import FleetSettings


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
    graph_trust_floor: float = Field(default=0.3, ge=0, le=1, description="Relations below are not retrieved")
    graph_trust_half_life_days: float = Field(default=180.0, ge=0, description="Decay half-life; 0 = no decay")
    graph_decay_floor: float = Field(default=0.2, ge=0, le=1, description="Lint deletes decayed relations below")
    graph_seed_ontology: bool = Field(default=True, description="Seed the base ontology at start (idempotent)")

    def trust_policy(self) -> TrustPolicy:
        return TrustPolicy(half_life_days=self.graph_trust_half_life_days, decay_floor=self.graph_decay_floor)
