"""Shared library of the MoE Sovereign Fleet, cut by audience into layers (docs/architecture.md#libs):

- `contracts`: the messages, topics and headers every service speaks (imports nothing else of moe_core);
- `runtime`: what every process runs on: the bus, settings, stores, observability, Postgres, replay;
- the domains, on the runtime: `llm` (the LLM request: inference, templates, modes, guardrails, input limits),
  `access` (keys, limits, usage), `knowledge` (graph, memory, embeddings), `policy` (the policy engine's
  decisions) and `audit` (the signed record; the offline verifier is `moe_audit_verify`, importable alone);
- `stage`: the stage kit that wires a service's declaration to the runtime and the domains' resources;
- `provision`: the setup jobs' code (Kafka topics and ACLs), run by the image before the services.

Build-time generators live apart in `moe_tools`, which no service imports. `make lint` enforces the layers
(the import contracts in pyproject.toml).
"""
