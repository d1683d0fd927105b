"""Settings of a service that asks Open Policy Agent for write decisions (prefix MOE_): where OPA answers and the
word list that resolves knowledge domains (moe_core.policy.domains). The control plane and graph-ingest share it;
the planner reads the word list alone (DomainWordsSettings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parents[3]


def in_repo(path: Path) -> Path:
    """A relative path as given if it exists in the working directory, else the repository's."""
    if path.is_absolute() or path.exists() or not (REPO / path).exists():
        return path
    return REPO / path


class DomainWordsSettings(BaseSettings):
    """Where the words that resolve knowledge domains are (policy/domain-keywords.yaml): the control plane and
    graph-ingest (the domains of a change or a learned triple) and the planner (a protected domain's question is
    never trivial) read it."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    domain_keywords: Path = Field(default=Path("policy/domain-keywords.yaml"),
                                  description="The words that resolve the knowledge domains of a change, a "
                                              "learned triple or a question, and which domains are protected "
                                              "(with their approvers; sent with every policy decision)")

    def keywords_path(self) -> Path:
        return in_repo(self.domain_keywords)


class PolicyEngineSettings(DomainWordsSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    opa_url: str = Field(default="http://127.0.0.1:8181", description="Open Policy Agent's REST API: every write "
                         "decision (imports, memory ingest, learned triples in protected domains, keys, tenants, "
                         "principals) is asked there; down means nothing is written (503, or a redelivery)")
    opa_timeout_s: float = Field(default=2.0, gt=0, le=30, description="How long a policy decision may take")
    opa_token: SecretStr = Field(default=SecretStr(""), description="The bearer token OPA's API asks for (OPA run "
                                 "with --authentication=token --authorization=basic and policy/opa-system/authz.rego"
                                 "; empty: none sent)")


class DataClassSettings(BaseSettings):
    """Where the data classes are (policy/data-classes.yaml): the edge reads a key's class and checks the client's
    x-moe-data-class header against it; the planner decides each request's class and egress by it."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    data_classes_file: Path = Field(default=Path("policy/data-classes.yaml"), description="The data classes, "
                                    "the classes of tenants, keys and templates (relative: working directory, then "
                                    "the repository); a file that does not parse refuses the start")

    def classes_path(self) -> Path:
        return in_repo(self.data_classes_file)


class EgressSwitch(DataClassSettings):
    """Whether egress is decided and recorded: the planner decides it; the edge records an exact repeat it answers
    from its cache (moe_core.policy.egress.cache_record)."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    egress_enforced: bool = Field(default=True, description="Decide every request's egress before it is planned: "
                                  "a request goes only to servers, models, research, tools and the shared cache "
                                  "its data class may reach (policy/opa/egress.rego), otherwise it is refused (403 "
                                  "data_class_forbidden); a cache hit's egress record too. false: no decision and "
                                  "no egress record (a test fleet without OPA)")


class EgressSettings(PolicyEngineSettings, EgressSwitch):
    """The planner's egress decisions (moe_core.policy.egress): asked of OPA, cached per policy version."""

    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")
    egress_allow_unserved_templates: bool = Field(
        default=False, description="Start although a tenant's (higher) data class cannot use a named expert template "
        "(no permitted server for a required role): that tenant's requests with the template are refused (403 "
        "data_class_forbidden) and the start logs each. false: the planner does not start, naming tenant, template, "
        "class and role")
    egress_check_s: float = Field(default=5.0, gt=0, le=300, description="How often the policy version is read "
                                  "again (a new version empties the cached decisions); between reads a request "
                                  "costs no OPA round trip")
