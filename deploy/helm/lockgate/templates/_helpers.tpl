{{/* Names and labels. */}}
{{- define "lockgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lockgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "lockgate.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "lockgate.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lockgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lockgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lockgate.labels" -}}
{{ include "lockgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "lockgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lockgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lockgate.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The chart's own Secret: holds the values given inline (keys.value, ...). */}}
{{- define "lockgate.secretName" -}}
{{- include "lockgate.fullname" . -}}
{{- end -}}

{{/* "true" when the metadata database is PostgreSQL (a URL given, or one from a Secret). */}}
{{- define "lockgate.postgres" -}}
{{- if or .Values.database.urlSecret.name (hasPrefix "postgresql" .Values.database.url) (hasPrefix "postgres://" .Values.database.url) -}}
true
{{- end -}}
{{- end -}}

{{- define "lockgate.executor" -}}
{{- if .Values.executor -}}
{{- .Values.executor -}}
{{- else if .Values.dask.address -}}
dask
{{- end -}}
{{- end -}}

{{- define "lockgate.scheme" -}}
{{- if .Values.server.tlsSecret -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* Refuse values that would make a broken or unsafe installation, each with how to fix it. */}}
{{- define "lockgate.checks" -}}
{{- $replicas := int .Values.replicaCount -}}
{{- if lt $replicas 1 -}}
{{- fail "replicaCount must be 1 or more" -}}
{{- end -}}
{{- if regexMatch "^[a-z0-9+]+://[^/@]*:[^/@]*@" .Values.database.url -}}
{{- fail "database.url holds a password: give the URL without it (postgresql://USER@HOST:5432/DB) and the password in a Secret (database.password.existingSecret)" -}}
{{- end -}}
{{- if and .Values.database.url (not (regexMatch "^(sqlite|postgresql|postgres)(\\+[a-z0-9]+)?://" .Values.database.url)) -}}
{{- fail (printf "database.url %q is neither postgresql://... nor sqlite:///...: give a PostgreSQL URL, or leave it empty for SQLite on the state volume" .Values.database.url) -}}
{{- end -}}
{{- if and (gt $replicas 1) (not (include "lockgate.postgres" .)) -}}
{{- fail (printf "replicaCount %d needs PostgreSQL: SQLite is one process's file; set database.url=postgresql://USER@HOST:5432/DB (password in database.password.existingSecret) or use replicaCount=1" $replicas) -}}
{{- end -}}
{{- if and (gt $replicas 1) .Values.persistence.enabled (not .Values.persistence.existingClaim) (not (has "ReadWriteMany" .Values.persistence.accessModes)) -}}
{{- fail (printf "replicaCount %d needs a state volume every replica mounts: set persistence.accessModes={ReadWriteMany} (a storage class that offers it) or persistence.existingClaim" $replicas) -}}
{{- end -}}
{{- if and (eq (include "lockgate.executor" .) "dask") (not .Values.dask.address) -}}
{{- fail "executor is dask but dask.address is empty: give the Dask scheduler's address (tcp://RELEASE-scheduler:8786)" -}}
{{- end -}}
{{- if and (eq (include "lockgate.executor" .) "dask") (not (or .Values.keys.existingSecret .Values.keys.value)) -}}
{{- fail "the dask executor needs the keyring in a Secret: the workers have no state volume, and the tasks they run need the same keys as lockgate (policy decisions and audit records, tokenize, encrypt); set keys.existingSecret (LOCKGATE_KEYS=k1:BASE64KEY) and give the workers the same Secret (dask-values.yaml)" -}}
{{- end -}}
{{- if and (hasPrefix "tcp://" .Values.dask.address) (not .Values.dask.allowPlaintext) -}}
{{- fail "dask.address is tcp://: task inputs, results and logs would cross the network unencrypted; with the official Dask chart set dask.allowPlaintext=true (its pods then admit only lockgate's and their own, see dask.networkPolicy), or use tls:// with [dask] tls_* in lockgateToml" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (include "lockgate.postgres" .) (not .Values.networkPolicy.postgres.to) -}}
{{- fail "networkPolicy.postgres.to is empty but the database is PostgreSQL: name its pods or addresses (e.g. {ipBlock: {cidr: 10.0.0.5/32}}) so the egress policy lets lockgate reach it, or set networkPolicy.enabled=false" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.tlsSecret) (not .Values.ingress.tlsTerminatedUpstream) -}}
{{- fail "ingress.tlsSecret is empty: the ingress would serve passwords and session cookies over plain HTTP; give the Secret with its certificate (or, when a load balancer in front of the ingress ends TLS, set ingress.tlsTerminatedUpstream=true)" -}}
{{- end -}}
{{- end -}}

{{/* The environment of lockgate's containers (bootstrap and server). */}}
{{- define "lockgate.env" -}}
- name: HOME
  value: /tmp
{{- if .Values.database.urlSecret.name }}
- name: LOCKGATE_DB_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.urlSecret.name }}
      key: {{ .Values.database.urlSecret.key }}
{{- else if .Values.database.url }}
- name: LOCKGATE_DB_URL
  value: {{ .Values.database.url | quote }}
{{- end }}
{{- if or .Values.database.password.existingSecret .Values.database.password.value }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lockgate.secretName" .) .Values.database.password.existingSecret }}
      key: {{ ternary .Values.database.password.key "PGPASSWORD" (not (empty .Values.database.password.existingSecret)) }}
{{- end }}
{{- if or .Values.keys.existingSecret .Values.keys.value }}
- name: LOCKGATE_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lockgate.secretName" .) .Values.keys.existingSecret }}
      key: {{ ternary .Values.keys.key "LOCKGATE_KEYS" (not (empty .Values.keys.existingSecret)) }}
{{- end }}
{{- with (include "lockgate.executor" .) }}
- name: LOCKGATE_EXECUTOR
  value: {{ . | quote }}
{{- end }}
{{- if .Values.dask.address }}
- name: LOCKGATE_DASK_ADDRESS
  value: {{ .Values.dask.address | quote }}
{{- if .Values.dask.allowPlaintext }}
- name: LOCKGATE_DASK_ALLOW_PLAINTEXT
  value: "1"
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The volumes every lockgate container mounts. */}}
{{- define "lockgate.volumeMounts" -}}
- name: state
  mountPath: {{ printf "%s/.lockgate" .Values.projectDir }}
- name: tmp
  mountPath: /tmp
{{- if .Values.lockgateToml }}
- name: config
  mountPath: {{ printf "%s/lockgate.toml" .Values.projectDir }}
  subPath: lockgate.toml
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
