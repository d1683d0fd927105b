{{- /*
The audit record's anchors (docs/deploy.md#6-the-audit-anchors): the timestamp authority, the witness, the
checkpoint file, the keyring and the public key the control plane verifies with. Required unless
audit.allowUnanchored, which the compliance report fails (MOE_AUDIT_ALLOW_UNANCHORED).
*/ -}}
{{- define "moe-fleet.auditRequired" -}}
{{- $a := .Values.audit -}}
{{- if not $a.allowUnanchored -}}
{{- $missing := list -}}
{{- if not $a.tsaUrl }}{{ $missing = append $missing "audit.tsaUrl (the checkpoints' RFC 3161 timestamp authority)" }}{{ end -}}
{{- if not $a.tsaChain }}{{ $missing = append $missing "audit.tsaChain (its certificate chain, PEM)" }}{{ end -}}
{{- if not $a.witnessUrl }}{{ $missing = append $missing "audit.witnessUrl (the witness that cosigns the checkpoints)" }}{{ end -}}
{{- if not $a.witnessKey }}{{ $missing = append $missing "audit.witnessKey (its vkey)" }}{{ end -}}
{{- if $missing -}}
{{- fail (printf "the audit record needs its anchors (docs/deploy.md#6-the-audit-anchors): set %s; or set audit.allowUnanchored=true to run without them on purpose (the compliance report then fails the anchoring rules)" (join ", " $missing)) -}}
{{- end -}}
{{- end -}}
{{- if not $a.publicKey -}}
{{- fail "audit.publicKey is required: codex-lineage's public key (PEM; openssl pkey -pubout -in <signing key>), which the control plane verifies the audit record with" -}}
{{- end -}}
{{- end -}}

{{- define "moe-fleet.auditAnchorsName" -}}
{{- printf "%s-audit-anchors" (include "moe-fleet.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* codex-lineage's anchors: what it timestamps, cosigns, publishes to and checks retirements against */ -}}
{{- define "moe-fleet.auditSignerEnv" -}}
{{- $a := .Values.audit }}
- name: MOE_AUDIT_TSA_URL
  value: {{ $a.tsaUrl | default "" | quote }}
- name: MOE_AUDIT_WITNESS_URL  # the witness that cosigns the checkpoints (c2sp.org/tlog-witness)
  value: {{ $a.witnessUrl | default "" | quote }}
{{- if $a.witnessKey }}
- name: MOE_AUDIT_WITNESS_KEY  # its vkey (public)
  value: /etc/moe/audit/witness.vkey
{{- end }}
{{- if $a.tsaChain }}
- name: MOE_AUDIT_TSA_CHAIN
  value: /etc/moe/audit/tsa-chain.pem
{{- end }}
{{- if $a.keyring }}
- name: MOE_AUDIT_KEYRING
  value: /etc/moe/audit/audit-keyring.json
{{- end }}
- name: MOE_AUDIT_CHECKPOINT_FILE  # the append-only outlet beside the topic (audit.checkpointFile's volume)
  value: /var/lib/moe-audit/checkpoints.jsonl
- name: MOE_AUDIT_ALLOW_UNANCHORED
  value: {{ $a.allowUnanchored | default false | toString | quote }}
{{- end -}}

{{- /* the control plane's: the audit API verifies with these, never with the database's copies */ -}}
{{- define "moe-fleet.auditVerifierEnv" -}}
{{- $a := .Values.audit }}
- name: MOE_AUDIT_PUBLIC_KEY
  value: /etc/moe/audit/audit-public-key.pem
{{- if $a.keyring }}
- name: MOE_AUDIT_KEYRING
  value: /etc/moe/audit/audit-keyring.json
{{- end }}
{{- if $a.tsaChain }}
- name: MOE_AUDIT_TSA_CHAIN
  value: /etc/moe/audit/tsa-chain.pem
{{- end }}
{{- if $a.witnessKey }}
- name: MOE_AUDIT_WITNESS_KEY
  value: /etc/moe/audit/witness.vkey
{{- end }}
{{- end -}}
