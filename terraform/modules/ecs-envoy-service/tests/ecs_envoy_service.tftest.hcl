# Plans one service version (users-v2) with its Envoy sidecar against a mocked AWS provider.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_service_discovery_service" {
    defaults = { arn = "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-users2aaaaaaaaaa" }
  }

  mock_resource "aws_ecs_task_definition" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/users-v2:1" }
  }
}

variables {
  name               = "users-v2"
  cluster_arn        = "arn:aws:ecs:eu-west-1:123456789012:cluster/shop"
  namespace_id       = "ns-abcdefghijklmnop"
  execution_role_arn = "arn:aws:iam::123456789012:role/shop-exec-1"
  task_role_arn      = "arn:aws:iam::123456789012:role/shop-task-1"
  log_group_name     = "/meshgen/shop"
  region             = "eu-west-1"
  subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  security_group_ids = ["sg-0123456789abcdef0"]
  app = {
    image       = "ghcr.io/example/users:2.0.0"
    port        = 8080
    environment = { LOG_LEVEL = "debug" }
  }
  envoy = {
    config = <<-YAML
      admin:
        address: { socket_address: { address: 127.0.0.1, port_value: 15000 } }
      static_resources:
        listeners: []
        clusters: []
    YAML
  }
}

run "task_with_app_envoy_and_xray" {
  command = plan

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.name] == ["app", "envoy", "xray-daemon"]
    error_message = "The task must run app, envoy and the X-Ray daemon (tracing defaults to xray)."
  }

  assert {
    condition     = output.container_names == ["app", "envoy", "xray-daemon"]
    error_message = "container_names must list the task's containers in order."
  }

  assert {
    condition = one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment : e.value if e.name == "ENVOY_CONFIG_B64"
    ]) == base64encode(var.envoy.config)
    error_message = "The envoy container must get the configuration as ENVOY_CONFIG_B64 = base64 of envoy.config."
  }

  assert {
    condition     = base64decode(one([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment : e.value if e.name == "ENVOY_CONFIG_B64"])) == var.envoy.config
    error_message = "ENVOY_CONFIG_B64 must decode back to the exact configuration."
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].command == [
      "/bin/sh", "-c", "echo \"$ENVOY_CONFIG_B64\" | base64 -d > /tmp/envoy.yaml && exec envoy -c /tmp/envoy.yaml --log-level warn",
    ]
    error_message = "The envoy container must decode its configuration and exec envoy on it."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].image == "envoyproxy/envoy:v1.40-latest"
    error_message = "The default Envoy image must be envoyproxy/envoy:v1.40-latest."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].portMappings[0].containerPort == 15006
    error_message = "Envoy must expose the inbound port 15006 by default."
  }

  assert {
    condition     = strcontains(join(" ", jsondecode(aws_ecs_task_definition.this.container_definitions)[1].healthCheck.command), "/dev/tcp/127.0.0.1/15000") && strcontains(join(" ", jsondecode(aws_ecs_task_definition.this.container_definitions)[1].healthCheck.command), "GET /ready")
    error_message = "The Envoy health check must ask the admin port's /ready."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].dependsOn == [{ containerName = "envoy", condition = "HEALTHY" }]
    error_message = "The app must start only once Envoy is HEALTHY."
  }

  assert {
    condition = { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value } == {
      LOG_LEVEL               = "debug"
      MESHGEN_SERVICE_VERSION = "users-v2"
    }
    error_message = "The app environment must be app.environment plus MESHGEN_SERVICE_VERSION."
  }

  assert {
    condition     = !contains(keys(jsondecode(aws_ecs_task_definition.this.container_definitions)[0]), "command")
    error_message = "Without app.command the image's own command must be kept (no command key)."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings[0].containerPort == 8080
    error_message = "The app container must map app.port."
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.logConfiguration.options["awslogs-stream-prefix"]] == ["app", "envoy", "xray"]
    error_message = "Each container must log to its own stream prefix."
  }

  assert {
    condition     = alltrue([for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.logConfiguration.options["awslogs-group"] == "/meshgen/shop" && c.logConfiguration.options["awslogs-region"] == "eu-west-1"])
    error_message = "All containers must log to the mesh's log group in the given region."
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[2].image == "public.ecr.aws/xray/aws-xray-daemon:3.x"
      && jsondecode(aws_ecs_task_definition.this.container_definitions)[2].portMappings == [{ containerPort = 2000, hostPort = 2000, protocol = "udp" }]
      && jsondecode(aws_ecs_task_definition.this.container_definitions)[2].essential == false
    )
    error_message = "The X-Ray daemon must listen on UDP 2000 and not be essential."
  }

  assert {
    condition = (
      aws_ecs_task_definition.this.family == "users-v2" && aws_ecs_task_definition.this.network_mode == "awsvpc"
      && aws_ecs_task_definition.this.cpu == "512" && aws_ecs_task_definition.this.memory == "1024"
      && aws_ecs_task_definition.this.requires_compatibilities == toset(["FARGATE"])
    )
    error_message = "The task definition must be a Fargate awsvpc family named after the version, 512 CPU / 1024 MiB by default."
  }

  assert {
    condition     = aws_service_discovery_service.this.name == "users-v2" && output.discovery_name == "users-v2"
    error_message = "The Cloud Map service must be named after the service version."
  }

  assert {
    condition = (
      aws_service_discovery_service.this.dns_config[0].namespace_id == "ns-abcdefghijklmnop"
      && aws_service_discovery_service.this.dns_config[0].routing_policy == "MULTIVALUE"
      && aws_service_discovery_service.this.dns_config[0].dns_records[0].type == "A"
      && aws_service_discovery_service.this.dns_config[0].dns_records[0].ttl == 10
    )
    error_message = "Cloud Map must publish MULTIVALUE A records with TTL 10 in the namespace."
  }

  assert {
    condition     = aws_ecs_service.this.service_registries[0].registry_arn == "arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-users2aaaaaaaaaa"
    error_message = "The ECS service must register its tasks in the Cloud Map service."
  }

  assert {
    condition = (
      aws_ecs_service.this.launch_type == "FARGATE" && aws_ecs_service.this.desired_count == 1
      && aws_ecs_service.this.enable_execute_command == false
      && aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
      && aws_ecs_service.this.network_configuration[0].subnets == toset(["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"])
      && aws_ecs_service.this.network_configuration[0].assign_public_ip == false
    )
    error_message = "The ECS service must be a Fargate service with circuit-breaker rollback in the given subnets."
  }
}

run "otel_collector_and_custom_ports" {
  command = plan

  variables {
    tracing = { kind = "otel" }
    app = {
      image   = "ghcr.io/example/users:2.0.0"
      port    = 9000
      command = ["users", "--port", "9000"]
    }
    envoy = {
      config       = "admin: {}\n"
      inbound_port = 16000
      admin_port   = 16001
      log_level    = "info"
    }
    cpu           = 1024
    memory        = 3072
    desired_count = 3
  }

  assert {
    condition     = output.container_names == ["app", "envoy", "otel-collector"]
    error_message = "tracing.kind = otel must run the ADOT collector instead of the X-Ray daemon."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[2].image == "public.ecr.aws/aws-observability/aws-otel-collector:latest"
    error_message = "The default collector image must be the ADOT collector."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command == ["users", "--port", "9000"]
    error_message = "app.command must reach the app container."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].portMappings[0].containerPort == 16000
    error_message = "envoy.inbound_port must be the Envoy port mapping."
  }

  assert {
    condition     = strcontains(join(" ", jsondecode(aws_ecs_task_definition.this.container_definitions)[1].healthCheck.command), "/dev/tcp/127.0.0.1/16001")
    error_message = "The health check must follow envoy.admin_port."
  }

  assert {
    condition     = endswith(jsondecode(aws_ecs_task_definition.this.container_definitions)[1].command[2], "--log-level info")
    error_message = "envoy.log_level must reach the Envoy command line."
  }

  assert {
    condition     = aws_ecs_task_definition.this.cpu == "1024" && aws_ecs_task_definition.this.memory == "3072" && aws_ecs_service.this.desired_count == 3
    error_message = "cpu, memory and desired_count must reach the task definition and the service."
  }
}

run "tracing_none_drops_the_sidecar" {
  command = plan

  variables {
    tracing = { kind = "none" }
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.name] == ["app", "envoy"]
    error_message = "tracing.kind = none must leave only app and envoy."
  }
}

run "rejects_bad_app_port" {
  command = plan

  variables {
    app = {
      image = "ghcr.io/example/users:2.0.0"
      port  = 70000
    }
  }

  expect_failures = [var.app]
}

run "rejects_non_fargate_cpu" {
  command = plan

  variables {
    cpu = 768
  }

  expect_failures = [var.cpu]
}

run "rejects_memory_fargate_cannot_pair_with_cpu" {
  command = plan

  variables {
    cpu    = 256
    memory = 4096
  }

  expect_failures = [var.memory]
}

run "rejects_bad_subnet_id" {
  command = plan

  variables {
    subnet_ids = ["sg-0123456789abcdef0"]
  }

  expect_failures = [var.subnet_ids]
}

run "rejects_empty_subnets" {
  command = plan

  variables {
    subnet_ids = []
  }

  expect_failures = [var.subnet_ids]
}

run "rejects_bad_security_group_id" {
  command = plan

  variables {
    security_group_ids = ["subnet-0123456789abcdef0"]
  }

  expect_failures = [var.security_group_ids]
}

run "rejects_name_that_is_not_a_dns_label" {
  command = plan

  variables {
    name = "Users_v2"
  }

  expect_failures = [var.name]
}

run "rejects_oversized_envoy_config" {
  command = plan

  variables {
    envoy = {
      # 1000 lines of 41 characters: 41000 > 40000.
      config = join("", [for i in range(1000) : "# padding padding padding padding paddin\n"])
    }
  }

  expect_failures = [var.envoy]
}

run "rejects_empty_envoy_config" {
  command = plan

  variables {
    envoy = {
      config = "  \n"
    }
  }

  expect_failures = [var.envoy]
}

run "rejects_unknown_tracing_kind" {
  command = plan

  variables {
    tracing = { kind = "zipkin" }
  }

  expect_failures = [var.tracing]
}

# Mutual TLS: the identity secret reaches the Envoy container through ECS `secrets` (its ARN and
# JSON keys only), and the container's command writes each to the file the config names.
run "tls_from_the_identity_secret" {
  command = plan

  variables {
    envoy = {
      config = <<-JSON
        {"static_resources":{"secrets":[
          {"name":"identity","tls_certificate":{"certificate_chain":{"filename":"/dev/shm/meshgen/tls/users.v2.users-v2/current/cert.pem"},"private_key":{"filename":"/dev/shm/meshgen/tls/users.v2.users-v2/current/key.pem"}}},
          {"name":"trust","validation_context":{"trusted_ca":{"filename":"/dev/shm/meshgen/tls/trust/current/ca.pem"}}}]}}
      JSON
    }
    tls = {
      secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf"
      cert_file  = "/dev/shm/meshgen/tls/users.v2.users-v2/current/cert.pem"
      key_file   = "/dev/shm/meshgen/tls/users.v2.users-v2/current/key.pem"
      ca_file    = "/dev/shm/meshgen/tls/trust/current/ca.pem"
    }
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].secrets == [
      { name = "MESHGEN_TLS_CA", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf:ca::" },
      { name = "MESHGEN_TLS_CERT", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf:cert::" },
      { name = "MESHGEN_TLS_KEY", valueFrom = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf:key::" },
    ]
    error_message = "The envoy container must get the secret's JSON keys ca, cert and key, by ARN."
  }

  assert {
    condition     = !strcontains(aws_ecs_task_definition.this.container_definitions, "BEGIN") && !contains(keys(jsondecode(aws_ecs_task_definition.this.container_definitions)[0]), "secrets")
    error_message = "No key material in the task definition, and no secret for the app container."
  }

  assert {
    condition = output.envoy_command == join(" && ", [
      "umask 077",
      "mkdir -p /dev/shm/meshgen/tls/trust/current /dev/shm/meshgen/tls/users.v2.users-v2/current",
      "printf '%s' \"$${MESHGEN_TLS_CA:?}\" > /dev/shm/meshgen/tls/trust/current/ca.pem",
      "printf '%s' \"$${MESHGEN_TLS_CERT:?}\" > /dev/shm/meshgen/tls/users.v2.users-v2/current/cert.pem",
      "printf '%s' \"$${MESHGEN_TLS_KEY:?}\" > /dev/shm/meshgen/tls/users.v2.users-v2/current/key.pem",
      "unset MESHGEN_TLS_CA MESHGEN_TLS_CERT MESHGEN_TLS_KEY",
      "echo \"$ENVOY_CONFIG_B64\" | base64 -d > /tmp/envoy.yaml",
      "exec envoy -c /tmp/envoy.yaml --log-level warn",
    ])
    error_message = "The command must write cert, key and CA owner-only where the config reads them, unset them, then exec Envoy."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[1].command == ["/bin/sh", "-c", output.envoy_command]
    error_message = "The envoy container must run that command."
  }
}

run "no_secrets_without_tls" {
  command = plan

  assert {
    condition     = !contains(keys(jsondecode(aws_ecs_task_definition.this.container_definitions)[1]), "secrets")
    error_message = "Without tls the envoy container has no secrets."
  }
}

run "rejects_a_config_with_an_identity_but_no_tls" {
  command = plan

  variables {
    envoy = {
      config = "{\"static_resources\":{\"secrets\":[{\"name\":\"identity\",\"tls_certificate\":{\"private_key\":{\"filename\":\"/dev/shm/k.pem\"}}}]}}"
    }
  }

  expect_failures = [var.tls]
}

run "a_client_certificate_baked_into_the_image_needs_no_tls" {
  command = plan

  variables {
    envoy = {
      image  = "registry.example/envoy-with-client-cert:1"
      config = "{\"static_resources\":{\"clusters\":[{\"name\":\"external.bank\",\"transport_socket\":{\"typed_config\":{\"common_tls_context\":{\"tls_certificates\":[{\"private_key\":{\"filename\":\"/etc/bank/key.pem\"}}]}}}}]}}"
    }
  }

  assert {
    condition     = !contains(keys(jsondecode(aws_ecs_task_definition.this.container_definitions)[1]), "secrets")
    error_message = "A config with no meshgen identity needs no tls."
  }
}

run "rejects_tls_files_the_config_does_not_name" {
  command = plan

  variables {
    tls = {
      secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf"
      cert_file  = "/dev/shm/meshgen/tls/users/cert.pem"
      key_file   = "/dev/shm/meshgen/tls/users/key.pem"
      ca_file    = "/dev/shm/meshgen/tls/trust/ca.pem"
    }
  }

  expect_failures = [var.tls]
}

run "rejects_a_tls_path_the_shell_would_misread" {
  command = plan

  variables {
    envoy = { config = "{\"a\":\"/tls/c.pem\",\"b\":\"/tls/k.pem\",\"c\":\"/tls/ca dir/ca.pem\"}" }
    tls = {
      secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf"
      cert_file  = "/tls/c.pem"
      key_file   = "/tls/k.pem"
      ca_file    = "/tls/ca dir/ca.pem"
    }
  }

  expect_failures = [var.tls]
}

run "rejects_a_tls_secret_that_is_not_a_secret_arn" {
  command = plan

  variables {
    envoy = { config = "{\"a\":\"/tls/c.pem\",\"b\":\"/tls/k.pem\",\"c\":\"/tls/ca.pem\"}" }
    tls = {
      secret_arn = "meshgen/shop/identity/users"
      cert_file  = "/tls/c.pem"
      key_file   = "/tls/k.pem"
      ca_file    = "/tls/ca.pem"
    }
  }

  expect_failures = [var.tls]
}

run "no_cloudwatch_agent_without_metrics" {
  command = plan

  assert {
    condition     = !contains([for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.name], "cloudwatch-agent")
    error_message = "Without metrics the task must run no CloudWatch agent."
  }
}

run "cloudwatch_agent_scrapes_envoy_stats" {
  command = plan

  variables {
    metrics = {
      namespace      = "meshgen/shop"
      log_group_name = "/meshgen/shop/metrics"
      stats_port     = 15190
    }
  }

  assert {
    condition     = [for c in jsondecode(aws_ecs_task_definition.this.container_definitions) : c.name] == ["app", "envoy", "xray-daemon", "cloudwatch-agent"]
    error_message = "With metrics the task must add a cloudwatch-agent container."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[3].image == "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300064.1b1344" && !jsondecode(aws_ecs_task_definition.this.container_definitions)[3].essential
    error_message = "The agent must run the pinned default image, and not be essential (metrics stopping must not stop the service)."
  }

  assert {
    condition = yamldecode(one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "PROMETHEUS_CONFIG_CONTENT"
    ])).scrape_configs[0].static_configs[0].targets == ["127.0.0.1:15190"]
    error_message = "The agent must scrape the task's own Envoy stats listener on the loopback, at metrics.stats_port."
  }

  assert {
    condition = yamldecode(one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "PROMETHEUS_CONFIG_CONTENT"
    ])).scrape_configs[0].metrics_path == "/stats/prometheus"
    error_message = "The agent must scrape /stats/prometheus."
  }

  assert {
    condition = jsondecode(one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "CW_CONFIG_CONTENT"
    ])).logs.metrics_collected.prometheus.emf_processor.metric_namespace == "meshgen/shop"
    error_message = "The agent must publish under metrics.namespace."
  }

  assert {
    condition = jsondecode(one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "CW_CONFIG_CONTENT"
    ])).logs.metrics_collected.prometheus.log_group_name == "/meshgen/shop/metrics"
    error_message = "The agent must write its EMF events to metrics.log_group_name."
  }

  assert {
    condition = jsondecode(one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "CW_CONFIG_CONTENT"
    ])).logs.metrics_collected.prometheus.prometheus_config_path == "env:PROMETHEUS_CONFIG_CONTENT"
    error_message = "The agent must read the scrape configuration from PROMETHEUS_CONFIG_CONTENT."
  }

  assert {
    condition = [
      for d in jsondecode(one([
        for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "CW_CONFIG_CONTENT"
      ])).logs.metrics_collected.prometheus.emf_processor.metric_declaration : d.dimensions
    ] == [[["service", "version"]], [["service", "version", "envoy_response_code_class"]]]
    error_message = "Dimensions must stay bounded: service and version, and the response code class for rq_xx."
  }

  assert {
    condition     = jsondecode(aws_ecs_task_definition.this.container_definitions)[3].logConfiguration.options["awslogs-stream-prefix"] == "cwagent"
    error_message = "The agent must log to its own stream prefix."
  }
}

run "rejects_a_stats_port_taken_by_envoy" {
  command = plan

  variables {
    metrics = {
      namespace      = "meshgen/shop"
      log_group_name = "/meshgen/shop/metrics"
      stats_port     = 15000
    }
  }

  expect_failures = [var.metrics]
}

run "cloudwatch_agent_keeps_only_the_inbound_request_counts" {
  command = plan

  variables {
    metrics = {
      namespace      = "meshgen/shop"
      log_group_name = "/meshgen/shop/metrics"
    }
  }

  assert {
    condition = yamldecode(one([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "PROMETHEUS_CONFIG_CONTENT"
    ])).scrape_configs[0].static_configs[0].targets == ["127.0.0.1:15090"]
    error_message = "The default stats port is 15090, meshgen's (Istio's)."
  }

  assert {
    condition = alltrue([
      for series in [
        "envoy_http_downstream_rq_total;inbound_http",
        "envoy_http_downstream_rq_xx;inbound_plaintext_http",
        "envoy_http_downstream_rq_xx;gateway_https",
      ] : can(regex("^(?:${yamldecode(one([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "PROMETHEUS_CONFIG_CONTENT"])).scrape_configs[0].metric_relabel_configs[0].regex})$", series))
    ])
    error_message = "The scrape must keep the request counts of the connection managers that answer callers."
  }

  assert {
    condition = !anytrue([
      for series in [
        "envoy_http_downstream_rq_total;outbound_http",
        "envoy_cluster_upstream_rq_total;",
        "envoy_http_downstream_rq_time_bucket;inbound_http",
      ] : can(regex("^(?:${yamldecode(one([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[3].environment : e.value if e.name == "PROMETHEUS_CONFIG_CONTENT"])).scrape_configs[0].metric_relabel_configs[0].regex})$", series))
    ])
    error_message = "The scrape must drop outbound counts (they would double every request) and every other stat."
  }
}
