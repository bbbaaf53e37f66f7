# Plans the mesh foundation against a mocked AWS provider: no credentials, no network.

mock_provider "aws" {
  override_during = plan

  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }

  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }

  mock_resource "aws_ecs_cluster" {
    defaults = { arn = "arn:aws:ecs:eu-west-1:123456789012:cluster/shop" }
  }

  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/shop-task-20260101" }
  }

  mock_resource "aws_service_discovery_private_dns_namespace" {
    defaults = {
      id  = "ns-privatednsaaaaaaa"
      arn = "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-privatednsaaaaaaa"
    }
  }

  mock_resource "aws_security_group" {
    defaults = { id = "sg-0123456789abcdef0" }
  }

  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/x-AbCdEf" }
  }

  mock_resource "aws_acmpca_certificate_authority" {
    defaults = {
      arn                         = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
      certificate_signing_request = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
    }
  }

  mock_resource "aws_service_discovery_http_namespace" {
    defaults = {
      id  = "ns-httpnamespacebbbb"
      arn = "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-httpnamespacebbbb"
    }
  }
}

variables {
  name   = "shop"
  vpc_id = "vpc-0123456789abcdef0"
  namespace = {
    name = "shop.local"
  }
  mesh_ports = [15006]
}

run "defaults_create_cluster_and_private_dns_namespace" {
  command = plan

  assert {
    condition     = length(aws_ecs_cluster.this) == 1 && aws_ecs_cluster.this[0].name == "shop"
    error_message = "The module must create a cluster named after the mesh."
  }

  assert {
    condition     = one([for s in aws_ecs_cluster.this[0].setting : s.value if s.name == "containerInsights"]) == "enabled"
    error_message = "Container Insights must be enabled by default."
  }

  assert {
    condition     = output.cluster_arn == "arn:aws:ecs:eu-west-1:123456789012:cluster/shop" && output.cluster_name == "shop"
    error_message = "cluster_arn/cluster_name must come from the created cluster."
  }

  assert {
    condition     = length(aws_service_discovery_private_dns_namespace.this) == 1 && length(aws_service_discovery_http_namespace.this) == 0
    error_message = "namespace.type defaults to dns_private: one private DNS namespace, no HTTP namespace."
  }

  assert {
    condition     = aws_service_discovery_private_dns_namespace.this[0].vpc == "vpc-0123456789abcdef0" && output.namespace_name == "shop.local"
    error_message = "The private DNS namespace must be shop.local in the given VPC."
  }

  assert {
    condition     = output.namespace_id == "ns-privatednsaaaaaaa"
    error_message = "namespace_id must be the private DNS namespace's ID."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/meshgen/shop" && output.log_group_name == "/meshgen/shop"
    error_message = "The log group must be /meshgen/<name>."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 30
    error_message = "Logs must be kept 30 days by default."
  }

  assert {
    condition     = aws_iam_role_policy_attachment.execution.policy_arn == "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    error_message = "The execution role must get AmazonECSTaskExecutionRolePolicy (ARN built from the partition)."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.task_xray) == 1 && aws_iam_role_policy_attachment.task_xray[0].policy_arn == "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
    error_message = "enable_xray defaults to true: the task role gets AWSXRayDaemonWriteAccess."
  }

  assert {
    condition = alltrue([
      for role in [aws_iam_role.execution, aws_iam_role.task] :
      jsondecode(role.assume_role_policy).Statement[0].Principal.Service == "ecs-tasks.amazonaws.com"
    ])
    error_message = "Both roles must trust ecs-tasks.amazonaws.com."
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.task.assume_role_policy).Statement[0].Condition.StringEquals["aws:SourceAccount"] == "123456789012"
      && jsondecode(aws_iam_role.task.assume_role_policy).Statement[0].Condition.ArnLike["aws:SourceArn"] == "arn:aws:ecs:eu-west-1:123456789012:*"
    )
    error_message = "The task role must be assumable only by ECS tasks of this account and region."
  }

  assert {
    condition     = startswith(aws_iam_role.execution.name_prefix, "shop-") && startswith(aws_iam_role.task.name_prefix, "shop-")
    error_message = "Role names must start with the mesh name."
  }

  assert {
    condition = [
      for rule in aws_security_group.this.ingress : [rule.from_port, rule.to_port, rule.protocol, rule.self, length(coalesce(rule.cidr_blocks, []))]
    ] == [[15006, 15006, "tcp", true, 0]]
    error_message = "The security group must admit only TCP 15006, and only from itself."
  }

  assert {
    condition     = aws_security_group.this.vpc_id == "vpc-0123456789abcdef0" && aws_security_group.this.name == "meshgen-shop"
    error_message = "The security group must be meshgen-<name> in the given VPC."
  }

  assert {
    condition     = output.security_group_id == "sg-0123456789abcdef0"
    error_message = "security_group_id must be the created group's ID."
  }
}

run "one_rule_per_mesh_port" {
  command = plan

  variables {
    mesh_ports = [8080, 15006, 5432, 8080]
  }

  assert {
    condition     = toset([for rule in aws_security_group.this.ingress : rule.from_port]) == toset([5432, 8080, 15006])
    error_message = "Each distinct mesh port must get one rule."
  }

  assert {
    condition     = alltrue([for rule in aws_security_group.this.ingress : rule.self && rule.from_port == rule.to_port && length(coalesce(rule.cidr_blocks, [])) == 0])
    error_message = "Every rule must admit a single port from the group itself, never an address range."
  }
}

run "rejects_no_mesh_ports" {
  command = plan

  variables {
    mesh_ports = []
  }

  expect_failures = [var.mesh_ports]
}

run "rejects_mesh_port_out_of_range" {
  command = plan

  variables {
    mesh_ports = [15006, 70000]
  }

  expect_failures = [var.mesh_ports]
}

run "rejects_fractional_mesh_port" {
  command = plan

  variables {
    mesh_ports = [8080.5]
  }

  expect_failures = [var.mesh_ports]
}

run "http_namespace_for_service_connect" {
  command = plan

  variables {
    namespace = {
      name = "shop"
      type = "http"
    }
    enable_xray        = false
    log_retention_days = 7
  }

  assert {
    condition     = length(aws_service_discovery_http_namespace.this) == 1 && length(aws_service_discovery_private_dns_namespace.this) == 0
    error_message = "namespace.type = http must create only an HTTP namespace."
  }

  assert {
    condition     = output.namespace_arn == "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-httpnamespacebbbb" && output.namespace_name == "shop"
    error_message = "namespace_arn/namespace_name must come from the HTTP namespace."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.task_xray) == 0
    error_message = "enable_xray = false must not attach the X-Ray policy."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.retention_in_days == 7
    error_message = "log_retention_days must reach the log group."
  }
}

run "existing_cluster" {
  command = plan

  variables {
    create_cluster = false
    cluster_arn    = "arn:aws:ecs:eu-west-1:123456789012:cluster/platform"
  }

  assert {
    condition     = length(aws_ecs_cluster.this) == 0
    error_message = "create_cluster = false must not create a cluster."
  }

  assert {
    condition     = output.cluster_arn == "arn:aws:ecs:eu-west-1:123456789012:cluster/platform" && output.cluster_name == "platform"
    error_message = "cluster_arn/cluster_name must be those of the existing cluster."
  }
}

run "existing_cluster_needs_arn" {
  command = plan

  variables {
    create_cluster = false
  }

  expect_failures = [var.cluster_arn]
}

run "rejects_bad_vpc_id" {
  command = plan

  variables {
    vpc_id = "subnet-0123456789abcdef0"
  }

  expect_failures = [var.vpc_id]
}

run "rejects_bad_name" {
  command = plan

  variables {
    name = "Shop_Mesh"
  }

  expect_failures = [var.name]
}

run "rejects_unknown_retention" {
  command = plan

  variables {
    log_retention_days = 10
  }

  expect_failures = [var.log_retention_days]
}

run "rejects_unknown_namespace_type" {
  command = plan

  variables {
    namespace = {
      name = "shop.local"
      type = "dns_public"
    }
  }

  expect_failures = [var.namespace]
}

run "rejects_cluster_arn_with_create_cluster" {
  command = plan

  variables {
    cluster_arn = "arn:aws:ecs:eu-west-1:123456789012:cluster/platform"
  }

  expect_failures = [var.cluster_arn]
}

# Identities for mutual TLS (ecs-envoy-service): one empty secret and one execution role per
# service; each role may read its own secret and nothing else.
run "one_secret_and_one_execution_role_per_identity" {
  command = plan

  variables {
    identities = ["users", "orders"]
  }

  override_resource {
    target          = aws_secretsmanager_secret.identity["users"]
    override_during = plan
    values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf" }
  }

  override_resource {
    target          = aws_secretsmanager_secret.identity["orders"]
    override_during = plan
    values          = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/orders-GhIjKl" }
  }

  assert {
    condition     = { for k, s in aws_secretsmanager_secret.identity : k => s.name } == { users = "meshgen/shop/identity/users", orders = "meshgen/shop/identity/orders" }
    error_message = "Each identity's secret must be meshgen/<mesh>/identity/<service>."
  }

  assert {
    condition     = alltrue([for s in aws_secretsmanager_secret.identity : s.recovery_window_in_days == 0])
    error_message = "Identity secrets are deleted at once by default (reissued, never recovered)."
  }

  assert {
    condition = {
      for k, p in aws_iam_role_policy.identity : k => jsondecode(p.policy).Statement
      } == {
      users = [{
        Sid      = "ReadOwnIdentitySecret"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf"
      }]
      orders = [{
        Sid      = "ReadOwnIdentitySecret"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/orders-GhIjKl"
      }]
    }
    error_message = "Each identity's execution role may read exactly its own secret, nothing else."
  }

  assert {
    condition     = alltrue([for a in aws_iam_role_policy_attachment.identity : a.policy_arn == "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"])
    error_message = "Identity execution roles must also pull images and write logs (AmazonECSTaskExecutionRolePolicy)."
  }

  assert {
    condition = alltrue([
      for r in aws_iam_role.identity : jsondecode(r.assume_role_policy).Statement[0].Principal.Service == "ecs-tasks.amazonaws.com"
    ])
    error_message = "Identity execution roles must trust ecs-tasks.amazonaws.com."
  }

  assert {
    condition     = output.identities.users.secret_arn == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:meshgen/shop/identity/users-AbCdEf" && output.identities.orders.secret_name == "meshgen/shop/identity/orders"
    error_message = "Output identities must map each service to its secret."
  }

  assert {
    condition     = length(aws_iam_role_policy.identity) == 2 && length(aws_iam_role.identity) == 2
    error_message = "One role and one policy per identity."
  }

  assert {
    condition     = length(aws_acmpca_certificate_authority.this) == 0 && output.service_connect_tls == null
    error_message = "No Private CA without service_connect_tls."
  }
}

run "no_identities_by_default" {
  command = plan

  assert {
    condition     = length(aws_secretsmanager_secret.identity) == 0 && length(aws_iam_role.identity) == 0 && output.identities == {}
    error_message = "No identities: no secrets, no extra roles."
  }
}

run "rejects_an_identity_that_is_not_a_service_name" {
  command = plan

  variables {
    identities = ["Users_1"]
  }

  expect_failures = [var.identities]
}

run "rejects_a_recovery_window_secrets_manager_refuses" {
  command = plan

  variables {
    identity_recovery_window_days = 3
  }

  expect_failures = [var.identity_recovery_window_days]
}

# Service Connect TLS: a short-lived-certificate root Private CA, self-signed and imported, tagged
# for ECS's managed policy, and the role ECS assumes to use it.
run "service_connect_tls_creates_a_private_ca" {
  command = plan

  variables {
    namespace           = { name = "shop", type = "http" }
    service_connect_tls = { ca_validity_days = 365 }
  }

  assert {
    condition = (
      aws_acmpca_certificate_authority.this[0].type == "ROOT"
      && aws_acmpca_certificate_authority.this[0].usage_mode == "SHORT_LIVED_CERTIFICATE"
      && aws_acmpca_certificate_authority.this[0].certificate_authority_configuration[0].key_algorithm == "EC_prime256v1"
      && aws_acmpca_certificate_authority.this[0].certificate_authority_configuration[0].signing_algorithm == "SHA256WITHECDSA"
      && aws_acmpca_certificate_authority.this[0].tags["AmazonECSManaged"] == "true"
    )
    error_message = "The Private CA must be an ECDSA P-256 root in short-lived mode, tagged AmazonECSManaged = true."
  }

  assert {
    condition = (
      aws_acmpca_certificate.root[0].template_arn == "arn:aws:acm-pca:::template/RootCACertificate/V1"
      && aws_acmpca_certificate.root[0].validity[0].type == "DAYS" && aws_acmpca_certificate.root[0].validity[0].value == "365"
      && aws_acmpca_certificate.root[0].certificate_signing_request == aws_acmpca_certificate_authority.this[0].certificate_signing_request
    )
    error_message = "The CA must sign its own CSR as a root certificate valid ca_validity_days."
  }

  assert {
    condition     = length(aws_acmpca_certificate_authority_certificate.this) == 1
    error_message = "The root certificate must be imported, which makes the CA active."
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.service_connect_tls[0].assume_role_policy).Statement[0].Principal.Service == "ecs.amazonaws.com"
      && aws_iam_role_policy_attachment.service_connect_tls[0].policy_arn == "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity"
    )
    error_message = "The TLS role must trust ecs.amazonaws.com and carry ECS's managed Service Connect TLS policy."
  }

  assert {
    condition = (
      output.service_connect_tls.issuer_cert_authority_arn == "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
      && output.service_connect_tls.role_arn == "arn:aws:iam::123456789012:role/shop-task-20260101"
      && output.service_connect_tls.kms_key == null
    )
    error_message = "Output service_connect_tls must name the Private CA and the role, the input of ecs-service-connect."
  }
}

run "service_connect_tls_with_an_existing_private_ca" {
  command = plan

  variables {
    namespace = { name = "shop", type = "http" }
    service_connect_tls = {
      private_ca_arn = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
      kms_key        = "arn:aws:kms:eu-west-1:123456789012:key/abcd"
    }
  }

  assert {
    condition     = length(aws_acmpca_certificate_authority.this) == 0 && length(aws_acmpca_certificate.root) == 0
    error_message = "With private_ca_arn no Private CA is created."
  }

  assert {
    condition     = output.service_connect_tls.issuer_cert_authority_arn == "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555" && output.service_connect_tls.kms_key == "arn:aws:kms:eu-west-1:123456789012:key/abcd"
    error_message = "The given Private CA and KMS key must be passed on."
  }
}

run "rejects_service_connect_tls_on_a_dns_namespace" {
  command = plan

  variables {
    service_connect_tls = {}
  }

  expect_failures = [var.service_connect_tls]
}

run "rejects_a_key_algorithm_service_connect_cannot_use" {
  command = plan

  variables {
    namespace           = { name = "shop", type = "http" }
    service_connect_tls = { key_algorithm = "EC_secp384r1" }
  }

  expect_failures = [var.service_connect_tls]
}

run "rejects_a_private_ca_arn_that_is_not_one" {
  command = plan

  variables {
    namespace           = { name = "shop", type = "http" }
    service_connect_tls = { private_ca_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab" }
  }

  expect_failures = [var.service_connect_tls]
}

run "no_metrics_by_default" {
  command = plan

  assert {
    condition     = length(aws_cloudwatch_log_group.metrics) == 0 && length(aws_iam_role_policy.metrics) == 0 && output.metrics_log_group_name == null
    error_message = "Without metrics_namespace: no metrics log group, no metrics permission."
  }
}

run "metrics_log_group_and_namespace_scoped_permission" {
  command = plan

  variables {
    metrics_namespace = "meshgen/shop"
  }

  override_resource {
    target          = aws_cloudwatch_log_group.metrics[0]
    override_during = plan
    values          = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/meshgen/shop/metrics" }
  }

  assert {
    condition     = aws_cloudwatch_log_group.metrics[0].name == "/meshgen/shop/metrics" && output.metrics_log_group_name == "/meshgen/shop/metrics"
    error_message = "The EMF log group must be /meshgen/<mesh>/metrics, and an output."
  }

  assert {
    condition     = aws_cloudwatch_log_group.metrics[0].retention_in_days == 30
    error_message = "The metrics log group must keep log_retention_days, like the mesh's log group."
  }

  assert {
    condition = one([
      for s in jsondecode(aws_iam_role_policy.metrics[0].policy).Statement : s if s.Action == "cloudwatch:PutMetricData"
    ]).Condition == { StringEquals = { "cloudwatch:namespace" = "meshgen/shop" } }
    error_message = "PutMetricData must be allowed in the mesh's namespace only (condition cloudwatch:namespace)."
  }

  assert {
    condition = one([
      for s in jsondecode(aws_iam_role_policy.metrics[0].policy).Statement : s.Resource if s.Sid == "WriteEmfToMetricsLogGroup"
    ]) == ["arn:aws:logs:eu-west-1:123456789012:log-group:/meshgen/shop/metrics:*", "arn:aws:logs:eu-west-1:123456789012:log-group:/meshgen/shop/metrics"]
    error_message = "EMF writes must be allowed to the metrics log group and its streams only."
  }

  assert {
    condition = join(",", sort(one([
      for s in jsondecode(aws_iam_role_policy.metrics[0].policy).Statement : s.Action if s.Sid == "WriteEmfToMetricsLogGroup"
    ]))) == "logs:CreateLogStream,logs:DescribeLogStreams,logs:PutLogEvents"
    error_message = "The agent needs to create streams in the group and put events; nothing else of CloudWatch Logs."
  }

  assert {
    condition     = output.metrics_namespace == "meshgen/shop"
    error_message = "metrics_namespace must be an output."
  }
}

run "rejects_an_aws_metrics_namespace" {
  command = plan

  variables {
    metrics_namespace = "AWS/ECS"
  }

  expect_failures = [var.metrics_namespace]
}
