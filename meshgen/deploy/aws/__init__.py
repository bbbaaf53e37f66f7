"""AWS: driving Terraform on a generated root, and reading what is deployed back with boto3."""
