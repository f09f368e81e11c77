{{/*
Names, labels and the computed configuration file.

Every template here takes the chronicler chart's own scope: `.` inside this chart, or
`.Subcharts.chronicler` from a parent chart that depends on it (sidecar mode). Do not pass a
parent's root scope: its .Values are the parent's.
*/}}

{{/* The chart name (or nameOverride). */}}
{{- define "chronicler.name" -}}
{{- default "chronicler" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: fullnameOverride, else <release>-<name> (the release name when it already contains the name). */}}
{{- define "chronicler.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "chronicler.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods (stable across upgrades). */}}
{{- define "chronicler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chronicler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "chronicler.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "chronicler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: cdc
app.kubernetes.io/part-of: chronicler
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The ServiceAccount's name. */}}
{{- define "chronicler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "chronicler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap with chronicler.yaml. */}}
{{- define "chronicler.configMapName" -}}
{{- printf "%s-config" (include "chronicler.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ConfigMap with the rule files (rendered, or rules.existingConfigMap). */}}
{{- define "chronicler.rulesConfigMapName" -}}
{{- if .Values.rules.existingConfigMap -}}
{{- .Values.rules.existingConfigMap -}}
{{- else -}}
{{- printf "%s-rules" (include "chronicler.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "chronicler.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The paths the chart mounts. The README's "Files in the container" table lists them; the chart
tests assert the mounts against it.
*/}}
{{- define "chronicler.configPath" -}}/etc/chronicler/chronicler.yaml{{- end -}}
{{- define "chronicler.rulesDir" -}}/etc/chronicler/rules{{- end -}}
{{- define "chronicler.secretsDir" -}}/etc/chronicler/secrets{{- end -}}

{{/* Whether a secret is mounted as a file: mountAs file, or always for TLS material. */}}
{{- define "chronicler.secretFiles" -}}
{{- if eq .Values.secrets.mountAs "file" -}}true{{- end -}}
{{- end -}}

{{/*
The configuration file: values.config, plus the keys the chart computes (these win over the
same keys in values.config): rules.paths, http.addr, and with secrets.mountAs file the *_file
keys of the mounted secrets. Kafka TLS files are always mounted, and kafka.tls.enabled defaults
to true with them.
*/}}
{{- define "chronicler.configFile" -}}
{{- $cfg := deepCopy (default (dict) .Values.config) -}}
{{- $secrets := .Values.secrets -}}
{{- $dir := include "chronicler.secretsDir" . -}}
{{- $files := include "chronicler.secretFiles" . -}}
{{- $rules := default (dict) (get $cfg "rules") -}}
{{- $_ := set $rules "paths" (list (include "chronicler.rulesDir" .)) -}}
{{- $_ := set $cfg "rules" $rules -}}
{{- $http := default (dict) (get $cfg "http") -}}
{{- $_ := set $http "addr" (printf ":%d" (int .Values.httpPort)) -}}
{{- $_ := set $cfg "http" $http -}}
{{- if and $files $secrets.postgres.existingSecret -}}
{{- $pg := default (dict) (get $cfg "postgres") -}}
{{- $_ := set $pg "password_file" (printf "%s/postgres/password" $dir) -}}
{{- $_ := set $cfg "postgres" $pg -}}
{{- end -}}
{{- if and $files $secrets.store.existingSecret -}}
{{- $store := default (dict) (get $cfg "store") -}}
{{- $_ := set $store "password_file" (printf "%s/store/password" $dir) -}}
{{- $_ := set $cfg "store" $store -}}
{{- end -}}
{{- $sasl := $secrets.kafkaSasl -}}
{{- $tls := $secrets.kafkaTls -}}
{{- if or (and $files $sasl.existingSecret (or $sasl.passwordKey $sasl.tokenKey)) $tls.existingSecret -}}
{{- $kafka := default (dict) (get $cfg "kafka") -}}
{{- if and $files $sasl.existingSecret (or $sasl.passwordKey $sasl.tokenKey) -}}
{{- $s := default (dict) (get $kafka "sasl") -}}
{{- if $sasl.passwordKey -}}
{{- $_ := set $s "password_file" (printf "%s/kafka-sasl/password" $dir) -}}
{{- end -}}
{{- if $sasl.tokenKey -}}
{{- $_ := set $s "token_file" (printf "%s/kafka-sasl/token" $dir) -}}
{{- end -}}
{{- $_ := set $kafka "sasl" $s -}}
{{- end -}}
{{- if $tls.existingSecret -}}
{{- $t := default (dict) (get $kafka "tls") -}}
{{- if not (hasKey $t "enabled") -}}
{{- $_ := set $t "enabled" true -}}
{{- end -}}
{{- if $tls.caKey -}}
{{- $_ := set $t "ca_file" (printf "%s/kafka-tls/ca.crt" $dir) -}}
{{- end -}}
{{- if $tls.certKey -}}
{{- $_ := set $t "cert_file" (printf "%s/kafka-tls/tls.crt" $dir) -}}
{{- end -}}
{{- if $tls.keyKey -}}
{{- $_ := set $t "key_file" (printf "%s/kafka-tls/tls.key" $dir) -}}
{{- end -}}
{{- $_ := set $kafka "tls" $t -}}
{{- end -}}
{{- $_ := set $cfg "kafka" $kafka -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Checks that fail the render with a message naming the value to fix. */}}
{{- define "chronicler.validate" -}}
{{- $tls := .Values.secrets.kafkaTls -}}
{{- if and $tls.existingSecret (not (or $tls.caKey $tls.certKey $tls.keyKey)) -}}
{{- fail (printf "secrets.kafkaTls.existingSecret is %q but caKey, certKey and keyKey are all empty: name at least one key of that Secret" $tls.existingSecret) -}}
{{- end -}}
{{- if ne (empty $tls.certKey) (empty $tls.keyKey) -}}
{{- fail "secrets.kafkaTls: certKey and keyKey go together (mutual TLS needs both the client certificate and its key): set both or neither" -}}
{{- end -}}
{{- $sasl := .Values.secrets.kafkaSasl -}}
{{- if and $sasl.existingSecret (not (or $sasl.passwordKey $sasl.tokenKey)) -}}
{{- fail (printf "secrets.kafkaSasl.existingSecret is %q but passwordKey and tokenKey are both empty: name the key of the password or of the token" $sasl.existingSecret) -}}
{{- end -}}
{{- if and .Values.rules.existingConfigMap .Values.rules.files -}}
{{- fail "rules: set either rules.files or rules.existingConfigMap, not both" -}}
{{- end -}}
{{- /* Values with which Chronicler cannot start fail here, at install, not in a crash-looping pod. */ -}}
{{- if not (or .Values.rules.files .Values.rules.existingConfigMap) -}}
{{- fail "rules: no rule files: set rules.files (file name -> content) or rules.existingConfigMap; Chronicler does not start without rules" -}}
{{- end -}}
{{- if and (ne .Values.only "publish") (not (dig "postgres" "tables" list .Values.config)) -}}
{{- fail "config.postgres.tables is empty: list the tables to capture (schema.table), e.g. --set 'config.postgres.tables={public.customers}'" -}}
{{- end -}}
{{- if and .Values.podMonitor.enabled (not .Values.podMonitor.podSelector) -}}
{{- fail "podMonitor.enabled needs podMonitor.podSelector: the labels of your application's pods, which run Chronicler as a sidecar" -}}
{{- end -}}
{{- end -}}
