variable "region" {
  description = "AWS region to deploy the example mesh in."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "VPC the tasks run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with a NAT gateway or VPC endpoints for image pulls) the tasks run in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Extra security groups of the tasks; the mesh's own group already admits TCP 80 between them."
  type        = list(string)
  default     = []
}

variable "app_image" {
  description = "Stand-in application image serving HTTP on port 80 for every service version."
  type        = string
  default     = "public.ecr.aws/nginx/nginx:stable"
}
