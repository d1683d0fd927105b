{{/* The protected domains' file (templates/domain-keywords.yaml) in a pod: its env entry, mount and volume. */}}
{{- define "moe-fleet.domainKeywordsEnv" -}}
- name: MOE_DOMAIN_KEYWORDS  # templates/domain-keywords.yaml (policy.domainKeywords)
  value: /etc/moe/domain-keywords/domain-keywords.yaml
{{- end }}

{{- define "moe-fleet.domainKeywordsMount" -}}
- {name: domain-keywords, mountPath: /etc/moe/domain-keywords, readOnly: true}
{{- end }}

{{- define "moe-fleet.domainKeywordsVolume" -}}
- name: domain-keywords  # the domains' words, protected and approvers (templates/domain-keywords.yaml)
  configMap: {name: {{ include "moe-fleet.fullname" . }}-domain-keywords}
{{- end }}
