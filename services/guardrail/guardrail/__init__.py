"""guardrail: the tenants' output rules applied to a draft before it is an answer."""
