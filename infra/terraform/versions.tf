terraform {
  required_version = ">= 1.6.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.12"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
  }

  # State lives in a GCS bucket created once by hand (docs/operations.md, step 1):
  #   terraform init -backend-config="bucket=<project>-tfstate" -backend-config="prefix=sentimentops/<env>"
  backend "gcs" {}
}
