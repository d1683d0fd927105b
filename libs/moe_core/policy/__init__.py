"""Policy decisions by Open Policy Agent over the Rego policies in policy/opa (docs/security.md)."""

from moe_core.policy.opa import Decision, PolicyClient, PolicyUnavailable, PolicyVersion, version_of

__all__ = ["Decision", "PolicyClient", "PolicyUnavailable", "PolicyVersion", "version_of"]
