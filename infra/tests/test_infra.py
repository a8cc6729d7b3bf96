"""Tests that read the Terraform (python-hcl2 for syntax, tfparse for resolved values) and compare
it with the code: functions, zips, environment variables, event patterns, IAM policies."""

import glob
import json
import os
import re
from pathlib import Path

import hcl2
import pytest
import textwrap

import tfparse

from eventpattern import matches

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
EVENTS = ROOT / "events"
OPERATIONS = ROOT / "target" / "autonomic-operations"
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/Cargo.toml"))


@pytest.fixture(scope="module")
def tf():
    parsed = tfparse.load_from_path(str(INFRA))
    # tfparse answers {} on a syntax error: make sure there is something to test.
    assert parsed.get("module") and parsed.get("aws_lambda_function"), "tfparse found no modules or functions"
    return parsed


def name(resource):
    """A resource's name (`aws_sqs_queue.invalidations` → `invalidations`)."""
    return resource["__tfmeta"]["path"].rsplit(".", 1)[-1]


def modules(tf):
    return {m["__tfmeta"]["label"].replace("_", "-"): m for m in tf["module"]}


@pytest.mark.parametrize("path", sorted(glob.glob(str(INFRA / "**" / "*.tf"), recursive=True)))
def test_syntax(path):
    with open(path) as f:
        hcl2.load(f)


def test_every_function_crate_has_a_module_with_its_zip(tf):
    mods = modules(tf)
    assert sorted(mods) == FUNCTIONS
    for name, m in mods.items():
        assert m["zip_path"] == f"../target/lambda/{name}/bootstrap.zip"


def test_functions_are_arm64_al2023_json_logs_traced(tf):
    for f in tf["aws_lambda_function"]:
        assert f["runtime"] == "provided.al2023"
        assert f["architectures"] == ["arm64"]
        assert f["handler"] == "bootstrap"
        assert f["logging_config"]["log_format"] == "JSON"
        assert f["tracing_config"]["mode"] == "Active"
    # Failed async invocations go to an on-failure destination.
    configs = tf["aws_lambda_function_event_invoke_config"]
    assert len(configs) == len(tf["aws_lambda_function"])
    assert all(c["destination_config"]["on_failure"]["destination"] for c in configs)


def env_vars_read_by(crate_dir):
    """The variable names a crate's configuration reads: its `pub const X: &str = "NAME"`."""
    names = set()
    for path in crate_dir.glob("src/**/*.rs"):
        names |= set(re.findall(r'pub const \w+: &(?:\'static )?str = "([A-Z][A-Z0-9_]+)";', path.read_text()))
    return names


COMMON = env_vars_read_by(ROOT / "shared" / "autonomic") - {"AUTONOMIC_RECORD_OPERATIONS"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_environment_is_exactly_what_the_code_reads(tf, function):
    read = COMMON | env_vars_read_by(ROOT / "functions" / function)
    assert {"STATE_TABLE_NAME", "DRY_RUN"} <= read, "the env var scan found nothing"
    set_by_infra = set(modules(tf)[function]["environment"])
    assert set_by_infra == read, f"missing: {read - set_by_infra}, unread: {set_by_infra - read}"


def documents_read_by(crate_dir):
    """The variables a function reads as configuration documents: `load_documents(&[config::X])`."""
    consts = {}
    for path in crate_dir.glob("src/**/*.rs"):
        consts |= dict(re.findall(r'pub const (\w+): &(?:\'static )?str = "([A-Z][A-Z0-9_]+)";', path.read_text()))
    lib = (crate_dir / "src" / "lib.rs").read_text()
    (names,) = re.findall(r"load_documents\(&\[([^\]]*)\]", lib)
    return {consts[n.strip().rsplit("::", 1)[-1]] for n in names.split(",") if n.strip()}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_documents_are_ssm_parameters_the_function_may_read(tf, function):
    documents = documents_read_by(ROOT / "functions" / function)
    assert documents, "the document scan found nothing"
    env = modules(tf)[function]["environment"]
    parameters = {p["name"]: p for p in tf["aws_ssm_parameter"]}
    policy = json.loads(modules(tf)[function]["policy_json"])
    readable = {s["Resource"] for s in policy["Statement"] if "ssm:GetParameter" in s["Action"]}
    for variable in documents:
        reference = env[variable]
        assert reference == f"ssm:/autonomic/{function}/{variable}"
        parameter = parameters[reference.removeprefix("ssm:")]
        assert parameter["type"] == "SecureString" and parameter["key_id"], "encrypted with the key"
        assert json.loads(parameter["value"]), f"{variable}: the document infra/ publishes is empty"
        assert parameter["id"] in readable
    # Nothing else of SSM: exactly the function's own documents.
    assert len(readable) == len(documents)


def rule_pattern(tf, rule_name, pattern_file):
    """A rule's pattern, which must be the file the tests and Terraform share."""
    (rule,) = [r for r in tf["aws_cloudwatch_event_rule"] if name(r) == rule_name]
    pattern = json.loads(rule["event_pattern"])
    assert pattern == json.loads((INFRA / "patterns" / pattern_file).read_text())
    return pattern


def alarm_pattern(tf):
    return rule_pattern(tf, "alarm_state_change", "alarm-state-change.json")


ALARM_RULE_CASES = [
    ("eventbridge-alarm-metric-alarm.json", True),
    ("eventbridge-alarm-metric-ok.json", True),
    ("eventbridge-alarm-math-alarm.json", True),
    ("eventbridge-alarm-composite-alarm.json", True),
    ("eventbridge-alarm-tagged-alarm.json", True),
    # Matches the rule; the function then skips it (no rule of ours names it).
    ("eventbridge-alarm-unmatched.json", True),
    # INSUFFICIENT_DATA never acts: the rule does not even invoke the function.
    ("eventbridge-alarm-insufficient-data.json", False),
    ("eventbridge-ecr-image-push.json", False),
    ("eventbridge-ecr-image-push-release.json", False),
    ("eventbridge-ecr-image-push-rc.json", False),
    ("eventbridge-ecr-image-push-retag.json", False),
    ("eventbridge-ecr-image-push-untagged.json", False),
    ("eventbridge-ecr-image-push-failed.json", False),
    ("eventbridge-ecr-image-delete.json", False),
    ("eventbridge-ecr-image-archive.json", False),
    ("eventbridge-ecr-replication.json", False),
    ("eventbridge-ecr-image-scan.json", False),
    ("eventbridge-ecr-multiarch-1-amd64.json", False),
    ("eventbridge-ecr-multiarch-2-arm64.json", False),
    ("eventbridge-ecr-multiarch-3-attestation.json", False),
    ("eventbridge-ecr-multiarch-4-index.json", False),
    ("malformed-ecr-bad-digest.json", False),
    # The sweep comes from its own scheduled rule, not the alarm rule.
    ("eventbridge-scheduled-sweep.json", False),
    # Health-check alarms reach asg-scaler too (it skips them: no scaling rule names them).
    ("eventbridge-health-alarm-orders.json", True),
    ("eventbridge-health-alarm-orders-ok.json", True),
    ("eventbridge-health-alarm-tagged.json", True),
    ("eventbridge-rds-global-switchover-started.json", False),
    ("eventbridge-rds-global-switchover-completed.json", False),
    ("eventbridge-rds-global-failover-failed.json", False),
    ("eventbridge-rds-global-failover-completed.json", False),
    ("eventbridge-rds-cluster-failover-completed.json", False),
    ("eventbridge-rds-instance-backup.json", False),
]


@pytest.mark.parametrize("sample, expected", ALARM_RULE_CASES)
def test_alarm_rule_pattern_against_the_samples(tf, sample, expected):
    assert matches(alarm_pattern(tf), json.loads((EVENTS / sample).read_text())) is expected


ECR_PUSH_RULE_CASES = [
    ("eventbridge-ecr-image-push.json", True),  # the function then skips it: no route
    ("eventbridge-ecr-image-push-release.json", True),
    ("eventbridge-ecr-image-push-rc.json", True),
    ("eventbridge-ecr-image-push-retag.json", True),
    # The per-platform manifests of a multi-arch push: the rule does not even invoke the function.
    ("eventbridge-ecr-image-push-untagged.json", False),
    # A multi-arch push in the order ECR sends it: the platform images and the attestation
    # untagged (never delivered), then the tagged index, the one push acted on.
    ("eventbridge-ecr-multiarch-1-amd64.json", False),
    ("eventbridge-ecr-multiarch-2-arm64.json", False),
    ("eventbridge-ecr-multiarch-3-attestation.json", False),
    ("eventbridge-ecr-multiarch-4-index.json", True),
    # Delivered (the pattern does not look at the digest); the function refuses it as invalid.
    ("malformed-ecr-bad-digest.json", True),
    ("eventbridge-ecr-image-push-failed.json", False),
    ("eventbridge-ecr-image-delete.json", False),
    ("eventbridge-ecr-image-archive.json", False),
    ("eventbridge-ecr-replication.json", False),
    ("eventbridge-ecr-image-scan.json", False),
    ("eventbridge-alarm-metric-alarm.json", False),
    ("eventbridge-scheduled-sweep.json", False),
]


@pytest.mark.parametrize("sample, expected", ECR_PUSH_RULE_CASES)
def test_ecr_push_rule_pattern_against_the_samples(tf, sample, expected):
    pattern = rule_pattern(tf, "ecr_image_push", "ecr-image-push.json")
    assert matches(pattern, json.loads((EVENTS / sample).read_text())) is expected


# k8s-rollout has a rule of its own on the same pattern file: the same pushes reach it.
K8S_ROLLOUT_RULE_CASES = ECR_PUSH_RULE_CASES


@pytest.mark.parametrize("sample, expected", K8S_ROLLOUT_RULE_CASES)
def test_k8s_rollout_rule_pattern_against_the_samples(tf, sample, expected):
    pattern = rule_pattern(tf, "k8s_rollout_image_push", "ecr-image-push.json")
    assert matches(pattern, json.loads((EVENTS / sample).read_text())) is expected


HEALTH_ALARM_RULE_CASES = [
    ("eventbridge-health-alarm-orders.json", True),
    ("eventbridge-health-alarm-tagged.json", True),
    # OK never promotes (failback is never automatic): the rule does not even invoke the function.
    ("eventbridge-health-alarm-orders-ok.json", False),
    # Alarms on other metrics go to asg-scaler only.
    ("eventbridge-alarm-metric-alarm.json", False),
    ("eventbridge-alarm-tagged-alarm.json", False),
    ("eventbridge-alarm-composite-alarm.json", False),
    ("eventbridge-rds-global-switchover-completed.json", False),
    ("eventbridge-ecr-multiarch-1-amd64.json", False),
    ("eventbridge-ecr-multiarch-2-arm64.json", False),
    ("eventbridge-ecr-multiarch-3-attestation.json", False),
    ("eventbridge-ecr-multiarch-4-index.json", False),
    ("malformed-ecr-bad-digest.json", False),
]


@pytest.mark.parametrize("sample, expected", HEALTH_ALARM_RULE_CASES)
def test_health_check_alarm_rule_pattern_against_the_samples(tf, sample, expected):
    pattern = rule_pattern(tf, "health_check_alarm", "health-check-alarm.json")
    assert matches(pattern, json.loads((EVENTS / sample).read_text())) is expected


RDS_RULE_CASES = [
    ("eventbridge-rds-global-switchover-started.json", True),
    ("eventbridge-rds-global-switchover-completed.json", True),
    ("eventbridge-rds-global-failover-failed.json", True),
    ("eventbridge-rds-global-failover-completed.json", True),
    ("eventbridge-rds-cluster-failover-completed.json", True),
    ("eventbridge-rds-instance-backup.json", False),
    ("eventbridge-health-alarm-orders.json", False),
    ("eventbridge-ecr-multiarch-1-amd64.json", False),
    ("eventbridge-ecr-multiarch-2-arm64.json", False),
    ("eventbridge-ecr-multiarch-3-attestation.json", False),
    ("eventbridge-ecr-multiarch-4-index.json", False),
    ("malformed-ecr-bad-digest.json", False),
]


@pytest.mark.parametrize("sample, expected", RDS_RULE_CASES)
def test_rds_promotion_rule_pattern_against_the_samples(tf, sample, expected):
    pattern = rule_pattern(tf, "rds_promotion_event", "rds-promotion-event.json")
    assert matches(pattern, json.loads((EVENTS / sample).read_text())) is expected


@pytest.mark.parametrize("cases, samples", [
    (ALARM_RULE_CASES, "eventbridge-*.json"),
    (ECR_PUSH_RULE_CASES, "eventbridge-ecr-*.json"),
    (K8S_ROLLOUT_RULE_CASES, "eventbridge-ecr-*.json"),
    (HEALTH_ALARM_RULE_CASES, "eventbridge-health-alarm-*.json"),
    (RDS_RULE_CASES, "eventbridge-rds-*.json"),
])
def test_every_sample_is_classified_for_each_rule(cases, samples):
    listed = {p for p, _ in cases}
    on_disk = {p.name for p in EVENTS.glob(samples)}
    assert on_disk <= listed, f"samples without an expectation: {on_disk - listed}"


def test_pipeline_trigger_may_start_exactly_the_routed_pipelines(tf):
    routes = json.loads((ROOT / "functions/pipeline-trigger/routes.example.json").read_text())["routes"]
    routed = {p for r in routes for p in r["pipelines"]}
    policy = json.loads(modules(tf)["pipeline-trigger"]["policy_json"])
    (statement,) = [s for s in policy["Statement"] if "codepipeline:StartPipelineExecution" in s["Action"]]
    assert {arn.rsplit(":", 1)[1] for arn in statement["Resource"]} == routed
    assert all(arn.startswith("arn:aws:codepipeline:eu-west-1:") for arn in statement["Resource"])
    (target,) = [t for t in tf["aws_cloudwatch_event_target"] if name(t) == "pipeline_trigger"]
    assert target["retry_policy"]["maximum_event_age_in_seconds"] == 3600
    assert target["dead_letter_config"]["arn"]


def test_aurora_promoter_may_promote_exactly_what_its_targets_name(tf):
    targets = json.loads((ROOT / "functions/aurora-promoter/targets.example.json").read_text())["targets"]
    policy = json.loads(modules(tf)["aurora-promoter"]["policy_json"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    expected = {"PromoteGlobalDatabases": set(), "FailOverClusters": set(), "PromoteReplicaClusters": set(),
                "ConfirmHealthChecks": set(), "PointRecordsAtTheNewWriter": set()}
    for t in targets:
        if g := t.get("global"):
            expected["PromoteGlobalDatabases"].add(f"arn:aws:rds::*:global-cluster:{g['globalClusterIdentifier']}")
            # Both the global cluster and each member: the API needs both.
            for region, cluster in g["clusters"].items():
                expected["PromoteGlobalDatabases"].add(f"arn:aws:rds:{region}:*:cluster:{cluster}")
        if c := t.get("cluster"):
            expected["FailOverClusters"].add(f"arn:aws:rds:{c['region']}:*:cluster:{c['identifier']}")
        if r := t.get("readReplica"):
            expected["PromoteReplicaClusters"].add(f"arn:aws:rds:{r['region']}:*:cluster:{r['identifier']}")
        expected["ConfirmHealthChecks"].add(f"arn:aws:route53:::healthcheck/{t.get('healthCheckId', '*')}")
        if rec := t.get("record"):
            expected["PointRecordsAtTheNewWriter"].add(f"arn:aws:route53:::hostedzone/{rec['hostedZoneId']}")
    for sid, arns in expected.items():
        resource = statements[sid]["Resource"]
        assert set([resource] if isinstance(resource, str) else resource) == arns, sid


def test_k8s_rollout_may_describe_exactly_the_clusters_its_document_names(tf):
    clusters = json.loads((ROOT / "functions/k8s-rollout/clusters.example.json").read_text())["clusters"]
    # (Region, cluster) -> the namespaces the document gives it (entries naming one cluster merge).
    expected = {}
    for c in clusters:
        if eks := c.get("eks"):
            expected.setdefault((eks.get("region", "eu-west-1"), eks["cluster"]), set()).update(c["namespaces"])
    assert expected, "the example names no EKS cluster: nothing would be checked"
    policy = json.loads(modules(tf)["k8s-rollout"]["policy_json"])
    eks_statements = [s for s in policy["Statement"] if any(a.startswith("eks:") for a in s["Action"])]
    assert [(s["Sid"], s["Action"]) for s in eks_statements] == [("DescribeNamedClusters", ["eks:DescribeCluster"])]
    assert set(eks_statements[0]["Resource"]) == {f"arn:aws:eks:{r}:*:cluster/{c}" for r, c in expected}

    entries = {(e["region"], e["cluster_name"]): e for e in tf["aws_eks_access_entry"]}
    assert set(entries) == set(expected)
    assert all(e["type"] == "STANDARD" for e in entries.values())
    associations = {(a["region"], a["cluster_name"]): a for a in tf["aws_eks_access_policy_association"]}
    assert set(associations) == set(expected)
    for key, namespaces in expected.items():
        a = associations[key]
        assert a["policy_arn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy", key
        assert a["access_scope"]["type"] == "namespace", key
        assert set(a["access_scope"]["namespaces"]) == namespaces, key
    # The principal is the function's role (a module output tfparse leaves unresolved: read the HCL).
    with open(INFRA / "main.tf") as f:
        main = hcl2.load(f)
    for kind in ("aws_eks_access_entry", "aws_eks_access_policy_association"):
        principal = hcl_resource(main, kind, "k8s_rollout")["principal_arn"]
        assert "module.k8s_rollout.role_arn" in principal or "aws_eks_access_entry.k8s_rollout" in principal, principal

    (target,) = [t for t in tf["aws_cloudwatch_event_target"] if name(t) == "k8s_rollout"]
    assert target["rule"] == "autonomic-k8s-rollout-image-push"
    assert target["retry_policy"]["maximum_event_age_in_seconds"] == 3600
    assert target["dead_letter_config"]["arn"]
    assert target["lifecycle"]["precondition"]["condition"] is True, "verify/poll/timeout defaults disagree"
    permissions = [p for p in tf["aws_lambda_permission"] if name(p) == "k8s_rollout_events"]
    assert len(permissions) == 1


def load_with(tmp_path, tfvars):
    """infra/ resolved with these variables (tfparse reads tfvars paths relative to the module)."""
    path = tmp_path / "test.tfvars"
    path.write_text(tfvars)
    return tfparse.load_from_path(str(INFRA), vars_paths=[os.path.relpath(path, INFRA)])


def test_k8s_rollout_runs_in_a_vpc_and_without_access_entries_when_asked(tmp_path):
    parsed = load_with(tmp_path, textwrap.dedent("""
        rollout_subnet_ids         = ["subnet-0123456789abcdef0"]
        rollout_security_group_ids = ["sg-0123456789abcdef0"]
        rollout_manage_eks_access  = false
    """))
    mods = modules(parsed)
    assert mods["k8s-rollout"]["vpc_config"] == {
        "subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]}
    assert all("vpc_config" not in m for f, m in mods.items() if f != "k8s-rollout")
    # The ENI actions come from AWS's managed policy, on that role only; not from our own policy.
    (attachment,) = parsed["aws_iam_role_policy_attachment"]
    assert attachment["role"] == "autonomic-k8s-rollout"
    assert attachment["policy_arn"].endswith(":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
    assert not any(a.startswith("ec2:") for a in granted(parsed, "k8s-rollout"))
    assert not parsed.get("aws_eks_access_entry") and not parsed.get("aws_eks_access_policy_association")
    with open(INFRA / "modules" / "function" / "main.tf") as f:
        module = hcl2.load(f)
    function = hcl_resource(module, "aws_lambda_function", "this")
    assert any('"vpc_config"' in d for d in function["dynamic"]), "the function module passes vpc_config on"


def test_k8s_rollout_subnets_without_security_groups_are_refused(tmp_path):
    parsed = load_with(tmp_path, 'rollout_subnet_ids = ["subnet-0123456789abcdef0"]\n')
    conditions = {f["function_name"]: f["lifecycle"]["precondition"]["condition"] for f in parsed["aws_lambda_function"]}
    assert conditions.pop("autonomic-k8s-rollout") is False
    assert all(conditions.values())


def hcl_resource(main, kind, label):
    """A resource block as python-hcl2 reads it (its keys keep their quotes)."""
    (found,) = [block[f'"{label}"'] for r in main["resource"] for k, block in r.items()
                if k.strip('"') == kind and f'"{label}"' in block]
    return found


def test_health_check_alarms_are_forwarded_from_us_east_1(tf):
    """Health-check metrics exist only in us-east-1; the default Region (eu-west-1) gets the alarms
    through its default bus, then a rule there invokes the function with retries and a DLQ."""
    (rule,) = [r for r in tf["aws_cloudwatch_event_rule"] if name(r) == "health_check_alarm"]
    assert rule["provider"]["__attribute__"] == "aws.us_east_1", rule.get("provider")
    # The bus ARN holds the account (a data source tfparse cannot resolve offline): read the
    # expressions as written.
    with open(INFRA / "main.tf") as f:
        main = hcl2.load(f)
    bus = next(l["default_event_bus_arn"] for l in main["locals"] if "default_event_bus_arn" in l)
    assert bus.strip('"') == "arn:${var.partition}:events:${var.region}:${local.account}:event-bus/default"
    forward = hcl_resource(main, "aws_cloudwatch_event_target", "health_check_alarm")
    assert "local.default_event_bus_arn" in forward["arn"] and "health_alarm_forwarding" in forward["role_arn"]
    role_policy = hcl_resource(main, "aws_iam_role_policy", "health_alarm_forwarding")
    assert "events:PutEvents" in role_policy["policy"] and "local.default_event_bus_arn" in role_policy["policy"]
    (invoke,) = [t for t in tf["aws_cloudwatch_event_target"] if name(t).startswith("aurora_promoter_health_alarm")]
    assert invoke["retry_policy"]["maximum_event_age_in_seconds"] == 900
    assert invoke["dead_letter_config"]["arn"]
    (forwarded,) = [r for r in tf["aws_cloudwatch_event_rule"] if name(r).startswith("forwarded_health_check_alarm")]
    assert json.loads(forwarded["event_pattern"]) == json.loads(rule["event_pattern"])


def test_asg_scaler_sweep_schedule(tf):
    """The held-alarm sweep: a schedule invokes asg-scaler every minute with EventBridge's
    Scheduled Event, the payload the function recognises (events/eventbridge-scheduled-sweep.json)."""
    sweep = next(r for r in tf["aws_cloudwatch_event_rule"] if r["name"].endswith("asg-scaler-sweep"))
    assert sweep["schedule_expression"] == "rate(1 minute)"
    targets = [t for t in tf["aws_cloudwatch_event_target"] if t["rule"] == sweep["name"]]
    assert len(targets) == 1 and "input" not in targets[0], targets
    permissions = [p for p in tf["aws_lambda_permission"] if p.get("statement_id") == "AllowSweepSchedule"]
    assert len(permissions) == 1
    sample = json.loads((EVENTS / "eventbridge-scheduled-sweep.json").read_text())
    assert (sample["source"], sample["detail-type"]) == ("aws.events", "Scheduled Event")


def test_invalidation_queue_wiring(tf):
    (esm,) = tf["aws_lambda_event_source_mapping"]
    assert esm["function_response_types"] == ["ReportBatchItemFailures"]
    assert esm["scaling_config"]["maximum_concurrency"] >= 2
    queues = {name(q): q for q in tf["aws_sqs_queue"] if q["__tfmeta"]["path"].startswith("aws_sqs_queue.")}
    main = queues["invalidations"]
    assert json.loads(main["redrive_policy"])["maxReceiveCount"] >= 1
    for q in tf["aws_sqs_queue"]:
        assert q.get("kms_master_key_id"), f"{q['__tfmeta']['path']} is not encrypted"
    # Six timeouts plus the batching window, as AWS recommends for SQS event sources.
    assert main["visibility_timeout_seconds"] >= 6 * 60


def test_state_table(tf):
    (t,) = tf["aws_dynamodb_table"]
    assert t["hash_key"] == "pk"
    assert t["ttl"]["attribute_name"] == "ttl" and t["ttl"]["enabled"] is True
    assert t["point_in_time_recovery"]["enabled"] is True
    assert t["server_side_encryption"]["enabled"] is True and t["server_side_encryption"]["kms_key_arn"]


def test_alarms_and_dashboard(tf):
    alarms = {name(a) for a in tf["aws_cloudwatch_metric_alarm"]}
    for f in FUNCTIONS:
        assert f'function["{f}-errors"]' in alarms and f'function["{f}-throttles"]' in alarms, alarms
        assert f'dead_letters["{f}-failures"]' in alarms, alarms
    assert 'dead_letters["invalidations-dlq"]' in alarms
    (d,) = tf["aws_cloudwatch_dashboard"]
    assert "Autonomic" in d["dashboard_body"]


# ---- IAM equals use ------------------------------------------------------------------------------

# Actions a function's role needs that are not SDK calls of its code, with the reason.
PLATFORM_ACTIONS = {
    "kms:Decrypt": "the state table and the queue are encrypted with our key",
    "kms:GenerateDataKey": "the state table is encrypted with our key",
    "sqs:ReceiveMessage": "the event source mapping polls the queue with the function's role",
    "sqs:DeleteMessage": "the event source mapping deletes what the function did not report",
    "sqs:GetQueueAttributes": "the event source mapping reads the queue's attributes",
}


def granted(tf, function):
    policy = json.loads(modules(tf)[function]["policy_json"])
    actions = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        action = statement["Action"]
        actions |= set([action] if isinstance(action, str) else action)
    assert not any("*" in a for a in actions), "wildcard actions"
    return actions


def recorded(function):
    path = OPERATIONS / f"{function}.txt"
    if not path.exists():
        pytest.fail(f"{path} is missing: the Rust tests record operations there; run scripts/test.sh")
    return set(path.read_text().split())


@pytest.mark.parametrize("function", FUNCTIONS)
def test_policy_grants_every_operation_the_code_performs(tf, function):
    missing = recorded(function) - granted(tf, function)
    assert not missing, f"{function} calls {sorted(missing)}, which its policy does not grant"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_policy_grants_nothing_the_code_does_not_perform(tf, function):
    unused = granted(tf, function) - recorded(function) - set(PLATFORM_ACTIONS)
    assert not unused, f"{function}'s policy grants {sorted(unused)}, which no test saw it call"
