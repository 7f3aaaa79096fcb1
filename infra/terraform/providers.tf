provider "google" {
  project = var.project_id
  region  = var.region
}

# The helm and kubernetes providers talk to the cluster this configuration creates, through its
# endpoint and the caller's Google credentials (run from a host in master_authorized_networks).
data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${module.gke.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(module.gke.ca_certificate)
}

provider "helm" {
  kubernetes {
    host                   = "https://${module.gke.endpoint}"
    token                  = data.google_client_config.current.access_token
    cluster_ca_certificate = base64decode(module.gke.ca_certificate)
  }
}
