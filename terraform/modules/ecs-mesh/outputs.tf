output "cluster_arn" {
  description = "ARN of the ECS cluster the mesh's services run in (created or passed in)."
  value       = local.cluster_arn
}

output "cluster_name" {
  description = "Name of the ECS cluster the mesh's services run in."
  value       = local.cluster_name
}

output "namespace_id" {
  description = "ID of the Cloud Map namespace (ns-...), the input of ecs-envoy-service."
  value       = local.namespace_id
}

output "namespace_arn" {
  description = "ARN of the Cloud Map namespace, the input of ecs-service-connect."
  value       = local.namespace_arn
}

output "namespace_name" {
  description = "Name of the Cloud Map namespace, e.g. the private DNS domain services resolve under."
  value       = local.namespace_name
}

output "log_group_name" {
  description = "Name of the CloudWatch log group all containers of the mesh log to."
  value       = aws_cloudwatch_log_group.this.name
}

output "execution_role_arn" {
  description = "ARN of the ECS task execution role (image pulls, log delivery)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the ECS task role shared by the mesh's containers."
  value       = aws_iam_role.task.arn
}

output "security_group_id" {
  description = "ID of the security group that lets the mesh's tasks reach each other on mesh_ports only; give it to every service of the mesh."
  value       = aws_security_group.this.id
}
