# Learning from text: POST /v1/memory/ingest (the control plane), the triples graph-ingest learns and the
# classifications the gap-healer makes of unknown terms (moe_core.policy.learned); deleting a tenant document.
# input.action: "memory.ingest" | "graph.learned_triple" | "memory.document_delete"
# input.resource (memory.ingest): {"chars": n, "domains": [domains the server resolved from the text]}
# input.resource (graph.learned_triple): {"domains": [domains of the triple's entities and relation, and of what
#   it was learned from: the memory-ingest text's, or the gap's question and the classification's label]}
# input.resource (memory.document_delete): {"uploaded_by": the principal who uploaded the document (null: not
#   recorded, an upload from before it was), "domain": the document's}
package moe.memory

import data.moe.domains
import data.moe.scopes

max_ingest_chars := 20000

touched := {d | some d in input.resource.domains} & domains.protected

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

# allowed: what may be written; quarantine: which protected domains send the learned triples to review
decision := {
	"allow": count(deny) == 0,
	"deny": deny,
	"quarantine": count(touched) > 0,
	"protected_domains": sort(touched),
}
