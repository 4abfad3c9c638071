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

{{/*
The iocflow configuration as TOML. Helm's own toToml would print every number as a float
(YAML values arrive as float64) and iocflow's integer keys refuse "4096.0", so values are
written here: whole numbers as integers, strings JSON-quoted (a valid TOML basic string), nested
maps as inline tables, lists of maps as arrays of tables.
*/}}
{{- define "iocflow.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "iocflow.tomlValue" -}}
{{- $v := . -}}
{{- if kindIs "float64" $v -}}
{{- if eq $v (floor $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "bool" $v) -}}{{ $v }}
{{- else if kindIs "string" $v -}}{{ toJson $v }}
{{- else if kindIs "slice" $v -}}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "iocflow.tomlValue" $e }}{{ end }}]
{{- else if kindIs "map" $v -}}{ {{- range $i, $k := keys $v | sortAlpha }}{{ if $i }}, {{ end }}{{ include "iocflow.tomlKey" $k }} = {{ include "iocflow.tomlValue" (get $v $k) }}{{ end -}} }
{{- else -}}{{ fail (printf "config: cannot write %v (%s) as TOML" $v (kindOf $v)) }}
{{- end -}}
{{- end -}}

{{- define "iocflow.toml" -}}
{{- $c := . -}}
{{- range $k := keys $c | sortAlpha }}
{{- $v := get $c $k }}
{{- if not (or (kindIs "map" $v) (kindIs "slice" $v)) }}
{{ include "iocflow.tomlKey" $k }} = {{ include "iocflow.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k := keys $c | sortAlpha }}
{{- $v := get $c $k }}
{{- if kindIs "map" $v }}

[{{ include "iocflow.tomlKey" $k }}]
{{- range $kk := keys $v | sortAlpha }}
{{ include "iocflow.tomlKey" $kk }} = {{ include "iocflow.tomlValue" (get $v $kk) }}
{{- end }}
{{- else if kindIs "slice" $v }}
{{- range $item := $v }}

[[{{ include "iocflow.tomlKey" $k }}]]
{{- range $kk := keys $item | sortAlpha }}
{{ include "iocflow.tomlKey" $kk }} = {{ include "iocflow.tomlValue" (get $item $kk) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
