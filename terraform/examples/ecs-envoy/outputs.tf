output "cluster_name" {
  description = "ECS cluster the example runs in."
  value       = module.mesh.cluster_name
}

output "services" {
  description = "ECS service of each service version."
  value       = merge({ "frontend-v1" = module.frontend_v1.service_name }, { for k, m in module.users : k => m.service_name })
}

output "discovery_names" {
  description = "DNS name each version's tasks resolve under (Envoy inbound port 15006)."
  value       = { for k, m in merge({ "frontend-v1" = module.frontend_v1 }, module.users) : k => "${m.discovery_name}.${module.mesh.namespace_name}" }
}
