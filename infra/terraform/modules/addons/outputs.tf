output "chart_versions" {
  description = "Pinned chart version of each add-on."
  value       = local.chart_versions
}

output "namespaces" {
  description = "Namespaces created, with their PodSecurity enforce level."
  value       = local.namespaces
}
