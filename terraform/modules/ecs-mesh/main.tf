data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  partition    = data.aws_partition.current.partition
  cluster_arn  = var.create_cluster ? aws_ecs_cluster.this[0].arn : var.cluster_arn
  cluster_name = var.create_cluster ? aws_ecs_cluster.this[0].name : element(split("/", var.cluster_arn), 1)

  # Exactly one of the two namespace resources exists.
  namespace_id   = one(concat(aws_service_discovery_private_dns_namespace.this[*].id, aws_service_discovery_http_namespace.this[*].id))
  namespace_arn  = one(concat(aws_service_discovery_private_dns_namespace.this[*].arn, aws_service_discovery_http_namespace.this[*].arn))
  namespace_name = one(concat(aws_service_discovery_private_dns_namespace.this[*].name, aws_service_discovery_http_namespace.this[*].name))

  # The execution role is assumed by ECS itself (image pulls, log delivery): plain service trust,
  # as AWS documents it. The task role, which the containers use, is limited to ECS tasks of
  # this account (confused-deputy guard recommended for task roles).
  execution_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EcsTaskExecutionAssumeRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
    }]
  })

  # ECS itself assumes the Service Connect TLS role to have the Private CA issue the proxies'
  # certificates; limited to this account.
  infrastructure_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EcsInfrastructureAssumeRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ecs.amazonaws.com" }
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })

  task_trust = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EcsTasksAssumeRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Condition = {
        StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        ArnLike = {
          "aws:SourceArn" = "arn:${local.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"
        }
      }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  count = var.create_cluster ? 1 : 0

  name = var.name

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }

  tags = var.tags
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  count = var.namespace.type == "dns_private" ? 1 : 0

  name        = var.namespace.name
  description = "meshgen mesh ${var.name}: one A record set per service version"
  vpc         = var.vpc_id
  tags        = var.tags
}

resource "aws_service_discovery_http_namespace" "this" {
  count = var.namespace.type == "http" ? 1 : 0

  name        = var.namespace.name
  description = "meshgen mesh ${var.name}: ECS Service Connect namespace"
  tags        = var.tags
}

# Tasks of the mesh reach each other only on the mesh ports (each service version's ingress);
# nothing outside the group reaches them. Extra groups can be given to the services.
resource "aws_security_group" "this" {
  name        = "meshgen-${var.name}"
  description = "Traffic between the tasks of mesh ${var.name}"
  vpc_id      = var.vpc_id

  dynamic "ingress" {
    for_each = toset(var.mesh_ports)

    content {
      description = "Mesh port ${ingress.value} from other tasks of the mesh"
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      self        = true
    }
  }

  egress {
    description = "To dependencies, AWS APIs and image registries"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/meshgen/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role" "execution" {
  name_prefix           = "${var.name}-exec-"
  description           = "meshgen ${var.name}: lets ECS pull images and write logs for the mesh's tasks"
  assume_role_policy    = local.execution_trust
  force_detach_policies = true
  tags                  = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role" "task" {
  name_prefix           = "${var.name}-task-"
  description           = "meshgen ${var.name}: identity of the mesh's application and sidecar containers"
  assume_role_policy    = local.task_trust
  force_detach_policies = true
  tags                  = var.tags
}

resource "aws_iam_role_policy_attachment" "task_xray" {
  count = var.enable_xray ? 1 : 0

  role       = aws_iam_role.task.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

# Metrics (ecs-envoy-service's CloudWatch agent): each task's agent scrapes its Envoy's stats
# listener and writes the kept metrics as embedded metric format (EMF) events to this log group;
# CloudWatch extracts them into the metrics namespace. The task role may write to this group only,
# and publish metrics to this namespace only (the condition key cloudwatch:namespace).
resource "aws_cloudwatch_log_group" "metrics" {
  count = var.metrics_namespace == null ? 0 : 1

  name              = "/meshgen/${var.name}/metrics"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_iam_role_policy" "metrics" {
  count = var.metrics_namespace == null ? 0 : 1

  name = "publish-mesh-metrics"
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "PutMetricDataInMeshNamespace"
        Effect    = "Allow"
        Action    = "cloudwatch:PutMetricData"
        Resource  = "*"
        Condition = { StringEquals = { "cloudwatch:namespace" = var.metrics_namespace } }
      },
      {
        Sid      = "WriteEmfToMetricsLogGroup"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.metrics[0].arn}:*", aws_cloudwatch_log_group.metrics[0].arn]
      },
    ]
  })
}

# Service identities (ecs-envoy-service): one secret per service holding its certificate, key and
# trust bundle as JSON {cert, key, ca}. Terraform creates the secret and never a version of it:
# `meshgen aws certs push` puts the value, so no key material is ever in Terraform's state. Each
# service's tasks run with an execution role of their own that may read that one secret (ECS
# reads it at task start and hands it to the Envoy container); the task role, which the
# containers use, cannot read any.
resource "aws_secretsmanager_secret" "identity" {
  for_each = var.identities

  name                    = "meshgen/${var.name}/identity/${each.key}"
  description             = "meshgen ${var.name}: certificate, key and trust bundle of service ${each.key} (JSON cert, key, ca), put by meshgen aws certs push"
  recovery_window_in_days = var.identity_recovery_window_days
  tags                    = merge(var.tags, { "meshgen:identity" = each.key })
}

resource "aws_iam_role" "identity" {
  for_each = var.identities

  name_prefix           = "${substr("${var.name}-${each.key}", 0, 37)}-"
  description           = "meshgen ${var.name}: ECS task execution role of service ${each.key}, which may read its identity secret"
  assume_role_policy    = local.execution_trust
  force_detach_policies = true
  tags                  = merge(var.tags, { "meshgen:identity" = each.key })
}

resource "aws_iam_role_policy_attachment" "identity" {
  for_each = var.identities

  role       = aws_iam_role.identity[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "identity" {
  for_each = var.identities

  name = "read-identity-secret"
  role = aws_iam_role.identity[each.key].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "ReadOwnIdentitySecret"
      Effect   = "Allow"
      Action   = "secretsmanager:GetSecretValue"
      Resource = aws_secretsmanager_secret.identity[each.key].arn
    }]
  })
}

# ECS Service Connect TLS (ecs-service-connect): an AWS Private CA issues the proxies'
# certificates, ECS rotates them. The CA is created here as a root in short-lived certificate
# mode (its key never leaves AWS Private CA; Terraform's state holds its certificate and CSR,
# both public) unless service_connect_tls.private_ca_arn names one. ECS's managed policy for
# this role uses only CAs tagged AmazonECSManaged = true.
locals {
  service_connect_tls = var.service_connect_tls != null
  create_private_ca   = local.service_connect_tls && try(var.service_connect_tls.private_ca_arn, null) == null
  signing_algorithm   = { EC_prime256v1 = "SHA256WITHECDSA", RSA_2048 = "SHA256WITHRSA" }
  private_ca_arn      = local.create_private_ca ? aws_acmpca_certificate_authority.this[0].arn : try(var.service_connect_tls.private_ca_arn, null)
}

resource "aws_acmpca_certificate_authority" "this" {
  count = local.create_private_ca ? 1 : 0

  type                            = "ROOT"
  usage_mode                      = var.service_connect_tls.usage_mode
  permanent_deletion_time_in_days = 7

  certificate_authority_configuration {
    key_algorithm     = var.service_connect_tls.key_algorithm
    signing_algorithm = local.signing_algorithm[var.service_connect_tls.key_algorithm]

    subject {
      organization = "meshgen"
      common_name  = "${var.name} mesh CA"
    }
  }

  tags = merge(var.tags, { AmazonECSManaged = "true" })
}

resource "aws_acmpca_certificate" "root" {
  count = local.create_private_ca ? 1 : 0

  certificate_authority_arn   = aws_acmpca_certificate_authority.this[0].arn
  certificate_signing_request = aws_acmpca_certificate_authority.this[0].certificate_signing_request
  signing_algorithm           = local.signing_algorithm[var.service_connect_tls.key_algorithm]
  template_arn                = "arn:${local.partition}:acm-pca:::template/RootCACertificate/V1"

  validity {
    type  = "DAYS"
    value = var.service_connect_tls.ca_validity_days
  }
}

resource "aws_acmpca_certificate_authority_certificate" "this" {
  count = local.create_private_ca ? 1 : 0

  certificate_authority_arn = aws_acmpca_certificate_authority.this[0].arn
  certificate               = aws_acmpca_certificate.root[0].certificate
  certificate_chain         = aws_acmpca_certificate.root[0].certificate_chain
}

resource "aws_iam_role" "service_connect_tls" {
  count = local.service_connect_tls ? 1 : 0

  name_prefix           = "${var.name}-sc-tls-"
  description           = "meshgen ${var.name}: lets ECS have AWS Private CA issue the Service Connect proxies' certificates"
  assume_role_policy    = local.infrastructure_trust
  force_detach_policies = true
  tags                  = var.tags
}

resource "aws_iam_role_policy_attachment" "service_connect_tls" {
  count = local.service_connect_tls ? 1 : 0

  role       = aws_iam_role.service_connect_tls[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity"
}
