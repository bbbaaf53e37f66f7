# The example plans against a mocked AWS provider: a client-only frontend and two users versions.

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
    condition     = output.endpoints == { "users-v1" = "users:80", "users-v2" = "users-v2:80" }
    error_message = "users-v1 must answer as users:80 and the canary as users-v2:80."
  }

  assert {
    condition     = module.frontend_v1.discovery_name == null
    error_message = "The frontend is a client-only service."
  }
}
