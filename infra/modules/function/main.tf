locals {
  full_name = "${var.name_prefix}-${var.name}"
  in_vpc    = length(var.vpc_config.subnet_ids) + length(var.vpc_config.security_group_ids) > 0
}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.full_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

# What the code calls: given by the caller, checked against the recorded calls by the tests.
resource "aws_iam_role_policy" "operations" {
  name   = "operations"
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

# What the Lambda platform needs for this function: logs, traces, the failure destination.
resource "aws_iam_role_policy" "platform" {
  name = "platform"
  role = aws_iam_role.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "Logs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.this.arn}:*"
      },
      {
        Sid      = "Traces"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = "*"
      },
      {
        Sid      = "FailureDestination"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = aws_sqs_queue.failures.arn
      },
      {
        Sid      = "EncryptedDestinationAndEnvironment"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = var.kms_key_arn
      }
    ]
  })
}

# In a VPC, Lambda creates and deletes the function's network interfaces with its role: AWS's
# managed policy for that, so the EC2 actions (which have no resource-level scope) stay out of
# the function's own policy.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  count      = local.in_vpc ? 1 : 0
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${local.full_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# Async invocations (EventBridge, SNS, the alarm's Lambda action) that fail after Lambda's
# retries land here instead of being dropped (the on-failure destination below).
resource "aws_sqs_queue" "failures" {
  name                      = "${local.full_name}-failures"
  message_retention_seconds = 1209600
  kms_master_key_id         = var.kms_key_arn
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117: the functions call only public AWS APIs; a VPC would add NAT or endpoints and cold-start latency for no isolation gain. A caller that must reach private endpoints sets vpc_config
  # checkov:skip=CKV_AWS_116: failed async invocations go to the failure queue as the on-failure destination (aws_lambda_function_event_invoke_config below), which carries more context than a dead-letter queue
  # checkov:skip=CKV_AWS_272: the zip is built by cargo-lambda outside Terraform; code signing needs a signing profile and a signing step the build does not have yet
  function_name    = local.full_name
  description      = var.description
  role             = aws_iam_role.this.arn
  runtime          = "provided.al2023"
  architectures    = ["arm64"]
  handler          = "bootstrap"
  filename         = var.zip_path
  # Without a hash, Terraform has no reason to upload the zip again after creating the function,
  # so it does not undo what `cargo lambda deploy` put there.
  source_code_hash = var.code_deployed_by == "terraform" ? filebase64sha256(var.zip_path) : null
  timeout          = var.timeout_seconds
  memory_size      = var.memory_mb
  kms_key_arn      = var.kms_key_arn

  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = var.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  tracing_config {
    mode = "Active"
  }

  # Only for functions that must reach private endpoints (e.g. a private EKS API server); the
  # subnets then need a NAT gateway or VPC endpoints for the AWS APIs the function calls.
  dynamic "vpc_config" {
    for_each = local.in_vpc ? [var.vpc_config] : []
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  lifecycle {
    precondition {
      condition     = (length(var.vpc_config.subnet_ids) > 0) == (length(var.vpc_config.security_group_ids) > 0)
      error_message = "vpc_config needs both subnet_ids and security_group_ids (or neither)."
    }
  }

  depends_on = [aws_iam_role_policy.platform, aws_iam_role_policy_attachment.vpc_access]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failures.arn
    }
  }
}
