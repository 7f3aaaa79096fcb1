# The platform's buckets: uniform bucket-level access (IAM only, no ACLs), public access prevention
# enforced, versioning, lifecycle rules. Who may read/write what is granted per bucket in modules/iam.

locals {
  buckets = {
    # Raw and validated datasets, reference data of the drift job.
    data = {
      nearline_after_days = 90
      delete_after_days   = 0
    }
    # Base checkpoints mirrored from the model hub once (docs/operations.md): the cluster never downloads.
    models = {
      nearline_after_days = 0
      delete_after_days   = 0
    }
    # MLflow artifacts and model directories (what KServe's storageUri points at).
    artifacts = {
      nearline_after_days = 0
      delete_after_days   = 0
    }
    # Serving's payload logs (request texts): kept payload_log_retention_days, then deleted.
    payload-logs = {
      nearline_after_days = 30
      delete_after_days   = var.payload_log_retention_days
    }
  }
}

resource "google_storage_bucket" "bucket" {
  # checkov:skip=CKV_GCP_62: access is logged by Cloud Audit Logs data-access logs (google_project_iam_audit_config below), Google's replacement for legacy usage-log buckets.
  for_each = local.buckets

  project                     = var.project_id
  name                        = "${var.project_id}-${each.key}"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = merge(var.labels, { purpose = each.key })

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = 604800 # 7 days
  }

  # Replaced or deleted object versions are kept noncurrent_version_retention_days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.nearline_after_days > 0 ? [each.value.nearline_after_days] : []
    content {
      condition {
        age        = lifecycle_rule.value
        with_state = "LIVE"
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.delete_after_days > 0 ? [each.value.delete_after_days] : []
    content {
      condition {
        age        = lifecycle_rule.value
        with_state = "ANY"
      }
      action {
        type = "Delete"
      }
    }
  }
}

# Who read or wrote which object: Cloud Audit Logs data-access logs for Cloud Storage.
resource "google_project_iam_audit_config" "storage" {
  project = var.project_id
  service = "storage.googleapis.com"

  audit_log_config {
    log_type = "DATA_READ"
  }

  audit_log_config {
    log_type = "DATA_WRITE"
  }
}
