variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the subnet, router and NAT."
  type        = string
}

variable "name" {
  description = "Name (and prefix) of the network resources."
  type        = string
}

variable "subnet_cidr" {
  description = "Primary range of the nodes' subnet."
  type        = string
}

variable "pods_cidr" {
  description = "Secondary range for Pods."
  type        = string
}

variable "services_cidr" {
  description = "Secondary range for Services."
  type        = string
}

variable "private_service_access_cidr" {
  description = "Range peered to Google-managed services (Cloud SQL)."
  type        = string
}

variable "master_ipv4_cidr_block" {
  description = "Control plane range (source of admission webhook calls)."
  type        = string
}
