"""Settings of the control plane's policy decisions (prefix MOE_): where Open Policy Agent answers and the word
list that resolves knowledge domains (moe_core.policy.settings, shared with graph-ingest), the policy files
OPA watches, how often the approved egress policy is checked at OPA, and how long its push or a guardrail decision
may be waited for; and the signed policy bundle OPA loads from the control plane (when a signing key is set)."""

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
    egress_reconcile_s: float = Field(default=10.0, gt=0, le=3600, description="How often the control plane "
                                      "compares OPA's egress module (package moe.egress) with the approved egress "
                                      "policy change in force and puts that back when they differ (also at start)")
    egress_apply_wait_s: float = Field(default=30.0, gt=0, le=600, description="How long an approval waits while "
                                       "another push of the fleet's egress policy (an approval's or the reconcile's) "
                                       "holds the apply lock, before it answers 503 apply_busy naming the holder; a "
                                       "reconcile round holds the lock at most this long")
    guardrails_apply_wait_s: float = Field(default=30.0, gt=0, le=600, description="How long a guardrail proposal's "
                                           "approval or rejection waits while another decision of the fleet's holds "
                                           "the apply lock (from its commit to the rules file's write), before it "
                                           "answers 503 apply_busy naming the holder, nothing decided")

    opa_system_policy_dir: Path = Field(default=Path("policy/opa-system"), description="OPA's own API "
                                        "authorization (package system.authz), put in the signed bundle beside the "
                                        "decision policies (empty: none)")
    opa_bundle_signing_key: str = Field(default="", description="An RSA private key (PEM file, 0600) the control "
                                        "plane signs OPA's policy bundle with, served at GET /v1/opa/bundles/"
                                        "policies.tar.gz (OPA polls it and holds only the public key); empty: no "
                                        "bundle, OPA loads the files and an approved egress change is put with its API")
    opa_bundle_wait_s: float = Field(default=30.0, gt=0, le=600, description="How long an approval waits for OPA "
                                     "to name the new bundle's revision in its answers before it answers 503 "
                                     "policy_not_pushed (the change stays approved and in force in the bundle)")

    def system_dir(self) -> Path | None:
        return in_repo(self.opa_system_policy_dir) if str(self.opa_system_policy_dir) not in ("", ".") else None

    def policy_dir(self) -> Path | None:
        return in_repo(self.opa_policy_dir) if str(self.opa_policy_dir) not in ("", ".") else None
