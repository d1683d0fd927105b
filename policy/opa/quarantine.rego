# Approving a quarantined triple (POST /graph/quarantine/{id}/approve, the control plane): how many distinct
# principals must approve it before it is written, and who may not. Rejecting stays one admin's decision (a
# refusal writes nothing). The item's domains are the ones the server resolved when it was held (graph-ingest:
# its entities, the graph and the text's words), never a label.
# input.action: "graph.quarantine_approve"
# input.resource: {"domains": [...], "approvers": [principals who approved it so far],
#                  "submitted_by": the principal whose memory-ingest text it was learned from, or whose question
#                                  raised the ontology gap a held classification came from (OntologyGap.asked_by),
#                                  or ""}
package moe.quarantine

import data.moe.domains
import data.moe.scopes

# As many principals as a knowledge import of the same domains needs (domains.rego), and at least one.
approvals_required := max({1} | {domains.required(d) | some d in input.resource.domains})

deny contains scopes.deny_reason("insufficient_role", 403, "approving a quarantined triple needs an admin key") if {
	not scopes.is_admin
}

deny contains scopes.deny_reason("own_submission", 403, msg) if {
	input.resource.submitted_by != ""
	input.resource.submitted_by == input.principal.id
	msg := "the principal who submitted the text (or asked the question) it was learned from may not approve it"
}

# An approval is a person's (knowledge.rego): a service account never approves, whatever the number needed.
deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("this item is approved by people: a service account's key may not approve it (principal %s); approve signed in as a person", [input.principal.id])
}

deny contains scopes.deny_reason("already_approved", 409, msg) if {
	input.principal.id in {a | some a in input.resource.approvers}
	msg := "this principal has approved the item already: another key of the same principal does not count twice"
}

decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	"approvals_required": approvals_required,
}
