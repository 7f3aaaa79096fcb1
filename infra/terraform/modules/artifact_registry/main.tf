# Docker repository for the train and serve images. Tags are immutable, so a tag names one image
# forever (the chart and the InferenceService can pin tags safely); old untagged images are cleaned up.
resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84: images hold code and public base layers, no data or secrets; Google-managed encryption at rest is enough and avoids running a KMS key lifecycle for it.
  project       = var.project_id
  location      = var.region
  repository_id = var.name
  description   = "sentimentops container images (train, serve)"
  format        = "DOCKER"
  labels        = var.labels

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"

    condition {
      tag_state  = "UNTAGGED"
      older_than = "1209600s" # 14 days
    }
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"

    most_recent_versions {
      keep_count = 20
    }
  }
}
