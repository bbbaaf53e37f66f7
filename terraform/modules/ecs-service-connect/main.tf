locals {
  # Task memory (MiB) Fargate accepts for each task CPU value.
  fargate_memory = {
    "256"   = [512, 1024, 2048]
    "512"   = range(1024, 4097, 1024)
    "1024"  = range(2048, 8193, 1024)
    "2048"  = range(4096, 16385, 1024)
    "4096"  = range(8192, 30721, 1024)
    "8192"  = range(16384, 61441, 4096)
    "16384" = range(32768, 122881, 8192)
  }

  log_options = {
    "awslogs-group"  = var.log_group_name
    "awslogs-region" = var.region
  }

  # Service Connect's proxy reads appProtocol to pick HTTP, HTTP/2 or gRPC handling; plain TCP has none.
  port_mapping = merge(
    {
      name          = var.service_connect.port_name
      containerPort = var.app.port
      hostPort      = var.app.port
      protocol      = "tcp"
    },
    var.app.protocol == "tcp" ? {} : { appProtocol = var.app.protocol },
  )

  app_container = merge(
    {
      name      = "app"
      image     = var.app.image
      essential = true
      environment = [
        for key, value in merge(var.app.environment, { MESHGEN_SERVICE_VERSION = var.name }) : { name = key, value = value }
      ]
      portMappings = [local.port_mapping]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "app" })
      }
    },
    var.app.command == null ? {} : { command = var.app.command },
  )

  container_definitions = jsonencode([local.app_container])

  discoverable = var.service_connect.discovery_name != null
  has_timeout  = var.service_connect.per_request_timeout_seconds != null || var.service_connect.idle_timeout_seconds != null
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn
  container_definitions    = local.container_definitions

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name                   = var.name
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.this.arn
  launch_type            = "FARGATE"
  desired_count          = var.desired_count
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  service_connect_configuration {
    enabled   = true
    namespace = var.namespace_arn

    log_configuration {
      log_driver = "awslogs"
      options    = merge(local.log_options, { "awslogs-stream-prefix" = "service-connect" })
    }

    # Without a discovery name the service is client-only: it gets the proxy and the
    # namespace's endpoints, but registers nothing others could call.
    dynamic "service" {
      for_each = local.discoverable ? [var.service_connect] : []

      content {
        port_name      = service.value.port_name
        discovery_name = service.value.discovery_name

        dynamic "client_alias" {
          for_each = service.value.client_aliases

          content {
            port     = client_alias.value.port
            dns_name = client_alias.value.dns_name
          }
        }

        dynamic "timeout" {
          for_each = local.has_timeout ? [service.value] : []

          content {
            per_request_timeout_seconds = timeout.value.per_request_timeout_seconds
            idle_timeout_seconds        = timeout.value.idle_timeout_seconds
          }
        }

        dynamic "tls" {
          for_each = service.value.tls == null ? [] : [service.value.tls]

          content {
            kms_key  = tls.value.kms_key
            role_arn = tls.value.role_arn

            issuer_cert_authority {
              aws_pca_authority_arn = tls.value.issuer_cert_authority_arn
            }
          }
        }
      }
    }
  }

  tags = var.tags
}
