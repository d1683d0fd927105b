{{- /*
The backup tool's pod (python -m control_plane.ops.backup, docs/operations.md#backup-and-restore), shared by the
backup CronJob and the restore Job: the fleet image (it carries pg_dump and pg_restore) or backup.image, the
release's settings, the owner's DSN from backup.existingSecret, the broker's admin, the backups claim at /backups.
Called with (dict "root" $ "args" "<the shell command>").
*/ -}}
{{- define "moe-fleet.backupPod" -}}
{{- $root := .root }}
{{- $b := $root.Values.backup }}
{{- $fullname := include "moe-fleet.fullname" $root }}
{{- $img := $b.image | default dict -}}
automountServiceAccountToken: false
restartPolicy: {{ .restart | default "OnFailure" }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: backup
    image: "{{ $img.repository | default $root.Values.image.repository }}:{{ $img.tag | default $root.Values.image.tag | default $root.Chart.AppVersion }}"
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command: ["/bin/sh", "-ec"]
    args:
      - {{ .args }}
    envFrom:
      - configMapRef:
          name: {{ $fullname }}-env
    env:
      - {name: MOE_SERVICE_NAME, value: backup}
      - {name: MOE_BACKUP_PG_BIN_DIR, value: {{ $b.pgBinDir | quote }}}
      - {name: MOE_BACKUP_CHROMA_URL, value: {{ $b.chromaUrl | quote }}}
      - {name: MOE_BACKUP_NEO4J_URL, value: {{ $root.Values.neo4j.url | quote }}}
      - {name: MOE_BACKUP_NEO4J_USER, value: {{ $root.Values.neo4j.user | default "" | quote }}}
      - name: MOE_BACKUP_POSTGRES_DSN
        valueFrom: {secretKeyRef: {name: {{ $b.existingSecret }}, key: postgres-dsn}}
      {{- with $root.Values.neo4j.existingSecret }}
      - name: MOE_BACKUP_NEO4J_PASSWORD
        valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $root.Values.neo4j.passwordKey | default "password" }}}}
      {{- end }}
      {{- with $root.Values.redis.existingSecret }}
      - name: MOE_BACKUP_REDIS_URL
        valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $root.Values.redis.urlKey }}}}
      {{- end }}
      {{- if $root.Values.kafka.auth.enabled }}
      - {name: MOE_KAFKA_USERNAME, value: {{ $root.Values.kafka.auth.adminUser | quote }}}
      - name: MOE_KAFKA_PASSWORD
        valueFrom: {secretKeyRef: {name: {{ $root.Values.kafka.auth.existingSecret }}, key: {{ $root.Values.kafka.auth.adminKey }}}}
      {{- end }}
      {{- include "moe-fleet.caEnv" $root | nindent 6 }}
    volumeMounts:
      - {name: backups, mountPath: /backups}
      - {name: tmp, mountPath: /tmp}
      {{- include "moe-fleet.caMount" $root | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    resources:
      requests: {cpu: 100m, memory: 256Mi}
      limits: {memory: 1Gi}
volumes:
  - name: backups
    persistentVolumeClaim:
      claimName: {{ $b.existingClaim | default (printf "%s-backups" $fullname) }}
  - {name: tmp, emptyDir: {}}
  {{- include "moe-fleet.caVolume" $root | nindent 2 }}
{{- end }}
