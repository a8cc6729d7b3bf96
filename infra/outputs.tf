output "functions" {
  description = "Each function's name, ARN, role, log group, failure queue, and the command that deploys new code onto it."
  value = {
    for name, m in local.functions : name => {
      name      = m.function_name
      arn       = m.function_arn
      role_arn  = m.role_arn
      log_group = m.log_group_name
      failures  = m.failure_queue_arn
      # Code only: configuration and triggers stay as Terraform set them (see docs/operations.md, Build and deploy).
      deploy_code = "cargo lambda deploy --region ${var.region} --binary-name ${name} --iam-role ${m.role_arn} ${m.function_name}"
    }
  }
}

output "state_table_name" {
  description = "The DynamoDB table for idempotency claims, cooldown leases and watermarks."
  value       = aws_dynamodb_table.state.name
}

output "alarm_rule_arn" {
  description = "The EventBridge rule that sends alarm transitions to asg-scaler."
  value       = aws_cloudwatch_event_rule.alarm_state_change.arn
}

output "invalidation_queue_url" {
  description = "Send invalidation requests (or point S3 notifications) here."
  value       = aws_sqs_queue.invalidations.id
}

output "invalidation_queue_arn" {
  description = "ARN of the invalidation queue (for S3 notification configurations and queue policies)."
  value       = aws_sqs_queue.invalidations.arn
}

output "invalidation_dlq_url" {
  description = "Messages cdn-invalidator could not use, after maxReceiveCount deliveries."
  value       = aws_sqs_queue.invalidations_dlq.id
}

output "kms_key_arn" {
  description = "The key encrypting the table, queues, logs and environments (grant publishers kms:GenerateDataKey on it)."
  value       = aws_kms_key.this.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of the automation's metrics."
  value       = aws_cloudwatch_dashboard.automation.dashboard_name
}

output "configuration_parameters" {
  description = "The SSM parameters holding each function's configuration documents."
  value       = { for key, p in aws_ssm_parameter.document : key => p.name }
}

output "ecr_push_rule_arn" {
  description = "The EventBridge rule that sends successful tagged ECR pushes to pipeline-trigger."
  value       = aws_cloudwatch_event_rule.ecr_image_push.arn
}

output "health_check_alarm_rule_arn" {
  description = "The us-east-1 EventBridge rule that sends Route 53 health-check alarms to aurora-promoter (forwarded to this Region's default bus outside us-east-1)."
  value       = aws_cloudwatch_event_rule.health_check_alarm.arn
}

output "rds_event_rule_arn" {
  description = "The EventBridge rule that sends RDS failover and global failover events to aurora-promoter."
  value       = aws_cloudwatch_event_rule.rds_promotion_event.arn
}

output "k8s_rollout_rule_arn" {
  description = "The EventBridge rule that sends successful tagged ECR pushes to k8s-rollout (the same pattern as ecr_push_rule_arn)."
  value       = aws_cloudwatch_event_rule.k8s_rollout_image_push.arn
}

output "k8s_rollout_access_entries" {
  description = "The EKS clusters (Region/name) where k8s-rollout's role has an access entry, and the namespaces it may edit there (empty with rollout_manage_eks_access = false)."
  value       = { for key, a in aws_eks_access_policy_association.k8s_rollout : key => a.access_scope[0].namespaces }
}
