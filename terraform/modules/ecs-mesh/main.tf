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
