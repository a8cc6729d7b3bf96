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
kubeconfig="${AUTONOMIC_LOCAL_KUBECONFIG:-target/autonomic-local/kubeconfig}"
bash scripts/ensure-moto.sh
# The same build as the tests and the demo (so it is cached after them): the stand-in binary is in it.
cargo build --quiet --workspace --bins
mkdir -p "$(dirname "$kubeconfig")"
.venv/moto/bin/python shared/testkit/moto_server.py 127.0.0.1 "$port" &
server=$!
target/debug/kube-stand-in --kubeconfig "$kubeconfig" --seed-demo 2>"$kubeconfig.log" &
kube=$!
trap 'kill $server $kube 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do grep -q "kube stand-in ready" "$kubeconfig.log" && break; sleep 0.1; done
grep -q "kube stand-in ready" "$kubeconfig.log" || { cat "$kubeconfig.log" >&2; exit 1; }
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
rds_east, rds_west = boto3.client("rds", region_name="us-east-1"), boto3.client("rds", region_name="us-west-2")
rds_east.create_global_cluster(GlobalClusterIdentifier="orders", Engine="aurora-postgresql", EngineVersion="15.4")
for rds, member in [(rds_east, "orders-east"), (rds_west, "orders-west")]:
    credentials = {"MasterUsername": "admin", "MasterUserPassword": "password1"} if member == "orders-east" else {}
    rds.create_db_cluster(DBClusterIdentifier=member, Engine="aurora-postgresql", EngineVersion="15.4",
                          GlobalClusterIdentifier="orders", **credentials)
rds_east.create_db_cluster(DBClusterIdentifier="billing", Engine="aurora-postgresql", EngineVersion="15.4",
                           MasterUsername="admin", MasterUserPassword="password1")
for n, zone in [(1, "us-east-1a"), (2, "us-east-1b")]:
    rds_east.create_db_instance(DBInstanceIdentifier=f"billing-{n}", DBClusterIdentifier="billing", Engine="aurora-postgresql",
                                DBInstanceClass="db.r6g.large", PromotionTier=n, AvailabilityZone=zone)
catalog = rds_east.create_db_cluster(DBClusterIdentifier="catalog", Engine="aurora-mysql", MasterUsername="admin",
                                     MasterUserPassword="password1")["DBCluster"]["DBClusterArn"]
rds_west.create_db_cluster(DBClusterIdentifier="catalog-replica", Engine="aurora-mysql", MasterUsername="admin",
                           MasterUserPassword="password1", ReplicationSourceIdentifier=catalog)
# The samples' health check: six of Route 53's eight checkers report failure (a stand-in answer).
import json, os, urllib.request
checkers = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"]
observations = [{"region": r, "status": "Failure: Connection timed out." if i < 6 else "Success: TCP connection established."}
                for i, r in enumerate(checkers)]
urllib.request.urlopen(urllib.request.Request(
    os.environ["AWS_ENDPOINT_URL"] + "/_autonomic/health-check-status", method="POST",
    data=json.dumps({"healthCheckId": "11111111-2222-3333-4444-555555555555", "observations": observations}).encode()))
PY
echo "emulator ready on http://127.0.0.1:$port: table autonomic-local-state, groups autonomic-demo-web and autonomic-demo-api, distribution static.demo.example.com, pipelines autonomic-demo-release and autonomic-demo-staging, global database orders (orders-east, orders-west), cluster billing, replica catalog-replica, health check 11111111-... failing on 6 of 8 checkers; Kubernetes API stand-in with Deployments web, web-canary, storefront, worker in namespace shop (kubectl --kubeconfig $kubeconfig get deployments -n shop)" >&2
wait $server
