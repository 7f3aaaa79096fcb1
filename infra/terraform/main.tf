# sentimentops on GKE: how the modules fit together.
#
#   network  ──► gke (private cluster, CPU pool, GPU pool 0..N)
#      │              │
#      └─► cloudsql   └─► addons (helm_release: monitoring, Argo, cert-manager, Istio, Knative, KServe,
#                                 ExternalSecrets, and the cluster-bootstrap chart)
#   storage (data, artifacts, payload logs) ◄── iam (one Google SA per workload, Workload Identity)
#   artifact_registry (images)                ◄── iam (node SA pulls)

locals {
  labels = merge(var.labels, {
    app         = "sentimentops"
    environment = var.environment
    managed-by  = "terraform"
  })

  # Workload Identity pairs and bucket grants, generated from infra/topology.py (`python -m infra.topology`).
  topology = jsondecode(file("${path.module}/topology.json"))

  # Kubernetes ServiceAccounts that impersonate a Google SA each, by workload; "{serving}" is the
  # namespace of k8s/overlays/<env>.
  kubernetes_service_accounts = {
    for name, w in local.topology.workload_identities : name => {
      namespace = replace(w.namespace, "{serving}", var.serving_namespace)
      name      = w.ksa
      gsa       = w.gsa
    }
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "dns.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

module "network" {
  source = "./modules/network"

  project_id                  = var.project_id
  region                      = var.region
  name                        = var.name_prefix
  subnet_cidr                 = var.subnet_cidr
  pods_cidr                   = var.pods_cidr
  services_cidr               = var.services_cidr
  private_service_access_cidr = var.private_service_access_cidr
  master_ipv4_cidr_block      = var.master_ipv4_cidr_block

  depends_on = [google_project_service.apis]
}

module "artifact_registry" {
  source = "./modules/artifact_registry"

  project_id = var.project_id
  region     = var.region
  name       = var.name_prefix
  labels     = local.labels

  depends_on = [google_project_service.apis]
}

module "storage" {
  source = "./modules/storage"

  project_id                        = var.project_id
  region                            = var.region
  labels                            = local.labels
  payload_log_retention_days        = var.payload_log_retention_days
  noncurrent_version_retention_days = var.noncurrent_version_retention_days

  depends_on = [google_project_service.apis]
}

module "gke" {
  source = "./modules/gke"

  project_id                 = var.project_id
  region                     = var.region
  node_zones                 = var.node_zones
  name                       = var.name_prefix
  labels                     = local.labels
  network_id                 = module.network.network_id
  subnetwork_id              = module.network.subnetwork_id
  pods_range_name            = module.network.pods_range_name
  services_range_name        = module.network.services_range_name
  master_ipv4_cidr_block     = var.master_ipv4_cidr_block
  master_authorized_networks = concat([{ cidr_block = var.subnet_cidr, display_name = "nodes subnet" }], var.master_authorized_networks)
  release_channel            = var.release_channel
  rbac_security_group        = var.rbac_security_group
  cpu_machine_type           = var.cpu_machine_type
  cpu_min_nodes              = var.cpu_min_nodes
  cpu_max_nodes              = var.cpu_max_nodes
  gpu_accelerator_type       = var.gpu_accelerator_type
  gpu_machine_type           = var.gpu_machine_type
  gpu_count                  = var.gpu_count
  gpu_max_nodes              = var.gpu_max_nodes
  gpu_spot                   = var.gpu_spot
  deletion_protection        = var.deletion_protection
  artifact_registry_id       = module.artifact_registry.repository_id
}

module "cloudsql" {
  source = "./modules/cloudsql"

  project_id          = var.project_id
  region              = var.region
  name                = "${var.name_prefix}-mlflow"
  network_id          = module.network.network_id
  tier                = var.cloudsql_tier
  high_availability   = var.cloudsql_high_availability
  deletion_protection = var.deletion_protection
  labels              = local.labels
  iam_user_email      = module.iam.google_service_accounts["mlflow"]

  depends_on = [module.network]
}

module "iam" {
  source = "./modules/iam"

  project_id                  = var.project_id
  name_prefix                 = var.name_prefix
  kubernetes_service_accounts = local.kubernetes_service_accounts
  workload_pool               = module.gke.workload_pool
  buckets                     = module.storage.bucket_names
  cloudsql_instance_name      = "${var.name_prefix}-mlflow"
  bucket_grants               = local.topology.bucket_grants
}

module "addons" {
  source = "./modules/addons"
  count  = var.install_addons ? 1 : 0

  project_id             = var.project_id
  k8s_namespace          = var.k8s_namespace
  serving_namespace      = var.serving_namespace
  kserve_deployment_mode = var.kserve_deployment_mode
  alertmanager_secret    = "${var.name_prefix}-alertmanager-config"
  environment            = var.environment

  external_secrets_service_account = module.iam.external_secrets_service_account

  depends_on = [module.gke]
}
