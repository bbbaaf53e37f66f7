variable "region" {
  description = "AWS region to deploy the example mesh in."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "VPC the mesh's private DNS namespace is attached to."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT gateway or VPC endpoints for image pulls) the tasks run in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Extra security groups of the tasks; the mesh's own group already admits TCP 15006 between them."
  type        = list(string)
  default     = []
}

variable "app_image" {
  description = "Stand-in application image serving HTTP on port 80 for every service version."
  type        = string
  default     = "public.ecr.aws/nginx/nginx:stable"
}

variable "users_v2_weight" {
  description = "Percent of the frontend's calls to users that go to users-v2 (the canary)."
  type        = number
  default     = 10

  validation {
    condition     = var.users_v2_weight >= 0 && var.users_v2_weight <= 100
    error_message = "users_v2_weight must be 0-100."
  }
}
