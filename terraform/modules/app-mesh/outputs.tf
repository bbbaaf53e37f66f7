output "mesh_id" {
  description = "ID of the mesh (its name)."
  value       = aws_appmesh_mesh.this.id
}

output "mesh_arn" {
  description = "ARN of the mesh."
  value       = aws_appmesh_mesh.this.arn
}

output "virtual_node_names" {
  description = "Names of the virtual nodes, sorted."
  value       = sort([for node in aws_appmesh_virtual_node.this : node.name])
}

output "virtual_node_arns" {
  description = "ARN of each virtual node by name: the APPMESH_RESOURCE_ARN of the Envoy sidecars of that service version."
  value       = { for name, node in aws_appmesh_virtual_node.this : name => node.arn }
}

output "virtual_router_names" {
  description = "Names of the virtual routers, sorted (one per virtual service, named like it)."
  value       = sort([for router in aws_appmesh_virtual_router.this : router.name])
}

output "virtual_service_names" {
  description = "Names of the virtual services, sorted."
  value       = sort([for service in aws_appmesh_virtual_service.this : service.name])
}

output "route_names" {
  description = "Routes as \"<virtual router>/<route>\", routers sorted, each router's routes in priority order."
  value       = flatten([for service_name, service in var.virtual_services : [for route in service.routes : "${service_name}/${route.name}"]])
}

output "virtual_gateway_arns" {
  description = "ARN of each virtual gateway by name: the APPMESH_RESOURCE_ARN of that gateway's Envoy tasks."
  value       = { for name, gateway in aws_appmesh_virtual_gateway.this : name => gateway.arn }
}

output "gateway_route_names" {
  description = "Gateway routes as \"<virtual gateway>/<route>\", gateways sorted, each gateway's routes in priority order."
  value       = flatten([for gateway_name, gateway in var.virtual_gateways : [for route in gateway.routes : "${gateway_name}/${route.name}"]])
}
