# Learning from text: POST /v1/memory/ingest (the control plane), the triples graph-ingest learns and the
# classifications the gap-healer makes of unknown terms (moe_core.policy.learned); deleting a tenant document.
# input.action: "memory.ingest" | "graph.learned_triple" | "memory.document_delete" | "memory.document_upload" |
#   "memory.document_approve" | "memory.document_reject"
# input.resource (memory.ingest): {"chars": n, "domains": [domains the server resolved from the text]}
# input.resource (graph.learned_triple): {"domains": [domains of the triple's entities and relation, and of what
#   it was learned from: the memory-ingest text's, or the gap's question and the classification's label]}
# input.resource (memory.document_delete): {"uploaded_by": the principal who uploaded the document (null: not
#   recorded, an upload from before it was), "domain": the document's}
# input.resource (memory.document_upload): {"domain": the uploader's label, "domains": [domains the server resolved
#   from the text, as for memory.ingest]}
# input.resource (memory.document_approve, memory.document_reject): {"uploaded_by": the uploader's principal,
#   "approvers": [principals who approved it so far], "approvals_required": n, "domains": [its protected domains]}
package moe.memory

import data.moe.domains
import data.moe.scopes

max_ingest_chars := 20000

touched := {d | some d in input.resource.domains; domains.is_protected(d)}

# Any key learns into its own tenants (a user key too: the Claude Code memory hook, deploy/claude-code); what it
# learns passes the same extraction, conflict and blast-radius checks, and a protected domain waits for review.
deny contains scopes.deny_reason("tenant_forbidden", 403, msg) if {
	input.action == "memory.ingest"
	not scopes.member(input.tenant)
	msg := sprintf("the principal may not write to tenant %q", [input.tenant])
}

deny contains scopes.deny_reason("too_large", 413, msg) if {
	input.action == "memory.ingest"
	input.resource.chars > max_ingest_chars
	msg := sprintf("at most %d characters are learned at once", [max_ingest_chars])
}

# A tenant's document is deleted by the principal who uploaded it, or by an admin of the tenant (a clinician's key
# does not delete the knowledge owner's documents); one of no recorded uploader, by an admin only.
deny contains scopes.deny_reason("not_document_owner", 403, msg) if {
	input.action == "memory.document_delete"
	not scopes.admin_of(input.tenant)
	not uploaded_by_the_principal
	msg := sprintf("only the principal who uploaded this document (%s) or an admin of tenant %q may delete it", [object.get(input.resource, "uploaded_by", null), input.tenant])
}

uploaded_by_the_principal if input.resource.uploaded_by == input.principal.id

# A tenant document in a protected domain is held for review (status pending_review, not searched for answers) until
# as many distinct principals approve it as a knowledge import of its domains needs (domains.rego). Its domains are
# the ones the server resolves from the text (as memory.ingest's) and the uploader's label: a label can add review,
# never remove it (a medical text labelled "general" is still medical).
document_protected contains d if {
	some d in input.resource.domains
	domains.is_protected(d)
}

document_protected contains input.resource.domain if {
	is_string(input.resource.domain)
	domains.label_protected(input.resource.domain)
}

document_approvals := max({1} | {domains.required(d) | some d in document_protected}) if count(document_protected) > 0

document_approvals := 0 if count(document_protected) == 0

review_actions := {"memory.document_approve", "memory.document_reject"}

deny contains scopes.deny_reason("tenant_forbidden", 403, msg) if {
	input.action == "memory.document_upload"
	not scopes.member(input.tenant)
	msg := sprintf("the principal may not write to tenant %q", [input.tenant])
}

deny contains scopes.deny_reason("insufficient_role", 403, msg) if {
	input.action in review_actions
	not scopes.admin_of(input.tenant)
	msg := sprintf("reviewing a held document needs an admin key of tenant %q", [input.tenant])
}

# The uploader does not review its own document, with any of its keys; a document of no recorded uploader is
# reviewed by nobody (fails closed: its uploader cannot be told apart from the reviewer).
deny contains scopes.deny_reason("self_approval", 403, msg) if {
	input.action in review_actions
	not uploader_is_another_principal
	msg := sprintf("the uploader may not approve or reject its own document, with any of its keys (four-eyes rule: principal %s uploaded it)", [object.get(input.resource, "uploaded_by", null)])
}

uploader_is_another_principal if {
	is_string(input.resource.uploaded_by)
	input.resource.uploaded_by != ""
	input.resource.uploaded_by != input.principal.id
}

# An approval is a person's (knowledge.rego): a service account never approves, whatever the number needed.
deny contains scopes.deny_reason("approver_not_a_person", 403, msg) if {
	input.action == "memory.document_approve"
	not input.principal.kind == "person" # fails closed: a principal of no stated kind is no person
	msg := sprintf("this document is approved by people: a service account's key may not approve it (principal %s); approve signed in as a person", [input.principal.id])
}

deny contains scopes.deny_reason("duplicate_approval", 403, msg) if {
	input.action == "memory.document_approve"
	input.principal.id in {a | some a in input.resource.approvers}
	msg := "this principal has approved this document already (with this or another of its keys); another principal must approve"
}

# allowed: what may be written; quarantine: which protected domains send the learned triples to review
decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	"quarantine": count(touched) > 0,
	"protected_domains": sort(touched),
} if not input.action == "memory.document_upload"

# review: the document is held until approvals_required distinct principals approve it
decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	"review": count(document_protected) > 0,
	"approvals_required": document_approvals,
	"protected_domains": sort(document_protected),
} if input.action == "memory.document_upload"

# Many decisions in one request (graph-ingest: the triples of one answer, moe_core.policy.opa.PolicyClient.decide_many):
# input.batch holds whole inputs, each decided exactly as if it were asked alone; its position ("0", "1", ...) names
# its decision.
batch := {sprintf("%d", [i]): d | some i, item in input.batch; d := decision with input as item}
