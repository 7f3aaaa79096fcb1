# terraform plan -var-file=environments/prod.tfvars
project_id          = "sentimentops-prod"
environment         = "prod"
region              = "europe-west4"
node_zones          = ["europe-west4-a", "europe-west4-b", "europe-west4-c"]
rbac_security_group = "gke-security-groups@example.com"

# The InferenceService lives in the namespace of k8s/overlays/prod.
serving_namespace = "sentiment-prod"
release_channel   = "STABLE"

master_authorized_networks = [
  { cidr_block = "203.0.113.0/28", display_name = "CI runners" },
  { cidr_block = "198.51.100.0/28", display_name = "on-call VPN" },
]

cpu_machine_type = "e2-standard-8"
cpu_min_nodes    = 1
cpu_max_nodes    = 6

gpu_accelerator_type = "nvidia-l4"
gpu_machine_type     = "g2-standard-8"
gpu_max_nodes        = 2
gpu_spot             = true

cloudsql_tier              = "db-custom-2-7680"
cloudsql_high_availability = true
payload_log_retention_days = 90
deletion_protection        = true
