output "network_id" {
  description = "VPC id."
  value       = google_compute_network.vpc.id
}

output "subnetwork_id" {
  description = "Nodes' subnet id."
  value       = google_compute_subnetwork.nodes.id
}

output "pods_range_name" {
  description = "Secondary range name of Pods."
  value       = "pods"
}

output "services_range_name" {
  description = "Secondary range name of Services."
  value       = "services"
}

output "private_services_connection" {
  description = "The private service access connection (Cloud SQL depends on it)."
  value       = google_service_networking_connection.private_services.id
}
