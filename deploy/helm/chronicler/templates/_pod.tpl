{{/*
The pod parts, shared by the standalone Deployment and by a parent chart's pod (sidecar mode).

Public named templates (a parent chart that depends on this chart, with chronicler.mode
sidecar, includes them with the subchart's scope, `.Subcharts.chronicler`):

  chronicler.container       one container (a list item): image, args, env, ports, probes,
                             resources, securityContext, volumeMounts
  chronicler.nativeSidecar   the same container for initContainers: with restartPolicy Always
                             (a Kubernetes 1.29+ native sidecar: started before the app's
                             containers, stopped after them)
  chronicler.volumes         the pod volumes it mounts (list items): config, rules, secrets, tmp
  chronicler.podAnnotations  checksum/chronicler-config (and podAnnotations), so a configuration
                             change rolls the pods

Example (README: Sidecar mode):

  spec:
    template:
      metadata:
        annotations:
          {{- include "chronicler.podAnnotations" .Subcharts.chronicler | nindent 10 }}
      spec:
        containers:
          - name: legacy-app
            ...
          {{- include "chronicler.container" .Subcharts.chronicler | nindent 10 }}
        volumes:
          {{- include "chronicler.volumes" .Subcharts.chronicler | nindent 10 }}
*/}}

{{- define "chronicler.container" -}}
{{- include "chronicler.validate" . -}}
- name: {{ include "chronicler.name" . }}
  image: {{ include "chronicler.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - run
    - --config
    - {{ include "chronicler.configPath" . }}
    {{- with .Values.only }}
    - --only
    - {{ . }}
    {{- end }}
  {{- $env := include "chronicler.secretEnv" . }}
  {{- if or $env .Values.extraEnv }}
  env:
    {{- with $env }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.httpPort }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: chronicler-config
      mountPath: {{ include "chronicler.configPath" . }}
      # One file at the image's default path; a change rolls the pods (checksum annotation).
      subPath: chronicler.yaml
      readOnly: true
    - name: chronicler-rules
      # No subPath: Kubernetes updates the files in place and Chronicler reloads them.
      mountPath: {{ include "chronicler.rulesDir" . }}
      readOnly: true
    {{- range $part := include "chronicler.secretVolumeParts" . | fromYamlArray }}
    - name: chronicler-secret-{{ $part }}
      mountPath: {{ include "chronicler.secretsDir" $ }}/{{ $part }}
      readOnly: true
    {{- end }}
    - name: chronicler-tmp
      mountPath: /tmp
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{- define "chronicler.nativeSidecar" -}}
{{- $c := first (include "chronicler.container" . | fromYamlArray) -}}
{{- $_ := set $c "restartPolicy" "Always" -}}
{{- list $c | toYaml -}}
{{- end -}}

{{/* The `helm test` container: chronicler check with the pod's configuration, secrets and rules. */}}
{{- define "chronicler.checkContainer" -}}
{{- $c := first (include "chronicler.container" . | fromYamlArray) -}}
{{- $args := list "check" "--config" (include "chronicler.configPath" .) -}}
{{- with .Values.only }}{{ $args = concat $args (list "--only" .) }}{{ end -}}
{{- $_ := set $c "name" "check" -}}
{{- $_ := set $c "args" $args -}}
{{- $_ := unset $c "livenessProbe" -}}
{{- $_ := unset $c "readinessProbe" -}}
{{- $_ := unset $c "ports" -}}
{{- list $c | toYaml -}}
{{- end -}}

{{- define "chronicler.teardownContainer" -}}
{{- $c := first (include "chronicler.container" . | fromYamlArray) -}}
{{- $_ := set $c "name" "teardown" -}}
{{- $_ := set $c "args" (list "teardown" "--config" (include "chronicler.configPath" .) "--yes") -}}
{{- $_ := unset $c "livenessProbe" -}}
{{- $_ := unset $c "readinessProbe" -}}
{{- $_ := unset $c "ports" -}}
{{- list $c | toYaml -}}
{{- end -}}

{{- define "chronicler.volumes" -}}
- name: chronicler-config
  configMap:
    name: {{ include "chronicler.configMapName" . }}
- name: chronicler-rules
  configMap:
    name: {{ include "chronicler.rulesConfigMapName" . }}
{{- $s := .Values.secrets }}
{{- $files := include "chronicler.secretFiles" . }}
{{- if and $files $s.postgres.existingSecret }}
- name: chronicler-secret-postgres
  secret:
    secretName: {{ $s.postgres.existingSecret }}
    defaultMode: {{ $s.defaultMode }}
    items:
      - key: {{ $s.postgres.passwordKey }}
        path: password
{{- end }}
{{- if and $files $s.store.existingSecret }}
- name: chronicler-secret-store
  secret:
    secretName: {{ $s.store.existingSecret }}
    defaultMode: {{ $s.defaultMode }}
    items:
      - key: {{ $s.store.passwordKey }}
        path: password
{{- end }}
{{- if and $files $s.kafkaSasl.existingSecret }}
- name: chronicler-secret-kafka-sasl
  secret:
    secretName: {{ $s.kafkaSasl.existingSecret }}
    defaultMode: {{ $s.defaultMode }}
    items:
      {{- with $s.kafkaSasl.passwordKey }}
      - key: {{ . }}
        path: password
      {{- end }}
      {{- with $s.kafkaSasl.tokenKey }}
      - key: {{ . }}
        path: token
      {{- end }}
{{- end }}
{{- if $s.kafkaTls.existingSecret }}
- name: chronicler-secret-kafka-tls
  secret:
    secretName: {{ $s.kafkaTls.existingSecret }}
    defaultMode: {{ $s.defaultMode }}
    items:
      {{- with $s.kafkaTls.caKey }}
      - key: {{ . }}
        path: ca.crt
      {{- end }}
      {{- with $s.kafkaTls.certKey }}
      - key: {{ . }}
        path: tls.crt
      {{- end }}
      {{- with $s.kafkaTls.keyKey }}
      - key: {{ . }}
        path: tls.key
      {{- end }}
{{- end }}
- name: chronicler-tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "chronicler.podAnnotations" -}}
checksum/chronicler-config: {{ include "chronicler.configFile" . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The secret volumes mounted (a YAML list of parts: postgres, store, kafka-sasl, kafka-tls). */}}
{{- define "chronicler.secretVolumeParts" -}}
{{- $s := .Values.secrets -}}
{{- $parts := list -}}
{{- if include "chronicler.secretFiles" . -}}
{{- if $s.postgres.existingSecret }}{{ $parts = append $parts "postgres" }}{{ end -}}
{{- if $s.store.existingSecret }}{{ $parts = append $parts "store" }}{{ end -}}
{{- if $s.kafkaSasl.existingSecret }}{{ $parts = append $parts "kafka-sasl" }}{{ end -}}
{{- end -}}
{{- if $s.kafkaTls.existingSecret }}{{ $parts = append $parts "kafka-tls" }}{{ end -}}
{{- toYaml $parts -}}
{{- end -}}

{{/* With secrets.mountAs env: the CHRONICLER_* variables from secretKeyRef (list items). */}}
{{- define "chronicler.secretEnv" -}}
{{- $s := .Values.secrets -}}
{{- if eq $s.mountAs "env" -}}
{{- with $s.postgres.existingSecret }}
- name: CHRONICLER_POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $s.postgres.passwordKey }}
{{- end }}
{{- with $s.store.existingSecret }}
- name: CHRONICLER_STORE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $s.store.passwordKey }}
{{- end }}
{{- if $s.kafkaSasl.existingSecret }}
{{- with $s.kafkaSasl.passwordKey }}
- name: CHRONICLER_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $s.kafkaSasl.existingSecret }}
      key: {{ . }}
{{- end }}
{{- with $s.kafkaSasl.tokenKey }}
- name: CHRONICLER_KAFKA_SASL_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $s.kafkaSasl.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
{{- end -}}
