{{/* Resource name prefix: the release name (or fullnameOverride); a component is <prefix>-<component>. */}}
{{- define "moe-fleet.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "moe-fleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: moe-fleet
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "name" $name). */}}
{{- define "moe-fleet.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* Full topic name for a short name: <namespace>.<name>.v1 (mirrors moe_core.contracts.topics). */}}
{{- define "moe-fleet.topic" -}}
{{- printf "%s.%s.v1" .root.Values.kafka.topicNamespace .name -}}
{{- end -}}

{{/* Consumer group of a component (mirrors FleetSettings.group_id). */}}
{{- define "moe-fleet.consumerGroup" -}}
{{- if eq .root.Values.kafka.topicNamespace "moe" -}}
{{- .name -}}
{{- else -}}
{{- printf "%s.%s" .name .root.Values.kafka.topicNamespace -}}
{{- end -}}
{{- end -}}

{{- define "moe-fleet.localLlmUrl" -}}
{{- if .Values.localLlm.url -}}
{{- .Values.localLlm.url -}}
{{- else -}}
{{- printf "http://%s-llm:%v" (include "moe-fleet.fullname" .) .Values.components.llm.port -}}
{{- end -}}
{{- end -}}

{{/* caBundle: is one named? Its file's path in a container. */}}
{{- define "moe-fleet.caFile" -}}
{{- if or .Values.caBundle.secretName .Values.caBundle.configMapName -}}
{{- printf "%s/%s" (.Values.caBundle.mountPath | trimSuffix "/") .Values.caBundle.key -}}
{{- end -}}
{{- end -}}

{{/* The CA Kafka's TLS is verified against: the bundle (caBundle.kafka) or kafka.auth.caFile. */}}
{{- define "moe-fleet.kafkaCaFile" -}}
{{- $ca := include "moe-fleet.caFile" . -}}
{{- if and $ca .Values.caBundle.kafka -}}{{ $ca }}{{- else -}}{{ .Values.kafka.auth.caFile }}{{- end -}}
{{- end -}}

{{/* The stores' TLS settings pointing at the bundle (env entries); Kafka's is in the env ConfigMap. */}}
{{- define "moe-fleet.caEnv" -}}
{{- $ca := include "moe-fleet.caFile" . -}}
{{- if $ca }}
{{- if .Values.caBundle.postgres }}
- {name: PGSSLROOTCERT, value: {{ $ca | quote }}}
- {name: PGSSLMODE, value: verify-full}
{{- end }}
{{- if .Values.caBundle.redis }}
- {name: MOE_REDIS_CA_FILE, value: {{ $ca | quote }}}
{{- end }}
{{- if .Values.caBundle.neo4j }}
- {name: MOE_NEO4J_CA_FILE, value: {{ $ca | quote }}}
{{- end }}
{{- end }}
{{- end -}}

{{/* The bundle's volume mount and volume (empty without one). */}}
{{- define "moe-fleet.caMount" -}}
{{- if include "moe-fleet.caFile" . }}
- {name: ca-bundle, mountPath: {{ .Values.caBundle.mountPath | quote }}, readOnly: true}
{{- end }}
{{- end -}}

{{- define "moe-fleet.caVolume" -}}
{{- $b := .Values.caBundle -}}
{{- if and $b.secretName $b.configMapName }}
{{- fail "caBundle: name a Secret or a ConfigMap, not both" }}
{{- end }}
{{- if $b.secretName }}
- name: ca-bundle
  secret: {secretName: {{ $b.secretName }}, items: [{key: {{ $b.key }}, path: {{ $b.key }}}]}
{{- else if $b.configMapName }}
- name: ca-bundle
  configMap: {name: {{ $b.configMapName }}, items: [{key: {{ $b.key }}, path: {{ $b.key }}}]}
{{- end }}
{{- end -}}

{{/* The pod's scheduling (call with (dict "root" $ "c" $component "name" $name)): the component's own keys, else
the release's; topology spread over the component's own pods. */}}
{{- define "moe-fleet.scheduling" -}}
{{- $v := .root.Values -}}
{{- with (.c.priorityClassName | default $v.priorityClassName) }}
priorityClassName: {{ . }}
{{- end }}
{{- with (.c.nodeSelector | default $v.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.affinity | default $v.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.c.tolerations | default $v.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $ts := $v.topologySpread -}}
{{- if $ts.enabled }}
topologySpreadConstraints:
  {{- range $ts.topologyKeys }}
  - maxSkew: {{ $ts.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $ts.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "moe-fleet.selectorLabels" (dict "root" $.root "name" $.name) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}
