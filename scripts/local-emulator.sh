#!/usr/bin/env bash
# Runs the AWS emulator (moto server) for local invocations until interrupted, with what the
# samples in events/ act on: the state table events/local.env names, the Auto Scaling groups
# autonomic-demo-web and autonomic-demo-api, a CloudFront distribution for
# static.demo.example.com, and the CodePipeline V2 pipelines autonomic-demo-release and
# autonomic-demo-staging (the example documents route the samples to them).
# Usage: scripts/local-emulator.sh [PORT]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
port="${1:-5000}"
bash scripts/ensure-moto.sh
.venv/moto/bin/python shared/testkit/moto_server.py 127.0.0.1 "$port" &
server=$!
trap 'kill $server 2>/dev/null' EXIT INT TERM
AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
AWS_DEFAULT_REGION=us-east-1 .venv/moto/bin/python - <<'PY'
import time, boto3, botocore
ddb = boto3.client("dynamodb")
for _ in range(100):
    try:
        ddb.list_tables()
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
ddb.create_table(TableName="autonomic-local-state", BillingMode="PAY_PER_REQUEST",
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
asg = boto3.client("autoscaling")
for name, max_size in [("autonomic-demo-web", 10), ("autonomic-demo-api", 6)]:
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId="ami-12c6146b", InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=1,
                                  MaxSize=max_size, DesiredCapacity=2, AvailabilityZones=["us-east-1a"])
boto3.client("cloudfront").create_distribution(DistributionConfig={
    "CallerReference": "static.demo.example.com", "Comment": "Autonomic local estate", "Enabled": True,
    "Aliases": {"Quantity": 1, "Items": ["static.demo.example.com"]},
    "Origins": {"Quantity": 1, "Items": [{"Id": "static", "DomainName": "autonomic-demo-static.s3.amazonaws.com",
                                          "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
    "DefaultCacheBehavior": {"TargetOriginId": "static", "ViewerProtocolPolicy": "redirect-to-https",
                             "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
})
iam = boto3.client("iam")
trust = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "codepipeline.amazonaws.com"}}]}'
role = iam.create_role(RoleName="autonomic-demo-pipelines", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
codepipeline = boto3.client("codepipeline")
for name, variables in [("autonomic-demo-release", ["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"]),
                        ("autonomic-demo-staging", ["IMAGE_TAG", "IMAGE_URI"])]:
    codepipeline.create_pipeline(pipeline={
        "name": name, "roleArn": role, "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "autonomic-artifacts"},
        "variables": [{"name": v, "defaultValue": "unset"} for v in variables],
        "stages": [
            {"name": "Source", "actions": [{"name": "Image", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
                                            "configuration": {"RepositoryName": "autonomic-demo/web"}, "outputArtifacts": [{"name": "image"}]}]},
            {"name": "Release", "actions": [{"name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
        ]})
PY
echo "emulator ready on http://127.0.0.1:$port: table autonomic-local-state, groups autonomic-demo-web and autonomic-demo-api, distribution static.demo.example.com, pipelines autonomic-demo-release and autonomic-demo-staging" >&2
wait $server
