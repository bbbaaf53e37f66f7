"""Terraform root configurations for AWS, in three flavors, calling terraform/modules/."""

from meshgen.render.terraform.root import FLAVORS, TRACING_KINDS, AwsOptions, render_aws

__all__ = ["FLAVORS", "TRACING_KINDS", "AwsOptions", "render_aws"]
