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

{{/* The lockgate.toml the chart mounts: lockgateToml with config.artifacts written into its
     [lockgate] table (after the table's header, or in a new one at the top); "" for none. */}}
{{- define "lockgate.toml" -}}
{{- $toml := .Values.lockgateToml -}}
{{- with .Values.config.artifacts -}}
{{- $line := printf "artifacts = %s" (toJson .) -}}
{{- $header := "(?m)^([ \\t]*\\[[ \\t]*lockgate[ \\t]*\\][ \\t]*(#.*)?)$" -}}
{{- if regexMatch $header $toml -}}
{{- $toml = regexReplaceAll $header $toml (printf "${1}\n%s" (replace "$" "$$" $line)) -}}
{{- else -}}
{{- $toml = printf "[lockgate]\n%s\n%s" $line $toml -}}
{{- end -}}
{{- end -}}
{{- $toml -}}
{{- end -}}

{{/* "true" when artifacts is set, in config or in lockgateToml. */}}
{{- define "lockgate.artifactsSet" -}}
{{- if or .Values.config.artifacts (regexMatch "(?m)^[ \\t]*artifacts[ \\t]*=" .Values.lockgateToml) -}}
true
{{- end -}}
{{- end -}}

{{/* For (list NAME URL): a one-line reason when the PostgreSQL URL reaches a server that is
     not on the pod's loopback address (host, hosts list, or host=/hostaddr= in the query)
     without sslmode=verify-full or verify-ca; "" when it is fine. */}}
{{- define "lockgate.pgTlsProblem" -}}
{{- $name := index . 0 -}}
{{- $url := index . 1 -}}
{{- $hosts := regexReplaceAll "^[a-z0-9+]+://(?:[^@/?]*@)?([^/?]*).*$" $url "${1}" -}}
{{- $loopback := true -}}
{{- range (splitList "," $hosts) -}}
{{- $host := regexReplaceAll ":[0-9]*$" . "" -}}
{{- if not (or (eq $host "") (eq $host "localhost") (eq $host "[::1]") (regexMatch "^127\\.[0-9.]+$" $host)) -}}
{{- $loopback = false -}}
{{- end -}}
{{- end -}}
{{- if regexMatch "[?&](host|hostaddr)=[^/%&]" $url -}}
{{- $loopback = false -}}
{{- end -}}
{{- $verified := and (regexMatch "[?&]sslmode=verify-(full|ca)(&|$)" $url) (not (regexMatch "[?&]sslmode=(disable|allow|prefer|require)(&|$)" $url)) -}}
{{- if and (not $loopback) (not $verified) -}}
{{- printf "%s %s reaches a PostgreSQL server off the pod's loopback address without verified TLS: the password and every row would cross the network readable, to a server nobody authenticated; add sslmode=verify-full to its query (the CA: database.caSecret, or sslrootcert=system for a public one), or set database.allowPlaintext=true if that network is as trusted as the pod" $name $url -}}
{{- end -}}
{{- end -}}

{{/* Refuse values that would make a broken or unsafe installation, each with how to fix it. */}}
{{- define "lockgate.checks" -}}
{{- $replicas := int .Values.replicaCount -}}
{{- if lt $replicas 1 -}}
{{- fail "replicaCount must be 1 or more" -}}
{{- end -}}
{{- if or (regexMatch "^[a-z0-9+]+://[^/@]*:[^/@]*@" .Values.database.url) (regexMatch "[?&]password=" .Values.database.url) -}}
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
{{- $owner := .Values.database.owner.url -}}
{{- if or (regexMatch "^[a-z0-9+]+://[^/@]*:[^/@]*@" $owner) (regexMatch "[?&]password=" $owner) -}}
{{- fail "database.owner.url holds a password: give the URL without it (postgresql://lockgate@HOST:5432/DB) and the password in a Secret (database.owner.password.existingSecret)" -}}
{{- end -}}
{{- if and $owner (not (include "lockgate.postgres" .)) -}}
{{- fail "database.owner.url is set but database.url is not PostgreSQL: give database.url, the runtime role's URL (postgresql://lockgate_app@HOST:5432/DB), which lockgate up connects as" -}}
{{- end -}}
{{- if and (or .Values.database.owner.password.existingSecret .Values.database.owner.password.value) (not $owner) -}}
{{- fail "database.owner.password is set but database.owner.url is empty: give the owner role's URL (postgresql://lockgate@HOST:5432/DB), or drop the password" -}}
{{- end -}}
{{- if not .Values.database.allowPlaintext -}}
{{- with .Values.database.url -}}
{{- with (include "lockgate.pgTlsProblem" (list "database.url" .)) -}}
{{- fail . -}}
{{- end -}}
{{- end -}}
{{- with $owner -}}
{{- with (include "lockgate.pgTlsProblem" (list "database.owner.url" .)) -}}
{{- fail . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.config.artifacts (regexMatch "(?m)^[ \\t]*artifacts[ \\t]*=" .Values.lockgateToml) -}}
{{- fail "artifacts is set twice, in config.artifacts and in lockgateToml: keep one" -}}
{{- end -}}
{{- if and (eq (include "lockgate.executor" .) "dask") (not (include "lockgate.artifactsSet" .)) -}}
{{- fail "the dask executor needs config.artifacts: a table a task returns is written on its worker and read on the next task's, so the default folder on lockgate's state volume cannot work; set config.artifacts=s3://BUCKET/PREFIX (the workers need S3 credentials) or a folder on a ReadWriteMany volume mounted at that path on lockgate's pods and every worker (dask-values.yaml)" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.tlsSecret) (not .Values.ingress.tlsTerminatedUpstream) -}}
{{- fail "ingress.tlsSecret is empty: the ingress would serve passwords and session cookies over plain HTTP; give the Secret with its certificate (or, when a load balancer in front of the ingress ends TLS, set ingress.tlsTerminatedUpstream=true)" -}}
{{- end -}}
{{- end -}}

{{/* The environment of lockgate's containers: (dict "root" $ "owner" BOOL); owner: the init
     container, which connects as database.owner when it is given (the bootstrap upgrades the
     schema), else as the runtime role like the server. */}}
{{- define "lockgate.env" -}}
{{- $root := .root -}}
{{- $db := $root.Values.database -}}
{{- $asOwner := and .owner $db.owner.url -}}
- name: HOME
  value: /tmp
{{- if $asOwner }}
- name: LOCKGATE_DB_URL
  value: {{ $db.owner.url | quote }}
{{- if or $db.owner.password.existingSecret $db.owner.password.value }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lockgate.secretName" $root) $db.owner.password.existingSecret }}
      key: {{ ternary $db.owner.password.key "OWNER_PGPASSWORD" (not (empty $db.owner.password.existingSecret)) }}
{{- end }}
{{- else }}
{{- if $db.urlSecret.name }}
- name: LOCKGATE_DB_URL
  valueFrom:
    secretKeyRef:
      name: {{ $db.urlSecret.name }}
      key: {{ $db.urlSecret.key }}
{{- if not $db.allowPlaintext }}
# libpq's sslmode when the URL (which the chart cannot read) names none
- name: PGSSLMODE
  value: verify-full
{{- end }}
{{- else if $db.url }}
- name: LOCKGATE_DB_URL
  value: {{ $db.url | quote }}
{{- end }}
{{- if or $db.password.existingSecret $db.password.value }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lockgate.secretName" $root) $db.password.existingSecret }}
      key: {{ ternary $db.password.key "PGPASSWORD" (not (empty $db.password.existingSecret)) }}
{{- end }}
{{- end }}
{{- if $db.caSecret }}
- name: PGSSLROOTCERT
  value: /etc/lockgate/postgres-ca/ca.crt
{{- end }}
{{- if or $root.Values.keys.existingSecret $root.Values.keys.value }}
- name: LOCKGATE_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ default (include "lockgate.secretName" $root) $root.Values.keys.existingSecret }}
      key: {{ ternary $root.Values.keys.key "LOCKGATE_KEYS" (not (empty $root.Values.keys.existingSecret)) }}
{{- end }}
{{- with (include "lockgate.executor" $root) }}
- name: LOCKGATE_EXECUTOR
  value: {{ . | quote }}
{{- end }}
{{- if $root.Values.dask.address }}
- name: LOCKGATE_DASK_ADDRESS
  value: {{ $root.Values.dask.address | quote }}
{{- if $root.Values.dask.allowPlaintext }}
- name: LOCKGATE_DASK_ALLOW_PLAINTEXT
  value: "1"
{{- end }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The volumes every lockgate container mounts. */}}
{{- define "lockgate.volumeMounts" -}}
- name: state
  mountPath: {{ printf "%s/.lockgate" .Values.projectDir }}
- name: tmp
  mountPath: /tmp
{{- if include "lockgate.toml" . }}
- name: config
  mountPath: {{ printf "%s/lockgate.toml" .Values.projectDir }}
  subPath: lockgate.toml
  readOnly: true
{{- end }}
{{- if .Values.database.caSecret }}
- name: postgres-ca
  mountPath: /etc/lockgate/postgres-ca
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}
