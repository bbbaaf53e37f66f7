variable "name" {
  description = "Name of the service version, \"<service>-<version>\"; names the ECS service, the task family and the Cloud Map service."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.name))
    error_message = "name must be a DNS label: 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen (e.g. \"users-v2\")."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster to run the service in (ecs-mesh output cluster_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/.+$", var.cluster_arn))
    error_message = "cluster_arn must be an ECS cluster ARN (arn:aws:ecs:<region>:<account>:cluster/<name>)."
  }
}

variable "namespace_id" {
  description = "ID of the Cloud Map private DNS namespace the service registers in (ecs-mesh output namespace_id)."
  type        = string

  validation {
    condition     = can(regex("^ns-[a-z0-9]+$", var.namespace_id))
    error_message = "namespace_id must be a Cloud Map namespace ID such as \"ns-abcdefghijklmnop\"."
  }
}

variable "execution_role_arn" {
  description = "ARN of the ECS task execution role (ecs-mesh output execution_role_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.execution_role_arn))
    error_message = "execution_role_arn must be an IAM role ARN."
  }
}

variable "task_role_arn" {
  description = "ARN of the IAM role the task's containers run as (ecs-mesh output task_role_arn)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.task_role_arn))
    error_message = "task_role_arn must be an IAM role ARN."
  }
}

variable "log_group_name" {
  description = "CloudWatch log group the containers log to (ecs-mesh output log_group_name)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_./#-]{1,512}$", var.log_group_name))
    error_message = "log_group_name must be 1-512 characters of letters, digits, '_', '-', '/', '.' and '#'."
  }
}

variable "region" {
  description = "AWS region of the log group, e.g. \"eu-west-1\" (used by the awslogs driver and the tracing sidecar)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as \"eu-west-1\"."
  }
}

variable "subnet_ids" {
  description = "Subnets the tasks' network interfaces are placed in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && length(var.subnet_ids) <= 16 && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8}([0-9a-f]{9})?$", id))])
    error_message = "subnet_ids must hold 1-16 subnet IDs such as \"subnet-0123456789abcdef0\"."
  }
}

variable "security_group_ids" {
  description = "Security groups of the tasks' network interfaces; empty means the VPC's default security group."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.security_group_ids) <= 5 && alltrue([for id in var.security_group_ids : can(regex("^sg-[0-9a-f]{8}([0-9a-f]{9})?$", id))])
    error_message = "security_group_ids must be at most 5 security group IDs such as \"sg-0123456789abcdef0\"."
  }
}

variable "assign_public_ip" {
  description = "Whether tasks get a public IP (needed in public subnets without a NAT gateway to pull images)."
  type        = bool
  default     = false
}

variable "desired_count" {
  description = "Number of tasks to keep running."
  type        = number
  default     = 1

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number, 0 or more."
  }
}

variable "cpu" {
  description = "Fargate task CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be a Fargate CPU value: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "memory" {
  description = "Fargate task memory in MiB; must be a combination Fargate allows with cpu (e.g. 512-2048 for 256, 1024-4096 for 512)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512
    error_message = "memory must be at least 512 MiB."
  }

  validation {
    # Checked only for a valid cpu: a wrong cpu is reported by its own rule.
    condition     = !contains(keys(local.fargate_memory), tostring(var.cpu)) || contains(lookup(local.fargate_memory, tostring(var.cpu), []), var.memory)
    error_message = "memory is not a Fargate combination with this cpu: 256 -> 512, 1024, 2048; 512 -> 1024-4096; 1024 -> 2048-8192; 2048 -> 4096-16384 (1024 steps); 4096 -> 8192-30720 (1024 steps); 8192 -> 16384-61440 (4096 steps); 16384 -> 32768-122880 (8192 steps)."
  }
}

variable "app" {
  description = "The application container: image, the port it serves on (behind Envoy), optional command and environment."
  type = object({
    image       = string
    port        = number
    command     = optional(list(string))
    environment = optional(map(string), {})
  })

  validation {
    condition     = length(trimspace(var.app.image)) > 0
    error_message = "app.image must not be empty."
  }

  validation {
    condition     = var.app.port >= 1 && var.app.port <= 65535 && floor(var.app.port) == var.app.port
    error_message = "app.port must be a whole number from 1 to 65535."
  }

  validation {
    condition     = !contains(keys(var.app.environment), "MESHGEN_SERVICE_VERSION")
    error_message = "app.environment must not set MESHGEN_SERVICE_VERSION: the module sets it to name."
  }
}

variable "envoy" {
  description = "The Envoy sidecar: image, the complete Envoy YAML rendered by meshgen, the inbound listener port and the admin port."
  type = object({
    image                = optional(string, "envoyproxy/envoy:v1.40-latest")
    config               = string
    inbound_port         = optional(number, 15006)
    admin_port           = optional(number, 15000)
    log_level            = optional(string, "warn")
    user                 = optional(string)
    health_check_command = optional(list(string))
  })

  validation {
    condition     = length(trimspace(var.envoy.config)) > 0
    error_message = "envoy.config must hold the Envoy YAML configuration; it is empty."
  }

  validation {
    condition     = length(var.envoy.config) <= 40000
    error_message = "envoy.config is longer than 40000 characters: base64-encoded in the task definition it would break ECS's 64 KiB limit for a task definition. Split the service or trim the configuration."
  }

  validation {
    condition = alltrue([
      for p in [var.envoy.inbound_port, var.envoy.admin_port] : p >= 1 && p <= 65535 && floor(p) == p
    ])
    error_message = "envoy.inbound_port and envoy.admin_port must be whole numbers from 1 to 65535."
  }

  validation {
    condition     = var.envoy.inbound_port != var.envoy.admin_port && !contains([var.envoy.inbound_port, var.envoy.admin_port], var.app.port)
    error_message = "envoy.inbound_port, envoy.admin_port and app.port must be three different ports."
  }

  validation {
    condition     = contains(["trace", "debug", "info", "warning", "warn", "error", "critical", "off"], var.envoy.log_level)
    error_message = "envoy.log_level must be one of: trace, debug, info, warning, warn, error, critical, off."
  }

  validation {
    condition     = length(trimspace(var.envoy.image)) > 0
    error_message = "envoy.image must not be empty."
  }
}

variable "tls" {
  description = "Mutual TLS material of the Envoy sidecar: the Secrets Manager secret (ecs-mesh output identities) whose JSON keys cert, key and ca hold the service's certificate chain, private key and trusted CA bundle, and the files envoy.config names for them, written owner-only at task start; null when the config uses no TLS files. execution_role_arn must be a role that may read the secret."
  type = object({
    secret_arn = string
    cert_file  = string
    key_file   = string
    ca_file    = string
  })
  default = null

  validation {
    condition     = var.tls == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", try(var.tls.secret_arn, "")))
    error_message = "tls.secret_arn must be a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)."
  }

  validation {
    condition = var.tls == null || alltrue([
      for f in [try(var.tls.cert_file, ""), try(var.tls.key_file, ""), try(var.tls.ca_file, "")] : can(regex("^(/[A-Za-z0-9._-]+){2,}$", f))
    ])
    error_message = "tls.cert_file, tls.key_file and tls.ca_file must be absolute paths below a directory, of letters, digits, '.', '_', '-' and '/' only (they are written by the container's shell command)."
  }

  validation {
    condition     = var.tls == null || length(distinct([try(var.tls.cert_file, ""), try(var.tls.key_file, ""), try(var.tls.ca_file, "")])) == 3
    error_message = "tls.cert_file, tls.key_file and tls.ca_file must be three different files."
  }

  validation {
    condition = var.tls == null || alltrue([
      for f in [try(var.tls.cert_file, ""), try(var.tls.key_file, ""), try(var.tls.ca_file, "")] : strcontains(var.envoy.config, "\"${f}\"")
    ])
    error_message = "envoy.config must name tls.cert_file, tls.key_file and tls.ca_file: a file it does not name would be written where Envoy never reads it."
  }

  validation {
    condition     = var.tls != null || !can(regex("\"name\"\\s*:\\s*\"identity\"", var.envoy.config))
    error_message = "envoy.config holds meshgen's mutual TLS identity (secret \"identity\") but tls is null: nothing would put its certificate and key into the task. Pass tls (the service's identity secret), or render the config with mtls off."
  }
}

variable "tracing" {
  description = "Tracing sidecar: \"xray\" (X-Ray daemon on UDP 2000), \"otel\" (ADOT collector, OTLP on 4317/4318) or \"none\"; image overrides the default."
  type = object({
    kind    = optional(string, "xray")
    image   = optional(string)
    command = optional(list(string))
  })
  default = {}

  validation {
    condition     = contains(["xray", "otel", "none"], var.tracing.kind)
    error_message = "tracing.kind must be one of: xray, otel, none."
  }
}

variable "metrics" {
  description = "CloudWatch metrics of the Envoy sidecar: a CloudWatch agent container scrapes Envoy's stats listener (stats_port, /stats/prometheus) on the task's loopback every scrape_interval seconds and publishes request counts per service and version, by response code class, as EMF to log_group_name, extracted under namespace (ecs-mesh outputs metrics_namespace and metrics_log_group_name); null runs no agent. The task role must allow it (ecs-mesh with metrics_namespace does)."
  type = object({
    namespace       = string
    log_group_name  = string
    stats_port      = optional(number, 15090)
    scrape_interval = optional(number, 60)
    image           = optional(string, "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300064.1b1344")
  })
  default = null

  validation {
    condition     = var.metrics == null || can(regex("^[A-Za-z0-9._/#:-]{1,255}$", try(var.metrics.namespace, ""))) && !startswith(try(var.metrics.namespace, "AWS/"), "AWS/")
    error_message = "metrics.namespace must be 1-255 characters of letters, digits, '.', '-', '_', '/', '#' and ':', and must not start with \"AWS/\"."
  }

  validation {
    condition     = var.metrics == null || can(regex("^[A-Za-z0-9_./#-]{1,512}$", try(var.metrics.log_group_name, "")))
    error_message = "metrics.log_group_name must be 1-512 characters of letters, digits, '_', '-', '/', '.' and '#'."
  }

  validation {
    condition     = var.metrics == null || try(var.metrics.stats_port >= 1 && var.metrics.stats_port <= 65535 && floor(var.metrics.stats_port) == var.metrics.stats_port, false)
    error_message = "metrics.stats_port must be a whole number from 1 to 65535: the port of the stats listener in envoy.config."
  }

  validation {
    condition     = var.metrics == null || try(!contains([var.envoy.inbound_port, var.envoy.admin_port, var.app.port], var.metrics.stats_port), false)
    error_message = "metrics.stats_port must differ from envoy.inbound_port, envoy.admin_port and app.port."
  }

  validation {
    condition     = var.metrics == null || try(var.metrics.scrape_interval >= 10 && var.metrics.scrape_interval <= 300 && floor(var.metrics.scrape_interval) == var.metrics.scrape_interval, false)
    error_message = "metrics.scrape_interval must be whole seconds from 10 to 300."
  }

  validation {
    condition     = var.metrics == null || length(trimspace(try(var.metrics.image, ""))) > 0
    error_message = "metrics.image must not be empty."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates."
  type        = map(string)
  default     = {}
}
