# The knowledge domains the fleet protects, and how many distinct approvers a change in each needs. They are data,
# not Rego: policy/domain-keywords.yaml (`protected`, `approvers` per domain), sent by the services with every
# decision as input.domain_rules ({"<domain>": {"protected": bool, "approvers": n}}). The domains of a change are
# resolved by the control plane from its entities, the graph and that file, never taken from the importer's labels
# (docs/security.md, "Policy decisions").
#
# Fail-safe: a domain the input does not describe (or an input without domain_rules at all) is protected and needs
# `protected_approvers`: missing data never means fewer approvals.
package moe.domains

# Distinct approvers (principals, none of them the importer) of a change in a domain not protected.
default_approvers := 1

# ... and in a protected domain whose rule gives no number (four-eyes).
protected_approvers := 2

rules := object.get(input, "domain_rules", {})

rule(domain) := rules[domain] if is_object(rules[domain])

described(domain) if rule(domain)

# Learned triples (graph-ingest), memory ingest and tenant documents touching these domains wait for review.
is_protected(domain) if not described(domain)

is_protected(domain) if object.get(rule(domain), "protected", true) != false

# An uploader's own label (memory.document_upload) adds review only when the rules mark it protected, or when no
# rules arrived at all: a free label ("general", "notes") the operator never described is not a domain.
label_protected(label) if {
	described(label)
	is_protected(label)
}

label_protected(_) if not is_object(object.get(input, "domain_rules", null))

given(domain) := n if {
	n := rule(domain).approvers
	is_number(n)
	n >= 0
}

required(domain) := given(domain)

required(domain) := protected_approvers if {
	not given(domain)
	is_protected(domain)
}

required(domain) := default_approvers if {
	not given(domain)
	not is_protected(domain)
}
