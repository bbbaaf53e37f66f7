# The example plans against a mocked AWS provider.

mock_provider "aws" {}

run "plan" {
  command = plan

  assert {
    condition     = output.route_names == ["frontend.shop.local/default", "users.shop.local/canary", "users.shop.local/default"]
    error_message = "The canary header route must come before the weighted default route."
  }
}

run "all_traffic_on_v2" {
  command = plan

  variables {
    users_v2_weight = 100
  }

  assert {
    condition     = length(output.route_names) == 3
    error_message = "A weight of 0 for users-v1 is still a valid route."
  }
}
