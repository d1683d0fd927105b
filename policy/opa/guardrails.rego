# Guardrail rule changes (four-eyes): who may propose a simulated candidate rule file, approve it (it is then put
# in force) or reject it. control_plane.policy.proposals_api asks; docs/security.md describes the whole path.
# input.action: "guardrails.propose" | "guardrails.approve" | "guardrails.reject"
# input.resource: {"tenants": [the tenants whose rules the candidate changes], "proposer": principal id (approve,
#   reject), "status": "pending" | ...}
package moe.guardrails

import data.moe.scopes

deny contains scopes.deny_reason("insufficient_role", 403, "guardrail rule changes need an admin key") if {
	not scopes.is_admin
}

# A tenant admin changes its own tenants' rules only; the fleet operator any tenant's.
deny contains scopes.deny_reason("tenant_forbidden", 403, msg) if {
	scopes.is_admin
	not scopes.is_operator
	some tenant in input.resource.tenants
	not scopes.member(tenant)
	msg := sprintf("the principal may not change the guardrail rules of tenant %q", [tenant])
}

deny contains scopes.deny_reason("no_tenants", 400, "a change of guardrail rules names the tenants it changes") if {
	count(input.resource.tenants) == 0
}

# Four-eyes: whoever proposed a candidate does not approve it, with any of their keys.
deny contains scopes.deny_reason("self_approval", 403, msg) if {
	input.action == "guardrails.approve"
	input.principal.id == input.resource.proposer
	msg := sprintf("the proposer may not approve their own guardrail change, with any of their keys (four-eyes rule: principal %s proposed it)", [input.resource.proposer])
}

# An approval is a person's: a service account's key never approves (an admin makes service accounts at will).
deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	input.action == "guardrails.approve"
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("a guardrail change is approved by a person: a service account's key may not approve it (principal %s); approve signed in as a person", [input.principal.id])
}

decision := {"allow": count(deny) == 0, "deny": deny} if {
	input.action in {"guardrails.propose", "guardrails.approve", "guardrails.reject"}
}
