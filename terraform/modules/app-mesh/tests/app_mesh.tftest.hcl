# Plans a small shop mesh (what a meshgen catalog implies) against a mocked AWS provider.

mock_provider "aws" {
  override_during = plan

  mock_resource "aws_appmesh_mesh" {
    defaults = {
      id  = "shop"
      arn = "arn:aws:appmesh:eu-west-1:123456789012:mesh/shop"
    }
  }
}

variables {
  mesh_name = "shop"

  virtual_nodes = {
    "frontend-v1" = {
      hostname = "frontend-v1.shop.local"
      port     = 15006
      protocol = "http"
      backends = ["users.shop.local", "orders.shop.local", "db.shop.local"]
    }
    "users-v1" = {
      hostname = "users-v1.shop.local"
      port     = 15006
      protocol = "http"
      health_check = {
        path = "/healthz"
      }
      outlier_detection = {
        max_server_errors    = 5
        interval_millis      = 10000
        base_ejection_millis = 30000
        max_ejection_percent = 50
      }
      max_connections      = 100
      max_pending_requests = 50
      max_requests         = 200
    }
    "users-v2" = {
      hostname = "users-v2.shop.local"
      port     = 15006
      protocol = "http"
    }
    "orders-v1" = {
      hostname     = "orders-v1.shop.local"
      port         = 15006
      protocol     = "grpc"
      health_check = { interval_millis = 10000 }
      max_requests = 64
    }
    "db-v1" = {
      hostname        = "db-v1.shop.local"
      port            = 5432
      protocol        = "tcp"
      max_connections = 20
    }
  }

  virtual_services = {
    "users.shop.local" = {
      port     = 15006
      protocol = "http"
      routes = [
        {
          name    = "canary-header"
          prefix  = "/"
          headers = [{ name = "x-canary", exact = "true" }, { name = "x-debug", present = false }]
          targets = [{ virtual_node = "users-v2", weight = 100 }]
        },
        {
          name    = "get-user"
          path    = "/users/me"
          method  = "GET"
          targets = [{ virtual_node = "users-v1", weight = 1 }]
          retry = {
            max_retries          = 3
            per_retry_timeout_ms = 250
            http_retry_events    = ["server-error", "gateway-error"]
            tcp_retry_events     = ["connection-error"]
          }
        },
        {
          name       = "default"
          targets    = [{ virtual_node = "users-v1", weight = 90 }, { virtual_node = "users-v2", weight = 10 }]
          timeout_ms = 1500
        },
      ]
    }
    "orders.shop.local" = {
      port     = 15006
      protocol = "grpc"
      routes = [
        {
          name    = "create"
          path    = "/shop.Orders/Create"
          targets = [{ virtual_node = "orders-v1", weight = 1 }]
          retry = {
            max_retries          = 2
            per_retry_timeout_ms = 1000
            grpc_retry_events    = ["unavailable", "deadline-exceeded"]
          }
        },
        {
          name    = "orders-service"
          prefix  = "/shop.Orders/"
          headers = [{ name = "tenant", prefix = "eu-" }]
          targets = [{ virtual_node = "orders-v1", weight = 1 }]
        },
        {
          name    = "all"
          targets = [{ virtual_node = "orders-v1", weight = 1 }]
        },
      ]
    }
    "db.shop.local" = {
      port     = 5432
      protocol = "tcp"
      routes = [
        {
          name       = "db"
          targets    = [{ virtual_node = "db-v1", weight = 1 }]
          timeout_ms = 600000
        },
      ]
    }
  }

}

run "mesh_and_egress_filter" {
  command = plan

  assert {
    condition     = aws_appmesh_mesh.this.name == "shop" && aws_appmesh_mesh.this.spec[0].egress_filter[0].type == "DROP_ALL"
    error_message = "The mesh must drop egress outside the mesh by default."
  }

  assert {
    condition     = output.mesh_arn == "arn:aws:appmesh:eu-west-1:123456789012:mesh/shop" && output.mesh_id == "shop"
    error_message = "mesh_id and mesh_arn must be the mesh's."
  }

  assert {
    condition     = output.virtual_node_names == tolist(["db-v1", "frontend-v1", "orders-v1", "users-v1", "users-v2"])
    error_message = "Every catalog version must be a virtual node."
  }

  assert {
    condition     = output.virtual_service_names == tolist(["db.shop.local", "orders.shop.local", "users.shop.local"]) && output.virtual_router_names == output.virtual_service_names
    error_message = "Every service must be a virtual service with a router of the same name."
  }

  assert {
    condition = output.route_names == [
      "db.shop.local/db",
      "orders.shop.local/create", "orders.shop.local/orders-service", "orders.shop.local/all",
      "users.shop.local/canary-header", "users.shop.local/get-user", "users.shop.local/default",
    ]
    error_message = "route_names must list each router's routes in priority order."
  }

  assert {
    condition     = aws_appmesh_virtual_service.this["users.shop.local"].spec[0].provider[0].virtual_router[0].virtual_router_name == "users.shop.local"
    error_message = "A virtual service must be provided by its virtual router."
  }

  assert {
    condition     = aws_appmesh_virtual_router.this["db.shop.local"].spec[0].listener[0].port_mapping[0].port == 5432 && aws_appmesh_virtual_router.this["db.shop.local"].spec[0].listener[0].port_mapping[0].protocol == "tcp"
    error_message = "A router must listen on the service's port and protocol."
  }
}

run "virtual_nodes" {
  command = plan

  assert {
    condition     = toset([for b in aws_appmesh_virtual_node.this["frontend-v1"].spec[0].backend : b.virtual_service[0].virtual_service_name]) == toset(["users.shop.local", "orders.shop.local", "db.shop.local"])
    error_message = "The caller's backends must be the virtual services it calls."
  }

  assert {
    condition     = length(aws_appmesh_virtual_node.this["users-v1"].spec[0].backend) == 0
    error_message = "A node without backends must have none."
  }

  assert {
    condition     = aws_appmesh_virtual_node.this["users-v1"].spec[0].service_discovery[0].dns[0].hostname == "users-v1.shop.local"
    error_message = "Service discovery must be DNS with the node's hostname."
  }

  assert {
    condition = (
      aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].outlier_detection[0].max_server_errors == 5
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].outlier_detection[0].max_ejection_percent == 50
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].outlier_detection[0].interval[0].value == 10000
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].outlier_detection[0].interval[0].unit == "ms"
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].outlier_detection[0].base_ejection_duration[0].value == 30000
    )
    error_message = "Outlier detection must carry the catalog's values in milliseconds."
  }

  assert {
    condition     = length(aws_appmesh_virtual_node.this["users-v2"].spec[0].listener[0].outlier_detection) == 0 && length(aws_appmesh_virtual_node.this["users-v2"].spec[0].listener[0].health_check) == 0
    error_message = "No outlier detection or health check unless given."
  }

  assert {
    condition = (
      aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].health_check[0].path == "/healthz"
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].health_check[0].protocol == "http"
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].health_check[0].interval_millis == 5000
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].health_check[0].unhealthy_threshold == 3
    )
    error_message = "The HTTP health check must use the path and the defaults."
  }

  assert {
    condition     = aws_appmesh_virtual_node.this["orders-v1"].spec[0].listener[0].health_check[0].protocol == "grpc" && aws_appmesh_virtual_node.this["orders-v1"].spec[0].listener[0].health_check[0].interval_millis == 10000
    error_message = "A gRPC node's health check must use the gRPC protocol."
  }

  assert {
    condition = (
      aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].connection_pool[0].http[0].max_connections == 100
      && aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].connection_pool[0].http[0].max_pending_requests == 50
      && length(aws_appmesh_virtual_node.this["users-v1"].spec[0].listener[0].connection_pool[0].grpc) == 0
    )
    error_message = "An HTTP node's pool must limit connections and pending requests."
  }

  assert {
    condition     = aws_appmesh_virtual_node.this["orders-v1"].spec[0].listener[0].connection_pool[0].grpc[0].max_requests == 64
    error_message = "A gRPC node's pool must limit requests."
  }

  assert {
    condition     = aws_appmesh_virtual_node.this["db-v1"].spec[0].listener[0].connection_pool[0].tcp[0].max_connections == 20
    error_message = "A TCP node's pool must limit connections."
  }

  assert {
    condition     = length(aws_appmesh_virtual_node.this["users-v2"].spec[0].listener[0].connection_pool) == 0
    error_message = "No connection pool without limits."
  }
}

run "http_routes" {
  command = plan

  assert {
    condition = [
      aws_appmesh_route.this["users.shop.local/canary-header"].spec[0].priority,
      aws_appmesh_route.this["users.shop.local/get-user"].spec[0].priority,
      aws_appmesh_route.this["users.shop.local/default"].spec[0].priority,
    ] == [0, 1, 2]
    error_message = "Route priority must follow the catalog order."
  }

  assert {
    condition = {
      for t in aws_appmesh_route.this["users.shop.local/default"].spec[0].http_route[0].action[0].weighted_target : t.virtual_node => t.weight
    } == { "users-v1" = 90, "users-v2" = 10 }
    error_message = "The default route must split users 90/10 between v1 and v2."
  }

  assert {
    condition     = aws_appmesh_route.this["users.shop.local/default"].spec[0].http_route[0].match[0].prefix == "/"
    error_message = "A route without prefix or path must match prefix \"/\"."
  }

  assert {
    condition     = aws_appmesh_route.this["users.shop.local/default"].spec[0].http_route[0].timeout[0].per_request[0].value == 1500 && aws_appmesh_route.this["users.shop.local/default"].spec[0].http_route[0].timeout[0].per_request[0].unit == "ms"
    error_message = "timeout_ms must become the per-request timeout."
  }

  assert {
    condition     = length(aws_appmesh_route.this["users.shop.local/default"].spec[0].http_route[0].retry_policy) == 0
    error_message = "No retry policy unless given."
  }

  assert {
    condition = (
      aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].retry_policy[0].max_retries == 3
      && aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].retry_policy[0].http_retry_events == toset(["server-error", "gateway-error"])
      && aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].retry_policy[0].tcp_retry_events == toset(["connection-error"])
      && aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].retry_policy[0].per_retry_timeout[0].value == 250
    )
    error_message = "The retry policy must carry the catalog's retries, events and per-try timeout."
  }

  assert {
    condition = (
      aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].match[0].path[0].exact == "/users/me"
      && aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].match[0].prefix == null
      && aws_appmesh_route.this["users.shop.local/get-user"].spec[0].http_route[0].match[0].method == "GET"
    )
    error_message = "A path route must match the exact path and method, without a prefix."
  }

  assert {
    condition = {
      for h in aws_appmesh_route.this["users.shop.local/canary-header"].spec[0].http_route[0].match[0].header :
      h.name => { invert = h.invert, exact = try(h.match[0].exact, null), matches = length(h.match) }
      } == {
      "x-canary" = { invert = false, exact = "true", matches = 1 }
      "x-debug"  = { invert = true, exact = null, matches = 0 }
    }
    error_message = "Header matches: x-canary exact \"true\"; x-debug absent (inverted presence)."
  }

  assert {
    condition = [
      for t in aws_appmesh_route.this["users.shop.local/canary-header"].spec[0].http_route[0].action[0].weighted_target : [t.virtual_node, t.weight]
    ] == [["users-v2", 100]]
    error_message = "The canary header must send everything to v2."
  }

  assert {
    condition     = aws_appmesh_route.this["users.shop.local/default"].virtual_router_name == "users.shop.local" && aws_appmesh_route.this["users.shop.local/default"].name == "default"
    error_message = "Routes must belong to their service's router."
  }
}

# http_route and http2_route are two copies of one block body in main.tf (Terraform cannot choose
# a block's type with `dynamic`): the same routes on an http and an http2 service must give the
# same match, action, retry policy and timeout, each under its own protocol's block only.
run "http2_routes_are_http_routes" {
  command = plan

  variables {
    virtual_nodes = {
      "h1-v1" = { hostname = "h1-v1.shop.local", port = 15006, protocol = "http" }
      "h1-v2" = { hostname = "h1-v2.shop.local", port = 15006, protocol = "http" }
      "h2-v1" = { hostname = "h2-v1.shop.local", port = 15006, protocol = "http2" }
      "h2-v2" = { hostname = "h2-v2.shop.local", port = 15006, protocol = "http2" }
    }
    virtual_services = {
      "h1.shop.local" = {
        port     = 15006
        protocol = "http"
        routes = [
          {
            name    = "canary-header"
            prefix  = "/api/"
            headers = [{ name = "x-canary", exact = "true" }, { name = "x-debug", present = false }, { name = "x-tenant", regex = "eu-.*" }]
            targets = [{ virtual_node = "h1-v2", weight = 100 }]
          },
          {
            name    = "get-user"
            path    = "/users/me"
            method  = "GET"
            targets = [{ virtual_node = "h1-v1", weight = 1 }]
            retry = {
              max_retries          = 3
              per_retry_timeout_ms = 250
              http_retry_events    = ["server-error", "gateway-error"]
              tcp_retry_events     = ["connection-error"]
            }
          },
          {
            name       = "default"
            targets    = [{ virtual_node = "h1-v1", weight = 90 }, { virtual_node = "h1-v2", weight = 10 }]
            timeout_ms = 1500
          },
        ]
      }
      "h2.shop.local" = {
        port     = 15006
        protocol = "http2"
        routes = [
          {
            name    = "canary-header"
            prefix  = "/api/"
            headers = [{ name = "x-canary", exact = "true" }, { name = "x-debug", present = false }, { name = "x-tenant", regex = "eu-.*" }]
            targets = [{ virtual_node = "h2-v2", weight = 100 }]
          },
          {
            name    = "get-user"
            path    = "/users/me"
            method  = "GET"
            targets = [{ virtual_node = "h2-v1", weight = 1 }]
            retry = {
              max_retries          = 3
              per_retry_timeout_ms = 250
              http_retry_events    = ["server-error", "gateway-error"]
              tcp_retry_events     = ["connection-error"]
            }
          },
          {
            name       = "default"
            targets    = [{ virtual_node = "h2-v1", weight = 90 }, { virtual_node = "h2-v2", weight = 10 }]
            timeout_ms = 1500
          },
        ]
      }
    }
  }

  assert {
    condition = alltrue([
      for name in ["canary-header", "get-user", "default"] :
      length(aws_appmesh_route.this["h2.shop.local/${name}"].spec[0].http_route) == 0
      && length(aws_appmesh_route.this["h2.shop.local/${name}"].spec[0].http2_route) == 1
      && length(aws_appmesh_route.this["h1.shop.local/${name}"].spec[0].http2_route) == 0
    ])
    error_message = "An http2 service's routes must be http2_route blocks only, an http service's http_route only."
  }

  assert {
    condition = alltrue([
      for name in ["canary-header", "get-user", "default"] : (
        aws_appmesh_route.this["h2.shop.local/${name}"].spec[0].http2_route[0].match == aws_appmesh_route.this["h1.shop.local/${name}"].spec[0].http_route[0].match
        && aws_appmesh_route.this["h2.shop.local/${name}"].spec[0].http2_route[0].retry_policy == aws_appmesh_route.this["h1.shop.local/${name}"].spec[0].http_route[0].retry_policy
        && aws_appmesh_route.this["h2.shop.local/${name}"].spec[0].http2_route[0].timeout == aws_appmesh_route.this["h1.shop.local/${name}"].spec[0].http_route[0].timeout
        && toset([for t in aws_appmesh_route.this["h2.shop.local/${name}"].spec[0].http2_route[0].action[0].weighted_target : [replace(t.virtual_node, "h2-", ""), t.weight]])
        == toset([for t in aws_appmesh_route.this["h1.shop.local/${name}"].spec[0].http_route[0].action[0].weighted_target : [replace(t.virtual_node, "h1-", ""), t.weight]])
      )
    ])
    error_message = "http2_route must carry exactly what http_route carries for the same route."
  }

  # Equal could mean equally empty: the http2 side on its own, every field.
  assert {
    condition = (
      aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].match[0].path[0].exact == "/users/me"
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].match[0].prefix == null
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].match[0].method == "GET"
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].retry_policy[0].max_retries == 3
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].retry_policy[0].http_retry_events == toset(["server-error", "gateway-error"])
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].retry_policy[0].tcp_retry_events == toset(["connection-error"])
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].retry_policy[0].per_retry_timeout[0].value == 250
      && aws_appmesh_route.this["h2.shop.local/get-user"].spec[0].http2_route[0].retry_policy[0].per_retry_timeout[0].unit == "ms"
      && aws_appmesh_route.this["h2.shop.local/default"].spec[0].http2_route[0].match[0].prefix == "/"
      && aws_appmesh_route.this["h2.shop.local/default"].spec[0].http2_route[0].timeout[0].per_request[0].value == 1500
      && aws_appmesh_route.this["h2.shop.local/canary-header"].spec[0].http2_route[0].match[0].prefix == "/api/"
    )
    error_message = "http2_route: path and method, retry policy, timeout and prefix as the catalog says."
  }

  assert {
    condition = {
      for h in aws_appmesh_route.this["h2.shop.local/canary-header"].spec[0].http2_route[0].match[0].header :
      h.name => jsonencode([h.invert, [for m in h.match : [m.exact, m.prefix, m.regex]]])
      } == {
      "x-canary" = jsonencode([false, [["true", null, null]]])
      "x-debug"  = jsonencode([true, []])
      "x-tenant" = jsonencode([false, [[null, null, "eu-.*"]]])
    }
    error_message = "http2_route header matches: exact, absent (inverted presence), regex."
  }

  assert {
    condition = toset([
      for t in aws_appmesh_route.this["h2.shop.local/default"].spec[0].http2_route[0].action[0].weighted_target : [t.virtual_node, t.weight]
    ]) == toset([["h2-v1", 90], ["h2-v2", 10]])
    error_message = "http2_route must split between its service's own nodes by weight."
  }
}

run "grpc_and_tcp_routes" {
  command = plan

  assert {
    condition = (
      aws_appmesh_route.this["orders.shop.local/create"].spec[0].grpc_route[0].match[0].service_name == "shop.Orders"
      && aws_appmesh_route.this["orders.shop.local/create"].spec[0].grpc_route[0].match[0].method_name == "Create"
    )
    error_message = "A gRPC path route must match service and method."
  }

  assert {
    condition = (
      aws_appmesh_route.this["orders.shop.local/create"].spec[0].grpc_route[0].retry_policy[0].grpc_retry_events == toset(["unavailable", "deadline-exceeded"])
      && aws_appmesh_route.this["orders.shop.local/create"].spec[0].grpc_route[0].retry_policy[0].max_retries == 2
    )
    error_message = "gRPC retries must use gRPC retry events."
  }

  assert {
    condition = (
      aws_appmesh_route.this["orders.shop.local/orders-service"].spec[0].grpc_route[0].match[0].service_name == "shop.Orders"
      && aws_appmesh_route.this["orders.shop.local/orders-service"].spec[0].grpc_route[0].match[0].method_name == null
      && one(aws_appmesh_route.this["orders.shop.local/orders-service"].spec[0].grpc_route[0].match[0].metadata).match[0].prefix == "eu-"
    )
    error_message = "A gRPC prefix route must match the whole service, headers as metadata."
  }

  assert {
    condition     = aws_appmesh_route.this["orders.shop.local/all"].spec[0].grpc_route[0].match[0].service_name == null && aws_appmesh_route.this["orders.shop.local/all"].spec[0].priority == 2
    error_message = "A gRPC catch-all route must not name a service."
  }

  assert {
    condition     = length(aws_appmesh_route.this["orders.shop.local/all"].spec[0].http_route) == 0 && length(aws_appmesh_route.this["orders.shop.local/all"].spec[0].grpc_route) == 1
    error_message = "A grpc service must get grpc_route only."
  }

  assert {
    condition = (
      length(aws_appmesh_route.this["db.shop.local/db"].spec[0].tcp_route) == 1
      && aws_appmesh_route.this["db.shop.local/db"].spec[0].tcp_route[0].timeout[0].idle[0].value == 600000
      && [for t in aws_appmesh_route.this["db.shop.local/db"].spec[0].tcp_route[0].action[0].weighted_target : [t.virtual_node, t.weight]] == [["db-v1", 1]]
    )
    error_message = "A tcp service must get a tcp_route whose timeout is the idle timeout."
  }
}

run "allow_all_egress" {
  command = plan

  variables {
    egress_filter    = "ALLOW_ALL"
    virtual_nodes    = {}
    virtual_services = {}
  }

  assert {
    condition     = aws_appmesh_mesh.this.spec[0].egress_filter[0].type == "ALLOW_ALL" && output.route_names == []
    error_message = "egress_filter must reach the mesh; an empty mesh has no routes."
  }
}

run "rejects_weight_over_100" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes   = [{ name = "default", targets = [{ virtual_node = "users-v1", weight = 900 }, { virtual_node = "users-v2", weight = 100 }] }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_all_zero_weights" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes   = [{ name = "default", targets = [{ virtual_node = "users-v1", weight = 0 }] }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_unknown_retry_event" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes = [{
          name    = "default"
          targets = [{ virtual_node = "users-v1", weight = 1 }]
          retry   = { max_retries = 2, per_retry_timeout_ms = 100, http_retry_events = ["5xx"] }
        }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_retry_without_events" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes = [{
          name    = "default"
          targets = [{ virtual_node = "users-v1", weight = 1 }]
          retry   = { max_retries = 2, per_retry_timeout_ms = 100 }
        }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_target_that_is_not_a_node" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes   = [{ name = "default", targets = [{ virtual_node = "users-v3", weight = 1 }] }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_prefix_without_slash" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes   = [{ name = "api", prefix = "api", targets = [{ virtual_node = "users-v1", weight = 1 }] }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_retry_on_tcp" {
  command = plan

  variables {
    virtual_services = {
      "db.shop.local" = {
        port     = 5432
        protocol = "tcp"
        routes = [{
          name    = "db"
          targets = [{ virtual_node = "db-v1", weight = 1 }]
          retry   = { max_retries = 1, per_retry_timeout_ms = 100, tcp_retry_events = ["connection-error"] }
        }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_header_with_two_matchers" {
  command = plan

  variables {
    virtual_services = {
      "users.shop.local" = {
        port     = 15006
        protocol = "http"
        routes = [{
          name    = "default"
          headers = [{ name = "x-canary", exact = "true", prefix = "t" }]
          targets = [{ virtual_node = "users-v1", weight = 1 }]
        }]
      }
    }
  }

  expect_failures = [var.virtual_services]
}

run "rejects_bad_node_port" {
  command = plan

  variables {
    virtual_nodes = {
      "users-v1" = { hostname = "users-v1.shop.local", port = 0, protocol = "http" }
    }
    virtual_services = {}
  }

  expect_failures = [var.virtual_nodes]
}

run "rejects_http_health_check_without_path" {
  command = plan

  variables {
    virtual_nodes = {
      "users-v1" = { hostname = "users-v1.shop.local", port = 8080, protocol = "http", health_check = {} }
    }
    virtual_services = {}
  }

  expect_failures = [var.virtual_nodes]
}

run "rejects_bad_egress_filter" {
  command = plan

  variables {
    egress_filter = "DENY_ALL"
  }

  expect_failures = [var.egress_filter]
}

run "virtual_gateway_and_gateway_routes" {
  command = plan

  variables {
    virtual_gateways = {
      public = {
        port = 8080
        routes = [
          {
            name            = "api-shop-example"
            virtual_service = "users.shop.local"
            hostname        = "api.shop.example"
            prefix          = "/v1/"
            headers         = [{ name = "x-tenant", exact = "eu" }, { name = "x-debug", present = false }]
          },
          {
            name            = "orders-exact"
            virtual_service = "orders.shop.local"
            path            = "/orders/me"
          },
          {
            name            = "storefront"
            virtual_service = "users.shop.local"
          },
        ]
      }
    }
  }

  assert {
    condition     = aws_appmesh_virtual_gateway.this["public"].spec[0].listener[0].port_mapping[0].port == 8080 && aws_appmesh_virtual_gateway.this["public"].spec[0].listener[0].port_mapping[0].protocol == "http"
    error_message = "The virtual gateway must listen for http on the gateway's port."
  }

  assert {
    condition     = output.gateway_route_names == ["public/api-shop-example", "public/orders-exact", "public/storefront"]
    error_message = "Gateway routes must be listed in priority order."
  }

  assert {
    condition = (
      aws_appmesh_gateway_route.this["public/api-shop-example"].spec[0].priority == 0 &&
      aws_appmesh_gateway_route.this["public/orders-exact"].spec[0].priority == 1 &&
      aws_appmesh_gateway_route.this["public/storefront"].spec[0].priority == 2
    )
    error_message = "The first gateway route must be matched first."
  }

  assert {
    condition = (
      aws_appmesh_gateway_route.this["public/api-shop-example"].spec[0].http_route[0].match[0].prefix == "/v1/" &&
      aws_appmesh_gateway_route.this["public/api-shop-example"].spec[0].http_route[0].match[0].hostname[0].exact == "api.shop.example" &&
      length(aws_appmesh_gateway_route.this["public/api-shop-example"].spec[0].http_route[0].match[0].header) == 2 &&
      aws_appmesh_gateway_route.this["public/api-shop-example"].spec[0].http_route[0].action[0].target[0].virtual_service[0].virtual_service_name == "users.shop.local"
    )
    error_message = "A gateway route must match Host, prefix and headers and target its virtual service."
  }

  assert {
    condition = (
      aws_appmesh_gateway_route.this["public/orders-exact"].spec[0].http_route[0].match[0].prefix == null &&
      aws_appmesh_gateway_route.this["public/orders-exact"].spec[0].http_route[0].match[0].path[0].exact == "/orders/me" &&
      length(aws_appmesh_gateway_route.this["public/orders-exact"].spec[0].http_route[0].match[0].hostname) == 0
    )
    error_message = "A gateway route with a path matches it exactly, and any Host without a hostname."
  }

  assert {
    condition     = aws_appmesh_gateway_route.this["public/storefront"].spec[0].http_route[0].match[0].prefix == "/"
    error_message = "A gateway route without prefix or path matches every path."
  }
}

run "rejects_gateway_route_to_unknown_service" {
  command = plan

  variables {
    virtual_gateways = {
      public = {
        port   = 8080
        routes = [{ name = "lost", virtual_service = "nowhere.shop.local" }]
      }
    }
  }

  expect_failures = [var.virtual_gateways]
}

run "rejects_gateway_route_with_prefix_and_path" {
  command = plan

  variables {
    virtual_gateways = {
      public = {
        port   = 8080
        routes = [{ name = "both", virtual_service = "users.shop.local", prefix = "/a", path = "/b" }]
      }
    }
  }

  expect_failures = [var.virtual_gateways]
}
