variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the service account ids."
  type        = string
}

variable "kubernetes_service_accounts" {
  description = "Kubernetes SA (namespace, name) by workload (training, serving, drift, mlflow); the Google SA id is the name."
  type = map(object({
    namespace = string
    name      = string
  }))

  validation {
    condition     = alltrue([for w in ["training", "serving", "drift", "mlflow"] : contains(keys(var.kubernetes_service_accounts), w)])
    error_message = "kubernetes_service_accounts needs training, serving, drift and mlflow."
  }
}

variable "workload_pool" {
  description = "Workload Identity pool of the cluster (<project>.svc.id.goog)."
  type        = string
}

variable "buckets" {
  description = "Bucket names by purpose (data, artifacts, payload_logs)."
  type        = map(string)
}

variable "cloudsql_instance_name" {
  description = "The MLflow Cloud SQL instance (the only one MLflow may connect to)."
  type        = string
}

variable "model_name" {
  description = "Registered model name: the first folder of the payload logs (drift reports go under <model_name>/drift/)."
  type        = string
}
