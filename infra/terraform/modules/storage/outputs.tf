output "bucket_names" {
  description = "Bucket names by purpose (data, artifacts, payload_logs)."
  value = {
    data         = google_storage_bucket.bucket["data"].name
    artifacts    = google_storage_bucket.bucket["artifacts"].name
    payload_logs = google_storage_bucket.bucket["payload-logs"].name
  }
}
