# One Google service account per workload, impersonated by exactly one Kubernetes ServiceAccount
# through Workload Identity, with bucket-level (not project-level) storage roles: least privilege.
#
#   workload  | data           | artifacts        | payload-logs     | other
#   training  | read           | read/write       | -                | -
#   serving   | -              | read             | write (+rename)  | -
#   drift     | read           | -                | read; write only | -
#             |                |                  | <model>/drift/   |
#   mlflow    | -              | read/write       | -                | Cloud SQL client + IAM login, one instance

data "google_project" "current" {
  project_id = var.project_id
}

locals {
  # serving gets objectUser, not objectCreator, on payload logs: files are written under a temporary
  # name and renamed (a copy and a delete).
  bucket_grants = {
    "training-data"        = { workload = "training", bucket = "data", role = "roles/storage.objectViewer" }
    "training-artifacts"   = { workload = "training", bucket = "artifacts", role = "roles/storage.objectUser" }
    "serving-artifacts"    = { workload = "serving", bucket = "artifacts", role = "roles/storage.objectViewer" }
    "serving-payload_logs" = { workload = "serving", bucket = "payload_logs", role = "roles/storage.objectUser" }
    "drift-data"           = { workload = "drift", bucket = "data", role = "roles/storage.objectViewer" }
    "drift-payload_logs"   = { workload = "drift", bucket = "payload_logs", role = "roles/storage.objectViewer" }
    "mlflow-artifacts"     = { workload = "mlflow", bucket = "artifacts", role = "roles/storage.objectUser" }
  }

  cloudsql_instance_condition = "resource.name == \"projects/${var.project_id}/instances/${var.cloudsql_instance_name}\""
}

resource "google_service_account" "workload" {
  for_each = var.kubernetes_service_accounts

  project      = var.project_id
  account_id   = each.value.name
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
  for_each = local.bucket_grants

  bucket = var.buckets[each.value.bucket]
  role   = each.value.role
  member = "serviceAccount:${google_service_account.workload[each.value.workload].email}"
}

# MLflow connects to its database through the Cloud SQL Auth Proxy with IAM authentication: it may
# connect to and log in to that one instance only.
# The drift job writes its report next to the logs it read (<log_root>/<model>/drift/<end>/), and nowhere
# else in the bucket (objectUser: the report is written under a temporary name and renamed).
resource "google_storage_bucket_iam_member" "drift_reports" {
  bucket = var.buckets["payload_logs"]
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.workload["drift"].email}"

  condition {
    title      = "drift-reports-only"
    expression = "resource.name.startsWith(\"projects/_/buckets/${var.buckets["payload_logs"]}/objects/${var.model_name}/drift/\")"
  }
}

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
