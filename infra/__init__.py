"""Platform infrastructure helpers (the Terraform and the Helm chart live in infra/terraform and helm/)."""
