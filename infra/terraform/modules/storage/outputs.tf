output "bucket_names" {
  description = "Bucket names by purpose (data, models, artifacts, payload-logs): the keys infra/topology.py uses."
  value       = { for purpose, bucket in google_storage_bucket.bucket : purpose => bucket.name }
}
