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

output "identities" {
  description = "Per service of identities: the name and ARN of its identity secret and the ARN of the task execution role that may read it (inputs of ecs-envoy-service)."
  value = {
    for service in var.identities : service => {
      secret_name        = aws_secretsmanager_secret.identity[service].name
      secret_arn         = aws_secretsmanager_secret.identity[service].arn
      execution_role_arn = aws_iam_role.identity[service].arn
    }
  }
}

output "service_connect_tls" {
  description = "The Private CA and the role for ecs-service-connect's service_connect.tls (issuer_cert_authority_arn, role_arn, kms_key); null without service_connect_tls."
  value = local.service_connect_tls ? {
    # Through the imported CA certificate: the CA can issue only once it has one.
    issuer_cert_authority_arn = local.create_private_ca ? aws_acmpca_certificate_authority_certificate.this[0].certificate_authority_arn : local.private_ca_arn
    role_arn                  = aws_iam_role.service_connect_tls[0].arn
    kms_key                   = var.service_connect_tls.kms_key
  } : null
}

output "metrics_log_group_name" {
  description = "Name of the log group the CloudWatch agents write the mesh's metrics to as EMF; null without metrics_namespace."
  value       = one(aws_cloudwatch_log_group.metrics[*].name)
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the mesh's Envoy metrics, as passed in; null without metrics."
  value       = var.metrics_namespace
}
