variable "project_id" {
  description = "GCP project id (Secret Manager project of the ClusterSecretStore)."
  type        = string
}

variable "environment" {
  description = "staging or prod (retention of metrics)."
  type        = string
}

variable "k8s_namespace" {
  description = "Namespace of the platform's workloads (PodSecurity restricted; Argo's workflow namespace)."
  type        = string
}

variable "serving_namespace" {
  description = "Namespace of the InferenceService."
  type        = string
}

variable "kserve_deployment_mode" {
  description = "RawDeployment or Serverless."
  type        = string
}

variable "alertmanager_secret" {
  description = "Secret holding alertmanager.yaml (rendered by the sentimentops chart)."
  type        = string
}

variable "external_secrets_service_account" {
  description = "Google SA e-mail of the External Secrets Operator (Workload Identity)."
  type        = string
}
