# Installs lockgate's chart from this repository (deploy/helm/lockgate) into a new namespace,
# with generated secrets kept in Kubernetes Secrets: the database password, the keyring
# (LOCKGATE_KEYS) and the first admin's password. Optionally the official Dask chart, running
# lockgate's image, as the executor. PostgreSQL itself is yours (a managed database or an
# operator): give its URL without a password, then set the role's password to the generated
# one (deploy/README.md, "Terraform").
#
# The generated values are in Terraform's state in plain text: keep the state in an encrypted,
# access-controlled backend (deploy/README.md).

provider "kubernetes" {
  config_path    = pathexpand(var.kubeconfig_path)
  config_context = var.kube_context
}

provider "helm" {
  kubernetes = {
    config_path    = pathexpand(var.kubeconfig_path)
    config_context = var.kube_context
  }
}

locals {
  chart_path   = "${path.module}/../helm/lockgate"
  dask_release = "lockgate-dask"
}

resource "kubernetes_namespace_v1" "lockgate" {
  metadata {
    name = var.namespace
  }
}

resource "random_password" "database" {
  length  = 32
  special = false
}

resource "random_password" "admin" {
  length  = 24
  special = false
}

resource "random_bytes" "key" {
  length = 32
}

resource "kubernetes_secret_v1" "database" {
  metadata {
    name      = "lockgate-db"
    namespace = kubernetes_namespace_v1.lockgate.metadata[0].name
  }
  data = {
    password = random_password.database.result
  }
}

resource "kubernetes_secret_v1" "keys" {
  metadata {
    name      = "lockgate-keys"
    namespace = kubernetes_namespace_v1.lockgate.metadata[0].name
  }
  data = {
    LOCKGATE_KEYS = "k1:${random_bytes.key.base64}"
  }
}

resource "kubernetes_secret_v1" "admin" {
  metadata {
    name      = "lockgate-admin"
    namespace = kubernetes_namespace_v1.lockgate.metadata[0].name
  }
  data = {
    password = random_password.admin.result
  }
}

resource "helm_release" "dask" {
  count = var.install_dask ? 1 : 0

  name       = local.dask_release
  namespace  = kubernetes_namespace_v1.lockgate.metadata[0].name
  repository = "https://helm.dask.org"
  chart      = "dask"
  version    = var.dask_chart_version

  values = [
    file("${path.module}/../helm/dask-values.yaml"),
    yamlencode({
      scheduler = { image = { repository = var.image_repository, tag = var.image_tag } }
      worker = {
        image    = { repository = var.image_repository, tag = var.image_tag }
        replicas = var.dask_workers
        env = [
          { name = "HOME", value = "/tmp" },
          { name = "LOCKGATE_DB_URL", value = var.database_url },
          {
            name = "PGPASSWORD"
            valueFrom = { secretKeyRef = { name = kubernetes_secret_v1.database.metadata[0].name, key = "password" } }
          },
          {
            name = "LOCKGATE_KEYS"
            valueFrom = { secretKeyRef = { name = kubernetes_secret_v1.keys.metadata[0].name, key = "LOCKGATE_KEYS" } }
          },
        ]
      }
    }),
  ]
}

resource "helm_release" "lockgate" {
  name      = "lockgate"
  namespace = kubernetes_namespace_v1.lockgate.metadata[0].name
  chart     = local.chart_path

  values = [yamlencode({
    replicaCount = var.replicas
    image        = { repository = var.image_repository, tag = var.image_tag }
    database = {
      url      = var.database_url
      password = { existingSecret = kubernetes_secret_v1.database.metadata[0].name, key = "password" }
    }
    keys  = { existingSecret = kubernetes_secret_v1.keys.metadata[0].name, key = "LOCKGATE_KEYS" }
    admin = { name = "admin", existingSecret = kubernetes_secret_v1.admin.metadata[0].name, key = "password" }
    dask = {
      address        = var.install_dask ? "tcp://${local.dask_release}-scheduler:8786" : ""
      allowPlaintext = var.install_dask
      networkPolicy  = { enabled = var.install_dask, podLabels = { app = "dask", release = local.dask_release } }
    }
    persistence = {
      storageClass = var.state_storage_class == null ? "" : var.state_storage_class
      accessModes  = var.replicas > 1 ? ["ReadWriteMany"] : ["ReadWriteOnce"]
    }
    networkPolicy = {
      postgres = { to = [{ ipBlock = { cidr = var.database_cidr } }], port = 5432 }
    }
    ingress = {
      enabled   = var.ingress_host != null
      host      = var.ingress_host == null ? "" : var.ingress_host
      tlsSecret = var.ingress_tls_secret == null ? "" : var.ingress_tls_secret
    }
  })]

  depends_on = [helm_release.dask]
}
