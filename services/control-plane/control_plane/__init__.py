"""control-plane: the admin API and console. Keys, principals and usage, documents and memory, knowledge
imports, templates, policy and guardrails, the audit API and operations, beside the edge on its own port."""
