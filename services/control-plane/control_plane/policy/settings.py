"""Settings of the control plane's policy decisions (prefix MOE_): where Open Policy Agent answers and the word
list that resolves knowledge domains (moe_core.policy.settings, shared with graph-ingest), and the policy files
OPA watches."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from moe_core.policy.settings import PolicyEngineSettings, in_repo


class PolicySettings(PolicyEngineSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_", extra="ignore")

    opa_policy_dir: Path = Field(default=Path("policy/opa"), description="The Rego files OPA watches (read to "
                                 "tell whether the files on disk are the ones in force; empty: not compared)")
    opa_binary: str = Field(default="", description="An `opa` binary the control plane may run (`opa check`) to "
                            "report why files on disk are not in force (empty: the report names the files only)")

    def policy_dir(self) -> Path | None:
        return in_repo(self.opa_policy_dir) if str(self.opa_policy_dir) not in ("", ".") else None
