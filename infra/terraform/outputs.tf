output "cluster_name" {
  description = "GKE cluster name (gcloud container clusters get-credentials <name> --region <region>)."
  value       = module.gke.name
}

output "cluster_endpoint" {
  description = "Control plane endpoint."
  value       = module.gke.endpoint
  sensitive   = true
}

output "workload_pool" {
  description = "Workload Identity pool (<project>.svc.id.goog)."
  value       = module.gke.workload_pool
}

output "artifact_registry_url" {
  description = "Docker repository for the train/serve images: <region>-docker.pkg.dev/<project>/<repo>."
  value       = module.artifact_registry.repository_url
}

output "buckets" {
  description = "Bucket names by purpose: data, models, artifacts, payload-logs."
  value       = module.storage.bucket_names
}

output "google_service_accounts" {
  description = "Google SA e-mail of each workload; annotate the matching Kubernetes SA with it (the chart does)."
  value       = module.iam.google_service_accounts
}

output "kubernetes_service_accounts" {
  description = "Kubernetes SA names bound through Workload Identity, by workload."
  value       = local.kubernetes_service_accounts
}

output "cloudsql_instance_connection_name" {
  description = "Cloud SQL connection name for the Auth Proxy (chart value mlflow.database.instanceConnectionName)."
  value       = module.cloudsql.connection_name
}

output "cloudsql_private_ip" {
  description = "Private IP of the MLflow database."
  value       = module.cloudsql.private_ip
}

output "mlflow_database_user" {
  description = "Cloud SQL IAM user of MLflow (chart value mlflow.database.iamUser)."
  value       = module.cloudsql.iam_user
}
