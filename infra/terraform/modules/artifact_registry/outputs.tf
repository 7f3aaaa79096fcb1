output "repository_id" {
  description = "Full resource id of the repository (for IAM bindings)."
  value       = google_artifact_registry_repository.images.id
}

output "repository_name" {
  description = "Repository id (short name)."
  value       = google_artifact_registry_repository.images.repository_id
}

output "repository_url" {
  description = "Docker URL prefix of the images."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}
