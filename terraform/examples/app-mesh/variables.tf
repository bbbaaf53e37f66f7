variable "region" {
  description = "AWS region to create the mesh in."
  type        = string
  default     = "eu-west-1"
}

variable "users_v2_weight" {
  description = "Relative weight (0-100) of users-v2 on the default users route; users-v1 gets 100 minus it."
  type        = number
  default     = 10
}
