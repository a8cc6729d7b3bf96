variable "region" {
  description = "AWS region to deploy the functions into."
  type        = string
  default     = "eu-west-1"
}

variable "partition" {
  description = "AWS partition of the account (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "name_prefix" {
  description = "Prefix for every resource name."
  type        = string
  default     = "autonomic"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2 to 31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { "managed-by" = "terraform", "system" = "autonomic" }
}

variable "artifacts_dir" {
  description = "Where cargo-lambda wrote the zips: <dir>/<function>/bootstrap.zip."
  type        = string
  default     = "../target/lambda"
}

variable "dry_run" {
  description = "Deploy every function in dry run: plan, log and return the plan; change nothing."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups."
  type        = number
  default     = 365
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function (-1: unreserved)."
  type        = map(number)
  default     = { "asg-scaler" = 5, "cdn-invalidator" = 2, "pipeline-trigger" = 5, "aurora-promoter" = 2, "k8s-rollout" = 5 }
}

variable "timeout_seconds" {
  description = "Function timeout per function."
  type        = map(number)
  default     = { "asg-scaler" = 30, "cdn-invalidator" = 60, "pipeline-trigger" = 30, "aurora-promoter" = 120, "k8s-rollout" = 300 }
}

variable "memory_mb" {
  description = "Function memory per function."
  type        = map(number)
  default     = { "asg-scaler" = 128, "cdn-invalidator" = 256, "pipeline-trigger" = 128, "aurora-promoter" = 128, "k8s-rollout" = 128 }
}

variable "idempotency_ttl_seconds" {
  description = "How long a handled event is remembered (IDEMPOTENCY_TTL_SECONDS)."
  type        = number
  default     = 86400
}

variable "code_deployed_by" {
  description = "Who deploys the functions' code after the first apply: \"terraform\" (each apply uploads the zips when they change) or \"cargo-lambda\" (`cargo lambda deploy` does; Terraform uploads the zip only when it creates a function, then leaves the code alone)."
  type        = string
  default     = "terraform"
  validation {
    condition     = contains(["terraform", "cargo-lambda"], var.code_deployed_by)
    error_message = "code_deployed_by is \"terraform\" or \"cargo-lambda\"."
  }
}

variable "scaling_rules_file" {
  description = "Path of the asg-scaler rules document (SCALING_RULES)."
  type        = string
  default     = "../functions/asg-scaler/rules.example.json"
}

variable "max_event_age_seconds" {
  description = "asg-scaler skips alarm transitions older than this (MAX_EVENT_AGE_SECONDS); 0 turns the check off."
  type        = number
  default     = 600
}

variable "scalable_group_tag" {
  description = "asg-scaler may only set the capacity of Auto Scaling groups carrying this tag with the value \"true\"."
  type        = string
  default     = "autonomic-managed"
}

variable "bucket_distributions_file" {
  description = "Path of the cdn-invalidator bucket mappings document (BUCKET_DISTRIBUTIONS): which distribution serves each bucket."
  type        = string
  default     = "../functions/cdn-invalidator/buckets.example.json"
}

variable "pipeline_routes_file" {
  description = "Path of the pipeline-trigger routes document (PIPELINE_ROUTES): which pushed images start which pipelines. The function may start only the pipelines it names."
  type        = string
  default     = "../functions/pipeline-trigger/routes.example.json"
}

variable "push_max_event_age_seconds" {
  description = "pipeline-trigger and k8s-rollout skip pushes older than this (MAX_EVENT_AGE_SECONDS); 0 turns the check off. EventBridge stops retrying a delivery at the same age."
  type        = number
  default     = 3600
}

variable "promotion_targets_file" {
  description = "aurora-promoter's targets document (JSON): which health-check alarms promote which Aurora clusters, and how. Published as an SSM parameter; IAM is scoped to the clusters, health checks and zones it names."
  type        = string
  default     = "../functions/aurora-promoter/targets.example.json"
}

variable "health_alarm_max_event_age_seconds" {
  description = "aurora-promoter skips health-check alarm transitions older than this (0: no limit); EventBridge stops retrying a delivery at the same age."
  type        = number
  default     = 900
}

variable "promotion_settle_seconds" {
  description = "aurora-promoter: after a promotion call that may have taken effect, how long the clusters must still look untouched before the retry of the same alarm calls again."
  type        = number
  default     = 60
}

variable "primary_silence_seconds" {
  description = "aurora-promoter: how long a global database's primary Region must answer nothing (no call answered, in readings that far apart) before it is taken as down and a failover allowing data loss may be made (PRIMARY_SILENCE_SECONDS). The function's timeout must leave room for it and two readings (at least 60 s more)."
  type        = number
  default     = 30
  validation {
    condition     = var.primary_silence_seconds >= 1 && var.primary_silence_seconds <= 600 && floor(var.primary_silence_seconds) == var.primary_silence_seconds
    error_message = "primary_silence_seconds is a whole number of seconds from 1 to 600, as the function accepts."
  }
}

variable "start_settle_seconds" {
  description = "pipeline-trigger: after a start that may have taken effect, how long the pipeline's executions must still show none of it before it is started again (START_SETTLE_SECONDS)."
  type        = number
  default     = 15
  validation {
    condition     = var.start_settle_seconds >= 0 && var.start_settle_seconds <= 600 && floor(var.start_settle_seconds) == var.start_settle_seconds
    error_message = "start_settle_seconds is a whole number of seconds from 0 to 600, as the function accepts."
  }
}

variable "rollout_clusters_file" {
  description = "k8s-rollout's clusters document (JSON, ROLLOUT_CLUSTERS): which Kubernetes clusters and namespaces it may roll. Published as an SSM parameter; eks:DescribeCluster and the EKS access entries are scoped to the `eks` clusters it names."
  type        = string
  default     = "../functions/k8s-rollout/clusters.example.json"
}

variable "rollout_verify_seconds" {
  description = "k8s-rollout: how long one rollout is watched before it is reported unverified (ROLLOUT_VERIFY_SECONDS). Must stay below the function's timeout."
  type        = number
  default     = 240

  validation {
    condition     = var.rollout_verify_seconds >= 10 && var.rollout_verify_seconds <= 840 && floor(var.rollout_verify_seconds) == var.rollout_verify_seconds
    error_message = "rollout_verify_seconds is a whole number of seconds from 10 to 840, as the function accepts (Lambda's timeout is at most 900)."
  }
}

variable "rollout_poll_seconds" {
  description = "k8s-rollout: how often the rollout status is read while verifying (ROLLOUT_POLL_SECONDS)."
  type        = number
  default     = 5

  validation {
    condition     = var.rollout_poll_seconds >= 1 && var.rollout_poll_seconds <= 60 && floor(var.rollout_poll_seconds) == var.rollout_poll_seconds
    error_message = "rollout_poll_seconds is a whole number of seconds from 1 to 60."
  }
}

variable "rollout_manage_eks_access" {
  description = "Give k8s-rollout's role an EKS access entry and AmazonEKSEditPolicy scoped to the document's namespaces on each `eks` cluster it names (the clusters' authentication mode must be API or API_AND_CONFIG_MAP). Set false to map the role with an RBAC group instead (see docs/functions/k8s-rollout.md, Access to the clusters)."
  type        = bool
  default     = true
}

variable "rollout_subnet_ids" {
  description = "Subnets to run k8s-rollout in, for clusters with a private API endpoint only (default: no VPC). Set together with rollout_security_group_ids; the subnets need a NAT gateway or VPC endpoints (SSM, DynamoDB, EKS, STS) for the AWS APIs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.rollout_subnet_ids : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "rollout_subnet_ids holds subnet IDs (subnet-...)."
  }
}

variable "rollout_security_group_ids" {
  description = "Security groups for k8s-rollout in the VPC (set together with rollout_subnet_ids); the clusters' security groups must admit them on 443."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.rollout_security_group_ids : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "rollout_security_group_ids holds security group IDs (sg-...)."
  }
}

variable "distribution_arns" {
  description = "cdn-invalidator may invalidate these distributions only (default: every distribution of the account)."
  type        = list(string)
  default     = []
}

variable "collapse_threshold" {
  description = "cdn-invalidator: a folder with more paths than this in one batch becomes folder/* (COLLAPSE_THRESHOLD)."
  type        = number
  default     = 20
}

variable "invalidation_batch_size" {
  description = "Messages per cdn-invalidator invocation (up to 10000 on a standard queue, with a batching window; at most 10 on a FIFO queue). Lambda's 6 MB payload limit may cut a batch of large messages shorter."
  type        = number
  default     = 10000
}

variable "invalidation_batching_window_seconds" {
  description = "How long the event source mapping gathers messages before invoking (0 to 300)."
  type        = number
  default     = 30
}

variable "invalidation_max_receive_count" {
  description = "Deliveries of a message before it moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "alarm_topic_arn" {
  description = "SNS topic for the automation's own alarms (errors, throttles, DLQ depth); empty for none."
  type        = string
  default     = ""
}

variable "state_table_deletion_protection" {
  description = "Protect the state table from deletion (set false, apply, then destroy, to tear down)."
  type        = bool
  default     = true
}

variable "notification_source_arns" {
  description = "S3 buckets and SNS topics allowed to deliver to the invalidation queue (empty: any of this account)."
  type        = list(string)
  default     = []
}
