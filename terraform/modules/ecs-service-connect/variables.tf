variable "name" {
  description = "Name of the service version, \"<service>-<version>\"; names the ECS service and the task family."
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

variable "namespace_arn" {
  description = "ARN of the Cloud Map HTTP namespace Service Connect uses (ecs-mesh output namespace_arn with namespace.type = \"http\")."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:servicediscovery:[a-z0-9-]+:[0-9]{12}:namespace/ns-[a-z0-9]+$", var.namespace_arn))
    error_message = "namespace_arn must be a Cloud Map namespace ARN (arn:aws:servicediscovery:<region>:<account>:namespace/ns-...)."
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
  description = "AWS region of the log group, e.g. \"eu-west-1\" (used by the awslogs driver of the app and the Service Connect proxy)."
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
  description = "The application container: image, the port it serves on, its protocol (http, http2, grpc, tcp), optional command and environment."
  type = object({
    image       = string
    port        = number
    command     = optional(list(string))
    environment = optional(map(string), {})
    protocol    = optional(string, "http")
  })

  validation {
    condition     = contains(["http", "http2", "grpc", "tcp"], var.app.protocol)
    error_message = "app.protocol must be one of: http, http2, grpc, tcp."
  }

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

variable "service_connect" {
  description = "Service Connect settings: discovery_name null makes a client-only service (it calls others but is not discoverable); client_aliases are the name:port clients use."
  type = object({
    discovery_name = optional(string)
    port_name      = optional(string, "app")
    client_aliases = optional(list(object({
      port     = number
      dns_name = string
    })), [])
    per_request_timeout_seconds = optional(number)
    idle_timeout_seconds        = optional(number)
    tls = optional(object({
      kms_key                   = optional(string)
      role_arn                  = string
      issuer_cert_authority_arn = string
    }))
  })
  default = {}

  validation {
    condition     = var.service_connect.discovery_name == null || can(regex("^[a-z0-9_][a-z0-9_-]{0,63}$", coalesce(var.service_connect.discovery_name, "x")))
    error_message = "service_connect.discovery_name must be 1-64 lowercase letters, digits, '_' and '-', not starting with '-'."
  }

  validation {
    condition     = can(regex("^[a-z0-9_][a-z0-9_-]{0,63}$", var.service_connect.port_name))
    error_message = "service_connect.port_name must be 1-64 lowercase letters, digits, '_' and '-', not starting with '-'."
  }

  validation {
    condition     = var.service_connect.discovery_name != null || length(var.service_connect.client_aliases) == 0
    error_message = "service_connect.client_aliases need a discovery_name: a client-only service (discovery_name = null) has no endpoint to alias."
  }

  validation {
    condition     = length(var.service_connect.client_aliases) <= 1
    error_message = "service_connect.client_aliases holds at most one alias: ECS allows one client alias per Service Connect service."
  }

  validation {
    condition = alltrue([
      for a in var.service_connect.client_aliases :
      a.port >= 1 && a.port <= 65535 && floor(a.port) == a.port && can(regex("^[a-z0-9_.][a-z0-9_.-]{0,126}$", a.dns_name))
    ])
    error_message = "Each client alias needs a port from 1 to 65535 and a dns_name of 1-127 lowercase letters, digits, '_', '.' and '-', not starting with '-'."
  }

  validation {
    condition = alltrue([
      for t in [var.service_connect.per_request_timeout_seconds, var.service_connect.idle_timeout_seconds] :
      t == null ? true : t >= 0 && floor(t) == t
    ])
    error_message = "service_connect timeouts must be whole numbers of seconds, 0 or more (0 disables the timeout)."
  }

  validation {
    condition     = var.app.protocol != "tcp" || var.service_connect.per_request_timeout_seconds == null
    error_message = "service_connect.per_request_timeout_seconds is not allowed with app.protocol = \"tcp\" (ECS rejects it); use idle_timeout_seconds."
  }

  validation {
    condition = var.service_connect.tls == null ? true : (
      can(regex("^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:[0-9]{12}:certificate-authority/.+$", var.service_connect.tls.issuer_cert_authority_arn)) &&
      can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.service_connect.tls.role_arn)) &&
      (var.service_connect.tls.kms_key == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", coalesce(var.service_connect.tls.kms_key, "x"))))
    )
    error_message = "service_connect.tls needs issuer_cert_authority_arn of an AWS Private CA (arn:aws:acm-pca:...:certificate-authority/...), role_arn of an IAM role, and a kms_key that is null or a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates."
  type        = map(string)
  default     = {}
}
