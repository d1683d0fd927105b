"""Policy: the policy engine's API and gate for admin actions (`api`, `gate`), guardrail rules (`guardrails_api`),
changes simulated before two people apply them (guardrail rules: `simulation_api`, `proposals_api`; the egress
policy: `egress_simulation`, `egress_changes_api`) and settings."""
