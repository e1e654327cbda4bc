output "namespace" {
  description = "The namespace lockgate runs in."
  value       = kubernetes_namespace_v1.lockgate.metadata[0].name
}

output "service" {
  description = "lockgate's Service (port-forward to it when there is no ingress)."
  value       = "${helm_release.lockgate.name}.${kubernetes_namespace_v1.lockgate.metadata[0].name}.svc:8080"
}

output "dask_scheduler" {
  description = "The Dask scheduler lockgate uses (null without install_dask)."
  value       = var.install_dask ? "tcp://${local.dask_release}-scheduler:8786" : null
}

output "database_app_password" {
  description = "The generated password of the runtime role in database_url (lockgate_app): ALTER ROLE lockgate_app PASSWORD '...' (terraform output -raw database_app_password)."
  value       = random_password.database.result
  sensitive   = true
}

output "database_owner_password" {
  description = "The generated password of the owner role in database_owner_url (lockgate): ALTER ROLE lockgate PASSWORD '...'."
  value       = random_password.database_owner.result
  sensitive   = true
}

output "admin_password" {
  description = "The first admin's password (user admin); change it after the first login."
  value       = random_password.admin.result
  sensitive   = true
}
