"""What a stage run ran with, stamped on every message it publishes (`Envelope.versions`, the lineage facet
`moe_versions`): the digest of the service's configuration, of each prompt template it sent a model and the
version of the policies of each policy decision it asked (`policy_used`, recorded by moe_core.policy itself).

- The **configuration digest** is the SHA-256 of the service's settings as canonical JSON (`config_view`: every
  setting by name, sorted; secrets — `SecretStr` — appear as `***`, and a password in a URL is replaced by `***`), so
  two replicas with the same settings give the same digest and changing any setting changes it.
- A **prompt template digest** is the SHA-256 of the system part of a prompt as sent (the template rendered with
  its settings: categories, tools, limits), never of the user's question or history. The stage says where it built
  one (`prompt_used("merger.judge", system)`); the run collects them (moe_core.runtime.run_clock.RUN_PROMPTS) and the
  bus
  stamps them with the configuration digest on what the run publishes.

Anyone holding the texts can recompute a digest (`digest(text)`): docs/codex.md, "Config and prompt digests"."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from moe_core.contracts.envelope import RunVersions
from moe_core.runtime.run_clock import RUN_POLICIES, RUN_PROMPTS

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]+@")


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def prompt_used(name: str, text: str) -> None:
    """Record that the current stage run sent the prompt template `name` with this (system) text. Outside a stage
    run (a test calling a core function, a command) it records nothing."""
    prompts = RUN_PROMPTS.get()
    if prompts is not None:
        prompts[name] = digest(text)


def run_prompts() -> dict[str, str]:
    return dict(sorted((RUN_PROMPTS.get() or {}).items()))


def policy_used(path: str, version: str) -> None:
    """Record that the current stage run asked the policy decision `path` under policies of this version (every
    decision of moe_core.policy.PolicyClient does). Outside a stage run it records nothing."""
    policies = RUN_POLICIES.get()
    if policies is not None:
        policies[path] = version


def run_policies() -> dict[str, str]:
    return dict(sorted((RUN_POLICIES.get() or {}).items()))


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1:***@", value)
    if isinstance(value, dict):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def config_view(settings: BaseModel) -> dict[str, Any]:
    """The settings the digest covers, as JSON values: a secret is `***` whatever it holds (set or not), a password
    in a URL is replaced by `***`."""
    dumped = settings.model_dump(mode="json")
    for name, value in settings:
        if isinstance(value, SecretStr | SecretBytes):
            dumped[name] = "***"
    return {name: _masked(value) for name, value in sorted(dumped.items())}


def config_digest(settings: BaseModel) -> str:
    return digest(json.dumps(config_view(settings), sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def versions(service: str, config: str) -> RunVersions:
    """The versions of the current stage run, for a message it publishes."""
    return RunVersions(service=service, config=config, prompts=run_prompts(), policies=run_policies())
