variable "kubeconfig_path" {
  description = "The kubeconfig file of the cluster to install into."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "The kubeconfig context to use (null: the file's current context)."
  type        = string
  default     = null
}

variable "namespace" {
  description = "The namespace created for lockgate and its Dask release."
  type        = string
  default     = "lockgate"
}

variable "image_repository" {
  description = "lockgate's image in your registry (built from deploy/Dockerfile, or FROM it with your pipelines)."
  type        = string
}

variable "image_tag" {
  description = "The image's tag."
  type        = string
  default     = "0.1.0"
}

variable "database_url" {
  description = "The URL lockgate up and the Dask workers connect with: the runtime role (reads and writes rows only), WITHOUT a password, e.g. postgresql://lockgate_app@db.internal:5432/lockgate?sslmode=verify-full; the role gets the generated password (output database_app_password)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:/@?]+@", var.database_url)) && !can(regex("[?&]password=", var.database_url))
    error_message = "The database_url must be postgresql://USER@HOST:PORT/DB, without a password (the password is generated and kept in the lockgate-db Secret)."
  }

  # verified TLS to a server off the pod's loopback address (cross-variable: Terraform >= 1.9)
  validation {
    condition = (
      var.database_allow_plaintext
      || (can(regex("[?&]sslmode=verify-(full|ca)(&|$)", var.database_url)) && !can(regex("[?&]sslmode=(disable|allow|prefer|require)(&|$)", var.database_url)))
      || (can(regex("^postgres(ql)?://[^@/?]*@(localhost|127\\.[0-9.]+|\\[::1\\])?(:[0-9]+)?(/|\\?|$)", var.database_url)) && !can(regex("[?&](host|hostaddr)=[^/%&]", var.database_url)))
    )
    error_message = "The database_url reaches PostgreSQL off the pod's loopback address without verified TLS (the password and every row would cross the network readable): add sslmode=verify-full to its query (the CA: database_ca_pem, or sslrootcert=system for a public one), or set database_allow_plaintext = true if that network is as trusted as the pod."
  }
}

variable "database_owner_url" {
  description = "The URL of the role that owns the database (creates and upgrades the schema), WITHOUT a password, e.g. postgresql://lockgate@db.internal:5432/lockgate?sslmode=verify-full: only lockgate's init container (lockgate-bootstrap) connects with it; the role gets the generated password (output database_owner_password)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:/@?]+@", var.database_owner_url)) && !can(regex("[?&]password=", var.database_owner_url))
    error_message = "The database_owner_url must be postgresql://USER@HOST:PORT/DB, without a password (the password is generated and kept in the lockgate-db-owner Secret)."
  }

  validation {
    condition = (
      var.database_allow_plaintext
      || (can(regex("[?&]sslmode=verify-(full|ca)(&|$)", var.database_owner_url)) && !can(regex("[?&]sslmode=(disable|allow|prefer|require)(&|$)", var.database_owner_url)))
      || (can(regex("^postgres(ql)?://[^@/?]*@(localhost|127\\.[0-9.]+|\\[::1\\])?(:[0-9]+)?(/|\\?|$)", var.database_owner_url)) && !can(regex("[?&](host|hostaddr)=[^/%&]", var.database_owner_url)))
    )
    error_message = "The database_owner_url reaches PostgreSQL off the pod's loopback address without verified TLS (the password and every row would cross the network readable): add sslmode=verify-full to its query (the CA: database_ca_pem, or sslrootcert=system for a public one), or set database_allow_plaintext = true if that network is as trusted as the pod."
  }
}

variable "database_allow_plaintext" {
  description = "Allow database URLs without verified TLS (sslmode=verify-full or verify-ca) to a server off the pod's loopback address: only for a network as trusted as the pods."
  type        = bool
  default     = false
}

variable "database_ca_pem" {
  description = "The CA certificate (PEM) that signed PostgreSQL's server certificate, e.g. file(\"db-ca.pem\"): kept in the Secret lockgate-db-ca and given to lockgate and the Dask workers as PGSSLROOTCERT (null: none; then name sslrootcert in the URLs)."
  type        = string
  default     = null
}

variable "database_cidr" {
  description = "The address range of the PostgreSQL server, for the egress NetworkPolicy (e.g. 10.20.0.5/32)."
  type        = string
}

variable "replicas" {
  description = "Pods running `lockgate up`. More than 1 needs a ReadWriteMany storage class (state_storage_class)."
  type        = number
  default     = 1
}

variable "state_storage_class" {
  description = "Storage class of the state volume (null: the cluster's default)."
  type        = string
  default     = null
}

variable "ingress_host" {
  description = "The host name the ingress serves lockgate on (null: no ingress)."
  type        = string
  default     = null
}

variable "ingress_tls_secret" {
  description = "The Secret holding the ingress's certificate for ingress_host (e.g. made by cert-manager)."
  type        = string
  default     = null
}

variable "artifacts" {
  description = "Where tables returned by tasks are kept (lockgate's artifacts setting): s3://BUCKET/PREFIX, which the Dask workers need (they write and read them; give them S3 credentials), or an absolute folder on a volume every pod mounts at that path (empty: lockgate's state volume, without Dask only)."
  type        = string
  default     = ""

  validation {
    condition     = var.artifacts == "" || can(regex("^(s3://[a-z0-9][a-z0-9.-]*[a-z0-9](/[^\"\\\\\\s]*)?|/[^\"\\\\\\s]*)$", var.artifacts))
    error_message = "The artifacts must be s3://BUCKET/PREFIX or an absolute folder, without quotes, backslashes or spaces."
  }

  validation {
    condition     = var.artifacts != "" || !var.install_dask
    error_message = "With install_dask, artifacts is required: a table a task returns is written on its worker and read on the next task's; set artifacts = \"s3://BUCKET/PREFIX\" (and give the workers S3 credentials)."
  }
}

variable "install_dask" {
  description = "Also install the official Dask chart (a scheduler and workers running lockgate's image) and use it as the executor."
  type        = bool
  default     = true
}

variable "dask_chart_version" {
  description = "Version constraint for the official Dask chart (https://helm.dask.org)."
  type        = string
  default     = ">=2024.1.0"
}

variable "dask_workers" {
  description = "Dask worker pods."
  type        = number
  default     = 2
}
