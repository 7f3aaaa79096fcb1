# terraform plan -var-file=environments/staging.tfvars
project_id          = "sentimentops-staging"
environment         = "staging"
region              = "europe-west4"
node_zones          = ["europe-west4-a", "europe-west4-b"]
rbac_security_group = "gke-security-groups@example.com"

# The InferenceService lives in the namespace of k8s/overlays/staging.
serving_namespace = "sentiment-staging"

master_authorized_networks = [
  { cidr_block = "203.0.113.0/28", display_name = "CI runners" },
]

cpu_machine_type = "e2-standard-4"
cpu_min_nodes    = 1
cpu_max_nodes    = 3

# T4s are cheaper and plenty for the small fine-tunes staging runs.
gpu_accelerator_type = "nvidia-tesla-t4"
gpu_machine_type     = "n1-standard-8"
gpu_max_nodes        = 1
gpu_spot             = true

cloudsql_tier              = "db-custom-1-3840"
cloudsql_high_availability = false
payload_log_retention_days = 30
deletion_protection        = false
