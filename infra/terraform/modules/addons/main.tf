# Cluster add-ons, each a helm_release with a pinned chart version (bump deliberately, one PR per
# chart, after reading its upgrade notes). Namespaces are created here with PodSecurity labels:
# the platform's own namespace enforces "restricted".
#
#   add-on                  | namespace        | what the platform uses it for
#   kube-prometheus-stack   | monitoring       | Prometheus, Alertmanager, Grafana (rules/dashboards from the chart)
#   argo-workflows          | argo             | training pipeline (WorkflowTemplates in workflows/)
#   argo-events             | argo-events      | retraining triggers (drift alert, new data)
#   argo-cd                 | argocd           | GitOps sync of helm/sentimentops and k8s/
#   cert-manager            | cert-manager     | webhook certificates of KServe
#   istio (base, istiod)    | istio-system     | Knative's networking layer (ingress gateway, traffic split)
#   knative-operator        | knative-operator | installs Knative Serving (KServe Serverless: canary revisions)
#   kserve (+ CRDs)         | kserve           | the InferenceService (k8s/)
#   external-secrets        | external-secrets | Secret Manager -> Kubernetes Secrets
#   cluster-bootstrap       | knative-serving  | local chart (./charts): the KnativeServing and ClusterSecretStore
#                           |                  | objects, which need the CRDs above to exist first

locals {
  # Chart versions: infra/versions.yaml, the one place every third-party version is pinned.
  chart_versions = yamldecode(file("${path.module}/../../../versions.yaml")).charts

  # Variables of the values/*.tftpl files (tests/platform renders them with the same names).
  template_vars = {
    platform_namespace = var.k8s_namespace
    serving_namespace  = var.serving_namespace
  }

  # PodSecurity admission level per namespace, with the reason wherever it is below "restricted".
  namespaces = yamldecode(templatefile("${path.module}/values/namespaces.yaml.tftpl", local.template_vars))
}

resource "kubernetes_namespace_v1" "ns" {
  for_each = local.namespaces

  metadata {
    name = each.key
    labels = {
      "pod-security.kubernetes.io/enforce" = each.value
      "pod-security.kubernetes.io/audit"   = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

resource "helm_release" "kube_prometheus_stack" {
  name       = "kube-prometheus-stack"
  namespace  = kubernetes_namespace_v1.ns["monitoring"].metadata[0].name
  repository = "https://prometheus-community.github.io/helm-charts"
  chart      = "kube-prometheus-stack"
  version    = local.chart_versions.kube_prometheus_stack
  atomic     = true
  timeout    = 900

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Pick up every PrometheusRule/ServiceMonitor/PodMonitor, whichever release created it
        # (the sentimentops chart's live in the platform namespace).
        ruleSelectorNilUsesHelmValues           = false
        serviceMonitorSelectorNilUsesHelmValues = false
        podMonitorSelectorNilUsesHelmValues     = false
        retention                               = var.environment == "prod" ? "30d" : "7d"
      }
    }
    alertmanager = {
      alertmanagerSpec = {
        # Written by the sentimentops chart from monitoring/alertmanager/ (the single source).
        configSecret = var.alertmanager_secret
        # Receivers' secrets (the chart's ExternalSecret alertmanager-slack), mounted at
        # /etc/alertmanager/secrets/alertmanager-slack/ where alertmanager.yml's api_url_file points.
        secrets = ["alertmanager-slack"]
      }
    }
    grafana = {
      sidecar = {
        dashboards = {
          enabled = true
          label   = "grafana_dashboard"
        }
      }
    }
  })]
}

resource "helm_release" "argo_workflows" {
  name       = "argo-workflows"
  namespace  = kubernetes_namespace_v1.ns["argo"].metadata[0].name
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argo-workflows"
  version    = local.chart_versions.argo_workflows
  atomic     = true

  values = [templatefile("${path.module}/values/argo-workflows.yaml.tftpl", local.template_vars)]

  # The controller's ServiceMonitor renders only when its CRD exists (Helm capabilities check).
  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "argo_events" {
  name       = "argo-events"
  namespace  = kubernetes_namespace_v1.ns["argo-events"].metadata[0].name
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argo-events"
  version    = local.chart_versions.argo_events
  atomic     = true

  values = [templatefile("${path.module}/values/argo-events.yaml.tftpl", local.template_vars)]
}

resource "helm_release" "argo_cd" {
  name       = "argo-cd"
  namespace  = kubernetes_namespace_v1.ns["argocd"].metadata[0].name
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argo-cd"
  version    = local.chart_versions.argo_cd
  atomic     = true

  values = [yamlencode({
    server = {
      service = {
        type = "ClusterIP"
      }
    }
  })]
}

resource "helm_release" "cert_manager" {
  name       = "cert-manager"
  namespace  = kubernetes_namespace_v1.ns["cert-manager"].metadata[0].name
  repository = "https://charts.jetstack.io"
  chart      = "cert-manager"
  version    = local.chart_versions.cert_manager
  atomic     = true

  values = [yamlencode({
    crds = {
      enabled = true
    }
  })]
}

resource "helm_release" "istio_base" {
  name       = "istio-base"
  namespace  = kubernetes_namespace_v1.ns["istio-system"].metadata[0].name
  repository = "https://istio-release.storage.googleapis.com/charts"
  chart      = "base"
  version    = local.chart_versions.istio
  atomic     = true
}

resource "helm_release" "istiod" {
  name       = "istiod"
  namespace  = kubernetes_namespace_v1.ns["istio-system"].metadata[0].name
  repository = "https://istio-release.storage.googleapis.com/charts"
  chart      = "istiod"
  version    = local.chart_versions.istio
  atomic     = true

  depends_on = [helm_release.istio_base]
}

# Internal ingress gateway only: the predictor is reached from inside the VPC (an internal load
# balancer), never from the internet.
resource "helm_release" "istio_ingressgateway" {
  name       = "istio-ingressgateway"
  namespace  = kubernetes_namespace_v1.ns["istio-system"].metadata[0].name
  repository = "https://istio-release.storage.googleapis.com/charts"
  chart      = "gateway"
  version    = local.chart_versions.istio
  atomic     = true

  values = [yamlencode({
    service = {
      annotations = {
        "networking.gke.io/load-balancer-type" = "Internal"
      }
    }
  })]

  depends_on = [helm_release.istiod]
}

resource "helm_release" "knative_operator" {
  name       = "knative-operator"
  namespace  = kubernetes_namespace_v1.ns["knative-operator"].metadata[0].name
  repository = "https://knative.github.io/operator"
  chart      = "knative-operator"
  version    = local.chart_versions.knative_operator
  atomic     = true
}

# Objects that need the CRDs of the releases above: a local chart, so Terraform's plan never needs
# the CRDs to exist (kubernetes_manifest would).
resource "helm_release" "cluster_bootstrap" {
  name      = "cluster-bootstrap"
  namespace = kubernetes_namespace_v1.ns["knative-serving"].metadata[0].name
  chart     = "${path.module}/charts/cluster-bootstrap"
  atomic    = true

  values = [yamlencode({
    projectId      = var.project_id
    knativeVersion = trimprefix(local.chart_versions.knative_operator, "v")
  })]

  depends_on = [helm_release.knative_operator, helm_release.istiod, helm_release.external_secrets]
}

resource "helm_release" "kserve_crd" {
  name       = "kserve-crd"
  namespace  = kubernetes_namespace_v1.ns["kserve"].metadata[0].name
  repository = "oci://ghcr.io/kserve/charts"
  chart      = "kserve-crd"
  version    = local.chart_versions.kserve
  atomic     = true

  depends_on = [helm_release.cert_manager]
}

resource "helm_release" "kserve" {
  name       = "kserve"
  namespace  = kubernetes_namespace_v1.ns["kserve"].metadata[0].name
  repository = "oci://ghcr.io/kserve/charts"
  chart      = "kserve"
  version    = local.chart_versions.kserve
  atomic     = true

  values = [yamlencode({
    kserve = {
      controller = {
        deploymentMode = var.kserve_deployment_mode
      }
    }
  })]

  depends_on = [helm_release.kserve_crd, helm_release.cluster_bootstrap]
}

resource "helm_release" "external_secrets" {
  name       = "external-secrets"
  namespace  = kubernetes_namespace_v1.ns["external-secrets"].metadata[0].name
  repository = "https://charts.external-secrets.io"
  chart      = "external-secrets"
  version    = local.chart_versions.external_secrets
  atomic     = true

  values = [yamlencode({
    serviceAccount = {
      name = "external-secrets"
      annotations = {
        "iam.gke.io/gcp-service-account" = var.external_secrets_service_account
      }
    }
  })]
}
