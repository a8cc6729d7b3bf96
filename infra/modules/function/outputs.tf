output "function_name" {
  description = "The Lambda function's name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "The Lambda function's ARN."
  value       = aws_lambda_function.this.arn
}

output "role_name" {
  description = "The function's execution role."
  value       = aws_iam_role.this.name
}

output "role_arn" {
  description = "The function's execution role (for `cargo lambda deploy --iam-role`)."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "The function's log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "failure_queue_arn" {
  description = "Where failed async invocations go."
  value       = aws_sqs_queue.failures.arn
}

output "failure_queue_name" {
  description = "Name of the failure queue (for alarms)."
  value       = aws_sqs_queue.failures.name
}

output "failure_queue_url" {
  description = "URL of the failure queue (for queue policies)."
  value       = aws_sqs_queue.failures.id
}
