locals {
  # Every route of every virtual service, keyed "<virtual service>/<route>"; the index in the
  # service's list is the App Mesh priority (0 = matched first).
  routes = merge([
    for service_name, service in var.virtual_services : {
      for index, route in service.routes : "${service_name}/${route.name}" => merge(route, {
        service  = service_name
        protocol = service.protocol
        priority = index
        # gRPC routes match on service and method names, taken from the path or prefix.
        grpc_service = service.protocol != "grpc" ? null : try(
          regex("^/([^/]+)/", coalesce(route.path, route.prefix, "/"))[0], null
        )
        grpc_method = service.protocol != "grpc" || route.path == null ? null : try(
          regex("^/[^/]+/([^/]+)$", route.path)[0], null
        )
      })
    }
  ]...)

  # Connection limits App Mesh has for each listener protocol.
  connection_pools = {
    for name, node in var.virtual_nodes : name => (
      node.protocol == "http" ? (node.max_connections == null ? null : { max_connections = node.max_connections, max_pending_requests = node.max_pending_requests, max_requests = null }) :
      node.protocol == "tcp" ? (node.max_connections == null ? null : { max_connections = node.max_connections, max_pending_requests = null, max_requests = null }) :
      (node.max_requests == null ? null : { max_connections = null, max_pending_requests = null, max_requests = node.max_requests })
    )
  }
}

resource "aws_appmesh_mesh" "this" {
  name = var.mesh_name

  spec {
    egress_filter {
      type = var.egress_filter
    }
  }

  tags = var.tags
}

resource "aws_appmesh_virtual_node" "this" {
  for_each = var.virtual_nodes

  name      = each.key
  mesh_name = aws_appmesh_mesh.this.id

  spec {
    dynamic "backend" {
      for_each = toset(each.value.backends)

      content {
        virtual_service {
          virtual_service_name = backend.value
        }
      }
    }

    listener {
      port_mapping {
        port     = each.value.port
        protocol = each.value.protocol
      }

      dynamic "health_check" {
        for_each = each.value.health_check == null ? [] : [each.value.health_check]

        content {
          protocol            = each.value.protocol
          port                = each.value.port
          path                = health_check.value.path
          interval_millis     = health_check.value.interval_millis
          timeout_millis      = health_check.value.timeout_millis
          healthy_threshold   = health_check.value.healthy_threshold
          unhealthy_threshold = health_check.value.unhealthy_threshold
        }
      }

      dynamic "outlier_detection" {
        for_each = each.value.outlier_detection == null ? [] : [each.value.outlier_detection]

        content {
          max_server_errors    = outlier_detection.value.max_server_errors
          max_ejection_percent = outlier_detection.value.max_ejection_percent

          interval {
            unit  = "ms"
            value = outlier_detection.value.interval_millis
          }

          base_ejection_duration {
            unit  = "ms"
            value = outlier_detection.value.base_ejection_millis
          }
        }
      }

      dynamic "connection_pool" {
        for_each = local.connection_pools[each.key] == null ? [] : [local.connection_pools[each.key]]

        content {
          dynamic "http" {
            for_each = each.value.protocol == "http" ? [connection_pool.value] : []

            content {
              max_connections      = http.value.max_connections
              max_pending_requests = http.value.max_pending_requests
            }
          }

          dynamic "http2" {
            for_each = each.value.protocol == "http2" ? [connection_pool.value] : []

            content {
              max_requests = http2.value.max_requests
            }
          }

          dynamic "grpc" {
            for_each = each.value.protocol == "grpc" ? [connection_pool.value] : []

            content {
              max_requests = grpc.value.max_requests
            }
          }

          dynamic "tcp" {
            for_each = each.value.protocol == "tcp" ? [connection_pool.value] : []

            content {
              max_connections = tcp.value.max_connections
            }
          }
        }
      }
    }

    service_discovery {
      dns {
        hostname = each.value.hostname
      }
    }
  }

  tags = var.tags
}

resource "aws_appmesh_virtual_router" "this" {
  for_each = var.virtual_services

  name      = each.key
  mesh_name = aws_appmesh_mesh.this.id

  spec {
    listener {
      port_mapping {
        port     = each.value.port
        protocol = each.value.protocol
      }
    }
  }

  tags = var.tags
}

resource "aws_appmesh_route" "this" {
  for_each = local.routes

  name                = each.value.name
  mesh_name           = aws_appmesh_mesh.this.id
  virtual_router_name = aws_appmesh_virtual_router.this[each.value.service].name

  spec {
    priority = each.value.priority

    dynamic "http_route" {
      for_each = each.value.protocol == "http" ? [each.value] : []

      content {
        match {
          prefix = http_route.value.path == null ? coalesce(http_route.value.prefix, "/") : null
          method = http_route.value.method

          dynamic "path" {
            for_each = http_route.value.path == null ? [] : [http_route.value.path]

            content {
              exact = path.value
            }
          }

          dynamic "header" {
            for_each = http_route.value.headers

            content {
              name   = header.value.name
              invert = header.value.present == false

              dynamic "match" {
                for_each = header.value.present == null ? [header.value] : []

                content {
                  exact  = match.value.exact
                  prefix = match.value.prefix
                  regex  = match.value.regex
                }
              }
            }
          }
        }

        action {
          dynamic "weighted_target" {
            for_each = http_route.value.targets

            content {
              virtual_node = aws_appmesh_virtual_node.this[weighted_target.value.virtual_node].name
              weight       = weighted_target.value.weight
            }
          }
        }

        dynamic "retry_policy" {
          for_each = http_route.value.retry == null ? [] : [http_route.value.retry]

          content {
            max_retries       = retry_policy.value.max_retries
            http_retry_events = length(retry_policy.value.http_retry_events) > 0 ? retry_policy.value.http_retry_events : null
            tcp_retry_events  = length(retry_policy.value.tcp_retry_events) > 0 ? retry_policy.value.tcp_retry_events : null

            per_retry_timeout {
              unit  = "ms"
              value = retry_policy.value.per_retry_timeout_ms
            }
          }
        }

        dynamic "timeout" {
          for_each = http_route.value.timeout_ms == null ? [] : [http_route.value.timeout_ms]

          content {
            per_request {
              unit  = "ms"
              value = timeout.value
            }
          }
        }
      }
    }

    # The same body as http_route: Terraform cannot pick a block's type with `dynamic`, so the two
    # are copies, held equal by the run "http2_routes_are_http_routes" in tests/app_mesh.tftest.hcl.
    dynamic "http2_route" {
      for_each = each.value.protocol == "http2" ? [each.value] : []

      content {
        match {
          prefix = http2_route.value.path == null ? coalesce(http2_route.value.prefix, "/") : null
          method = http2_route.value.method

          dynamic "path" {
            for_each = http2_route.value.path == null ? [] : [http2_route.value.path]

            content {
              exact = path.value
            }
          }

          dynamic "header" {
            for_each = http2_route.value.headers

            content {
              name   = header.value.name
              invert = header.value.present == false

              dynamic "match" {
                for_each = header.value.present == null ? [header.value] : []

                content {
                  exact  = match.value.exact
                  prefix = match.value.prefix
                  regex  = match.value.regex
                }
              }
            }
          }
        }

        action {
          dynamic "weighted_target" {
            for_each = http2_route.value.targets

            content {
              virtual_node = aws_appmesh_virtual_node.this[weighted_target.value.virtual_node].name
              weight       = weighted_target.value.weight
            }
          }
        }

        dynamic "retry_policy" {
          for_each = http2_route.value.retry == null ? [] : [http2_route.value.retry]

          content {
            max_retries       = retry_policy.value.max_retries
            http_retry_events = length(retry_policy.value.http_retry_events) > 0 ? retry_policy.value.http_retry_events : null
            tcp_retry_events  = length(retry_policy.value.tcp_retry_events) > 0 ? retry_policy.value.tcp_retry_events : null

            per_retry_timeout {
              unit  = "ms"
              value = retry_policy.value.per_retry_timeout_ms
            }
          }
        }

        dynamic "timeout" {
          for_each = http2_route.value.timeout_ms == null ? [] : [http2_route.value.timeout_ms]

          content {
            per_request {
              unit  = "ms"
              value = timeout.value
            }
          }
        }
      }
    }

    dynamic "grpc_route" {
      for_each = each.value.protocol == "grpc" ? [each.value] : []

      content {
        match {
          service_name = grpc_route.value.grpc_service
          method_name  = grpc_route.value.grpc_method

          dynamic "metadata" {
            for_each = grpc_route.value.headers

            content {
              name   = metadata.value.name
              invert = metadata.value.present == false

              dynamic "match" {
                for_each = metadata.value.present == null ? [metadata.value] : []

                content {
                  exact  = match.value.exact
                  prefix = match.value.prefix
                  regex  = match.value.regex
                }
              }
            }
          }
        }

        action {
          dynamic "weighted_target" {
            for_each = grpc_route.value.targets

            content {
              virtual_node = aws_appmesh_virtual_node.this[weighted_target.value.virtual_node].name
              weight       = weighted_target.value.weight
            }
          }
        }

        dynamic "retry_policy" {
          for_each = grpc_route.value.retry == null ? [] : [grpc_route.value.retry]

          content {
            max_retries       = retry_policy.value.max_retries
            grpc_retry_events = length(retry_policy.value.grpc_retry_events) > 0 ? retry_policy.value.grpc_retry_events : null
            http_retry_events = length(retry_policy.value.http_retry_events) > 0 ? retry_policy.value.http_retry_events : null
            tcp_retry_events  = length(retry_policy.value.tcp_retry_events) > 0 ? retry_policy.value.tcp_retry_events : null

            per_retry_timeout {
              unit  = "ms"
              value = retry_policy.value.per_retry_timeout_ms
            }
          }
        }

        dynamic "timeout" {
          for_each = grpc_route.value.timeout_ms == null ? [] : [grpc_route.value.timeout_ms]

          content {
            per_request {
              unit  = "ms"
              value = timeout.value
            }
          }
        }
      }
    }

    dynamic "tcp_route" {
      for_each = each.value.protocol == "tcp" ? [each.value] : []

      content {
        action {
          dynamic "weighted_target" {
            for_each = tcp_route.value.targets

            content {
              virtual_node = aws_appmesh_virtual_node.this[weighted_target.value.virtual_node].name
              weight       = weighted_target.value.weight
            }
          }
        }

        # App Mesh TCP routes have no per-request timeout: timeout_ms is the idle timeout.
        dynamic "timeout" {
          for_each = tcp_route.value.timeout_ms == null ? [] : [tcp_route.value.timeout_ms]

          content {
            idle {
              unit  = "ms"
              value = timeout.value
            }
          }
        }
      }
    }
  }

  tags = var.tags
}

resource "aws_appmesh_virtual_service" "this" {
  for_each = var.virtual_services

  name      = each.key
  mesh_name = aws_appmesh_mesh.this.id

  spec {
    provider {
      virtual_router {
        virtual_router_name = aws_appmesh_virtual_router.this[each.key].name
      }
    }
  }

  tags = var.tags
}

locals {
  # Every gateway route, keyed "<virtual gateway>/<route>"; the index in the gateway's list is
  # the App Mesh priority (0 = matched first).
  gateway_routes = merge([
    for gateway_name, gateway in var.virtual_gateways : {
      for index, route in gateway.routes : "${gateway_name}/${route.name}" => merge(route, {
        gateway  = gateway_name
        priority = index
      })
    }
  ]...)
}

# A virtual gateway: App Mesh's Envoy in tasks of their own (with APPMESH_RESOURCE_ARN of this
# gateway), behind a load balancer of yours; this module builds the mesh side only.
resource "aws_appmesh_virtual_gateway" "this" {
  for_each = var.virtual_gateways

  name      = each.key
  mesh_name = aws_appmesh_mesh.this.id

  spec {
    listener {
      port_mapping {
        port     = each.value.port
        protocol = "http"
      }
    }
  }

  tags = var.tags
}

resource "aws_appmesh_gateway_route" "this" {
  for_each = local.gateway_routes

  name                 = each.value.name
  mesh_name            = aws_appmesh_mesh.this.id
  virtual_gateway_name = aws_appmesh_virtual_gateway.this[each.value.gateway].name

  spec {
    priority = each.value.priority

    http_route {
      match {
        prefix = each.value.path == null ? coalesce(each.value.prefix, "/") : null

        dynamic "path" {
          for_each = each.value.path == null ? [] : [each.value.path]

          content {
            exact = path.value
          }
        }

        dynamic "hostname" {
          for_each = each.value.hostname == null ? [] : [each.value.hostname]

          content {
            exact = hostname.value
          }
        }

        dynamic "header" {
          for_each = each.value.headers

          content {
            name   = header.value.name
            invert = header.value.present == false

            dynamic "match" {
              for_each = header.value.present == null ? [header.value] : []

              content {
                exact  = match.value.exact
                prefix = match.value.prefix
                regex  = match.value.regex
              }
            }
          }
        }
      }

      action {
        target {
          virtual_service {
            virtual_service_name = aws_appmesh_virtual_service.this[each.value.virtual_service].name
          }
        }
      }
    }
  }

  tags = var.tags
}
