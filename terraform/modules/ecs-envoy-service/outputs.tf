output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "service_id" {
  description = "ARN (ID) of the ECS service."
  value       = aws_ecs_service.this.id
}

output "task_definition_arn" {
  description = "ARN of the task definition revision the service runs."
  value       = aws_ecs_task_definition.this.arn
}

output "discovery_service_arn" {
  description = "ARN of the Cloud Map service the tasks register in."
  value       = aws_service_discovery_service.this.arn
}

output "discovery_name" {
  description = "Cloud Map service name (= name): tasks resolve as <discovery_name>.<namespace> on the Envoy inbound port."
  value       = aws_service_discovery_service.this.name
}

output "container_names" {
  description = "Names of the task's containers in order: app, envoy, then the tracing sidecar if any."
  value       = [for c in local.containers : c.name]
}

output "envoy_command" {
  description = "The Envoy container's command: with tls, it writes the identity secret's cert, key and ca to the files the config names (owner-only), then execs Envoy."
  value       = local.envoy_start
}
