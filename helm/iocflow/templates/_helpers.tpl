{{/* The chart's names and labels. */}}
{{- define "iocflow.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "iocflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "iocflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iocflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "iocflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "iocflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "iocflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "iocflow.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The metrics port, from config.metrics.listen ("host:port"). */}}
{{- define "iocflow.metricsPort" -}}
{{- $listen := default "0.0.0.0:9464" .Values.config.metrics.listen -}}
{{- last (splitList ":" $listen) -}}
{{- end -}}

{{/* The environment of an iocflow container: the log level and the Secrets for "${env:NAME}". */}}
{{- define "iocflow.env" -}}
- name: RUST_LOG
  value: info
{{- range .Values.kafka.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
{{- end }}
{{- end -}}

{{/* Kafka credentials and TLS files, mounted where config.kafka.client's "${file:…}" find them. */}}
{{- define "iocflow.kafkaMounts" -}}
{{- if .Values.kafka.credentials.existingSecret }}
- name: kafka-credentials
  mountPath: /var/run/secrets/iocflow
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /var/run/secrets/iocflow-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "iocflow.kafkaVolumes" -}}
{{- with .Values.kafka.credentials.existingSecret }}
- name: kafka-credentials
  secret:
    secretName: {{ . }}
    defaultMode: 0400
{{- end }}
{{- with .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0400
{{- end }}
{{- end -}}

{{/* Replicas beyond the partition count would sit idle: refuse them. */}}
{{- define "iocflow.checkReplicas" -}}
{{- $partitions := int (default 6 .Values.config.kafka.partitions) -}}
{{- if gt (int .Values.replicaCount) $partitions -}}
{{- fail (printf "replicaCount (%d) exceeds config.kafka.partitions (%d): the extra replicas would get no partition" (int .Values.replicaCount) $partitions) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) $partitions) -}}
{{- fail (printf "autoscaling.maxReplicas (%d) exceeds config.kafka.partitions (%d)" (int .Values.autoscaling.maxReplicas) $partitions) -}}
{{- end -}}
{{- end -}}
