# LEGACY: AWS discontinues App Mesh on 2026-09-30. This example is for existing meshes and
# migrations only; new ECS deployments use ../ecs-envoy or ../service-connect.
#
# Two services: frontend (v1) calls users, whose v2 gets a weighted share and every request
# carrying "x-canary: true".

module "mesh" {
  source = "../../modules/app-mesh"

  mesh_name = "shop"

  virtual_nodes = {
    "frontend-v1" = {
      hostname = "frontend-v1.shop.local"
      port     = 8080
      protocol = "http"
      backends = ["users.shop.local"]
      health_check = {
        path = "/healthz"
      }
    }
    "users-v1" = {
      hostname = "users-v1.shop.local"
      port     = 8080
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
      max_connections      = 1024
      max_pending_requests = 1024
    }
    "users-v2" = {
      hostname = "users-v2.shop.local"
      port     = 8080
      protocol = "http"
      health_check = {
        path = "/healthz"
      }
    }
  }

  virtual_services = {
    "frontend.shop.local" = {
      port     = 8080
      protocol = "http"
      routes = [
        { name = "default", targets = [{ virtual_node = "frontend-v1", weight = 1 }] },
      ]
    }
    "users.shop.local" = {
      port     = 8080
      protocol = "http"
      routes = [
        {
          name    = "canary"
          headers = [{ name = "x-canary", exact = "true" }]
          targets = [{ virtual_node = "users-v2", weight = 1 }]
        },
        {
          name = "default"
          targets = [
            { virtual_node = "users-v1", weight = 100 - var.users_v2_weight },
            { virtual_node = "users-v2", weight = var.users_v2_weight },
          ]
          timeout_ms = 2000
          retry = {
            max_retries          = 2
            per_retry_timeout_ms = 500
            http_retry_events    = ["server-error", "gateway-error"]
            tcp_retry_events     = ["connection-error"]
          }
        },
      ]
    }
  }
}
