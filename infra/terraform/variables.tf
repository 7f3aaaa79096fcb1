# Inputs of the sentimentops platform. Each environment sets them in environments/<env>.tfvars.

variable "project_id" {
  description = "GCP project that hosts the platform (one project per environment)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id (6-30 chars, lowercase letters, digits, hyphens)."
  }
}

variable "environment" {
  description = "Environment name; used in labels and to pick production-grade settings."
  type        = string

  validation {
    condition     = contains(["staging", "prod"], var.environment)
    error_message = "environment must be \"staging\" or \"prod\"."
  }
}

variable "region" {
  description = "Region of the cluster, buckets, Artifact Registry and Cloud SQL (pick one with the GPU type's zones)."
  type        = string
  default     = "europe-west4"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like europe-west4."
  }
}

variable "node_zones" {
  description = "Zones of the region the node pools use (the GPU accelerator type must exist in each)."
  type        = list(string)
  default     = ["europe-west4-a", "europe-west4-b"]

  validation {
    condition     = length(var.node_zones) > 0
    error_message = "node_zones needs at least one zone."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (buckets become <project_id>-<purpose>)."
  type        = string
  default     = "sentimentops"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{2,20}$", var.name_prefix))
    error_message = "name_prefix must be 3-21 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Extra labels for every labellable resource."
  type        = map(string)
  default     = {}
}

# --- Network ---------------------------------------------------------------------------------------------

variable "subnet_cidr" {
  description = "Primary range of the nodes' subnet."
  type        = string
  default     = "10.10.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be a CIDR block."
  }
}

variable "pods_cidr" {
  description = "Secondary range for Pod IPs (VPC-native cluster)."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.pods_cidr, 0))
    error_message = "pods_cidr must be a CIDR block."
  }
}

variable "services_cidr" {
  description = "Secondary range for Service IPs."
  type        = string
  default     = "10.24.0.0/20"

  validation {
    condition     = can(cidrhost(var.services_cidr, 0))
    error_message = "services_cidr must be a CIDR block."
  }
}

variable "private_service_access_cidr" {
  description = "Range reserved for Google-managed services (Cloud SQL private IP). Must match the chart's networkPolicies.cloudSqlCidrs."
  type        = string
  default     = "10.30.0.0/16"

  validation {
    condition     = can(cidrhost(var.private_service_access_cidr, 0))
    error_message = "private_service_access_cidr must be a CIDR block."
  }
}

variable "master_ipv4_cidr_block" {
  description = "/28 for the control plane's private endpoint. Must match the chart's networkPolicies.kubeApiCidrs."
  type        = string
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrhost(var.master_ipv4_cidr_block, 0)) && endswith(var.master_ipv4_cidr_block, "/28")
    error_message = "master_ipv4_cidr_block must be a /28 CIDR block."
  }
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the control plane (CI runners, VPN). Empty: only the VPC."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []

  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrhost(n.cidr_block, 0)) && n.cidr_block != "0.0.0.0/0"])
    error_message = "master_authorized_networks entries must be CIDR blocks, and never 0.0.0.0/0."
  }
}

# --- Cluster ---------------------------------------------------------------------------------------------

variable "release_channel" {
  description = "GKE release channel (automatic control plane and node upgrades)."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "rbac_security_group" {
  description = "Google Group (gke-security-groups@<your domain>) whose nested groups can be RoleBinding subjects."
  type        = string

  validation {
    condition     = can(regex("^gke-security-groups@[-a-z0-9.]+$", var.rbac_security_group))
    error_message = "rbac_security_group must be gke-security-groups@<domain>."
  }
}

variable "cpu_machine_type" {
  description = "Machine type of the CPU node pool (system add-ons, MLflow, serving, CPU training)."
  type        = string
  default     = "e2-standard-4"
}

variable "cpu_min_nodes" {
  description = "Minimum CPU nodes per zone."
  type        = number
  default     = 1

  validation {
    condition     = var.cpu_min_nodes >= 1
    error_message = "cpu_min_nodes must be at least 1 (system pods run there)."
  }
}

variable "cpu_max_nodes" {
  description = "Maximum CPU nodes per zone."
  type        = number
  default     = 4

  validation {
    condition     = var.cpu_max_nodes >= 1 && var.cpu_max_nodes <= 50
    error_message = "cpu_max_nodes must be between 1 and 50."
  }
}

variable "gpu_accelerator_type" {
  description = "GPU type of the training pool, e.g. nvidia-l4 (with g2-* machines) or nvidia-tesla-t4 (with n1-*)."
  type        = string
  default     = "nvidia-l4"

  validation {
    condition     = contains(["nvidia-l4", "nvidia-tesla-t4", "nvidia-tesla-a100", "nvidia-a100-80gb", "nvidia-h100-80gb"], var.gpu_accelerator_type)
    error_message = "gpu_accelerator_type must be one of nvidia-l4, nvidia-tesla-t4, nvidia-tesla-a100, nvidia-a100-80gb, nvidia-h100-80gb."
  }
}

variable "gpu_machine_type" {
  description = "Machine type of the GPU pool; must carry gpu_accelerator_type (g2-standard-8 for L4, n1-standard-8 for T4)."
  type        = string
  default     = "g2-standard-8"
}

variable "gpu_count" {
  description = "GPUs per GPU node."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2, 4, 8], var.gpu_count)
    error_message = "gpu_count must be 1, 2, 4 or 8."
  }
}

variable "gpu_max_nodes" {
  description = "Maximum GPU nodes per zone; the pool scales from 0 so idle GPUs cost nothing."
  type        = number
  default     = 2

  validation {
    condition     = var.gpu_max_nodes >= 0 && var.gpu_max_nodes <= 16
    error_message = "gpu_max_nodes must be between 0 and 16."
  }
}

variable "gpu_spot" {
  description = "Run the GPU pool on Spot VMs (cheaper, preemptible: fine-tuning retries on preemption)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the cluster and the database from terraform destroy."
  type        = bool
  default     = true
}

# --- Storage and database ----------------------------------------------------------------------------------

variable "payload_log_retention_days" {
  description = "Days payload logs (request texts) are kept before deletion."
  type        = number
  default     = 90

  validation {
    condition     = var.payload_log_retention_days >= 7 && var.payload_log_retention_days <= 3650
    error_message = "payload_log_retention_days must be between 7 and 3650."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced object version is kept (versioned buckets)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "cloudsql_tier" {
  description = "Machine tier of the MLflow PostgreSQL instance."
  type        = string
  default     = "db-custom-1-3840"
}

variable "cloudsql_high_availability" {
  description = "Regional (HA) Cloud SQL instance instead of zonal."
  type        = bool
  default     = false
}

# --- Kubernetes side ---------------------------------------------------------------------------------------

variable "k8s_namespace" {
  description = "Namespace of the platform's workloads (the sentimentops Helm release, Argo workflows, serving)."
  type        = string
  default     = "sentimentops"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.k8s_namespace))
    error_message = "k8s_namespace must be a DNS label."
  }
}

variable "serving_namespace" {
  description = "Namespace of the InferenceService (k8s/overlays/<env> kustomization namespace)."
  type        = string
  default     = "sentimentops"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.serving_namespace))
    error_message = "serving_namespace must be a DNS label."
  }
}

variable "install_addons" {
  description = "Install the cluster add-ons (kube-prometheus-stack, Argo, cert-manager, KServe, ...) with Helm."
  type        = bool
  default     = true
}

variable "kserve_deployment_mode" {
  description = "KServe's default deployment mode: Serverless (Knative; canaryTrafficPercent needs it) or RawDeployment."
  type        = string
  default     = "Serverless"

  validation {
    condition     = contains(["RawDeployment", "Serverless"], var.kserve_deployment_mode)
    error_message = "kserve_deployment_mode must be RawDeployment or Serverless."
  }
}
