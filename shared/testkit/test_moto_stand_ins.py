"""The test kit's moto stand-ins (moto_stand_ins.py) through the launcher, with boto3: a global
cluster's writer moves on switchover and failover, a wrong target is refused, and health-check
observations can be set. Run with moto's virtualenv: `.venv/moto/bin/python
shared/testkit/test_moto_stand_ins.py` (scripts/test.sh does)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions

HERE = Path(__file__).resolve().parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, HERE / "moto_server.py", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("moto did not start")


def client(url, service, region="us-east-1"):
    return boto3.client(service, endpoint_url=url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def writers(rds):
    (gc,) = rds.describe_global_clusters()["GlobalClusters"]
    return [m["DBClusterArn"] for m in gc["GlobalClusterMembers"] if m["IsWriter"]]


def test_global_cluster_switchover_and_failover(url):
    east, west = client(url, "rds", "us-east-1"), client(url, "rds", "us-west-2")
    east.create_global_cluster(GlobalClusterIdentifier="orders", Engine="aurora-postgresql")
    primary = east.create_db_cluster(DBClusterIdentifier="orders-east", Engine="aurora-postgresql",
                                     MasterUsername="admin", MasterUserPassword="password1",
                                     GlobalClusterIdentifier="orders")["DBCluster"]["DBClusterArn"]
    secondary = west.create_db_cluster(DBClusterIdentifier="orders-west", Engine="aurora-postgresql",
                                       GlobalClusterIdentifier="orders")["DBCluster"]["DBClusterArn"]
    assert writers(east) == [primary], writers(east)
    east.switchover_global_cluster(GlobalClusterIdentifier="orders", TargetDbClusterIdentifier=secondary)
    assert writers(east) == [secondary], writers(east)
    west.failover_global_cluster(GlobalClusterIdentifier="orders", TargetDbClusterIdentifier=primary,
                                 AllowDataLoss=True)
    assert writers(east) == [primary], writers(east)
    for call, kwargs, code in [
        (east.switchover_global_cluster, {"GlobalClusterIdentifier": "orders",
                                          "TargetDbClusterIdentifier": "arn:aws:rds:eu-west-1:123456789012:cluster:x"},
         "InvalidParameterValue"),
        (east.failover_global_cluster, {"GlobalClusterIdentifier": "nope", "TargetDbClusterIdentifier": primary,
                                        "AllowDataLoss": True}, "GlobalClusterNotFoundFault"),
    ]:
        try:
            call(**kwargs)
            raise AssertionError(f"{call.__name__} {kwargs} did not fail")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == code, e.response
    assert writers(east) == [primary]
    state = {"Status": "switching-over", "FromDbClusterArn": primary, "ToDbClusterArn": secondary,
             "IsDataLossAllowed": False}
    control(url, "global-cluster-failover-state", {"globalClusterIdentifier": "orders", "failoverState": state})
    (gc,) = east.describe_global_clusters()["GlobalClusters"]
    assert gc["FailoverState"] == state, gc
    control(url, "global-cluster-failover-state", {"globalClusterIdentifier": "orders", "failoverState": None})
    (gc,) = east.describe_global_clusters()["GlobalClusters"]
    assert "FailoverState" not in gc, gc
    try:
        control(url, "global-cluster-failover-state", {"globalClusterIdentifier": "nope", "failoverState": None})
        raise AssertionError("an unknown global cluster was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400


def control(url, name, body):
    request = urllib.request.Request(f"{url}/_autonomic/{name}", method="POST", data=json.dumps(body).encode())
    return urllib.request.urlopen(request)


def test_health_check_observations_can_be_set(url):
    r53 = client(url, "route53")
    check = r53.create_health_check(CallerReference="db", HealthCheckConfig={
        "Type": "TCP", "IPAddress": "10.0.0.1", "Port": 5432})["HealthCheck"]["Id"]
    default = r53.get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
    assert [o["StatusReport"]["Status"].split(":")[0] for o in default] == ["Success"], default
    observations = [{"region": "us-east-1", "status": "Failure: Connection timed out."},
                    {"region": "eu-west-1", "status": "Failure: Connection timed out."},
                    {"region": "ap-southeast-1", "status": "Success: TCP connection established."}]
    request = urllib.request.Request(f"{url}/_autonomic/health-check-status", method="POST",
                                     data=json.dumps({"healthCheckId": check, "observations": observations}).encode())
    assert urllib.request.urlopen(request).status == 200
    got = r53.get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
    assert [(o["Region"], o["StatusReport"]["Status"]) for o in got] == [
        (o["region"], o["status"]) for o in observations], got
    bad = urllib.request.Request(f"{url}/_autonomic/health-check-status", method="POST", data=b"{}")
    try:
        urllib.request.urlopen(bad)
        raise AssertionError("a control request without observations was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400


def main():
    server, url = start()
    try:
        for test in [test_global_cluster_switchover_and_failover, test_health_check_observations_can_be_set]:
            test(url)
            print(f"ok {test.__name__}")
    finally:
        server.kill()


if __name__ == "__main__":
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    main()
