output "cluster_name" {
  description = "ECS cluster the example runs in."
  value       = module.mesh.cluster_name
}

output "services" {
  description = "ECS service of each service version."
  value       = merge({ "frontend-v1" = module.frontend_v1.service_name }, { for k, m in module.users : k => m.service_name })
}

output "endpoints" {
  description = "Service Connect endpoint (name:port) of each discoverable version."
  value       = { for k, m in module.users : k => "${m.discovery_name}:80" }
}
