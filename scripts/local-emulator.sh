#!/usr/bin/env bash
# Runs the AWS emulator (moto server) for local invocations until interrupted, with what the
# samples in events/ act on: the state table events/local.env names, the Auto Scaling groups
# autonomic-demo-web and autonomic-demo-api, and a CloudFront distribution for
# static.demo.example.com (the example documents route the samples to them).
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
PY
echo "emulator ready on http://127.0.0.1:$port: table autonomic-local-state, groups autonomic-demo-web and autonomic-demo-api, distribution static.demo.example.com" >&2
wait $server
