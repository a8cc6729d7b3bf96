data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  # The variables every function reads (shared/autonomic CommonConfig).
  common_environment = {
    STATE_TABLE_NAME        = aws_dynamodb_table.state.name
    DRY_RUN                 = tostring(var.dry_run)
    IDEMPOTENCY_TTL_SECONDS = tostring(var.idempotency_ttl_seconds)
  }

  state_table_access = {
    Sid      = "StateTable"
    Effect   = "Allow"
    Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    Resource = aws_dynamodb_table.state.arn
  }

  # Policies use variables and resource references only (no data-source values), so the tests
  # can resolve them offline. IAM cannot grant another account's resources without a role
  # there, so the account wildcard stays within this account.
  distribution_arns = length(var.distribution_arns) > 0 ? var.distribution_arns : [
    "arn:${var.partition}:cloudfront::*:distribution/*"
  ]

  # Configuration documents: one file per function in the repository, published as SSM
  # parameters that the function reads at cold start. Its environment holds only the reference
  # (`ssm:NAME`), so the documents are not bound by Lambda's 4 KB environment limit.
  documents = {
    "asg-scaler/SCALING_RULES"             = file(var.scaling_rules_file)
    "cdn-invalidator/BUCKET_DISTRIBUTIONS" = file(var.bucket_distributions_file)
    "pipeline-trigger/PIPELINE_ROUTES"     = file(var.pipeline_routes_file)
    "aurora-promoter/PROMOTION_TARGETS"    = file(var.promotion_targets_file)
    "k8s-rollout/ROLLOUT_CLUSTERS"         = file(var.rollout_clusters_file)
  }
  document_reference = { for key in keys(local.documents) : key => "ssm:/${var.name_prefix}/${key}" }
}

# ---- encryption ---------------------------------------------------------------------------------

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_111: a key policy's Resource "*" means this key; the account statement is AWS's default key policy, which lets IAM policies govern use of the key
  # checkov:skip=CKV_AWS_356: in a key policy "*" can only mean the key the policy is attached to
  # checkov:skip=CKV_AWS_109: the account root statement is AWS's default key policy; without it the key could become unmanageable
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "Services"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type = "Service"
      identifiers = [
        "logs.${var.region}.amazonaws.com",
        "sqs.amazonaws.com",
        "events.amazonaws.com",
        "cloudwatch.amazonaws.com",
      ]
    }
  }
  # S3 and SNS encrypt what they deliver to the (encrypted) invalidation queue.
  statement {
    sid       = "Notifications"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com", "sns.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.name_prefix}: state table, queues, logs and function environments"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}

# ---- configuration documents ------------------------------------------------------------------

resource "aws_ssm_parameter" "document" {
  for_each    = local.documents
  name        = "/${var.name_prefix}/${each.key}"
  description = "${var.name_prefix}: the ${each.key} configuration document"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  # Standard up to 4 KB, advanced (up to 8 KB) beyond: a larger document goes in the package (file:).
  tier  = "Intelligent-Tiering"
  value = each.value
}

# ---- state: idempotency claims, cooldown leases, watermarks -----------------------------------

resource "aws_dynamodb_table" "state" {
  name         = "${var.name_prefix}-state"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  deletion_protection_enabled = var.state_table_deletion_protection
}

# ---- asg-scaler --------------------------------------------------------------------------------

module "asg_scaler" {
  source = "./modules/function"

  name                 = "asg-scaler"
  name_prefix          = var.name_prefix
  description          = "Scales Auto Scaling groups on CloudWatch alarm transitions"
  zip_path             = "${var.artifacts_dir}/asg-scaler/bootstrap.zip"
  timeout_seconds      = var.timeout_seconds["asg-scaler"]
  memory_mb            = var.memory_mb["asg-scaler"]
  reserved_concurrency = var.reserved_concurrency["asg-scaler"]
  log_retention_days   = var.log_retention_days
  kms_key_arn          = aws_kms_key.this.arn
  code_deployed_by     = var.code_deployed_by

  environment = merge(local.common_environment, {
    SCALING_RULES         = local.document_reference["asg-scaler/SCALING_RULES"]
    MAX_EVENT_AGE_SECONDS = tostring(var.max_event_age_seconds)
  })

  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # DescribeAutoScalingGroups has no resource-level permissions.
        Sid      = "ReadGroups"
        Effect   = "Allow"
        Action   = ["autoscaling:DescribeAutoScalingGroups"]
        Resource = "*"
      },
      {
        Sid      = "ScaleTaggedGroups"
        Effect   = "Allow"
        Action   = ["autoscaling:SetDesiredCapacity"]
        Resource = "arn:${var.partition}:autoscaling:${var.region}:*:autoScalingGroup:*:autoScalingGroupName/*"
        Condition = {
          StringEquals = { "autoscaling:ResourceTag/${var.scalable_group_tag}" = "true" }
        }
      },
      {
        # The sweep asks whether a held alarm is still in its state: any alarm the rules match.
        Sid      = "ReadAlarms"
        Effect   = "Allow"
        Action   = ["cloudwatch:DescribeAlarms"]
        Resource = "arn:${var.partition}:cloudwatch:${var.region}:*:alarm:*"
      },
      local.state_table_access,
      {
        Sid      = "ReadConfiguration"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = aws_ssm_parameter.document["asg-scaler/SCALING_RULES"].arn
      },
      {
        Sid       = "StateTableKey"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = aws_kms_key.this.arn
        Condition = { StringEquals = { "kms:ViaService" = "dynamodb.${var.region}.amazonaws.com" } }
      }
    ]
  })
}

# CloudWatch notifies once per transition, not again while an alarm stays in ALARM: every
# minute, asg-scaler sweeps the alarms it keeps stepping (EventBridge's "Scheduled Event").
resource "aws_cloudwatch_event_rule" "asg_scaler_sweep" {
  name                = "${var.name_prefix}-asg-scaler-sweep"
  description         = "Steps held alarms again once their cooldown ends, for asg-scaler"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "asg_scaler_sweep" {
  rule = aws_cloudwatch_event_rule.asg_scaler_sweep.name
  arn  = module.asg_scaler.function_arn

  # A missed sweep is made up by the next one a minute later.
  retry_policy {
    maximum_event_age_in_seconds = 60
    maximum_retry_attempts       = 0
  }
}

resource "aws_lambda_permission" "asg_scaler_sweep" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = module.asg_scaler.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.asg_scaler_sweep.arn
}

resource "aws_cloudwatch_event_rule" "alarm_state_change" {
  name          = "${var.name_prefix}-alarm-state-change"
  description   = "CloudWatch alarm transitions to ALARM or OK, for asg-scaler"
  event_pattern = file("${path.module}/patterns/alarm-state-change.json")
}

resource "aws_cloudwatch_event_target" "asg_scaler" {
  rule = aws_cloudwatch_event_rule.alarm_state_change.name
  arn  = module.asg_scaler.function_arn

  retry_policy {
    maximum_event_age_in_seconds = 600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = module.asg_scaler.failure_queue_arn
  }
}

# EventBridge writes events it could not deliver to the function's failure queue.
resource "aws_sqs_queue_policy" "asg_scaler_failures" {
  queue_url = module.asg_scaler.failure_queue_url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = module.asg_scaler.failure_queue_arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.alarm_state_change.arn } }
    }]
  })
}

resource "aws_lambda_permission" "asg_scaler_events" {
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = module.asg_scaler.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.alarm_state_change.arn
}

# The alternative to the EventBridge rule: the alarm invokes the function itself (an alarm
# action with the function's ARN). This permission lets any alarm of the account do so.
resource "aws_lambda_permission" "asg_scaler_alarm_actions" {
  statement_id   = "AllowAlarmActions"
  action         = "lambda:InvokeFunction"
  function_name  = module.asg_scaler.function_name
  principal      = "lambda.alarms.cloudwatch.amazonaws.com"
  source_account = local.account
}

# ---- cdn-invalidator ---------------------------------------------------------------------------

resource "aws_sqs_queue" "invalidations_dlq" {
  name                      = "${var.name_prefix}-invalidations-dlq"
  message_retention_seconds = 1209600
  kms_master_key_id         = aws_kms_key.this.arn
}

resource "aws_sqs_queue" "invalidations" {
  name                       = "${var.name_prefix}-invalidations"
  visibility_timeout_seconds = 6 * var.timeout_seconds["cdn-invalidator"] + var.invalidation_batching_window_seconds
  message_retention_seconds  = 345600
  kms_master_key_id          = aws_kms_key.this.arn

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.invalidations_dlq.arn
    maxReceiveCount     = var.invalidation_max_receive_count
  })
}

# S3 event notifications and SNS topics of this account may deliver to the queue; with
# notification_source_arns set, only those buckets and topics.
resource "aws_sqs_queue_policy" "invalidations" {
  queue_url = aws_sqs_queue.invalidations.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "Notifications"
      Effect    = "Allow"
      Principal = { Service = ["s3.amazonaws.com", "sns.amazonaws.com"] }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.invalidations.arn
      Condition = merge(
        { StringEquals = { "aws:SourceAccount" = local.account } },
        length(var.notification_source_arns) > 0 ? { ArnLike = { "aws:SourceArn" = var.notification_source_arns } } : {},
      )
    }]
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "invalidations_dlq" {
  queue_url = aws_sqs_queue.invalidations_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.invalidations.arn]
  })
}

module "cdn_invalidator" {
  source = "./modules/function"

  name                 = "cdn-invalidator"
  name_prefix          = var.name_prefix
  description          = "Turns SQS invalidation requests and S3 notifications into CloudFront invalidations"
  zip_path             = "${var.artifacts_dir}/cdn-invalidator/bootstrap.zip"
  timeout_seconds      = var.timeout_seconds["cdn-invalidator"]
  memory_mb            = var.memory_mb["cdn-invalidator"]
  reserved_concurrency = var.reserved_concurrency["cdn-invalidator"]
  log_retention_days   = var.log_retention_days
  kms_key_arn          = aws_kms_key.this.arn
  code_deployed_by     = var.code_deployed_by

  environment = merge(local.common_environment, {
    BUCKET_DISTRIBUTIONS = local.document_reference["cdn-invalidator/BUCKET_DISTRIBUTIONS"]
    COLLAPSE_THRESHOLD   = tostring(var.collapse_threshold)
  })

  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # ListDistributions has no resource-level permissions.
        Sid      = "ResolveDomains"
        Effect   = "Allow"
        Action   = ["cloudfront:ListDistributions"]
        Resource = "*"
      },
      {
        Sid      = "Invalidate"
        Effect   = "Allow"
        Action   = ["cloudfront:ListInvalidations", "cloudfront:GetInvalidation", "cloudfront:CreateInvalidation"]
        Resource = local.distribution_arns
      },
      local.state_table_access,
      {
        Sid      = "ReadConfiguration"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = aws_ssm_parameter.document["cdn-invalidator/BUCKET_DISTRIBUTIONS"].arn
      },
      {
        Sid      = "ConsumeQueue"
        Effect   = "Allow"
        Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
        Resource = aws_sqs_queue.invalidations.arn
      },
      {
        Sid      = "QueueAndTableKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = aws_kms_key.this.arn
      }
    ]
  })
}

resource "aws_lambda_event_source_mapping" "invalidations" {
  event_source_arn                   = aws_sqs_queue.invalidations.arn
  function_name                      = module.cdn_invalidator.function_arn
  batch_size                         = var.invalidation_batch_size
  maximum_batching_window_in_seconds = var.invalidation_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  # No more pollers than the function's reserved concurrency (2 at least, the API's minimum), so
  # the queue is not throttled into the DLQ. Per distribution, a lease serialises submissions.
  scaling_config {
    maximum_concurrency = max(2, var.reserved_concurrency["cdn-invalidator"])
  }
}

# ---- pipeline-trigger --------------------------------------------------------------------------

locals {
  # The pipelines the routes document names: the only ones the function may read or start.
  routed_pipelines = distinct(flatten([
    for route in jsondecode(file(var.pipeline_routes_file)).routes : route.pipelines
  ]))
}

module "pipeline_trigger" {
  source = "./modules/function"

  name                 = "pipeline-trigger"
  name_prefix          = var.name_prefix
  description          = "Starts the CodePipeline executions an ECR push is routed to"
  zip_path             = "${var.artifacts_dir}/pipeline-trigger/bootstrap.zip"
  timeout_seconds      = var.timeout_seconds["pipeline-trigger"]
  memory_mb            = var.memory_mb["pipeline-trigger"]
  reserved_concurrency = var.reserved_concurrency["pipeline-trigger"]
  log_retention_days   = var.log_retention_days
  kms_key_arn          = aws_kms_key.this.arn
  code_deployed_by     = var.code_deployed_by

  environment = merge(local.common_environment, {
    PIPELINE_ROUTES       = local.document_reference["pipeline-trigger/PIPELINE_ROUTES"]
    MAX_EVENT_AGE_SECONDS = tostring(var.push_max_event_age_seconds)
    START_SETTLE_SECONDS  = tostring(var.start_settle_seconds)
  })

  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "StartRoutedPipelines"
        Effect   = "Allow"
        Action   = ["codepipeline:GetPipeline", "codepipeline:StartPipelineExecution", "codepipeline:ListPipelineExecutions", "codepipeline:GetPipelineExecution"]
        Resource = [for p in local.routed_pipelines : "arn:${var.partition}:codepipeline:${var.region}:*:${p}"]
      },
      local.state_table_access,
      {
        Sid      = "ReadConfiguration"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = aws_ssm_parameter.document["pipeline-trigger/PIPELINE_ROUTES"].arn
      },
      {
        Sid       = "StateTableKey"
        Effect    = "Allow"
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = aws_kms_key.this.arn
        Condition = { StringEquals = { "kms:ViaService" = "dynamodb.${var.region}.amazonaws.com" } }
      }
    ]
  })
}

# Successful, tagged pushes (the pattern is shared with the tests); the untagged manifests of a
# multi-arch push never invoke the function.
resource "aws_cloudwatch_event_rule" "ecr_image_push" {
  name          = "${var.name_prefix}-ecr-image-push"
  description   = "Successful tagged ECR image pushes, for pipeline-trigger"
  event_pattern = file("${path.module}/patterns/ecr-image-push.json")
}

resource "aws_cloudwatch_event_target" "pipeline_trigger" {
  rule = aws_cloudwatch_event_rule.ecr_image_push.name
  arn  = module.pipeline_trigger.function_arn

  # No older than the function would act on (MAX_EVENT_AGE_SECONDS).
  retry_policy {
    maximum_event_age_in_seconds = max(60, min(86400, var.push_max_event_age_seconds == 0 ? 86400 : var.push_max_event_age_seconds))
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = module.pipeline_trigger.failure_queue_arn
  }
}

resource "aws_sqs_queue_policy" "pipeline_trigger_failures" {
  queue_url = module.pipeline_trigger.failure_queue_url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = module.pipeline_trigger.failure_queue_arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.ecr_image_push.arn } }
    }]
  })
}

resource "aws_lambda_permission" "pipeline_trigger_events" {
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = module.pipeline_trigger.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.ecr_image_push.arn
}

# ---- aurora-promoter ---------------------------------------------------------------------------

locals {
  # What the targets document names: the only clusters, health checks and zones the function may
  # touch.
  promotion_targets = jsondecode(file(var.promotion_targets_file)).targets
  promoted_globals  = [for t in local.promotion_targets : t.global if try(t.global, null) != null]
  promoted_clusters = [for t in local.promotion_targets : t.cluster if try(t.cluster, null) != null]
  promoted_replicas = [for t in local.promotion_targets : t.readReplica if try(t.readReplica, null) != null]
  # A global switchover or failover needs the global cluster and the member clusters: the ones
  # the document lists per Region, else any cluster in its Regions.
  global_promotion_arns = distinct(concat(
    [for g in local.promoted_globals : "arn:${var.partition}:rds::*:global-cluster:${g.globalClusterIdentifier}"],
    flatten([for g in local.promoted_globals : length(try(g.clusters, {})) > 0 ? [
      for region, id in g.clusters : "arn:${var.partition}:rds:${region}:*:cluster:${id}"
      ] : [
      for region in g.regions : "arn:${var.partition}:rds:${region}:*:cluster:*"
    ]]),
  ))
  failover_cluster_arns = [for c in local.promoted_clusters : "arn:${var.partition}:rds:${c.region}:*:cluster:${c.identifier}"]
  replica_cluster_arns  = [for r in local.promoted_replicas : "arn:${var.partition}:rds:${r.region}:*:cluster:${r.identifier}"]
  # A target without a health check takes the alarm's: any health check of the account.
  health_check_arns = distinct([
    for t in local.promotion_targets : "arn:${var.partition}:route53:::healthcheck/${try(t.healthCheckId, "*")}"
  ])
  record_zone_arns = distinct([
    for t in local.promotion_targets : "arn:${var.partition}:route53:::hostedzone/${t.record.hostedZoneId}" if try(t.record, null) != null
  ])
  # Route 53 health-check metrics, and so the alarms on them, exist only in us-east-1.
  health_alarms_forwarded = var.region != "us-east-1"
  default_event_bus_arn   = "arn:${var.partition}:events:${var.region}:${local.account}:event-bus/default"
}

module "aurora_promoter" {
  source = "./modules/function"

  name                 = "aurora-promoter"
  name_prefix          = var.name_prefix
  description          = "Promotes Aurora when a Route 53 health-check alarm says the writer is gone"
  zip_path             = "${var.artifacts_dir}/aurora-promoter/bootstrap.zip"
  timeout_seconds      = var.timeout_seconds["aurora-promoter"]
  memory_mb            = var.memory_mb["aurora-promoter"]
  reserved_concurrency = var.reserved_concurrency["aurora-promoter"]
  log_retention_days   = var.log_retention_days
  kms_key_arn          = aws_kms_key.this.arn
  code_deployed_by     = var.code_deployed_by

  environment = merge(local.common_environment, {
    PROMOTION_TARGETS        = local.document_reference["aurora-promoter/PROMOTION_TARGETS"]
    MAX_EVENT_AGE_SECONDS    = tostring(var.health_alarm_max_event_age_seconds)
    ROUTE53_REGION           = var.partition == "aws-cn" ? "cn-northwest-1" : "us-east-1"
    PROMOTION_SETTLE_SECONDS = tostring(var.promotion_settle_seconds)
    PRIMARY_SILENCE_SECONDS  = tostring(var.primary_silence_seconds)
  })

  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          # The Describe calls and GetMetricData have no resource-level permissions worth the
          # name (DescribeDBInstances is filtered by cluster); they read, never change.
          Sid      = "ReadClustersAndLag"
          Effect   = "Allow"
          Action   = ["rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:DescribeGlobalClusters", "cloudwatch:GetMetricData"]
          Resource = "*"
        },
        {
          Sid      = "ConfirmHealthChecks"
          Effect   = "Allow"
          Action   = ["route53:GetHealthCheckStatus"]
          Resource = local.health_check_arns
        },
      ],
      length(local.global_promotion_arns) == 0 ? [] : [{
        Sid      = "PromoteGlobalDatabases"
        Effect   = "Allow"
        Action   = ["rds:SwitchoverGlobalCluster", "rds:FailoverGlobalCluster"]
        Resource = local.global_promotion_arns
      }],
      length(local.failover_cluster_arns) == 0 ? [] : [{
        Sid      = "FailOverClusters"
        Effect   = "Allow"
        Action   = ["rds:FailoverDBCluster"]
        Resource = local.failover_cluster_arns
      }],
      length(local.replica_cluster_arns) == 0 ? [] : [{
        Sid      = "PromoteReplicaClusters"
        Effect   = "Allow"
        Action   = ["rds:PromoteReadReplicaDBCluster"]
        Resource = local.replica_cluster_arns
      }],
      length(local.record_zone_arns) == 0 ? [] : [{
        Sid      = "PointRecordsAtTheNewWriter"
        Effect   = "Allow"
        Action   = ["route53:ChangeResourceRecordSets"]
        Resource = local.record_zone_arns
      }],
      [
        local.state_table_access,
        {
          Sid      = "ReadConfiguration"
          Effect   = "Allow"
          Action   = ["ssm:GetParameter"]
          Resource = aws_ssm_parameter.document["aurora-promoter/PROMOTION_TARGETS"].arn
        },
        {
          Sid       = "StateTableKey"
          Effect    = "Allow"
          Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource  = aws_kms_key.this.arn
          Condition = { StringEquals = { "kms:ViaService" = "dynamodb.${var.region}.amazonaws.com" } }
        },
      ],
    )
  })
}

# Health-check alarms going to ALARM, in us-east-1. EventBridge cannot invoke a function in
# another Region: outside us-east-1 the rule forwards them to this Region's default bus, where
# the rule below invokes the function. (OK transitions are not sent: failback is never automatic.)
resource "aws_cloudwatch_event_rule" "health_check_alarm" {
  provider      = aws.us_east_1
  name          = "${var.name_prefix}-health-check-alarm"
  description   = "Route 53 health-check alarms going to ALARM, for aurora-promoter"
  event_pattern = file("${path.module}/patterns/health-check-alarm.json")

  lifecycle {
    precondition {
      # The silence window, two readings of a Region that does not answer (an operation timeout
      # each) and the failover call, with the time every invocation keeps back.
      condition     = var.timeout_seconds["aurora-promoter"] >= var.primary_silence_seconds + 60
      error_message = "aurora-promoter's timeout must be at least primary_silence_seconds + 60 s: a failover needs the primary Region's silence confirmed within one invocation."
    }
  }
}

resource "aws_iam_role" "health_alarm_forwarding" {
  count = local.health_alarms_forwarded ? 1 : 0
  name  = "${var.name_prefix}-health-alarm-forwarding"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
}

resource "aws_iam_role_policy" "health_alarm_forwarding" {
  count = local.health_alarms_forwarded ? 1 : 0
  name  = "forward-to-${var.region}"
  role  = aws_iam_role.health_alarm_forwarding[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "events:PutEvents", Resource = local.default_event_bus_arn }]
  })
}

resource "aws_cloudwatch_event_target" "health_check_alarm" {
  provider = aws.us_east_1
  rule     = aws_cloudwatch_event_rule.health_check_alarm.name
  arn      = local.health_alarms_forwarded ? local.default_event_bus_arn : module.aurora_promoter.function_arn
  role_arn = local.health_alarms_forwarded ? aws_iam_role.health_alarm_forwarding[0].arn : null

  # Invoked directly (in us-east-1), the function's own limits apply; the dead-letter queue must
  # be in the rule's Region, so a forwarded alarm gets them from the rule below.
  dynamic "retry_policy" {
    for_each = local.health_alarms_forwarded ? [] : [1]
    content {
      maximum_event_age_in_seconds = max(60, var.health_alarm_max_event_age_seconds == 0 ? 86400 : var.health_alarm_max_event_age_seconds)
      maximum_retry_attempts       = 5
    }
  }
  dynamic "dead_letter_config" {
    for_each = local.health_alarms_forwarded ? [] : [1]
    content {
      arn = module.aurora_promoter.failure_queue_arn
    }
  }
}

resource "aws_cloudwatch_event_rule" "forwarded_health_check_alarm" {
  count         = local.health_alarms_forwarded ? 1 : 0
  name          = "${var.name_prefix}-forwarded-health-check-alarm"
  description   = "Route 53 health-check alarms forwarded from us-east-1, for aurora-promoter"
  event_pattern = file("${path.module}/patterns/health-check-alarm.json")
}

resource "aws_cloudwatch_event_target" "aurora_promoter_health_alarm" {
  count = local.health_alarms_forwarded ? 1 : 0
  rule  = aws_cloudwatch_event_rule.forwarded_health_check_alarm[0].name
  arn   = module.aurora_promoter.function_arn

  retry_policy {
    maximum_event_age_in_seconds = max(60, var.health_alarm_max_event_age_seconds == 0 ? 86400 : var.health_alarm_max_event_age_seconds)
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = module.aurora_promoter.failure_queue_arn
  }
}

# RDS failover, global switchover / failover and replica promotion events of this Region: they
# complete or release the promotion in flight.
resource "aws_cloudwatch_event_rule" "rds_promotion_event" {
  name          = "${var.name_prefix}-rds-promotion-event"
  description   = "RDS failover, global failover and read replica events, for aurora-promoter"
  event_pattern = file("${path.module}/patterns/rds-promotion-event.json")
}

resource "aws_cloudwatch_event_target" "aurora_promoter_rds" {
  rule = aws_cloudwatch_event_rule.rds_promotion_event.name
  arn  = module.aurora_promoter.function_arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = module.aurora_promoter.failure_queue_arn
  }
}

locals {
  # The rules that invoke aurora-promoter in this Region (the us-east-1 rule only when it is here).
  aurora_promoter_rules = concat(
    [aws_cloudwatch_event_rule.rds_promotion_event.arn],
    local.health_alarms_forwarded ? [aws_cloudwatch_event_rule.forwarded_health_check_alarm[0].arn] : [aws_cloudwatch_event_rule.health_check_alarm.arn],
  )
}

resource "aws_sqs_queue_policy" "aurora_promoter_failures" {
  queue_url = module.aurora_promoter.failure_queue_url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = module.aurora_promoter.failure_queue_arn
      Condition = { ArnEquals = { "aws:SourceArn" = local.aurora_promoter_rules } }
    }]
  })
}

resource "aws_lambda_permission" "aurora_promoter_rds_events" {
  statement_id  = "AllowRdsEvents"
  action        = "lambda:InvokeFunction"
  function_name = module.aurora_promoter.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.rds_promotion_event.arn
}

resource "aws_lambda_permission" "aurora_promoter_health_alarms" {
  statement_id  = "AllowHealthCheckAlarms"
  action        = "lambda:InvokeFunction"
  function_name = module.aurora_promoter.function_name
  principal     = "events.amazonaws.com"
  source_arn    = local.health_alarms_forwarded ? aws_cloudwatch_event_rule.forwarded_health_check_alarm[0].arn : aws_cloudwatch_event_rule.health_check_alarm.arn
}

# ---- k8s-rollout -------------------------------------------------------------------------------

locals {
  # The EKS clusters the clusters document names (kubeconfig clusters need no AWS permission): the
  # only ones the function may describe and the role is given access to. Keyed by Region and
  # cluster, so two entries naming one cluster share its access entry (their namespaces merged).
  rollout_eks_entries = [
    for c in jsondecode(file(var.rollout_clusters_file)).clusters : {
      cluster    = c.eks.cluster
      region     = try(c.eks.region, var.region)
      namespaces = c.namespaces
    } if try(c.eks, null) != null
  ]
  rollout_eks_namespaces = { for c in local.rollout_eks_entries : "${c.region}/${c.cluster}" => c.namespaces... }
  rollout_eks_clusters = {
    for key, namespaces in local.rollout_eks_namespaces : key => {
      cluster    = split("/", key)[1]
      region     = split("/", key)[0]
      namespaces = sort(distinct(flatten(namespaces)))
    }
  }
  rollout_cluster_arns = [for c in values(local.rollout_eks_clusters) : "arn:${var.partition}:eks:${c.region}:*:cluster/${c.cluster}"]
}

module "k8s_rollout" {
  source = "./modules/function"

  name                 = "k8s-rollout"
  name_prefix          = var.name_prefix
  description          = "Rolls the Kubernetes Deployments that follow a pushed ECR image, verifies the rollout, rolls a failed one back"
  zip_path             = "${var.artifacts_dir}/k8s-rollout/bootstrap.zip"
  timeout_seconds      = var.timeout_seconds["k8s-rollout"]
  memory_mb            = var.memory_mb["k8s-rollout"]
  reserved_concurrency = var.reserved_concurrency["k8s-rollout"]
  log_retention_days   = var.log_retention_days
  kms_key_arn          = aws_kms_key.this.arn
  code_deployed_by     = var.code_deployed_by

  # Private cluster endpoints only (empty lists: no VPC); both lists, or neither (the module checks).
  vpc_config = {
    subnet_ids         = var.rollout_subnet_ids
    security_group_ids = var.rollout_security_group_ids
  }

  environment = merge(local.common_environment, {
    ROLLOUT_CLUSTERS       = local.document_reference["k8s-rollout/ROLLOUT_CLUSTERS"]
    MAX_EVENT_AGE_SECONDS  = tostring(var.push_max_event_age_seconds)
    ROLLOUT_VERIFY_SECONDS = tostring(var.rollout_verify_seconds)
    ROLLOUT_POLL_SECONDS   = tostring(var.rollout_poll_seconds)
  })

  # The Kubernetes API is not IAM: the function signs its cluster token (a presigned
  # sts:GetCallerIdentity, which needs no permission) and the clusters authorise the role (the
  # access entries below, or an RBAC group).
  policy_json = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      length(local.rollout_cluster_arns) == 0 ? [] : [{
        Sid      = "DescribeNamedClusters"
        Effect   = "Allow"
        Action   = ["eks:DescribeCluster"]
        Resource = local.rollout_cluster_arns
      }],
      [
        local.state_table_access,
        {
          Sid      = "ReadConfiguration"
          Effect   = "Allow"
          Action   = ["ssm:GetParameter"]
          Resource = aws_ssm_parameter.document["k8s-rollout/ROLLOUT_CLUSTERS"].arn
        },
        {
          Sid       = "StateTableKey"
          Effect    = "Allow"
          Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource  = aws_kms_key.this.arn
          Condition = { StringEquals = { "kms:ViaService" = "dynamodb.${var.region}.amazonaws.com" } }
        },
      ],
    )
  })
}

# The role may edit workloads in the document's namespaces of each EKS cluster, and nothing else
# in the cluster (AmazonEKSEditPolicy scoped to those namespaces). The clusters may be in other
# Regions: the AWS provider 6 resource-level `region` argument places each entry in its cluster's.
resource "aws_eks_access_entry" "k8s_rollout" {
  for_each      = var.rollout_manage_eks_access ? local.rollout_eks_clusters : {}
  region        = each.value.region
  cluster_name  = each.value.cluster
  principal_arn = module.k8s_rollout.role_arn
  type          = "STANDARD"
}

resource "aws_eks_access_policy_association" "k8s_rollout" {
  for_each      = var.rollout_manage_eks_access ? local.rollout_eks_clusters : {}
  region        = each.value.region
  cluster_name  = each.value.cluster
  principal_arn = aws_eks_access_entry.k8s_rollout[each.key].principal_arn
  policy_arn    = "arn:${var.partition}:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"

  access_scope {
    type       = "namespace"
    namespaces = each.value.namespaces
  }
}

# The same pushes as pipeline-trigger (the pattern file is shared), on a rule of its own, so each
# function has its own retries, dead-letter queue and permission.
resource "aws_cloudwatch_event_rule" "k8s_rollout_image_push" {
  name          = "${var.name_prefix}-k8s-rollout-image-push"
  description   = "Successful tagged ECR image pushes, for k8s-rollout"
  event_pattern = file("${path.module}/patterns/ecr-image-push.json")
}

resource "aws_cloudwatch_event_target" "k8s_rollout" {
  rule = aws_cloudwatch_event_rule.k8s_rollout_image_push.name
  arn  = module.k8s_rollout.function_arn

  # No older than the function would act on (MAX_EVENT_AGE_SECONDS). These retries cover the
  # delivery to Lambda; a function error is retried by Lambda's asynchronous invocation (the
  # module's event invoke config), then goes to the failure queue.
  retry_policy {
    maximum_event_age_in_seconds = max(60, min(86400, var.push_max_event_age_seconds == 0 ? 86400 : var.push_max_event_age_seconds))
    maximum_retry_attempts       = 5
  }

  dead_letter_config {
    arn = module.k8s_rollout.failure_queue_arn
  }

  lifecycle {
    precondition {
      condition     = var.rollout_verify_seconds < var.timeout_seconds["k8s-rollout"] && var.rollout_poll_seconds <= var.rollout_verify_seconds
      error_message = "rollout_verify_seconds must be below k8s-rollout's timeout, and rollout_poll_seconds no more than rollout_verify_seconds."
    }
  }
}

resource "aws_sqs_queue_policy" "k8s_rollout_failures" {
  queue_url = module.k8s_rollout.failure_queue_url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "EventBridgeDeadLetters"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = module.k8s_rollout.failure_queue_arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_cloudwatch_event_rule.k8s_rollout_image_push.arn } }
    }]
  })
}

resource "aws_lambda_permission" "k8s_rollout_events" {
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = module.k8s_rollout.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.k8s_rollout_image_push.arn
}

# ---- observability ------------------------------------------------------------------------------

locals {
  functions = {
    "asg-scaler"       = module.asg_scaler
    "cdn-invalidator"  = module.cdn_invalidator
    "pipeline-trigger" = module.pipeline_trigger
    "aurora-promoter"  = module.aurora_promoter
    "k8s-rollout"      = module.k8s_rollout
  }
  # Names, not references: the names are fixed by the modules, and plain strings keep the
  # for_each below known at plan time (and readable by the offline tests).
  dead_letter_queues = merge(
    { for name in keys(local.functions) : "${name}-failures" => "${var.name_prefix}-${name}-failures" },
    { "invalidations-dlq" = "${var.name_prefix}-invalidations-dlq" },
  )
  alarm_actions = var.alarm_topic_arn == "" ? [] : [var.alarm_topic_arn]
  # Lambda metric → what it means when it is above zero.
  function_alarms = {
    Errors    = "returned errors: see its audit records (type = audit, outcome = failed)"
    Throttles = "was throttled: its reserved concurrency is too low for the event rate"
  }
}

resource "aws_cloudwatch_metric_alarm" "function" {
  for_each = {
    for pair in setproduct(keys(local.functions), keys(local.function_alarms)) :
    "${pair[0]}-${lower(pair[1])}" => { function = pair[0], metric = pair[1] }
  }
  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "${each.value.function} ${local.function_alarms[each.value.metric]}"
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = local.functions[each.value.function].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each            = local.dead_letter_queues
  alarm_name          = "${var.name_prefix}-${each.key}-depth"
  alarm_description   = "Events or messages the automation gave up on are waiting in ${each.value}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_dashboard" "automation" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = concat(
      [for i, name in keys(local.functions) : {
        type   = "metric"
        x      = 12 * (i % 2)
        y      = 6 * floor(i / 2)
        width  = 12
        height = 6
        properties = {
          title  = "${name}: actions, skips, errors (EMF)"
          region = var.region
          stat   = "Sum"
          period = 300
          metrics = [
            ["Autonomic", "Actions", "Function", name],
            ["Autonomic", "Skips", "Function", name],
            ["Autonomic", "Errors", "Function", name],
          ]
        }
      }],
      [{
        type   = "metric"
        x      = 0
        y      = 6 * ceil(length(local.functions) / 2)
        width  = 24
        height = 6
        properties = {
          title   = "Dead-letter queue depth"
          region  = var.region
          stat    = "Maximum"
          period  = 300
          metrics = [for q in values(local.dead_letter_queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]]
        }
      }]
    )
  })
}
