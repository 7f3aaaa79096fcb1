output "connection_name" {
  description = "<project>:<region>:<instance> for the Cloud SQL Auth Proxy."
  value       = google_sql_database_instance.mlflow.connection_name
}

output "private_ip" {
  description = "Private IP of the instance."
  value       = google_sql_database_instance.mlflow.private_ip_address
}

output "iam_user" {
  description = "The IAM database user of MLflow (<sa>@<project>.iam)."
  value       = google_sql_user.mlflow.name
}
