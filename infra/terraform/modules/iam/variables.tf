variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the service account ids."
  type        = string
}

variable "kubernetes_service_accounts" {
  description = "Workload Identity pairs by workload (infra/topology.py): Kubernetes SA namespace/name and Google SA id."
  type = map(object({
    namespace = string
    name      = string
    gsa       = string
  }))

  validation {
    condition     = alltrue([for w in ["training", "predictor", "drift", "mlflow"] : contains(keys(var.kubernetes_service_accounts), w)])
    error_message = "kubernetes_service_accounts needs training, predictor, drift and mlflow."
  }
}

variable "workload_pool" {
  description = "Workload Identity pool of the cluster (<project>.svc.id.goog)."
  type        = string
}

variable "buckets" {
  description = "Bucket names by purpose (data, models, artifacts, payload-logs)."
  type        = map(string)
}

variable "cloudsql_instance_name" {
  description = "The MLflow Cloud SQL instance (the only one MLflow may connect to)."
  type        = string
}

variable "bucket_grants" {
  description = "Storage role per workload and bucket purpose, optionally under an object prefix (infra/topology.py)."
  type = map(object({
    workload = string
    bucket   = string
    role     = string
    prefix   = string
  }))
}
