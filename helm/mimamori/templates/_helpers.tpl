{{/* Names, labels and the pieces every Mimamori pod shares. */}}

{{- define "mimamori.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mimamori.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mimamori.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "web"). */}}
{{- define "mimamori.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mimamori.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component's resources: (dict "root" $ "component" "web"). */}}
{{- define "mimamori.labels" -}}
helm.sh/chart: {{ include "mimamori.chart" .root }}
{{ include "mimamori.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: mimamori
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mimamori.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mimamori.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mimamori.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "mimamori.secretName" -}}
{{- required "secrets.existingSecret: name the Secret that holds DATABASE_URL, REDIS_URL, SECRET_KEY and ENCRYPTION_KEY" .Values.secrets.existingSecret }}
{{- end }}

{{- define "mimamori.redisHost" -}}
{{- printf "%s-redis" (include "mimamori.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Environment of every Mimamori container: settings, and secrets by reference only. */}}
{{- define "mimamori.env" -}}
- name: MIMAMORI_ENV
  value: production
- name: MIMAMORI_INSTANCE_PATH
  value: /var/lib/mimamori/instance
- name: PUBLIC_BASE_URL
  value: {{ required "config.publicBaseUrl: the public https URL LINE and Twilio reach" .Values.config.publicBaseUrl | trimSuffix "/" | quote }}
- name: LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- with .Values.config.lineApiBaseUrl }}
- name: LINE_API_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.lineDataApiBaseUrl }}
- name: LINE_DATA_API_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.config.twilioApiBaseUrl }}
- name: TWILIO_API_BASE_URL
  value: {{ . | quote }}
{{- end }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mimamori.secretName" . }}
      key: {{ .Values.secrets.keys.databaseUrl }}
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mimamori.secretName" . }}
      key: {{ .Values.secrets.keys.secretKey }}
- name: ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mimamori.secretName" . }}
      key: {{ .Values.secrets.keys.encryptionKey }}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mimamori.secretName" . }}
      key: {{ .Values.redis.passwordKey }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "mimamori.redisHost" .) | quote }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mimamori.secretName" . }}
      key: {{ .Values.secrets.keys.redisUrl }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Writable scratch space: the root filesystem is read-only. */}}
{{- define "mimamori.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratchSizeLimit }}
- name: instance
  emptyDir:
    sizeLimit: {{ .Values.scratchSizeLimit }}
{{- end }}

{{- define "mimamori.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: instance
  mountPath: /var/lib/mimamori/instance
{{- end }}

{{/* Pod annotations shared by the Deployments: (dict "root" $ "component" $values). */}}
{{- define "mimamori.podAnnotations" -}}
{{- $root := .root }}
{{- if $root.Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $root.Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with $root.Values.secrets.revision }}
mimamori/secret-revision: {{ . | quote }}
{{- end }}
{{- with $root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- with .component.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Scheduling of one component: (dict "root" $ "component" $values "name" "web"). */}}
{{- define "mimamori.scheduling" -}}
{{- $root := .root }}
{{- with (default $root.Values.nodeSelector .component.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default $root.Values.tolerations .component.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default $root.Values.affinity .component.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- tpl (toYaml .) $root | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* The parts of a Mimamori pod spec every component shares. */}}
{{- define "mimamori.podCommon" -}}
serviceAccountName: {{ include "mimamori.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
