{{/*
Names, labels, images and the values every template shares.
*/}}

{{- define "mindzoo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<chart> unless the release name already contains the chart name. */}}
{{- define "mindzoo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mindzoo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of one component's objects: (dict "ctx" $ "component" "mlflow"). */}}
{{- define "mindzoo.componentName" -}}
{{- printf "%s-%s" (include "mindzoo.fullname" .ctx | trunc 40 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "mindzoo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mindzoo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mindzoo.labels" -}}
helm.sh/chart: {{ include "mindzoo.chart" . }}
{{ include "mindzoo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mindzoo
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component: (dict "ctx" $ "component" "mlflow"). */}}
{{- define "mindzoo.componentLabels" -}}
{{ include "mindzoo.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mindzoo.componentSelectorLabels" -}}
{{ include "mindzoo.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The servers' ServiceAccount. */}}
{{- define "mindzoo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mindzoo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount pipeline tasks (and the distributed launcher) run as. */}}
{{- define "mindzoo.pipelineServiceAccountName" -}}
{{- if .Values.pipeline.serviceAccount.create -}}
{{- default (include "mindzoo.componentName" (dict "ctx" . "component" "pipeline")) .Values.pipeline.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.pipeline.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference: (dict "image" .Values.mlflow.image "global" .Values.global). */}}
{{- define "mindzoo.image" -}}
{{- $registry := .image.registry | default .global.imageRegistry -}}
{{- $repository := .image.repository -}}
{{- if $registry -}}{{- $repository = printf "%s/%s" $registry .image.repository -}}{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (toString .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "mindzoo.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
A Secret value generated on first install and kept on every upgrade: the
existing Secret's (base64) value when the cluster has one, else a fresh random
one. (dict "ctx" $ "name" "<secret>" "key" "<key>" "length" 32)
*/}}
{{- define "mindzoo.keptSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* ---------- object store ---------- */}}

{{- define "mindzoo.minio.fullname" -}}
{{- include "mindzoo.componentName" (dict "ctx" . "component" "minio") -}}
{{- end -}}

{{/*
Two sets of object-store credentials. The *root* ones (MinIO's root user, or the external
store's Secret) reach only MinIO itself, MLflow's artifact proxy and the setup Job. The
*tasks'* ones reach pipeline tasks, the launcher's workers and the object-store test pod: in
bundled mode with minio.tasksUser.enabled, the scoped user's generated Secret; otherwise the
root ones. Both Secrets use the same two key names.
*/}}
{{- define "mindzoo.s3.rootSecretName" -}}
{{- if eq .Values.objectStore.mode "external" -}}
{{- required "objectStore.external.existingSecret is required when objectStore.mode=external (no credentials are taken from values)" .Values.objectStore.external.existingSecret -}}
{{- else if .Values.minio.auth.existingSecret -}}
{{- .Values.minio.auth.existingSecret -}}
{{- else -}}
{{- include "mindzoo.minio.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* "true" when tasks run as the scoped MinIO user (rendered as a string: include returns text). */}}
{{- define "mindzoo.s3.scopedUser" -}}
{{- if and (eq .Values.objectStore.mode "minio") .Values.minio.tasksUser.enabled -}}
{{- if not .Values.setup.enabled -}}
{{- fail "minio.tasksUser.enabled needs setup.enabled: the setup Job creates the tasks' MinIO user (or set minio.tasksUser.enabled=false to give tasks the root credentials)" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{- define "mindzoo.s3.tasksSecretName" -}}
{{- if include "mindzoo.s3.scopedUser" . -}}
{{- .Values.minio.tasksUser.existingSecret | default (include "mindzoo.componentName" (dict "ctx" . "component" "minio-tasks")) -}}
{{- else -}}
{{- include "mindzoo.s3.rootSecretName" . -}}
{{- end -}}
{{- end -}}

{{- define "mindzoo.s3.accessKeyKey" -}}
{{- if eq .Values.objectStore.mode "external" -}}{{ .Values.objectStore.external.accessKeyKey }}{{- else -}}{{ .Values.minio.auth.accessKeyKey }}{{- end -}}
{{- end -}}

{{- define "mindzoo.s3.secretKeyKey" -}}
{{- if eq .Values.objectStore.mode "external" -}}{{ .Values.objectStore.external.secretKeyKey }}{{- else -}}{{ .Values.minio.auth.secretKeyKey }}{{- end -}}
{{- end -}}

{{/* S3 endpoint URL (scheme://host:port). */}}
{{- define "mindzoo.s3.endpoint" -}}
{{- if eq .Values.objectStore.mode "external" -}}
{{- required "objectStore.external.endpoint is required when objectStore.mode=external" .Values.objectStore.external.endpoint | trimSuffix "/" -}}
{{- else -}}
{{- printf "http://%s.%s.svc.%s:%v" (include "mindzoo.minio.fullname" .) .Release.Namespace .Values.clusterDomain .Values.minio.service.port -}}
{{- end -}}
{{- end -}}

{{- define "mindzoo.s3.region" -}}
{{- if eq .Values.objectStore.mode "external" -}}{{ .Values.objectStore.external.region }}{{- else -}}us-east-1{{- end -}}
{{- end -}}

{{/*
AWS_* / MLFLOW_S3_ENDPOINT_URL environment of anything that talks to the store:
(dict "ctx" $ "secret" <Secret name>).
*/}}
{{- define "mindzoo.s3.envFrom" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ include "mindzoo.s3.accessKeyKey" .ctx }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ include "mindzoo.s3.secretKeyKey" .ctx }}
- name: AWS_DEFAULT_REGION
  value: {{ include "mindzoo.s3.region" .ctx | quote }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ include "mindzoo.s3.endpoint" .ctx | quote }}
{{- end -}}

{{/* ... with the root credentials (MLflow's proxy, the setup Job). */}}
{{- define "mindzoo.s3.rootEnv" -}}
{{- include "mindzoo.s3.envFrom" (dict "ctx" . "secret" (include "mindzoo.s3.rootSecretName" .)) -}}
{{- end -}}

{{/* ... with the tasks' credentials (the object-store test pod proves what tasks can do). */}}
{{- define "mindzoo.s3.tasksEnv" -}}
{{- include "mindzoo.s3.envFrom" (dict "ctx" . "secret" (include "mindzoo.s3.tasksSecretName" .)) -}}
{{- end -}}

{{/* ---------- database ---------- */}}

{{- define "mindzoo.postgresql.fullname" -}}
{{- include "mindzoo.componentName" (dict "ctx" . "component" "postgresql") -}}
{{- end -}}

{{- define "mindzoo.db.secretName" -}}
{{- if eq .Values.database.mode "external" -}}
{{- required "database.external.existingSecret is required when database.mode=external (no password is taken from values)" .Values.database.external.existingSecret -}}
{{- else -}}
{{- default (include "mindzoo.postgresql.fullname" .) .Values.postgresql.auth.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "mindzoo.db.passwordKey" -}}
{{- if eq .Values.database.mode "external" -}}{{ .Values.database.external.existingSecretPasswordKey }}{{- else -}}{{ .Values.postgresql.auth.passwordKey }}{{- end -}}
{{- end -}}

{{/*
MLflow's backend store URI. It carries no credentials: psycopg2 (libpq) reads
the user and password from PGUSER/PGPASSWORD, which come from the Secret, so
passwords with any characters work and never show in the pod's arguments.
*/}}
{{- define "mindzoo.db.uri" -}}
{{- if eq .Values.database.mode "external" -}}
{{- printf "postgresql+psycopg2://%s:%v/%s" (required "database.external.host is required when database.mode=external" .Values.database.external.host) .Values.database.external.port .Values.database.external.database -}}
{{- else -}}
{{- printf "postgresql+psycopg2://%s.%s.svc.%s:%v/%s" (include "mindzoo.postgresql.fullname" .) .Release.Namespace .Values.clusterDomain .Values.postgresql.service.port .Values.postgresql.auth.database -}}
{{- end -}}
{{- end -}}

{{- define "mindzoo.db.env" -}}
- name: PGUSER
{{- if and (eq .Values.database.mode "external") .Values.database.external.existingSecretUserKey }}
  valueFrom:
    secretKeyRef:
      name: {{ include "mindzoo.db.secretName" . }}
      key: {{ .Values.database.external.existingSecretUserKey }}
{{- else }}
  value: {{ ternary .Values.database.external.user .Values.postgresql.auth.username (eq .Values.database.mode "external") | quote }}
{{- end }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mindzoo.db.secretName" . }}
      key: {{ include "mindzoo.db.passwordKey" . }}
{{- if and (eq .Values.database.mode "external") .Values.database.external.sslMode }}
- name: PGSSLMODE
  value: {{ .Values.database.external.sslMode | quote }}
{{- end }}
{{- end -}}

{{/* ---------- MLflow ---------- */}}

{{- define "mindzoo.mlflow.fullname" -}}
{{- include "mindzoo.componentName" (dict "ctx" . "component" "mlflow") -}}
{{- end -}}

{{- define "mindzoo.mlflow.url" -}}
{{- printf "http://%s.%s.svc.%s:%v" (include "mindzoo.mlflow.fullname" .) .Release.Namespace .Values.clusterDomain .Values.mlflow.service.port -}}
{{- end -}}

{{/*
MLFLOW_SERVER_ALLOWED_HOSTS: every name the Service answers to in the cluster
(short, namespaced, .svc, fully qualified; with and without a port), localhost
for `kubectl port-forward`, then mlflow.allowedHosts. MLflow 3 answers any other
Host header with 403 "Invalid Host header".
*/}}
{{- define "mindzoo.mlflow.allowedHosts" -}}
{{- $svc := include "mindzoo.mlflow.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list -}}
{{- range (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) "localhost" "127.0.0.1" "[::1]") -}}
{{- $hosts = append $hosts . -}}
{{- $hosts = append $hosts (printf "%s:*" (. | replace "[" "[[]")) -}}
{{- end -}}
{{- concat $hosts .Values.mlflow.allowedHosts | uniq | join "," -}}
{{- end -}}

{{/*
kube-score (run on every rendered combination by tests/charts/test_chart_validators.py) flags
these checks as CRITICAL; the chart keeps them, each for a reason:
- container-resources: no CPU limits on purpose. A CPU limit throttles MLflow, MinIO and
  PostgreSQL in bursts while protecting nothing a CPU request does not; memory limits are set.
- container-image-pull-policy: images are pinned by tag (or digest) and must start on
  air-gapped clusters, so `IfNotPresent`; each image's `pullPolicy` value changes it.
- container-ephemeral-storage-request-and-limit: scratch use (MLflow's artifact proxy, MinIO
  uploads) grows with the user's models; a default limit would evict a server mid-upload.
- container-security-context-user-group-id: the images' own non-root users (uid 999 in the
  official PostgreSQL image, 1000 in mindzoo's MLflow and MinIO images); runAsNonRoot holds and
  every pod passes the "restricted" Pod Security Standard.
- pod-networkpolicy: NetworkPolicies are opt-in (`networkPolicy.enabled`), and hook and test
  pods have none of their own.
- statefulset-has-servicename: single-replica StatefulSets reached through their ClusterIP
  Service; nothing needs per-pod DNS names from a headless one.
*/}}
{{- define "mindzoo.kubeScoreIgnore" -}}
kube-score/ignore: container-resources,container-image-pull-policy,container-ephemeral-storage-request-and-limit,container-security-context-user-group-id,pod-networkpolicy,statefulset-has-servicename
{{- end -}}

{{/* ---------- MLflow authentication (mlflow.auth) ---------- */}}

{{/* Secret with the basic-auth admin's username/password and the Flask secret key. */}}
{{- define "mindzoo.mlflow.authSecretName" -}}
{{- .Values.mlflow.auth.existingSecret | default (include "mindzoo.componentName" (dict "ctx" . "component" "mlflow-auth")) -}}
{{- end -}}

{{/* MLFLOW_TRACKING_USERNAME/PASSWORD of MLflow's clients (helm test), when auth is on. */}}
{{- define "mindzoo.mlflow.clientEnv" -}}
{{- if .Values.mlflow.auth.enabled }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "mindzoo.mlflow.authSecretName" . }}
      key: username
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mindzoo.mlflow.authSecretName" . }}
      key: password
{{- end }}
{{- end -}}
