{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "sentimentops.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name of a component: <release>-<component>. */}}
{{- define "sentimentops.fullname" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- printf "%s-%s" $root.Release.Name $component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. Call with (list $ "component"). */}}
{{- define "sentimentops.labels" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: sentimentops
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{ include "sentimentops.selectorLabels" (list $root $component) }}
{{- end -}}

{{/* Selector labels of a component (stable across upgrades). */}}
{{- define "sentimentops.selectorLabels" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
app.kubernetes.io/name: {{ include "sentimentops.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end -}}

{{/* An image reference: repository:tag@digest when a digest is set (the tag for readers, the digest is what
is pulled), else repository:tag. */}}
{{- define "sentimentops.image" -}}
{{- if .digest -}}
{{- printf "%s:%s@%s" .repository .tag .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}
{{- end -}}

{{/* Pod-level securityContext compatible with the PodSecurity "restricted" profile. */}}
{{- define "sentimentops.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level securityContext: non-root, read-only root FS, no capabilities, no escalation. */}}
{{- define "sentimentops.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Kubernetes ServiceAccount name of a workload identity (training, serving, drift, mlflow). */}}
{{- define "sentimentops.serviceAccountName" -}}
{{- $root := index . 0 -}}
{{- $which := index . 1 -}}
{{- (index $root.Values.serviceAccounts $which).name -}}
{{- end -}}

{{/* In-cluster URL of the MLflow tracking server. */}}
{{- define "sentimentops.mlflowUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "sentimentops.fullname" (list . "mlflow")) .Release.Namespace (int .Values.mlflow.port) -}}
{{- end -}}

{{/* In-cluster URL of the Pushgateway (the chart's own or an external one). */}}
{{- define "sentimentops.pushgatewayUrl" -}}
{{- if .Values.pushgateway.enabled -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "sentimentops.fullname" (list . "pushgateway")) .Release.Namespace (int .Values.pushgateway.port) -}}
{{- else -}}
{{- .Values.pushgateway.externalUrl -}}
{{- end -}}
{{- end -}}

{{/* NetworkPolicy egress rule to CIDRs on TCP ports. Call with (list cidrs ports). */}}
{{- define "sentimentops.np.cidrs" -}}
{{- $cidrs := index . 0 -}}
{{- $ports := index . 1 -}}
- to:
    {{- range $cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range $ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}
{{- define "sentimentops.np.googleApis" -}}
{{- $np := .Values.networkPolicies -}}
# Google APIs (GCS, Cloud SQL Admin, IAM credentials) through Private Google Access.
{{ include "sentimentops.np.cidrs" (list $np.googleApisCidrs (list 443)) }}
# The GKE metadata server: Workload Identity tokens.
{{ include "sentimentops.np.cidrs" (list $np.metadataServerCidrs (list 80 988)) }}
{{- end -}}
