variable "mesh_name" {
  description = "Name of the App Mesh mesh."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$", var.mesh_name))
    error_message = "mesh_name must be 1-255 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }
}

variable "egress_filter" {
  description = "Egress filter of the mesh: DROP_ALL allows traffic only to mesh services, ALLOW_ALL also to any outside address."
  type        = string
  default     = "DROP_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "DROP_ALL"], var.egress_filter)
    error_message = "egress_filter must be ALLOW_ALL or DROP_ALL."
  }
}

variable "virtual_nodes" {
  description = "Virtual nodes by name (\"<service>-<version>\"): DNS hostname and listener of the version's tasks, the virtual services it calls, and its health check, outlier detection and connection limits (App Mesh applies max_connections + max_pending_requests to http, max_requests to http2 and grpc, max_connections to tcp)."
  type = map(object({
    hostname = string
    port     = number
    protocol = string
    backends = optional(list(string), [])
    health_check = optional(object({
      path                = optional(string)
      interval_millis     = optional(number, 5000)
      timeout_millis      = optional(number, 2000)
      healthy_threshold   = optional(number, 2)
      unhealthy_threshold = optional(number, 3)
    }))
    outlier_detection = optional(object({
      max_server_errors    = number
      interval_millis      = number
      base_ejection_millis = number
      max_ejection_percent = number
    }))
    max_connections      = optional(number)
    max_pending_requests = optional(number)
    max_requests         = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for name, n in var.virtual_nodes : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$", name))])
    error_message = "virtual_nodes keys (node names) must be 1-255 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }

  validation {
    condition     = alltrue([for n in var.virtual_nodes : contains(["http", "http2", "grpc", "tcp"], n.protocol)])
    error_message = "virtual_nodes protocol must be one of: http, http2, grpc, tcp."
  }

  validation {
    condition     = alltrue([for n in var.virtual_nodes : n.port >= 1 && n.port <= 65535 && floor(n.port) == n.port])
    error_message = "virtual_nodes port must be a whole number from 1 to 65535."
  }

  validation {
    condition     = alltrue([for n in var.virtual_nodes : can(regex("^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?$", n.hostname))])
    error_message = "virtual_nodes hostname must be a DNS name the node's tasks resolve under, e.g. \"users-v1.shop.local\"."
  }

  validation {
    condition     = alltrue(flatten([for n in var.virtual_nodes : [for b in n.backends : length(b) >= 1 && length(b) <= 255]]))
    error_message = "virtual_nodes backends must be virtual service names of 1-255 characters."
  }

  validation {
    condition = alltrue([
      for n in var.virtual_nodes : n.health_check == null ? true : (
        n.health_check.interval_millis >= 5000 && n.health_check.interval_millis <= 300000 &&
        n.health_check.timeout_millis >= 2000 && n.health_check.timeout_millis <= 60000 &&
        n.health_check.healthy_threshold >= 2 && n.health_check.healthy_threshold <= 10 &&
        n.health_check.unhealthy_threshold >= 2 && n.health_check.unhealthy_threshold <= 10
      )
    ])
    error_message = "virtual_nodes health_check out of App Mesh's ranges: interval_millis 5000-300000, timeout_millis 2000-60000, healthy_threshold and unhealthy_threshold 2-10."
  }

  validation {
    condition = alltrue([
      for n in var.virtual_nodes : n.health_check == null ? true : (
        contains(["http", "http2"], n.protocol) ?
        can(regex("^/", n.health_check.path)) :
        n.health_check.path == null
      )
    ])
    error_message = "virtual_nodes health_check.path is required for http and http2 nodes (it must start with \"/\") and not allowed for grpc and tcp nodes."
  }

  validation {
    condition = alltrue([
      for n in var.virtual_nodes : n.outlier_detection == null ? true : (
        n.outlier_detection.max_server_errors >= 1 &&
        n.outlier_detection.interval_millis >= 1 &&
        n.outlier_detection.base_ejection_millis >= 1 &&
        n.outlier_detection.max_ejection_percent >= 0 && n.outlier_detection.max_ejection_percent <= 100
      )
    ])
    error_message = "virtual_nodes outlier_detection needs max_server_errors >= 1, interval_millis >= 1, base_ejection_millis >= 1 and max_ejection_percent 0-100."
  }

  validation {
    condition = alltrue(flatten([
      for n in var.virtual_nodes : [
        for v in [n.max_connections, n.max_pending_requests, n.max_requests] : v == null ? true : v >= 1 && floor(v) == v
      ]
    ]))
    error_message = "virtual_nodes max_connections, max_pending_requests and max_requests must be whole numbers, 1 or more."
  }

  validation {
    condition     = alltrue([for n in var.virtual_nodes : n.protocol != "http" || n.max_pending_requests == null || n.max_connections != null])
    error_message = "virtual_nodes max_pending_requests of an http node needs max_connections too (App Mesh's HTTP connection pool requires it)."
  }
}

variable "virtual_services" {
  description = "Virtual services by name (e.g. \"users.shop.local\"), each with a virtual router of the same name and its routes in priority order (first = priority 0) splitting traffic over virtual nodes by weight."
  type = map(object({
    port     = number
    protocol = string
    routes = list(object({
      name   = string
      prefix = optional(string)
      path   = optional(string)
      method = optional(string)
      headers = optional(list(object({
        name    = string
        exact   = optional(string)
        prefix  = optional(string)
        regex   = optional(string)
        present = optional(bool)
      })), [])
      targets = list(object({
        virtual_node = string
        weight       = number
      }))
      timeout_ms = optional(number)
      retry = optional(object({
        max_retries          = number
        per_retry_timeout_ms = number
        http_retry_events    = optional(list(string), [])
        tcp_retry_events     = optional(list(string), [])
        grpc_retry_events    = optional(list(string), [])
      }))
    }))
  }))
  default = {}

  validation {
    condition     = alltrue([for name, s in var.virtual_services : length(name) >= 1 && length(name) <= 255])
    error_message = "virtual_services keys (virtual service names) must be 1-255 characters."
  }

  validation {
    condition     = alltrue([for s in var.virtual_services : contains(["http", "http2", "grpc", "tcp"], s.protocol)])
    error_message = "virtual_services protocol must be one of: http, http2, grpc, tcp."
  }

  validation {
    condition     = alltrue([for s in var.virtual_services : s.port >= 1 && s.port <= 65535 && floor(s.port) == s.port])
    error_message = "virtual_services port must be a whole number from 1 to 65535."
  }

  validation {
    condition = alltrue([
      for s in var.virtual_services : length(s.routes) >= 1 && length(s.routes) <= 1001 &&
      length(distinct([for r in s.routes : r.name])) == length(s.routes)
    ])
    error_message = "Each virtual service needs 1-1001 routes with distinct names."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [for r in s.routes : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$", r.name))]
    ]))
    error_message = "Route names must be 1-255 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : [
          (r.prefix == null || can(regex("^/", r.prefix))) && (r.path == null || can(regex("^/", r.path))),
          r.prefix == null || r.path == null,
        ]
      ]
    ]))
    error_message = "A route matches on prefix or path, not both, and each must start with \"/\"."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : r.method == null || (
          contains(["http", "http2"], s.protocol) &&
          contains(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"], coalesce(r.method, "-"))
        )
      ]
    ]))
    error_message = "A route method must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, and only on http and http2 services."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : s.protocol != "tcp" || (r.prefix == null && r.path == null && r.method == null && length(r.headers) == 0 && r.retry == null)
      ]
    ]))
    error_message = "Routes of a tcp virtual service take no prefix, path, method, headers or retry: App Mesh TCP routes only split traffic (timeout_ms becomes the idle timeout)."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : s.protocol != "grpc" || (
          (r.path == null || can(regex("^/[^/]+/[^/]+$", r.path))) &&
          (r.prefix == null || can(regex("^/([^/]+/?)?$", r.prefix)))
        )
      ]
    ]))
    error_message = "Routes of a grpc virtual service match \"/<package.Service>/<Method>\" by path or \"/\" or \"/<package.Service>/\" by prefix: App Mesh matches gRPC by service and method name."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : length(r.headers) <= 10 && alltrue([
          for h in r.headers : length(h.name) >= 1 && length(h.name) <= 50 && length([for m in [h.exact, h.prefix, h.regex, h.present] : m if m != null]) == 1
        ])
      ]
    ]))
    error_message = "A route has at most 10 header matches, each with a name of 1-50 characters and exactly one of exact, prefix, regex or present."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : length(r.targets) >= 1 && length(r.targets) <= 10
      ]
    ]))
    error_message = "A route needs 1-10 targets (App Mesh's limit of weighted targets per route)."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : alltrue([for t in r.targets : t.weight >= 0 && t.weight <= 100 && floor(t.weight) == t.weight]) &&
        anytrue([for t in r.targets : t.weight > 0])
      ]
    ]))
    error_message = "Route target weights must be whole numbers from 0 to 100, with at least one above 0 in each route."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : [for t in r.targets : contains(keys(var.virtual_nodes), t.virtual_node)]
      ]
    ]))
    error_message = "Every route target virtual_node must be a key of virtual_nodes."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [for r in s.routes : r.timeout_ms == null ? true : r.timeout_ms >= 0 && floor(r.timeout_ms) == r.timeout_ms]
    ]))
    error_message = "Route timeout_ms must be a whole number of milliseconds, 0 or more (0 disables the timeout)."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : r.retry == null ? true : (
          r.retry.max_retries >= 0 && floor(r.retry.max_retries) == r.retry.max_retries && r.retry.per_retry_timeout_ms >= 1
        )
      ]
    ]))
    error_message = "Route retry needs max_retries >= 0 (whole number) and per_retry_timeout_ms >= 1."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : r.retry == null ? true : (
          length(setsubtract(r.retry.http_retry_events, ["server-error", "gateway-error", "client-error", "stream-error"])) == 0 &&
          length(setsubtract(r.retry.tcp_retry_events, ["connection-error"])) == 0 &&
          length(setsubtract(r.retry.grpc_retry_events, ["cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"])) == 0
        )
      ]
    ]))
    error_message = "Route retry events must be App Mesh's: http_retry_events from server-error, gateway-error, client-error, stream-error; tcp_retry_events connection-error; grpc_retry_events from cancelled, deadline-exceeded, internal, resource-exhausted, unavailable."
  }

  validation {
    condition = alltrue(flatten([
      for s in var.virtual_services : [
        for r in s.routes : r.retry == null ? true : (
          length(r.retry.http_retry_events) + length(r.retry.tcp_retry_events) + length(r.retry.grpc_retry_events) >= 1 &&
          (s.protocol == "grpc" || length(r.retry.grpc_retry_events) == 0)
        )
      ]
    ]))
    error_message = "Route retry needs at least one retry event, and grpc_retry_events only on grpc virtual services."
  }
}

variable "virtual_gateways" {
  description = "Virtual gateways by name, each with an http listener port and its gateway routes in priority order (first = priority 0): a request whose Host matches hostname (exact; null: any) and whose path matches prefix or path (exact) and headers goes to virtual_service, whose own routes then apply."
  type = map(object({
    port = number
    routes = list(object({
      name            = string
      virtual_service = string
      hostname        = optional(string)
      prefix          = optional(string)
      path            = optional(string)
      headers = optional(list(object({
        name    = string
        exact   = optional(string)
        prefix  = optional(string)
        regex   = optional(string)
        present = optional(bool)
      })), [])
    }))
  }))
  default = {}

  validation {
    condition     = alltrue([for name, g in var.virtual_gateways : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$", name))])
    error_message = "virtual_gateways keys (gateway names) must be 1-255 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }

  validation {
    condition     = alltrue([for g in var.virtual_gateways : g.port >= 1 && g.port <= 65535 && floor(g.port) == g.port])
    error_message = "virtual_gateways port must be a whole number from 1 to 65535."
  }

  validation {
    condition = alltrue([
      for g in var.virtual_gateways : length(g.routes) >= 1 && length(g.routes) <= 1001 &&
      length(distinct([for r in g.routes : r.name])) == length(g.routes) &&
      alltrue([for r in g.routes : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$", r.name))])
    ])
    error_message = "Each virtual gateway needs 1-1001 gateway routes with distinct names of 1-255 letters, digits, '_', '.' and '-', not starting with '.' or '-'."
  }

  validation {
    condition = alltrue(flatten([
      for g in var.virtual_gateways : [
        for r in g.routes : [
          (r.prefix == null || can(regex("^/", r.prefix))) && (r.path == null || can(regex("^/", r.path))),
          r.prefix == null || r.path == null,
        ]
      ]
    ]))
    error_message = "A gateway route matches on prefix or path, not both, and each must start with \"/\"."
  }

  validation {
    condition = alltrue(flatten([
      for g in var.virtual_gateways : [
        for r in g.routes : length(r.headers) <= 10 && alltrue([
          for h in r.headers : length(h.name) >= 1 && length(h.name) <= 50 && length([for m in [h.exact, h.prefix, h.regex, h.present] : m if m != null]) == 1
        ])
      ]
    ]))
    error_message = "A gateway route has at most 10 header matches, each with a name of 1-50 characters and exactly one of exact, prefix, regex or present."
  }

  validation {
    condition = alltrue(flatten([
      for g in var.virtual_gateways : [for r in g.routes : contains(keys(var.virtual_services), r.virtual_service)]
    ]))
    error_message = "A gateway route's virtual_service must be one of virtual_services."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates."
  type        = map(string)
  default     = {}
}
