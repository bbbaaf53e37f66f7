# Two services, frontend (v1) calling users (v1 and a v2 canary), each version an ECS service
# with an Envoy sidecar. meshgen renders these Envoy configurations from a catalog; here they
# come from small templates next to this file.

module "mesh" {
  source = "../../modules/ecs-mesh"

  name   = "shop"
  vpc_id = var.vpc_id
  namespace = {
    name = "shop.local"
  }
  mesh_ports = [15006] # every version's Envoy inbound port
}

locals {
  service_defaults = {
    cluster_arn        = module.mesh.cluster_arn
    namespace_id       = module.mesh.namespace_id
    execution_role_arn = module.mesh.execution_role_arn
    task_role_arn      = module.mesh.task_role_arn
    log_group_name     = module.mesh.log_group_name
  }
}

module "frontend_v1" {
  source = "../../modules/ecs-envoy-service"

  name               = "frontend-v1"
  cluster_arn        = local.service_defaults.cluster_arn
  namespace_id       = local.service_defaults.namespace_id
  execution_role_arn = local.service_defaults.execution_role_arn
  task_role_arn      = local.service_defaults.task_role_arn
  log_group_name     = local.service_defaults.log_group_name
  region             = var.region
  subnet_ids         = var.subnet_ids
  security_group_ids = concat([module.mesh.security_group_id], var.security_group_ids)

  app = {
    image       = var.app_image
    port        = 80
    environment = { USERS_URL = "http://127.0.0.1:15001" }
  }

  envoy = {
    config = templatefile("${path.module}/envoy/frontend.yaml.tftpl", {
      namespace       = module.mesh.namespace_name
      users_v1_weight = 100 - var.users_v2_weight
      users_v2_weight = var.users_v2_weight
    })
  }
}

module "users" {
  source   = "../../modules/ecs-envoy-service"
  for_each = toset(["users-v1", "users-v2"])

  name               = each.key
  cluster_arn        = local.service_defaults.cluster_arn
  namespace_id       = local.service_defaults.namespace_id
  execution_role_arn = local.service_defaults.execution_role_arn
  task_role_arn      = local.service_defaults.task_role_arn
  log_group_name     = local.service_defaults.log_group_name
  region             = var.region
  subnet_ids         = var.subnet_ids
  security_group_ids = concat([module.mesh.security_group_id], var.security_group_ids)
  desired_count      = each.key == "users-v1" ? 2 : 1

  app = {
    image = var.app_image
    port  = 80
  }

  envoy = {
    config = templatefile("${path.module}/envoy/users.yaml.tftpl", { version = each.key })
  }

  tracing = {
    kind = "none"
  }
}
