# OPA's own API authorization, loaded beside the decision policies when OPA runs with
# `--authentication=token --authorization=basic` (the chart's opa.auth): only the holders of the token in OPA's
# environment (MOE_OPA_TOKEN, from the Secret opa.auth.existingSecret) may read or change anything; the kubelet's
# probes reach /health and the monitoring stack /metrics without it. Without this, any pod that reaches OPA
# could replace a policy (PUT /v1/policies) or read what it decided.
package system.authz

import rego.v1

default allow := false

allow if {
	input.method == "GET"
	input.path in [["health"], ["metrics"]]
}

allow if {
	token := opa.runtime().env.MOE_OPA_TOKEN
	count(token) >= 32
	input.identity == token
}
