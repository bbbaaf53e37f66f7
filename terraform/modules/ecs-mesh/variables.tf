variable "name" {
  description = "Mesh name, used for the ECS cluster, the log group and the IAM role name prefixes."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}$", var.name))
    error_message = "name must be 1-31 characters of lowercase letters, digits and hyphens, starting with a letter or digit."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the services run in; the private DNS namespace is attached to it."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8}([0-9a-f]{9})?$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID such as \"vpc-0123456789abcdef0\"."
  }
}

variable "mesh_ports" {
  description = "TCP ports the mesh's tasks accept from each other, and the only ones its security group admits: each service version's ingress port (the Envoy inbound port with ecs-envoy-service, the app port with ecs-service-connect)."
  type        = list(number)

  validation {
    condition     = length(var.mesh_ports) >= 1 && alltrue([for p in var.mesh_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "mesh_ports must list at least one port, each a whole number from 1 to 65535."
  }
}

variable "create_cluster" {
  description = "Whether to create an ECS cluster named after the mesh; set false and pass cluster_arn to use an existing one."
  type        = bool
  default     = true
}

variable "cluster_arn" {
  description = "ARN of an existing ECS cluster, required when create_cluster is false and not allowed otherwise."
  type        = string
  default     = null

  validation {
    condition     = var.cluster_arn == null || can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]{1,255}$", var.cluster_arn))
    error_message = "cluster_arn must be an ECS cluster ARN such as \"arn:aws:ecs:eu-west-1:123456789012:cluster/shop\"."
  }

  validation {
    condition     = var.create_cluster ? var.cluster_arn == null : var.cluster_arn != null
    error_message = "Set cluster_arn exactly when create_cluster is false: it names the existing cluster to use instead of creating one."
  }
}

variable "container_insights" {
  description = "CloudWatch Container Insights setting of a created cluster: enabled, enhanced or disabled."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be one of: enabled, enhanced, disabled."
  }
}

variable "namespace" {
  description = "Cloud Map namespace of the mesh: dns_private (a private DNS zone, for ecs-envoy-service) or http (API-only, for ecs-service-connect)."
  type = object({
    name = string
    type = optional(string, "dns_private")
  })

  validation {
    condition     = contains(["dns_private", "http"], var.namespace.type)
    error_message = "namespace.type must be \"dns_private\" (ecs-envoy-service) or \"http\" (ecs-service-connect)."
  }

  validation {
    condition = (
      var.namespace.type == "dns_private" ?
      length(var.namespace.name) <= 253 && can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace.name)) :
      length(var.namespace.name) <= 1024 && can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", var.namespace.name))
    )
    error_message = "namespace.name must be a lowercase DNS name such as \"shop.local\" (dns_private), or 1-1024 letters, digits, '.', '_' and '-' (http)."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the mesh's container logs; 0 keeps them forever."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value: 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "enable_xray" {
  description = "Whether the task role may send traces to AWS X-Ray (attaches AWSXRayDaemonWriteAccess)."
  type        = bool
  default     = true
}

variable "identities" {
  description = "Services that get an identity for mutual TLS (ecs-envoy-service): per name, a Secrets Manager secret for its certificate, key and trust bundle, which Terraform creates empty (`meshgen aws certs push` puts the value), and a task execution role that may read only that secret."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.identities : can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", s))])
    error_message = "identities must be service names: DNS labels of 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen."
  }
}

variable "identity_recovery_window_days" {
  description = "Days a deleted identity secret can be restored: 0 deletes it at once (the default; a certificate is reissued, not recovered, and a mesh destroyed and applied again reuses the names), or 7-30."
  type        = number
  default     = 0

  validation {
    condition     = var.identity_recovery_window_days == 0 || (var.identity_recovery_window_days >= 7 && var.identity_recovery_window_days <= 30 && floor(var.identity_recovery_window_days) == var.identity_recovery_window_days)
    error_message = "identity_recovery_window_days must be 0 or a whole number from 7 to 30 (Secrets Manager's recovery window)."
  }
}

variable "service_connect_tls" {
  description = "ECS Service Connect TLS (ecs-service-connect, namespace type http): a root AWS Private CA created for the mesh, or the one private_ca_arn names (it must be ACTIVE and tagged AmazonECSManaged = true, as ECS's managed policy requires), and the role ECS assumes to have it issue the proxies' certificates; null: no TLS."
  type = object({
    private_ca_arn   = optional(string)
    usage_mode       = optional(string, "SHORT_LIVED_CERTIFICATE")
    key_algorithm    = optional(string, "EC_prime256v1")
    ca_validity_days = optional(number, 3653)
    kms_key          = optional(string)
  })
  default = null

  validation {
    condition     = var.service_connect_tls == null || var.namespace.type == "http"
    error_message = "service_connect_tls needs namespace.type = \"http\": it is TLS between ECS Service Connect proxies."
  }

  validation {
    condition     = try(var.service_connect_tls.private_ca_arn, null) == null || can(regex("^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:[0-9]{12}:certificate-authority/[0-9a-f-]{36}$", try(var.service_connect_tls.private_ca_arn, "")))
    error_message = "service_connect_tls.private_ca_arn must be an AWS Private CA ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<uuid>)."
  }

  validation {
    condition     = var.service_connect_tls == null || contains(["SHORT_LIVED_CERTIFICATE", "GENERAL_PURPOSE"], try(var.service_connect_tls.usage_mode, ""))
    error_message = "service_connect_tls.usage_mode must be SHORT_LIVED_CERTIFICATE (certificates of at most 7 days, which ECS rotates; the cheaper mode) or GENERAL_PURPOSE."
  }

  validation {
    condition     = var.service_connect_tls == null || contains(["EC_prime256v1", "RSA_2048"], try(var.service_connect_tls.key_algorithm, ""))
    error_message = "service_connect_tls.key_algorithm must be EC_prime256v1 or RSA_2048: the only keys Service Connect TLS supports."
  }

  validation {
    condition     = var.service_connect_tls == null || (try(var.service_connect_tls.ca_validity_days, 0) >= 1 && try(var.service_connect_tls.ca_validity_days, 0) <= 36500 && floor(try(var.service_connect_tls.ca_validity_days, 0)) == try(var.service_connect_tls.ca_validity_days, 0))
    error_message = "service_connect_tls.ca_validity_days must be a whole number of days from 1 to 36500."
  }

  validation {
    condition     = try(var.service_connect_tls.kms_key, null) == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", try(var.service_connect_tls.kms_key, "")))
    error_message = "service_connect_tls.kms_key must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the mesh's Envoy metrics are published under (e.g. \"meshgen/shop\"); null creates no metrics log group and grants nothing. With a namespace the module creates the EMF log group <log group>/metrics and lets the task role write to it and publish to that namespace only."
  type        = string
  default     = null

  validation {
    condition     = var.metrics_namespace == null || can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(coalesce(var.metrics_namespace, "-"), "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits, '.', '-', '_', '/', '#' and ':', and must not start with \"AWS/\" (reserved for AWS services)."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates."
  type        = map(string)
  default     = {}
}
