package moe.domains_test

import data.moe.domains

# The rules the services send from the shipped policy/domain-keywords.yaml (input.domain_rules; checked equal to
# moe_core.policy.domains.Keywords.rules() by tests/unit/moe_core/policy/test_opa_policies.py).
shipped := {
	"general": {"protected": false},
	"legal": {"approvers": 2, "protected": true},
	"math": {"approvers": 0, "protected": false},
	"medical": {"approvers": 2, "protected": true},
	"science": {"protected": false},
	"technical": {"protected": false},
}

with_rules(inp) := object.union(inp, {"domain_rules": shipped})

test_the_shipped_rules_keep_medical_and_legal_four_eyes if {
	domains.required("medical") == 2 with input as with_rules({})
	domains.required("legal") == 2 with input as with_rules({})
	domains.required("math") == 0 with input as with_rules({})
	domains.required("technical") == 1 with input as with_rules({})
	domains.is_protected("medical") with input as with_rules({})
	not domains.is_protected("technical") with input as with_rules({})
}

test_a_domain_marked_in_the_data_is_protected_without_editing_rego if {
	rules := object.union(object.remove(shipped, ["medical"]), {"finance": {"protected": true}, "medical": {"protected": false}})
	domains.is_protected("finance") with input as {"domain_rules": rules}
	domains.required("finance") == 2 with input as {"domain_rules": rules}
	not domains.is_protected("medical") with input as {"domain_rules": rules}
	domains.required("medical") == 1 with input as {"domain_rules": rules}
	domains.required("finance") == 3 with input as {"domain_rules": {"finance": {"protected": true, "approvers": 3}}}
}

test_a_domain_not_described_or_rules_missing_fail_safe if {
	domains.is_protected("finance") with input as with_rules({})
	domains.required("finance") == 2 with input as with_rules({})
	domains.is_protected("medical") with input as {}
	domains.required("medical") == 2 with input as {}
	domains.required("math") == 2 with input as {}
	domains.required("medical") == 2 with input as {"domain_rules": {"medical": {}}}
	domains.is_protected("medical") with input as {"domain_rules": {"medical": {"approvers": "two"}}}
	domains.required("medical") == 2 with input as {"domain_rules": {"medical": {"approvers": "two"}}}
	domains.required("medical") == 2 with input as {"domain_rules": {"medical": {"approvers": -1}}}
	domains.is_protected("medical") with input as {"domain_rules": "medical"}
}

test_an_uploaders_label_adds_review_only_where_the_rules_protect_it if {
	domains.label_protected("medical") with input as with_rules({})
	not domains.label_protected("notes") with input as with_rules({})
	domains.label_protected("notes") with input as {}
}
