variable "project_id" {
  description = "GCP project id; bucket names are <project_id>-<purpose>."
  type        = string
}

variable "region" {
  description = "Bucket location (the cluster's region: no cross-region egress)."
  type        = string
}

variable "labels" {
  description = "Labels of the buckets."
  type        = map(string)
}

variable "payload_log_retention_days" {
  description = "Age in days after which payload logs are deleted."
  type        = number
}

variable "noncurrent_version_retention_days" {
  description = "Days noncurrent object versions are kept."
  type        = number
}
