variable "name" {
  description = "Function name (the crate name, e.g. asg-scaler)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix for the resource names."
  type        = string
}

variable "description" {
  description = "What the function does."
  type        = string
}

variable "zip_path" {
  description = "The zip cargo-lambda built: target/lambda/<name>/bootstrap.zip."
  type        = string
}

variable "environment" {
  description = "Environment variables: the configuration the function reads at cold start."
  type        = map(string)
}

variable "policy_json" {
  description = "IAM policy with exactly the AWS operations the function's code calls."
  type        = string
}

variable "timeout_seconds" {
  description = "Function timeout."
  type        = number
  default     = 30
}

variable "memory_mb" {
  description = "Function memory."
  type        = number
  default     = 128
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions (-1: unreserved)."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  description = "Log group retention."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "KMS key for the log group, the environment and the failure queue."
  type        = string
}

variable "code_deployed_by" {
  description = "\"terraform\": each apply uploads the zip when it changes; \"cargo-lambda\": `cargo lambda deploy` owns the code, and Terraform uploads the zip only when it creates the function."
  type        = string
  default     = "terraform"
}

variable "vpc_config" {
  description = "Subnets and security groups to run the function in (both empty, the default: no VPC). Only for private endpoints; when set, AWSLambdaVPCAccessExecutionRole is attached to the role."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default  = { subnet_ids = [], security_group_ids = [] }
  nullable = false
}
