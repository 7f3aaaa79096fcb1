output "name" {
  description = "Cluster name."
  value       = google_container_cluster.cluster.name
}

output "endpoint" {
  description = "Control plane endpoint."
  value       = google_container_cluster.cluster.endpoint
  sensitive   = true
}

output "ca_certificate" {
  description = "Cluster CA certificate (base64)."
  value       = google_container_cluster.cluster.master_auth[0].cluster_ca_certificate
  sensitive   = true
}

output "workload_pool" {
  description = "Workload Identity pool."
  value       = google_container_cluster.cluster.workload_identity_config[0].workload_pool
}

output "node_service_account" {
  description = "E-mail of the nodes' service account."
  value       = google_service_account.nodes.email
}
