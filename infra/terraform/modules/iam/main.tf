# One Google service account per workload, impersonated by exactly one Kubernetes ServiceAccount
# through Workload Identity, with bucket-level (not project-level) storage roles, narrowed to an object
# prefix where the workload writes only there: least privilege. Who gets what is infra/topology.py
# (var.bucket_grants, from infra/terraform/topology.json); docs/security.md has the table.

data "google_project" "current" {
  project_id = var.project_id
}

locals {
  cloudsql_instance_condition = "resource.name == \"projects/${var.project_id}/instances/${var.cloudsql_instance_name}\""
}

resource "google_service_account" "workload" {
  for_each = var.kubernetes_service_accounts

  project      = var.project_id
  account_id   = each.value.gsa
  display_name = "sentimentops ${each.key} (Workload Identity: ${each.value.namespace}/${each.value.name})"
}

# Workload Identity: only <namespace>/<ksa> may act as the matching Google SA.
resource "google_service_account_iam_member" "workload_identity" {
  for_each = var.kubernetes_service_accounts

  service_account_id = google_service_account.workload[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[${each.value.namespace}/${each.value.name}]"
}

resource "google_storage_bucket_iam_member" "grants" {
  for_each = var.bucket_grants

  bucket = var.buckets[each.value.bucket]
  role   = each.value.role
  member = "serviceAccount:${google_service_account.workload[each.value.workload].email}"

  # A prefix grant: objects under <prefix> only (e.g. the predictor's payload-log partitions, the drift
  # job's reports), so a workload cannot overwrite another's files in a shared bucket.
  dynamic "condition" {
    for_each = each.value.prefix == null ? [] : [each.value.prefix]
    content {
      title      = "prefix-${substr(sha1(condition.value), 0, 8)}"
      expression = "resource.name.startsWith(\"projects/_/buckets/${var.buckets[each.value.bucket]}/objects/${condition.value}\")"
    }
  }
}

# MLflow connects to its database through the Cloud SQL Auth Proxy with IAM authentication: it may
# connect to and log in to that one instance only.
resource "google_project_iam_member" "mlflow_cloudsql" {
  for_each = toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.workload["mlflow"].email}"

  condition {
    title      = "mlflow-instance-only"
    expression = local.cloudsql_instance_condition
  }
}

# External Secrets Operator reads the platform's secrets (sentimentops-* only) from Secret Manager.
resource "google_service_account" "external_secrets" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-external-secrets"
  display_name = "External Secrets Operator (Workload Identity: external-secrets/external-secrets)"
}

resource "google_service_account_iam_member" "external_secrets_wi" {
  service_account_id = google_service_account.external_secrets.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.workload_pool}[external-secrets/external-secrets]"
}

resource "google_project_iam_member" "external_secrets_access" {
  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = "serviceAccount:${google_service_account.external_secrets.email}"

  condition {
    title      = "sentimentops-secrets-only"
    expression = "resource.name.startsWith(\"projects/${data.google_project.current.number}/secrets/${var.name_prefix}-\")"
  }
}
