# Egress policy changes (four-eyes): who may propose a simulated candidate egress module (policy/opa/egress.rego's
# package), approve it (it is then pushed to OPA and in force for every tenant) or reject it.
# control_plane.policy.egress_changes asks; docs/security.md describes the whole path.
# input.action: "egress_policy.propose" | "egress_policy.approve" | "egress_policy.reject"
# input.resource: {"proposer": principal id (approve, reject), "status": "simulated" | "pending" | ...}
package moe.policy_changes

import data.moe.scopes

# Where a data class may go is the fleet's, not one tenant's: only the fleet operator changes it.
deny contains scopes.deny_reason("insufficient_role", 403, "egress policy changes need the fleet operator's key") if {
	not scopes.is_operator
}

# Four-eyes: whoever proposed a candidate does not approve it, with any of their keys.
deny contains scopes.deny_reason("self_approval", 403, msg) if {
	input.action == "egress_policy.approve"
	input.principal.id == input.resource.proposer
	msg := sprintf("the proposer may not approve their own egress policy change, with any of their keys (four-eyes rule: principal %s proposed it)", [input.resource.proposer])
}

# An approval is a person's: a service account's key never approves.
deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	input.action == "egress_policy.approve"
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("an egress policy change is approved by a person: a service account's key may not approve it (principal %s)", [input.principal.id])
}

decision := {"allow": count(deny) == 0, "deny": deny} if {
	input.action in {"egress_policy.propose", "egress_policy.approve", "egress_policy.reject"}
}
