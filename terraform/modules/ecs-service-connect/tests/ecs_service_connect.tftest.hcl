# Plans Service Connect service versions against a mocked AWS provider.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/users-v1:1" }
  }
}

variables {
  name               = "users-v1"
  cluster_arn        = "arn:aws:ecs:eu-west-1:123456789012:cluster/shop"
  namespace_arn      = "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-abcdefghijklmnop"
  execution_role_arn = "arn:aws:iam::123456789012:role/shop-exec-1"
  task_role_arn      = "arn:aws:iam::123456789012:role/shop-task-1"
  log_group_name     = "/meshgen/shop"
  region             = "eu-west-1"
  subnet_ids         = ["subnet-0123456789abcdef0"]
  app = {
    image = "ghcr.io/example/users:1.4.2"
    port  = 8080
  }
  service_connect = {
    discovery_name              = "users"
    client_aliases              = [{ port = 80, dns_name = "users.shop" }]
    per_request_timeout_seconds = 15
    idle_timeout_seconds        = 300
  }
}

run "discoverable_service_with_alias_and_timeouts" {
  command = plan

  assert {
    condition = (
      aws_ecs_service.this.service_connect_configuration[0].enabled
      && aws_ecs_service.this.service_connect_configuration[0].namespace == "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-abcdefghijklmnop"
    )
    error_message = "Service Connect must be enabled in the given namespace."
  }

  assert {
    condition = (
      aws_ecs_service.this.service_connect_configuration[0].service[0].discovery_name == "users"
      && aws_ecs_service.this.service_connect_configuration[0].service[0].port_name == "app"
      && output.discovery_name == "users"
    )
    error_message = "The service must be discoverable as \"users\" through the port named \"app\"."
  }

  assert {
    condition = (
      aws_ecs_service.this.service_connect_configuration[0].service[0].client_alias[0].port == 80
      && aws_ecs_service.this.service_connect_configuration[0].service[0].client_alias[0].dns_name == "users.shop"
    )
    error_message = "The client alias must be users.shop:80."
  }

  assert {
    condition = (
      aws_ecs_service.this.service_connect_configuration[0].service[0].timeout[0].per_request_timeout_seconds == 15
      && aws_ecs_service.this.service_connect_configuration[0].service[0].timeout[0].idle_timeout_seconds == 300
    )
    error_message = "The timeouts must reach the Service Connect service."
  }

  assert {
    condition     = length(aws_ecs_service.this.service_connect_configuration[0].service[0].tls) == 0
    error_message = "No TLS block without service_connect.tls."
  }

  assert {
    condition = (
      aws_ecs_service.this.service_connect_configuration[0].log_configuration[0].log_driver == "awslogs"
      && aws_ecs_service.this.service_connect_configuration[0].log_configuration[0].options["awslogs-stream-prefix"] == "service-connect"
      && aws_ecs_service.this.service_connect_configuration[0].log_configuration[0].options["awslogs-group"] == "/meshgen/shop"
    )
    error_message = "The Service Connect proxy must log to the mesh's log group under \"service-connect\"."
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings == [{
      name          = "app"
      containerPort = 8080
      hostPort      = 8080
      protocol      = "tcp"
      appProtocol   = "http"
    }]
    error_message = "The app port mapping must be named after port_name and carry appProtocol http."
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.name] == ["app"]
    error_message = "Service Connect injects its own proxy: the task definition holds only the app."
  }

  assert {
    condition     = aws_ecs_service.this.task_definition == "arn:aws:ecs:eu-west-1:123456789012:task-definition/users-v1:1" && output.task_definition_arn == aws_ecs_service.this.task_definition
    error_message = "The service must run the module's task definition."
  }
}

run "client_only_service" {
  command = plan

  variables {
    name = "frontend-v1"
    app = {
      image       = "ghcr.io/example/frontend:3.1.0"
      port        = 3000
      environment = { USERS_URL = "http://users.shop:80" }
    }
    service_connect = {}
  }

  assert {
    condition     = aws_ecs_service.this.service_connect_configuration[0].enabled && length(aws_ecs_service.this.service_connect_configuration[0].service) == 0
    error_message = "A client-only service gets Service Connect without a service block."
  }

  assert {
    condition     = output.discovery_name == null
    error_message = "A client-only service has no discovery name."
  }

  assert {
    condition = { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value } == {
      MESHGEN_SERVICE_VERSION = "frontend-v1"
      USERS_URL               = "http://users.shop:80"
    }
    error_message = "The app environment must be app.environment plus MESHGEN_SERVICE_VERSION."
  }
}

run "grpc_with_tls" {
  command = plan

  variables {
    app = {
      image    = "ghcr.io/example/users:1.4.2"
      port     = 50051
      protocol = "grpc"
    }
    service_connect = {
      discovery_name = "users-grpc"
      port_name      = "grpc"
      tls = {
        role_arn                  = "arn:aws:iam::123456789012:role/service-connect-tls"
        issuer_cert_authority_arn = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
      }
    }
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings[0].appProtocol == "grpc" && jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings[0].name == "grpc"
    error_message = "A gRPC app must declare appProtocol grpc on the named port."
  }

  assert {
    condition     = aws_ecs_service.this.service_connect_configuration[0].service[0].port_name == "grpc"
    error_message = "port_name must reach the Service Connect service."
  }

  assert {
    condition     = length(aws_ecs_service.this.service_connect_configuration[0].service[0].timeout) == 0
    error_message = "No timeout block without timeouts."
  }

  assert {
    condition = (
      aws_ecs_service.this.service_connect_configuration[0].service[0].tls[0].role_arn == "arn:aws:iam::123456789012:role/service-connect-tls"
      && aws_ecs_service.this.service_connect_configuration[0].service[0].tls[0].issuer_cert_authority[0].aws_pca_authority_arn == "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    )
    error_message = "TLS must use the given role and Private CA."
  }
}

run "tcp_has_no_app_protocol" {
  command = plan

  variables {
    app = {
      image    = "ghcr.io/example/db:16"
      port     = 5432
      protocol = "tcp"
    }
    service_connect = {
      discovery_name       = "db"
      idle_timeout_seconds = 0
    }
  }

  assert {
    condition     = !contains(keys(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings[0]), "appProtocol")
    error_message = "A tcp app must not declare an appProtocol."
  }

  assert {
    condition     = aws_ecs_service.this.service_connect_configuration[0].service[0].timeout[0].idle_timeout_seconds == 0
    error_message = "idle_timeout_seconds = 0 (disabled) must be kept."
  }
}

run "rejects_client_aliases_without_discovery_name" {
  command = plan

  variables {
    service_connect = {
      client_aliases = [{ port = 80, dns_name = "users.shop" }]
    }
  }

  expect_failures = [var.service_connect]
}

run "rejects_more_than_one_client_alias" {
  command = plan

  variables {
    service_connect = {
      discovery_name = "users"
      client_aliases = [{ port = 80, dns_name = "users.shop" }, { port = 8080, dns_name = "users" }]
    }
  }

  expect_failures = [var.service_connect]
}

run "rejects_per_request_timeout_for_tcp" {
  command = plan

  variables {
    app = {
      image    = "ghcr.io/example/db:16"
      port     = 5432
      protocol = "tcp"
    }
    service_connect = {
      discovery_name              = "db"
      per_request_timeout_seconds = 5
    }
  }

  expect_failures = [var.service_connect]
}

run "rejects_negative_timeout" {
  command = plan

  variables {
    service_connect = {
      discovery_name       = "users"
      idle_timeout_seconds = -1
    }
  }

  expect_failures = [var.service_connect]
}

run "rejects_unknown_protocol" {
  command = plan

  variables {
    app = {
      image    = "ghcr.io/example/users:1.4.2"
      port     = 8080
      protocol = "websocket"
    }
  }

  expect_failures = [var.app]
}

run "rejects_bad_namespace_arn" {
  command = plan

  variables {
    namespace_arn = "ns-abcdefghijklmnop"
  }

  expect_failures = [var.namespace_arn]
}

run "rejects_a_tls_kms_key_that_is_not_a_key_arn" {
  command = plan

  variables {
    service_connect = {
      discovery_name = "users"
      tls = {
        role_arn                  = "arn:aws:iam::123456789012:role/service-connect-tls"
        issuer_cert_authority_arn = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
        kms_key                   = "alias/mesh"
      }
    }
  }

  expect_failures = [var.service_connect]
}
