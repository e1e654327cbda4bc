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
  description = "The PostgreSQL URL WITHOUT a password, e.g. postgresql://lockgate@db.internal:5432/lockgate; its role gets the generated password (output database_password)."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://[^:/@]+@", var.database_url))
    error_message = "The database_url must be postgresql://USER@HOST:PORT/DB, without a password (the password is generated and kept in the lockgate-db Secret)."
  }
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
