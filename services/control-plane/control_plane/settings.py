"""The control plane's settings (prefix MOE_): what its APIs need of the fleet's stores."""

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from control_plane.memory.settings import MemorySettings
from control_plane.policy.settings import PolicySettings
from control_plane.usage.settle_sweep import SweepSettings
from moe_core.access.keystore import KeyCacheSettings
from moe_core.access.throttle import ThrottleSettings
from moe_core.llm.answer_records import AnswerRecordSettings
from moe_core.llm.client_profiles import ClientProfileSettings
from moe_core.llm.input_limits import EdgeSettings
from moe_core.llm.model_map import ModelMapSettings
from moe_core.policy.settings import DataClassSettings
from moe_core.runtime.settings import FleetSettings


class ControlPlaneSettings(PolicySettings,  # PolicySettings: Open Policy Agent's write decisions (policy_gate)
                           ThrottleSettings, MemorySettings,  # ThrottleSettings: per-key calls (uploads, exports…)
                           SweepSettings,  # SweepSettings: settling the requests of an edge replica that died
                           KeyCacheSettings, AnswerRecordSettings,  # the key check's cache, the feedback window
                           EdgeSettings,  # EdgeSettings: the input guard's limits (moe_core.llm.input_limits)
                           ModelMapSettings,  # the edge's model map: a key's allowed models are checked with it
                           ClientProfileSettings,  # MOE_CLIENT_PROFILES: the defaults the console's changes overlay
                           DataClassSettings,  # a key's data_class; a request's classification (GET /v1/lineage/{id})
                           FleetSettings):  # MemorySettings: tenant documents (control_plane.memory.api)
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    service_name: str = "control-plane"
    http_port: int = 8110  # the local fleet sets it from MOE_CONTROL_PLANE_PORT
    neo4j_url: str = Field(default="bolt://127.0.0.1:7687",
                           validation_alias=AliasChoices("MOE_NEO4J_URL", "MOE_NEO4J_URI", "neo4j_url"),
                           description="Knowledge graph for /graph/* (MOE_NEO4J_URI is accepted too)")
    neo4j_user: str = Field(default="", description="Knowledge graph: the user (empty: no authentication)")
    neo4j_password: str = Field(default="", description="Knowledge graph: the password")
    neo4j_database: str = Field(default="neo4j", description="Knowledge graph: the database")
    graph_search_min_similarity: float = Field(
        default=0.55, ge=0, le=1, description="GET /graph/search: entities whose name and aliases are all less "
        "similar (cosine) to the query are left out (0.55: a made-up word's best match in the base ontology scores "
        "0.49)")
    usage_write_linger_ms: float = Field(default=200.0, ge=0, le=5000, description="Usage: a charge's write "
                                         "waits this long (or until MOE_CONSUMER_IN_FLIGHT charges wait) for "
                                         "more charges to go out in the same statement (group commit, "
                                         "control_plane.usage.writes); 0: only those that arrive while a write "
                                         "is in flight")
    hidden_question_tenants: str = Field(default="", description="GET /v1/requests and the console's Requests page: "
                                         "the tenants (comma list; `*`: every tenant) whose policy hides their "
                                         "questions — listed as hidden, never matched by the text filter")
    graph_search_candidates: int = Field(default=20_000, ge=1, le=1_000_000, description="GET /graph/search: at "
                                         "most this many entities of the key's tenants are compared with the query")
