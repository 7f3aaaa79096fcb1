variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the instance."
  type        = string
}

variable "name" {
  description = "Instance name."
  type        = string
}

variable "network_id" {
  description = "VPC with private service access (the instance gets only a private IP there)."
  type        = string
}

variable "tier" {
  description = "Machine tier."
  type        = string
}

variable "high_availability" {
  description = "Regional (HA) instance."
  type        = bool
}

variable "deletion_protection" {
  description = "Protect the instance from deletion."
  type        = bool
}

variable "labels" {
  description = "User labels."
  type        = map(string)
}

variable "iam_user_email" {
  description = "E-mail of the Google SA that logs in (MLflow's)."
  type        = string
}
