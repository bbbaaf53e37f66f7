# Two services with ECS Service Connect: frontend-v1 is a client only; users-v1 answers as
# "users:80" and the users-v2 canary as "users-v2:80". Service Connect has no weighted
# routing, so a canary gets its own name (clients opt in) rather than a traffic share.

module "mesh" {
  source = "../../modules/ecs-mesh"

  name   = "shop-sc"
  vpc_id = var.vpc_id
  namespace = {
    name = "shop"
    type = "http"
  }
  mesh_ports = [80] # every version's app port, where Service Connect's proxy takes calls
}

module "frontend_v1" {
  source = "../../modules/ecs-service-connect"

  name               = "frontend-v1"
  cluster_arn        = module.mesh.cluster_arn
  namespace_arn      = module.mesh.namespace_arn
  execution_role_arn = module.mesh.execution_role_arn
  task_role_arn      = module.mesh.task_role_arn
  log_group_name     = module.mesh.log_group_name
  region             = var.region
  subnet_ids         = var.subnet_ids
  security_group_ids = concat([module.mesh.security_group_id], var.security_group_ids)

  app = {
    image       = var.app_image
    port        = 80
    environment = { USERS_URL = "http://users:80" }
  }

  # No discovery_name: the frontend calls others through Service Connect but is not called.
  service_connect = {}
}

module "users" {
  source = "../../modules/ecs-service-connect"
  for_each = {
    "users-v1" = { discovery_name = "users", desired_count = 2 }
    "users-v2" = { discovery_name = "users-v2", desired_count = 1 }
  }

  name               = each.key
  cluster_arn        = module.mesh.cluster_arn
  namespace_arn      = module.mesh.namespace_arn
  execution_role_arn = module.mesh.execution_role_arn
  task_role_arn      = module.mesh.task_role_arn
  log_group_name     = module.mesh.log_group_name
  region             = var.region
  subnet_ids         = var.subnet_ids
  security_group_ids = concat([module.mesh.security_group_id], var.security_group_ids)
  desired_count      = each.value.desired_count

  app = {
    image = var.app_image
    port  = 80
  }

  service_connect = {
    discovery_name              = each.value.discovery_name
    client_aliases              = [{ port = 80, dns_name = each.value.discovery_name }]
    per_request_timeout_seconds = 5
  }
}
