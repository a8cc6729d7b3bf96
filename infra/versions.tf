terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      # 6: the resource-level `region` argument (k8s-rollout's EKS access entries in their
      # clusters' Regions).
      version = ">= 6.0.0, < 7.0.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

# Route 53 health checks, and the CloudWatch alarms on them, live in us-east-1 (aurora-promoter).
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = var.tags
  }
}
