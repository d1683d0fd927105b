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
