variable "project_id" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the (regional) cluster."
  type        = string
}

variable "node_zones" {
  description = "Zones of the node pools."
  type        = list(string)
}

variable "name" {
  description = "Cluster name."
  type        = string
}

variable "labels" {
  description = "Resource labels."
  type        = map(string)
}

variable "network_id" {
  description = "VPC id."
  type        = string
}

variable "subnetwork_id" {
  description = "Nodes' subnet id."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range of Pods."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range of Services."
  type        = string
}

variable "master_ipv4_cidr_block" {
  description = "/28 of the control plane."
  type        = string
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the control plane."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
}

variable "release_channel" {
  description = "RAPID, REGULAR or STABLE."
  type        = string
}

variable "rbac_security_group" {
  description = "gke-security-groups@<domain> (Google Groups for RBAC)."
  type        = string
}

variable "cpu_machine_type" {
  description = "Machine type of the CPU pool."
  type        = string
}

variable "cpu_min_nodes" {
  description = "Minimum CPU nodes per zone."
  type        = number
}

variable "cpu_max_nodes" {
  description = "Maximum CPU nodes per zone."
  type        = number
}

variable "gpu_accelerator_type" {
  description = "GPU type (nvidia-l4, nvidia-tesla-t4, ...)."
  type        = string
}

variable "gpu_machine_type" {
  description = "Machine type of the GPU pool."
  type        = string
}

variable "gpu_count" {
  description = "GPUs per node."
  type        = number
}

variable "gpu_max_nodes" {
  description = "Maximum GPU nodes per zone (minimum is 0)."
  type        = number
}

variable "gpu_spot" {
  description = "Spot VMs for the GPU pool."
  type        = bool
}

variable "deletion_protection" {
  description = "Protect the cluster from destroy."
  type        = bool
}

variable "artifact_registry_id" {
  description = "Artifact Registry repository the nodes pull from."
  type        = string
}
