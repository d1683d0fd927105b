# The knowledge domains the fleet protects, and how many distinct approvers a change in each needs.
# A domain not listed needs `default_approvers`. The domains of a change are resolved by the control plane
# from its entities, the graph and policy/domain-keywords.yaml, never taken from the importer's labels
# (docs/security.md, "Policy decisions").
package moe.domains

# Distinct approvers (principals, none of them the importer) before a knowledge import is written.
approvers := {
	"medical": 2,
	"legal": 2,
	"math": 0, # definitions and identities of mathematics are applied on import (still audited)
}

default_approvers := 1

# Learned triples (graph-ingest) and memory ingest touching these domains wait in the quarantine.
protected := {"medical", "legal"}

required(domain) := approvers[domain]

required(domain) := default_approvers if not approvers[domain]
