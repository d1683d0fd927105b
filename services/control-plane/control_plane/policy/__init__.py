"""Policy: the policy engine's API and gate for admin actions (`api`, `gate`), guardrail rules (`guardrails_api`) and
settings."""
