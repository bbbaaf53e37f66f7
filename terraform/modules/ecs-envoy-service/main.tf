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

  default_tracing_images = {
    xray = "public.ecr.aws/xray/aws-xray-daemon:3.x"
    otel = "public.ecr.aws/aws-observability/aws-otel-collector:latest"
    none = null
  }
  tracing_image = var.tracing.image != null ? var.tracing.image : local.default_tracing_images[var.tracing.kind]

  log_options = {
    "awslogs-group"  = var.log_group_name
    "awslogs-region" = var.region
  }

  # The stock envoyproxy/envoy image has no curl or wget, so the default check speaks HTTP
  # through bash's /dev/tcp: healthy once the admin /ready endpoint answers 200 (server LIVE).
  envoy_health_check_command = coalesce(var.envoy.health_check_command, [
    "CMD", "bash", "-c",
    "exec 3<>/dev/tcp/127.0.0.1/${var.envoy.admin_port} && printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '",
  ])

  app_container = merge(
    {
      name      = "app"
      image     = var.app.image
      essential = true
      environment = [
        for key, value in merge(var.app.environment, { MESHGEN_SERVICE_VERSION = var.name }) : { name = key, value = value }
      ]
      portMappings = [{ containerPort = var.app.port, hostPort = var.app.port, protocol = "tcp" }]
      dependsOn    = [{ containerName = "envoy", condition = "HEALTHY" }]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "app" })
      }
    },
    var.app.command == null ? {} : { command = var.app.command },
  )

  # Mutual TLS: ECS reads the service's identity secret at task start (with the execution role)
  # and hands each JSON key to the Envoy container as an environment variable; the container's
  # command writes them, owner-only, to the files the config names, unsets them and execs Envoy.
  # Nothing of the key is in the task definition, only the secret's ARN.
  tls_variables = {
    MESHGEN_TLS_CERT = { key = "cert", file = try(var.tls.cert_file, null) }
    MESHGEN_TLS_KEY  = { key = "key", file = try(var.tls.key_file, null) }
    MESHGEN_TLS_CA   = { key = "ca", file = try(var.tls.ca_file, null) }
  }
  tls_secrets = var.tls == null ? [] : [
    for name, v in local.tls_variables : { name = name, valueFrom = "${var.tls.secret_arn}:${v.key}::" }
  ]
  tls_directories = var.tls == null ? [] : distinct([for v in values(local.tls_variables) : regex("^(.*)/[^/]+$", v.file)[0]])
  tls_steps = var.tls == null ? [] : concat(
    ["umask 077", "mkdir -p ${join(" ", local.tls_directories)}"],
    [for name, v in local.tls_variables : "printf '%s' \"$${${name}:?}\" > ${v.file}"],
    ["unset ${join(" ", keys(local.tls_variables))}"],
  )
  envoy_start = join(" && ", concat(local.tls_steps, [
    "echo \"$ENVOY_CONFIG_B64\" | base64 -d > /tmp/envoy.yaml",
    "exec envoy -c /tmp/envoy.yaml --log-level ${var.envoy.log_level}",
  ]))

  envoy_container = merge(
    {
      name         = "envoy"
      image        = var.envoy.image
      essential    = true
      command      = ["/bin/sh", "-c", local.envoy_start]
      environment  = [{ name = "ENVOY_CONFIG_B64", value = base64encode(var.envoy.config) }]
      portMappings = [{ containerPort = var.envoy.inbound_port, hostPort = var.envoy.inbound_port, protocol = "tcp" }]
      healthCheck = {
        command     = local.envoy_health_check_command
        interval    = 5
        timeout     = 2
        retries     = 3
        startPeriod = 10
      }
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "envoy" })
      }
    },
    var.tls == null ? {} : { secrets = local.tls_secrets },
    var.envoy.user == null ? {} : { user = var.envoy.user },
  )

  tracing_containers = {
    none = []
    xray = [merge(
      {
        name         = "xray-daemon"
        image        = local.tracing_image
        essential    = false
        environment  = [{ name = "AWS_REGION", value = var.region }]
        portMappings = [{ containerPort = 2000, hostPort = 2000, protocol = "udp" }]
        logConfiguration = {
          logDriver = "awslogs"
          options   = merge(local.log_options, { "awslogs-stream-prefix" = "xray" })
        }
      },
      var.tracing.command == null ? {} : { command = var.tracing.command },
    )]
    otel = [{
      name        = "otel-collector"
      image       = local.tracing_image
      essential   = false
      command     = coalesce(var.tracing.command, ["--config=/etc/ecs/ecs-default-config.yaml"])
      environment = [{ name = "AWS_REGION", value = var.region }]
      portMappings = [
        { containerPort = 4317, hostPort = 4317, protocol = "tcp" },
        { containerPort = 4318, hostPort = 4318, protocol = "tcp" },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options   = merge(local.log_options, { "awslogs-stream-prefix" = "otel" })
      }
    }]
  }

  # Metrics: a CloudWatch agent scrapes this task's Envoy stats listener over the task's loopback
  # (the listener binds every address of the task) and publishes EMF. Its two configurations are
  # environment variables, as the Envoy config is: nothing secret, small, and a change rolls the
  # tasks with the task definition (SSM parameters would add a resource per version and execution
  # role permissions for no gain). Kept: each service version's inbound requests in total and by
  # response code class (5xx errors: envoy_response_code_class = 5), dimensions service and version
  # (and the class): a handful of metrics per version whatever the traffic. Request times are
  # Envoy histograms, which the agent drops (it takes counters, gauges and summaries only).
  # The connection managers that answer callers: a sidecar's inbound ones, and a gateway's
  # listeners, should a gateway run on this module (its labels: service = the gateway, version = gateway).
  metrics_inbound_prefixes = "^(inbound_http|inbound_plaintext_http|gateway_http|gateway_https)$"
  metrics_scrape_target    = var.metrics == null ? null : "127.0.0.1:${var.metrics.stats_port}"
  prometheus_config = var.metrics == null ? null : yamlencode({
    global = {
      scrape_interval = "${var.metrics.scrape_interval}s"
      scrape_timeout  = "10s"
    }
    scrape_configs = [{
      job_name       = "meshgen-envoy"
      metrics_path   = "/stats/prometheus"
      honor_labels   = true
      static_configs = [{ targets = [local.metrics_scrape_target] }]
      # Only the series published are kept, so the EMF log holds nothing else of Envoy's stats.
      metric_relabel_configs = [{
        source_labels = ["__name__", "envoy_http_conn_manager_prefix"]
        regex         = "envoy_http_downstream_rq_(total|xx);(inbound_http|inbound_plaintext_http|gateway_http|gateway_https)"
        action        = "keep"
      }]
    }]
  })
  agent_config = var.metrics == null ? null : jsonencode({
    agent = { region = var.region }
    logs = {
      force_flush_interval = 5
      metrics_collected = {
        prometheus = {
          log_group_name         = var.metrics.log_group_name
          prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
          emf_processor = {
            metric_namespace = var.metrics.namespace
            metric_declaration = [
              {
                source_labels    = ["envoy_http_conn_manager_prefix"]
                label_matcher    = local.metrics_inbound_prefixes
                dimensions       = [["service", "version"]]
                metric_selectors = ["^envoy_http_downstream_rq_total$"]
              },
              {
                source_labels    = ["envoy_http_conn_manager_prefix"]
                label_matcher    = local.metrics_inbound_prefixes
                dimensions       = [["service", "version", "envoy_response_code_class"]]
                metric_selectors = ["^envoy_http_downstream_rq_xx$"]
              },
            ]
          }
        }
      }
    }
  })
  metrics_containers = var.metrics == null ? [] : [{
    name      = "cloudwatch-agent"
    image     = var.metrics.image
    essential = false
    environment = [
      { name = "CW_CONFIG_CONTENT", value = local.agent_config },
      { name = "PROMETHEUS_CONFIG_CONTENT", value = local.prometheus_config },
    ]
    dependsOn = [{ containerName = "envoy", condition = "HEALTHY" }]
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { "awslogs-stream-prefix" = "cwagent" })
    }
  }]

  containers            = concat([local.app_container, local.envoy_container], local.tracing_containers[var.tracing.kind], local.metrics_containers)
  container_definitions = jsonencode(local.containers)
}

resource "aws_service_discovery_service" "this" {
  name        = var.name
  description = "meshgen ${var.name}: the service version's tasks (Envoy inbound port ${var.envoy.inbound_port})"

  dns_config {
    namespace_id   = var.namespace_id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  health_check_custom_config {
    failure_threshold = 1
  }

  tags = var.tags
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

  lifecycle {
    precondition {
      condition     = length(local.container_definitions) <= 65536
      error_message = "The container definitions are ${length(local.container_definitions)} characters, over ECS's 64 KiB task definition limit; shorten envoy.config or app.environment."
    }
  }
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

  service_registries {
    registry_arn = aws_service_discovery_service.this.arn
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}
