# The example plans against a mocked AWS provider: three service versions, each with its sidecars.

mock_provider "aws" {
  # The provider still validates ARNs it is given, so the partition must be a real one.
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }

  # The services validate the security group IDs they are given.
  mock_resource "aws_security_group" {
    defaults = { id = "sg-0123456789abcdef0" }
  }
}

variables {
  vpc_id     = "vpc-0123456789abcdef0"
  subnet_ids = ["subnet-0123456789abcdef0"]
}

run "plan" {
  command = plan

  assert {
    condition     = output.services == { "frontend-v1" = "frontend-v1", "users-v1" = "users-v1", "users-v2" = "users-v2" }
    error_message = "Every service version must be an ECS service."
  }

  assert {
    condition     = module.frontend_v1.container_names == ["app", "envoy", "xray-daemon"] && module.users["users-v2"].container_names == ["app", "envoy"]
    error_message = "The frontend traces through X-Ray; the users versions run without a tracing sidecar."
  }
}
