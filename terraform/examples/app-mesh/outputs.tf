output "mesh_arn" {
  description = "ARN of the mesh."
  value       = module.mesh.mesh_arn
}

output "virtual_node_arns" {
  description = "ARN of each virtual node: the APPMESH_RESOURCE_ARN of that version's Envoy."
  value       = module.mesh.virtual_node_arns
}

output "route_names" {
  description = "Routes as \"<router>/<route>\" in priority order."
  value       = module.mesh.route_names
}
