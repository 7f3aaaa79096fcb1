output "google_service_accounts" {
  description = "Google SA e-mail by workload."
  value       = { for k, sa in google_service_account.workload : k => sa.email }
}

output "external_secrets_service_account" {
  description = "Google SA of the External Secrets Operator."
  value       = google_service_account.external_secrets.email
}
