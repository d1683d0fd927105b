"""Settings of the control plane's policy decisions (prefix MOE_): where Open Policy Agent answers, the
policy files it watches, and the word list that resolves knowledge domains."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO = Path(__file__).resolve().parents[3]


def in_repo(path: Path) -> Path:
    """A relative path as given if it exists in the working directory, else the repository's."""
    if path.is_absolute() or path.exists() or not (REPO / path).exists():
        return path
    return REPO / path


class PolicySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    opa_url: str = Field(default="http://127.0.0.1:8181", description="Open Policy Agent's REST API: every write "
                         "decision (imports, memory ingest, keys, tenants) is asked there; down means 503")
    opa_timeout_s: float = Field(default=2.0, gt=0, le=30, description="How long a policy decision may take")
    opa_policy_dir: Path = Field(default=Path("policy/opa"), description="The Rego files OPA watches (read to "
                                 "tell whether the files on disk are the ones in force; empty: not compared)")
    opa_binary: str = Field(default="", description="An `opa` binary the control plane may run (`opa check`) to "
                            "report why files on disk are not in force (empty: the report names the files only)")
    domain_keywords: Path = Field(default=Path("policy/domain-keywords.yaml"),
                                  description="The words that resolve a knowledge change's domains")

    def policy_dir(self) -> Path | None:
        return in_repo(self.opa_policy_dir) if str(self.opa_policy_dir) not in ("", ".") else None

    def keywords_path(self) -> Path:
        return in_repo(self.domain_keywords)
