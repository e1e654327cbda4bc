# Installs lockgate's chart from this repository (deploy/helm/lockgate) into a new namespace,
# with generated secrets kept in Kubernetes Secrets: the passwords of the database's two roles
# (the owner, which only lockgate's init container gets, and the runtime role, which lockgate
# up and the Dask workers get), the keyring (LOCKGATE_KEYS) and the first admin's password.
# Optionally the official Dask chart, running lockgate's image, as the executor. PostgreSQL
# itself is yours (a managed database or an operator): create the two roles (SQL in
# deploy/README.md, "Terraform"), give their URLs without passwords and with
# sslmode=verify-full, then set the roles' passwords to the generated ones.
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

# the runtime role (lockgate_app): lockgate up and the Dask workers
resource "random_password" "database" {
  length  = 32
  special = false
}

# the owner role (lockgate): lockgate's init container only (schema upgrades, first admin)
resource "random_password" "database_owner" {
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

resource "kubernetes_secret_v1" "database_owner" {
  metadata {
    name      = "lockgate-db-owner"
    namespace = kubernetes_namespace_v1.lockgate.metadata[0].name
  }
  data = {
    password = random_password.database_owner.result
  }
}

resource "kubernetes_secret_v1" "database_ca" {
  count = var.database_ca_pem == null ? 0 : 1

  metadata {
    name      = "lockgate-db-ca"
    namespace = kubernetes_namespace_v1.lockgate.metadata[0].name
  }
  data = {
    "ca.crt" = var.database_ca_pem
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

# The workers get the runtime role's URL and password, never the owner's. Not waited for: its
# workers mount lockgate's ConfigMap (lockgate.toml), made by the release below, while
# lockgate up checks at start that the cluster has a worker; both settle once both exist.
resource "helm_release" "dask" {
  count = var.install_dask ? 1 : 0

  name       = local.dask_release
  namespace  = kubernetes_namespace_v1.lockgate.metadata[0].name
  repository = "https://helm.dask.org"
  chart      = "dask"
  version    = var.dask_chart_version
  wait       = false

  values = [
    file("${path.module}/../helm/dask-values.yaml"),
    yamlencode({
      scheduler = { image = { repository = var.image_repository, tag = var.image_tag } }
      worker = {
        image    = { repository = var.image_repository, tag = var.image_tag }
        replicas = var.dask_workers
        # replaces the values file's list (its mounts stay: lockgate.toml, the CA)
        env = [
          { name = "HOME", value = "/tmp" },
          { name = "LOCKGATE_DB_URL", value = var.database_url },
          {
            name      = "PGPASSWORD"
            valueFrom = { secretKeyRef = { name = kubernetes_secret_v1.database.metadata[0].name, key = "password" } }
          },
          { name = "PGSSLROOTCERT", value = "/etc/lockgate/postgres-ca/ca.crt" },
          {
            name      = "LOCKGATE_KEYS"
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
      # lockgate up: the runtime role
      url      = var.database_url
      password = { existingSecret = kubernetes_secret_v1.database.metadata[0].name, key = "password" }
      # the init container: the owner
      owner = {
        url      = var.database_owner_url
        password = { existingSecret = kubernetes_secret_v1.database_owner.metadata[0].name, key = "password" }
      }
      caSecret       = var.database_ca_pem == null ? "" : kubernetes_secret_v1.database_ca[0].metadata[0].name
      allowPlaintext = var.database_allow_plaintext
    }
    config = { artifacts = var.artifacts }
    keys   = { existingSecret = kubernetes_secret_v1.keys.metadata[0].name, key = "LOCKGATE_KEYS" }
    admin  = { name = "admin", existingSecret = kubernetes_secret_v1.admin.metadata[0].name, key = "password" }
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
