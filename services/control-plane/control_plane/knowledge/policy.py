"""The knowledge-import policy (policy as code, policy/knowledge-imports.yaml): which domains need
approval, by how many admin keys, and the largest bundle. Loaded and validated when the control plane starts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_POLICY = Path("policy/knowledge-imports.yaml")
REPO = Path(__file__).resolve().parents[4]


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    knowledge_policy: Path = Field(default=DEFAULT_POLICY, description="The knowledge-import policy file (YAML); "
                                   "a relative path is looked up in the working directory, then the repository")

    def policy_path(self) -> Path:
        path = self.knowledge_policy
        if path.is_absolute() or path.exists() or not (REPO / path).exists():
            return path
        return REPO / path


class DomainRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_required: bool = True
    approvers: int = Field(default=1, ge=1, le=10, description="Distinct admin keys, not the importer's")


class ImportPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    max_bundle_bytes: int = Field(ge=1024, le=256 * 1024 * 1024)
    max_entities: int = Field(ge=1, le=1_000_000)
    max_relations: int = Field(ge=1, le=1_000_000)
    default: DomainRule = Field(default_factory=DomainRule)
    domains: dict[str, DomainRule] = Field(default_factory=dict)
    digest: str = Field(default="", description="sha256 of the policy file (set by load_policy)")

    def rule(self, domain: str) -> DomainRule:
        return self.domains.get(domain, self.default)

    def approvals_required(self, domains: list[str]) -> int:
        """0 when no domain of the bundle needs approval, else the largest number of approvers among them."""
        rules = [self.rule(d) for d in domains] or [self.default]
        return max((r.approvers for r in rules if r.approval_required), default=0)


class PolicyError(ValueError):
    """The policy file is missing or not valid."""


def load_policy(path: Path) -> ImportPolicy:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read the knowledge-import policy {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(raw)
        policy = ImportPolicy.model_validate(data if isinstance(data, dict) else {"version": None})
    except (yaml.YAMLError, ValidationError) as exc:
        raise PolicyError(f"the knowledge-import policy {path} is not valid: {exc}") from None
    return policy.model_copy(update={"digest": "sha256:" + hashlib.sha256(raw).hexdigest()})
