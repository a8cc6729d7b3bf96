"""The benchmark's Python/boto3 peer of aurora-promoter (functions/aurora-promoter).

Written as a careful Python engineer would write this Lambda: configuration read, clients created
and the state table probed once at import (cold start); plain functions per event. On the path the
benchmark drives (a Route 53 health-check alarm that switches a global database over) it makes the
same AWS calls in the same order, to the same Regions, as the Rust function, writes the same
DynamoDB items under the same conditions, and prints the same audit and EMF lines.

What it does. Cold start: PROMOTION_TARGETS (inline JSON, or `ssm:NAME` read with GetParameter
WithDecryption), STATE_TABLE_NAME, IDEMPOTENCY_TTL_SECONDS, MAX_EVENT_AGE_SECONDS, ROUTE53_REGION;
the GetItem probe of the state table; one RDS and one CloudWatch client per Region the targets
name (plus an RDS client per Region that makes a promotion call in one attempt, never retried, as
the Rust function overrides it), Route 53 in ROUTE53_REGION; botocore set up as the Rust SDK is
(connect 3.1 s, 4 s per attempt, standard retries, 3 attempts in all). Per event: parse the
EventBridge "CloudWatch Alarm State Change" event; route the alarm to its target (alarm name glob,
or the `autonomic:promotion-target` tag); screen it (only ALARM promotes; stale; a health check to
confirm with); claim the transition (idempotency); observe the breaker, Route 53's checkers and
(only when the checkers confirm the failure) the clusters, each in its own Region (DescribeGlobalClusters from the first Region that answers,
DescribeDBClusters and DescribeDBInstances per member, the replication lag of each secondary
with GetMetricData); decide: in-Region FailoverDBCluster to the best reader, SwitchoverGlobalCluster
while the primary's Region answers, FailoverGlobalCluster (data loss allowed, lag under the RPO
ceiling, the clusters read once more first) when it does not (a simpler rule than the Rust
function's, which fails over only a Region that answered no call at all over
PRIMARY_SILENCE_SECONDS, in readings that far apart: the benchmark's path never reaches it), PromoteReadReplicaDBCluster; the
passing skips as retryable errors; lease the cluster (a lock, waited for while another invocation
holds it; a cooldown is a skip); trip the breaker (`in_flight`, its holder the transition); record
the intent; make the call; settle the lease as the cooldown; then complete at once when the
clusters already show the new writer (the breaker `tripped`, the CNAME upserted); end the claim;
an audit line per action or skip, EMF lines at the end (one per action kind).

What it leaves out: DRY_RUN (refused at cold start); RDS events (completing or releasing a
promotion in flight from RDS's own report, Aurora's failovers remembered): refused as invalid
events; the alarm Lambda-action and SNS deliveries; `file:` and `s3://` documents; validating the
targets document beyond using it; resuming a promotion that this same transition's earlier attempt
tripped and may have made (the Rust function reads the clusters and completes, waits
PROMOTION_SETTLE_SECONDS or acts again; here that breaker is a tripped one: skipped, with the
completion check); globset's `{a,b}` alternatives in alarm globs (fnmatch: `*`, `?`, `[..]`); the
10 s per-operation timeout (botocore has per-attempt timeouts only); the Lambda error type is the
exception class (the Rust's `Retryable.Code` leads the message); the Rust's log lines.
"""

import fnmatch
import json
import logging
import math
import os
import time
from datetime import datetime, timedelta, timezone

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError, ParamValidationError,
                                 ReadTimeoutError)

FUNCTION = SCOPE = "aurora-promoter"
PROMOTE, COMPLETE = "promote", "complete_promotion"  # the audit actions
TARGET_TAG = "autonomic:promotion-target"
MIN_FAILING_CHECKERS = 2  # however small the share: one checker's bad network never promotes
RESERVE_MS = 12_000  # no new work (and no more waiting for a lock) with less time than this left
IN_PROGRESS, COMPLETED = "IN_PROGRESS", "COMPLETED"
# Skips that rest on a fault or a passing state: retryable errors, so the delivery comes back.
RETRY_LATER = ("data_loss_not_allowed", "lag_unreadable", "lag_unknown", "no_candidate_yet", "primary_not_available")
LAG_METRICS = (("rpo", "AuroraGlobalDBRPOLag", False), ("rpo_by_source", "AuroraGlobalDBRPOLag", True),
               ("replication", "AuroraGlobalDBReplicationLag", False),
               ("replication_by_source", "AuroraGlobalDBReplicationLag", True))
# Error codes as shared/autonomic/src/error.rs classifies them: retry later, and refused (not acted on).
RETRYABLE = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestThrottledException",
             "RequestLimitExceeded", "TooManyRequestsException", "ProvisionedThroughputExceededException",
             "TransactionInProgressException", "PriorRequestNotComplete", "SlowDown", "ServiceUnavailable",
             "ServiceUnavailableException", "InternalFailure", "InternalError", "InternalServerError",
             "InternalServiceError", "RequestTimeout", "RequestTimeoutException", "InvalidDBClusterStateFault",
             "InvalidGlobalClusterStateFault", "InvalidDBInstanceState"}
REFUSED = {"ValidationError", "ValidationException", "InvalidParameterValue", "InvalidParameterCombination",
           "InvalidArgument", "MissingParameter", "AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
           "UnrecognizedClientException", "InvalidClientTokenId", "ConditionalCheckFailedException",
           "ResourceNotFoundException", "InvalidDBClusterStateFault", "InvalidGlobalClusterStateFault",
           "InvalidDBInstanceState", "DBClusterNotFoundFault", "GlobalClusterNotFoundFault", "DBInstanceNotFound",
           "InvalidChangeBatch", "NoSuchHostedZone", "NoSuchHealthCheck", "ConstructionFailure"}
# A Region that did not answer (as opposed to one that answered with a refusal; throttling is an answer).
UNANSWERED = {"Timeout", "DispatchFailure", "ResponseError", "InternalFailure", "InternalError", "InternalServerError",
              "ServiceUnavailable", "ServiceUnavailableException"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

log = logging.getLogger(FUNCTION)
log.setLevel(logging.INFO)


class Failure(Exception):
    """A failure typed as the Rust function types it: `error_type` is `Retryable.Code` or
    `Permanent.Code`; `code` the service's code; `refused` when the service said it did not act."""

    def __init__(self, error_type, message, refused=True):
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message, self.refused = error_type, message, refused
        self.code = error_type.split(".", 1)[1]

    @property
    def may_have_acted(self):
        return not self.refused


def call_error(operation, code, message, retryable=None):
    """A failed call, as CallError::new classifies it."""
    retryable = code in RETRYABLE if retryable is None else retryable
    return Failure(("Retryable." if retryable else "Permanent.") + code, f"{operation} failed: {code}: {message}",
                   code in REFUSED)


def aws(operation, method, **params):
    """`method(**params)`; a failure raised as a Failure named after `operation`."""
    try:
        return method(**params)
    except ClientError as e:
        error = e.response.get("Error", {})
        code, message = error.get("Code"), error.get("Message") or str(e)
        if not code:  # a bare 5xx or 429: the status decides
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise call_error(operation, f"HTTP{status}", message, status >= 500 or status == 429) from e
        raise call_error(operation, code, message) from e
    except ParamValidationError as e:  # never sent
        raise call_error(operation, "ConstructionFailure", str(e), False) from e
    except BotoCoreError as e:  # no answer: it may have acted
        code = "Timeout" if isinstance(e, (ConnectTimeoutError, ReadTimeoutError)) else "DispatchFailure"
        raise call_error(operation, code, str(e), True) from e


def unanswered(f):
    return f.code in UNANSWERED or (f.code.startswith("HTTP") and f.code[4:5] == "5")


def now_ms():
    return time.time_ns() // 1_000_000


def dumps(value):
    """serde_json's compact form, keys sorted as its maps sort them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def number(x):
    """A float as Rust's Display writes it (5.0 is `5`)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def rfc3339(ms):
    """chrono's to_rfc3339 of an epoch-milliseconds time."""
    seconds, millis = divmod(ms, 1000)
    text = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{millis:03d}" if millis else "") + "+00:00"


# ---- init, once per container --------------------------------------------------------------------

CONFIG = Config(connect_timeout=3.1, read_timeout=4, retries={"mode": "standard", "total_max_attempts": 3})
ONCE = CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 1}))


def load_document(name):
    value = os.environ.get(name, "").strip()
    if value.startswith(("{", "[")):
        return value
    if value.startswith("ssm:"):
        ssm = boto3.client("ssm", config=CONFIG)
        return ssm.get_parameter(Name=value[4:].strip(), WithDecryption=True)["Parameter"]["Value"]
    raise RuntimeError(f"{name}: expected a JSON document or ssm:NAME, got {value[:24]!r}")


def parse_target(spec):
    """A target as the Rust function reads it: defaults filled in, its kind, resource and Regions."""
    t = {"name": spec["name"], "alarms": spec.get("alarms", []),
         "healthCheckId": spec.get("healthCheckId"), "share": spec.get("minFailingShare", 0.5),
         "cooldownSeconds": spec.get("cooldownSeconds", 1800), "record": None}
    if spec.get("record"):
        r = spec["record"]
        t["record"] = {"hostedZoneId": r["hostedZoneId"], "name": r["name"], "ttl": r.get("ttl", 30)}
    kinds = [k for k in ("cluster", "global", "readReplica") if spec.get(k) is not None]
    if len(kinds) != 1:
        raise RuntimeError(f"PROMOTION_TARGETS: target {spec['name']!r}: exactly one of cluster, global or readReplica")
    t["kind"], c = kinds[0], spec[kinds[0]]
    if t["kind"] == "global":
        t["global"] = {"id": c["globalClusterIdentifier"], "regions": c["regions"], "clusters": c.get("clusters", {}),
                       "allowDataLoss": c.get("allowDataLoss", False), "rpoCeiling": c.get("rpoCeilingSeconds")}
        t["resource"], t["regions"] = f"global#{c['globalClusterIdentifier']}", list(c["regions"])
    else:
        t[t["kind"]] = {"identifier": c["identifier"], "region": c["region"],
                        "readerPriority": c.get("readerPriority", []),
                        "preferredAvailabilityZones": c.get("preferredAvailabilityZones", [])}
        t["resource"], t["regions"] = f"cluster#{c['region']}#{c['identifier']}", [c["region"]]
    return t


TARGETS = [parse_target(s) for s in json.loads(load_document("PROMOTION_TARGETS"))["targets"]]
if not TARGETS:
    raise RuntimeError("PROMOTION_TARGETS: targets: at least one target is required")
if os.environ.get("DRY_RUN", "").strip().lower() in ("true", "1", "yes"):
    raise RuntimeError("DRY_RUN: not supported by this peer")
TABLE = os.environ["STATE_TABLE_NAME"].strip()
TTL_S = int(os.environ.get("IDEMPOTENCY_TTL_SECONDS", "").strip() or 86_400)
MAX_AGE_S = int(os.environ.get("MAX_EVENT_AGE_SECONDS", "").strip() or 900) or None  # 0 turns the check off
ROUTE53_REGION = os.environ.get("ROUTE53_REGION", "").strip() or "us-east-1"
REGIONS = sorted({r for t in TARGETS for r in t["regions"]})
ddb = boto3.client("dynamodb", config=CONFIG)
try:  # a missing table or permission fails the cold start; a passing fault is left to the events
    ddb.get_item(TableName=TABLE, Key={"pk": {"S": "probe#cold-start"}}, ConsistentRead=True)
except ClientError as e:
    if "NotFound" in e.response["Error"]["Code"] or e.response["Error"]["Code"].startswith("AccessDenied"):
        raise
    log.warning("could not read the state table at cold start: %s", e)
# RDS and CloudWatch in every Region a target names (the function must work from the Region being
# promoted while another is down); promotion calls are made once, never retried: a retry after an
# answer was lost would meet the promotion under way and read as a refusal.
rds = {r: boto3.client("rds", region_name=r, config=CONFIG) for r in REGIONS}
rds_once = {r: boto3.client("rds", region_name=r, config=ONCE) for r in REGIONS}
cloudwatch = {r: boto3.client("cloudwatch", region_name=r, config=CONFIG) for r in REGIONS}
route53 = boto3.client("route53", region_name=ROUTE53_REGION, config=CONFIG)
log.info("aurora-promoter ready targets=%d regions=%s table=%s", len(TARGETS), REGIONS, TABLE)


# ---- the state table (items and conditions as shared/autonomic/src/guard/table.rs writes them) ----

def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def get_item(pk):
    return aws("GetItem", ddb.get_item, TableName=TABLE, Key={"pk": S(pk)}, ConsistentRead=True).get("Item")


def write(op, operation, best_effort=None, **params):
    """Whether the write was made (False: its condition did not hold). With `best_effort` (what
    it does, in words), a failure is logged instead of raised."""
    try:
        aws(operation, getattr(ddb, op), TableName=TABLE, **params)
        return True
    except Failure as e:
        if e.code == "ConditionalCheckFailedException":
            return False
        if best_effort is None:
            raise
        log.warning("could not %s: %s", best_effort, e)
        return False


def claim(inv, trigger):
    """Claims the transition: ("mine", previous owner when taken over, whether it had an intent),
    or ("done", the stored result); held by another live invocation, Retryable.InProgress."""
    pk = f"idem#{SCOPE}#{trigger}"
    try:
        outcome = put_claim(inv, pk)
    except Failure:
        abandon(inv, pk)  # the write may have been made with its answer lost
        raise
    if outcome[0] == "held":
        raise Failure("Retryable.InProgress", f"in progress elsewhere: {SCOPE}#{trigger} is being handled by "
                                              f"{outcome[1]} until {outcome[2]} ms")
    return outcome


def put_claim(inv, pk):
    for _ in range(3):  # the item we lost to may vanish (abandoned) between the two calls
        now = now_ms()
        item = {"pk": S(pk), "status": S(IN_PROGRESS), "owner": S(inv["id"]), "expires_at": N(inv["deadline"]),
                "ttl": N(now // 1000 + TTL_S)}
        try:
            old = aws("PutItem", ddb.put_item, TableName=TABLE, Item=item, ReturnValues="ALL_OLD",
                      ConditionExpression="attribute_not_exists(pk) OR (#status = :in_progress AND expires_at < :now) "
                                          "OR (#status = :completed AND #ttl < :now_s)",
                      ExpressionAttributeNames={"#status": "status", "#ttl": "ttl"},
                      ExpressionAttributeValues={":in_progress": S(IN_PROGRESS), ":completed": S(COMPLETED),
                                                 ":now": N(now), ":now_s": N(now // 1000)}).get("Attributes") or {}
            if old.get("status", S(""))["S"] == IN_PROGRESS:  # its owner ran out of time
                log.warning("taking over an interrupted attempt: %s", pk)
                return "mine", old.get("owner", S(""))["S"], "intent" in old
            return "mine", None, False
        except Failure as e:
            if e.code != "ConditionalCheckFailedException":
                raise
        current = get_item(pk)
        if current is None:
            continue
        if current.get("status", S(""))["S"] == COMPLETED:
            try:
                return "done", json.loads(current.get("result", S("null"))["S"])
            except ValueError:
                return "done", None
        owner = current.get("owner", S(""))["S"]
        if owner == inv["id"]:  # our own write, retried after its answer was lost
            return "mine", None, False
        return "held", owner, int(current.get("expires_at", N(0))["N"])
    return "held", "", inv["deadline"]


def abandon(inv, pk):
    write("delete_item", "DeleteItem", "abandon the claim", Key={"pk": S(pk)},
          ConditionExpression="#owner = :owner AND #status = :in_progress",
          ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
          ExpressionAttributeValues={":owner": S(inv["id"]), ":in_progress": S(IN_PROGRESS)})


def end_claim(inv, pk, result=None, hand_over=False):
    """Completed with `result`; else handed over at once (the work may have acted) or given back."""
    if result is not None:
        write("update_item", "UpdateItem", "complete the claim", Key={"pk": S(pk)},
              UpdateExpression="SET #status = :completed, #result = :result, #ttl = :ttl REMOVE expires_at",
              ConditionExpression="#owner = :owner",
              ExpressionAttributeNames={"#status": "status", "#result": "result", "#ttl": "ttl", "#owner": "owner"},
              ExpressionAttributeValues={":completed": S(COMPLETED), ":result": S(dumps(result)),
                                         ":ttl": N(now_ms() // 1000 + TTL_S), ":owner": S(inv["id"])})
    elif hand_over:
        log.warning("keeping the claim for a takeover: %s", pk)
        write("update_item", "UpdateItem", "hand the claim over", Key={"pk": S(pk)},
              UpdateExpression="SET expires_at = :expired",
              ConditionExpression="#owner = :owner AND #status = :in_progress",
              ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
              ExpressionAttributeValues={":expired": N(now_ms() - 1), ":owner": S(inv["id"]),
                                         ":in_progress": S(IN_PROGRESS)})
    else:
        abandon(inv, pk)


def record_intent(inv, pk, intent):
    aws("UpdateItem", ddb.update_item, TableName=TABLE, Key={"pk": S(pk)}, UpdateExpression="SET intent = :intent",
        ConditionExpression="#owner = :owner", ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={":intent": S(dumps(intent)), ":owner": S(inv["id"])})


def release_lease(inv, pk):
    delete_if_held(pk, inv["id"], "release the lease")


def delete_if_held(pk, holder, what):
    write("delete_item", "DeleteItem", what, Key={"pk": S(pk)}, ConditionExpression="holder = :holder",
          ExpressionAttributeValues={":holder": S(holder)})


def take_lease(inv, pk, until_ms, inherit_from):
    """The lock on a cluster: None when it is ours; (holder, until) when the cluster cools down.
    Another invocation's live lock is waited for while there is time, then LeaseContention."""
    pause_ms = 250
    while True:
        try:
            holder, held_until, kind = put_lease(inv, pk, until_ms, inherit_from)
        except Failure:
            release_lease(inv, pk)  # the write may have been made with its answer lost
            raise
        if holder == inv["id"]:
            return None
        if kind != "lock":
            return holder, held_until
        if inv["deadline"] - now_ms() < pause_ms + RESERVE_MS:
            raise Failure("Retryable.LeaseContention", f"lease {pk[len('lease#'):]} is held by {holder} "
                                                       f"until {held_until} ms")
        log.info("lease %s locked by %s: waiting", pk, holder)
        time.sleep(pause_ms / 1000)
        pause_ms = min(pause_ms * 2, 2000)


def put_lease(inv, pk, until_ms, inherit_from):
    """The lease as it stands after trying to take it: (holder, until, kind)."""
    for _ in range(3):  # released between our two calls: try again
        now = now_ms()
        until = max(until_ms, now)
        condition, values = "attribute_not_exists(pk) OR until_ms <= :now", {":now": N(now)}
        if inherit_from is not None:  # the lease of the claim's previous owner is this attempt's
            condition += " OR holder = :previous"
            values[":previous"] = S(inherit_from)
        if write("put_item", "PutItem", ConditionExpression=condition, ExpressionAttributeValues=values,
                 Item={"pk": S(pk), "holder": S(inv["id"]), "until_ms": N(until), "kind": S("lock"),
                       "ttl": N(until // 1000 + 86_400)}):
            return inv["id"], until, "lock"
        item = get_item(pk)
        if item is not None:
            return (item.get("holder", S(""))["S"], int(item.get("until_ms", N(0))["N"]),
                    item.get("kind", S("cooldown"))["S"])
    return "", now_ms(), "lock"


def read_breaker(pk):
    item = get_item(pk)
    if item is None:
        return None
    try:
        details = json.loads(item.get("details", S("null"))["S"])
    except ValueError:
        details = None
    return {"state": item.get("state", S(""))["S"], "holder": item.get("holder", S(""))["S"],
            "sinceMs": int(item.get("since_ms", N(0))["N"]), "details": details}


def trip_breaker(pk, holder, since_ms, intent):
    """Whether this call tripped the breaker (a retried write that met its own item counts)."""
    details = dumps(intent)
    if write("put_item", "PutItem", Item={"pk": S(pk), "state": S("in_flight"), "holder": S(holder),
                                          "since_ms": N(since_ms), "details": S(details)},
             ConditionExpression="attribute_not_exists(pk)"):
        return True
    b = read_breaker(pk)
    return bool(b) and (b["state"], b["holder"], b["sinceMs"], b["details"]) == ("in_flight", holder, since_ms, intent)


# ---- the AWS reads and the calls -----------------------------------------------------------------

def arn_name(arn):
    return arn.rsplit(":", 1)[-1]


def arn_region(arn):
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def health(health_check_id):
    out = aws("GetHealthCheckStatus", route53.get_health_check_status, HealthCheckId=health_check_id)
    observations = out.get("HealthCheckObservations", [])
    failing = sum(o.get("StatusReport", {}).get("Status", "").startswith("Failure") for o in observations)
    return {"checkers": len(observations), "failing": failing}


def describe_cluster(region, identifier):
    """The cluster as its Region reports it (ClusterView), None when it does not exist."""
    try:
        out = aws("DescribeDBClusters", rds[region].describe_db_clusters, DBClusterIdentifier=identifier)
    except Failure as e:
        if e.code == "DBClusterNotFoundFault":
            return None
        raise
    c = next((c for c in out.get("DBClusters", [])
              if c.get("DBClusterIdentifier", "").lower() == identifier.lower()), None)
    if c is None:
        return None
    instances, members = [], c.get("DBClusterMembers", [])
    if members:
        found = aws("DescribeDBInstances", rds[region].describe_db_instances,
                    Filters=[{"Name": "db-cluster-id", "Values": [identifier]}]).get("DBInstances", [])
        for m in members:
            i = next((i for i in found if i.get("DBInstanceIdentifier") == m.get("DBInstanceIdentifier")), {})
            tier = m.get("PromotionTier", i.get("PromotionTier", 15))
            instances.append({"identifier": m.get("DBInstanceIdentifier", ""), "isWriter": m.get("IsClusterWriter", False),
                              "status": i.get("DBInstanceStatus", "unknown"), "promotionTier": tier,
                              "availabilityZone": i.get("AvailabilityZone")})
    return {"identifier": c.get("DBClusterIdentifier", identifier), "arn": c.get("DBClusterArn", ""),
            "status": c.get("Status", "unknown"), "engineVersion": c.get("EngineVersion", ""),
            "endpoint": c.get("Endpoint"), "replicationSource": c.get("ReplicationSourceIdentifier") or None,
            "instances": instances}


def global_info(spec, regions):
    """DescribeGlobalClusters from the first of `regions` that answers; None when it does not exist."""
    last = None
    for region in regions:
        try:
            out = aws("DescribeGlobalClusters", rds[region].describe_global_clusters,
                      GlobalClusterIdentifier=spec["id"])
        except Failure as e:
            if e.code == "GlobalClusterNotFoundFault":
                return None
            if not unanswered(e):
                raise
            log.warning("%s did not answer DescribeGlobalClusters; asking the next: %s", region, e)
            last = e
            continue
        # Filtered here too: not every implementation honours the identifier.
        g = next((g for g in out.get("GlobalClusters", [])
                  if g.get("GlobalClusterIdentifier", "").lower() == spec["id"].lower()), None)
        if g is None:
            return None
        return {"identifier": spec["id"], "engineVersion": g.get("EngineVersion"),
                "failoverStatus": (g.get("FailoverState") or {}).get("Status"),
                "members": [(m.get("DBClusterArn", ""), m.get("IsWriter", False), m.get("SynchronizationStatus"))
                            for m in g.get("GlobalClusterMembers", [])]}
    raise last or call_error("DescribeGlobalClusters", "NoRegion", "no Region configured", False)


def listed(arn, is_writer, sync):
    """A member as DescribeGlobalClusters lists it, before its own Region is asked (MemberView)."""
    return {"arn": arn, "identifier": arn_name(arn), "region": arn_region(arn), "isWriter": is_writer,
            "synchronizationStatus": sync, "answered": False, "cluster": None, "lag": None}


def replication_lag(region, cluster, source_region, now):
    """The newest lag datapoint of the last five minutes, RPO lag first; None when there is none."""
    def query(qid, metric, by_source):
        dims = [{"Name": "DBClusterIdentifier", "Value": cluster}]
        if by_source:
            dims.append({"Name": "SourceRegion", "Value": source_region})
        return {"Id": qid, "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/RDS", "MetricName": metric, "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}}

    out = aws("GetMetricData", cloudwatch[region].get_metric_data, ScanBy="TimestampDescending",
              StartTime=datetime.fromtimestamp((now - 300_000) / 1000, timezone.utc),
              EndTime=datetime.fromtimestamp((now + 60_000) / 1000, timezone.utc),
              MetricDataQueries=[query(*q) for q in LAG_METRICS])
    results = {r.get("Id"): r.get("Values", []) for r in out.get("MetricDataResults", [])}
    for qid, metric, _ in LAG_METRICS:  # both in milliseconds
        if results.get(qid):
            return {"metric": metric, "seconds": results[qid][0] / 1000.0}
    return None


def promote(call):
    """The promotion call, made once (never retried), in the Region the plan names."""
    rds_in = rds_once[call["region"]]
    if call["operation"] == "FailoverDBCluster":
        aws("FailoverDBCluster", rds_in.failover_db_cluster, DBClusterIdentifier=call["cluster"],
            TargetDBInstanceIdentifier=call["target_instance"])
    elif call["operation"] == "SwitchoverGlobalCluster":
        aws("SwitchoverGlobalCluster", rds_in.switchover_global_cluster, GlobalClusterIdentifier=call["global_cluster"],
            TargetDbClusterIdentifier=call["target_cluster_arn"])
    elif call["operation"] == "FailoverGlobalCluster":
        aws("FailoverGlobalCluster", rds_in.failover_global_cluster, GlobalClusterIdentifier=call["global_cluster"],
            TargetDbClusterIdentifier=call["target_cluster_arn"], AllowDataLoss=True)
    else:
        aws("PromoteReadReplicaDBCluster", rds_in.promote_read_replica_db_cluster, DBClusterIdentifier=call["cluster"])


def upsert_cname(zone, name, ttl, value):
    aws("ChangeResourceRecordSets", route53.change_resource_record_sets, HostedZoneId=zone, ChangeBatch={
        "Comment": "aurora-promoter: the new writer",
        "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": value}]}}]})


# ---- observing (observe.rs): the topologies as the Rust function serialises them -----------------

def observe_global(spec):
    info = global_info(spec, spec["regions"])
    if info is None:
        return {"kind": "missing", "what": f"global cluster {spec['id']}"}
    now = now_ms()
    # Secondaries replicate from the primary's Region.
    source_region = next((arn_region(arn) for arn, w, _ in info["members"] if w), "")
    members = []
    for arn, is_writer, sync in info["members"]:
        m = listed(arn, is_writer, sync)
        if m["region"] in spec["regions"]:
            try:
                m["cluster"], m["answered"] = describe_cluster(m["region"], m["identifier"]), True
            except Failure as e:
                if not unanswered(e):
                    raise
                log.warning("%s does not answer for %s: %s", m["region"], m["identifier"], e)
            if not m["isWriter"] and m["cluster"] is not None:
                try:  # unknown lag only forbids a failover; it never fails the invocation
                    m["lag"] = replication_lag(m["region"], m["identifier"], source_region, now)
                except Failure as e:
                    log.warning("could not read the replication lag of %s: %s", m["identifier"], e)
                    m["lagError"] = e.message
        members.append(m)
    return {"kind": "global", "identifier": info["identifier"], "engineVersion": info["engineVersion"],
            "failoverStatus": info["failoverStatus"], "members": members}


def observe_topology(t):
    if t["kind"] == "global":
        return observe_global(t["global"])
    c = t[t["kind"]]
    view = describe_cluster(c["region"], c["identifier"])
    if view is None:
        return {"kind": "missing", "what": f"cluster {c['identifier']} in {c['region']}"}
    return {"kind": "cluster" if t["kind"] == "cluster" else "read_replica", **view}


def recorded(details):
    """The promotion a breaker records: the intent while in flight, under `promotion` once completed."""
    p = details.get("promotion", details) if isinstance(details, dict) else None
    keys = ("target", "call", "from", "to", "toRegion", "toCluster", "why")
    return p if isinstance(p, dict) and all(k in p for k in keys) else None


def confirms_failure(h, share):
    """At least `share` of the checkers, and at least two, report failure."""
    return h["checkers"] > 0 and h["failing"] >= max(math.ceil(share * h["checkers"]), MIN_FAILING_CHECKERS)


def observe(t, health_check_id):
    """Everything the decision needs (Observed), read-only."""
    b = read_breaker(f"breaker#{SCOPE}#{t['name']}")
    breaker = None
    if b is not None:
        breaker = {"state": b["state"], "sinceMs": b["sinceMs"], "holder": b["holder"]}
        p = recorded(b["details"])
        if p is not None:
            breaker["promotion"] = p
    checked = health(health_check_id)
    if breaker is not None:  # a tripped breaker decides alone: the clusters are not read
        return {"health": checked, "breaker": breaker, "movedAtMs": None,
                "topology": {"kind": "missing", "what": "not read: the breaker is tripped"}}
    if not confirms_failure(checked, t["share"]):  # nothing else can promote
        return {"health": checked, "breaker": None, "movedAtMs": None,
                "topology": {"kind": "missing", "what": "not read: the health check does not confirm a failure"}}
    topology, moved = observe_topology(t), None
    if t["kind"] == "cluster":  # when Aurora last completed a failover of it (RDS events)
        c = t["cluster"]
        mark = get_item(f"mark#aurora-moved#{c['region']}#{c['identifier'].lower()}")
        moved = int(mark["value"]["N"]) if mark and "value" in mark else None
    return {"health": checked, "breaker": None, "topology": topology, "movedAtMs": moved}


# ---- the decisions (planner.rs) ------------------------------------------------------------------

def skip(target, reason, detail):
    return {"target": target, "reason": reason, "detail": detail}


def plan_skip(s):
    return {"actions": [], "skips": [s]}


def promotion(name, call, frm, to, to_region, to_cluster, why, lag=None):
    p = {"target": name, "call": call, "from": frm, "to": to, "toRegion": to_region, "toCluster": to_cluster, "why": why}
    if lag is not None:
        p["lag"] = lag
    return p


def route(t):
    """The one target the alarm stands for, or the skip."""
    matched = [x for x in TARGETS if t["tags"].get(TARGET_TAG) == x["name"]
               or any(fnmatch.fnmatchcase(t["name"], g) for g in x["alarms"])]
    if not matched:
        return skip(t["name"], "no_target", "no target takes this alarm")
    if len(matched) > 1:
        return skip(t["name"], "ambiguous_target", f"the alarm matches {len(matched)} targets "
                    f"({', '.join(x['name'] for x in matched)}): none is promoted on a guess")
    return matched[0]


def screen(t, target, now):
    if t["state"] != "ALARM":
        return skip(target["name"], "not_alarm", f"the alarm went to {t['state']}; failback is never automatic")
    age = now - t["ms"]
    if MAX_AGE_S and age > MAX_AGE_S * 1000:
        return skip(target["name"], "stale", f"the transition is {age // 1000} s old, more than the {MAX_AGE_S} s allowed")
    return None


def decide(target, alarm_ms, observed):
    name = target["name"]
    b = observed["breaker"]
    if b is not None:
        return plan_skip(skip(name, "breaker_tripped", f"a promotion ({b['state']}) was made at {rfc3339(b['sinceMs'])} "
                              f"for {b['holder']}; nothing more is promoted until an operator resets the breaker"))
    h, share = observed["health"], target["share"]
    needed = max(math.ceil(share * h["checkers"]), MIN_FAILING_CHECKERS)
    if not (h["checkers"] > 0 and h["failing"] >= needed):
        return plan_skip(skip(name, "alarm_no_longer_holds", f"{h['failing']} of {h['checkers']} Route 53 checkers report "
                              f"failure; promoting needs {share * 100:.0f}% and at least {MIN_FAILING_CHECKERS}"))
    topology, kind = observed["topology"], target["kind"]
    if topology["kind"] == "missing":
        plan = plan_skip(skip(name, "not_found", f"{topology['what']} does not exist"))
    elif (kind, topology["kind"]) == ("cluster", "cluster"):
        plan = plan_cluster(target["cluster"], topology, alarm_ms, observed["movedAtMs"], name)
    elif (kind, topology["kind"]) == ("global", "global"):
        plan = plan_global(target["global"], topology, name)
    elif (kind, topology["kind"]) == ("readReplica", "read_replica"):
        plan = plan_replica(target["readReplica"]["region"], topology, name)
    else:
        plan = plan_skip(skip(name, "unexpected_topology", f"observed {topology['kind']}, which is not what this "
                              "target is configured as"))
    for p in plan["actions"]:
        if target["record"] is not None:
            p["record"] = target["record"]
    return plan


def plan_cluster(spec, c, alarm_ms, moved, name):
    """In-Region: the best reader, when the cluster is not already failing over."""
    if c["status"] == "failing-over":
        return plan_skip(skip(name, "promotion_in_progress", f"cluster {c['identifier']} is failing over already"))
    if moved is not None and moved >= alarm_ms:
        return plan_skip(skip(name, "already_moved", f"Aurora completed a failover of {c['identifier']} at {moved} ms, "
                              f"after the alarm ({alarm_ms} ms)"))
    writer = next((i for i in c["instances"] if i["isWriter"]), None)
    if writer is None:
        return plan_skip(skip(name, "no_writer", f"cluster {c['identifier']} reports no writer instance"))

    def order(i):  # configured priority, promotion tier, zone preference, name
        priority = spec["readerPriority"].index(i["identifier"]) if i["identifier"] in spec["readerPriority"] else math.inf
        zone, preferred = i["availabilityZone"], spec["preferredAvailabilityZones"]
        if not preferred:  # out of the failed writer's zone first
            zone_rank = int(zone is not None and zone == writer["availabilityZone"])
        else:
            zone_rank = preferred.index(zone) if zone in preferred else math.inf
        return priority, i["promotionTier"], zone_rank, i["identifier"]

    readers = sorted((i for i in c["instances"] if not i["isWriter"] and i["status"] == "available"), key=order)
    if not readers:
        return plan_skip(skip(name, "no_candidate", f"cluster {c['identifier']} has no available reader to fail over to"))
    best = readers[0]
    zone = f" in {best['availabilityZone']}" if best["availabilityZone"] is not None else ""
    return {"skips": [], "actions": [promotion(
        name, {"operation": "FailoverDBCluster", "region": spec["region"], "cluster": c["identifier"],
               "target_instance": best["identifier"]},
        writer["identifier"], best["identifier"], spec["region"], c["identifier"],
        f"writer {writer['identifier']} ({writer['status']}) fails its health check; reader {best['identifier']} "
        f"is tier {best['promotionTier']}{zone}")]}


def plan_global(spec, g, name):
    """Switch over while the primary's Region answers; fail over with data loss only when allowed,
    the primary's Region does not answer, and the lag is known and under the ceiling."""
    if g["failoverStatus"]:
        return plan_skip(skip(name, "promotion_in_progress",
                              f"global cluster {g['identifier']} has a switchover or failover {g['failoverStatus']}"))
    writers = [m for m in g["members"] if m["isWriter"]]
    if len(writers) != 1:
        return plan_skip(skip(name, "no_writer", f"global cluster {g['identifier']} reports {len(writers)} writers"))
    primary = writers[0]
    if primary["region"] not in spec["regions"]:
        return plan_skip(skip(name, "primary_region_not_configured",
                              f"the primary {primary['identifier']} is in {primary['region']}, which the target's "
                              "regions do not name: whether it answers is unknown"))
    primary_version = primary["cluster"]["engineVersion"] if primary["cluster"] else g["engineVersion"]
    rejected, passing, candidates = [], False, []
    for m in (m for m in g["members"] if not m["isWriter"]):
        ident, c = m["identifier"], m["cluster"]
        listed_here = spec["clusters"].get(m["region"])
        if m["region"] not in spec["regions"]:
            rejected.append(f"{ident}: Region {m['region']} is not configured")
        elif listed_here is not None and listed_here.lower() != ident.lower():
            rejected.append(f"{ident}: the configuration names {listed_here} in {m['region']}")
        elif c is None:
            passing |= not m["answered"]
            rejected.append(f"{ident}: its Region does not know it" if m["answered"] else f"{ident}: its Region did not answer")
        elif c["status"] != "available":
            passing = True
            rejected.append(f"{ident}: status {c['status']}")
        elif m["synchronizationStatus"] is not None and m["synchronizationStatus"] != "connected":
            passing = True
            rejected.append(f"{ident}: synchronization {m['synchronizationStatus']}")
        elif primary_version is not None and primary_version != c["engineVersion"]:
            rejected.append(f"{ident}: engine version {c['engineVersion']} differs from the primary's {primary_version}")
        else:
            candidates.append(m)
    # Configured Region order, then least lag (unknown last).
    candidates.sort(key=lambda m: (spec["regions"].index(m["region"]),
                                   m["lag"]["seconds"] if m["lag"] else math.inf))
    if not candidates:
        return plan_skip(skip(name, "no_candidate_yet" if passing else "no_candidate",
                              f"no secondary of {g['identifier']} can take over: "
                              f"{'; '.join(rejected) if rejected else 'it has none'}"))
    chosen = candidates[0]

    def act(operation, region, why):
        call = {"operation": operation, "region": region, "global_cluster": g["identifier"],
                "target_cluster_arn": chosen["arn"]}
        return {"skips": [], "actions": [promotion(name, call, primary["identifier"], chosen["identifier"],
                                                   chosen["region"], chosen["identifier"], why, chosen["lag"])]}

    # Only a primary whose Region did not answer at all may be failed over.
    if primary["answered"]:
        c = primary["cluster"]
        if c is None:
            return plan_skip(skip(name, "primary_missing",
                                  f"{primary['region']} answers but does not know the primary {primary['identifier']}"))
        if c["status"] != "available":
            return plan_skip(skip(name, "primary_not_available",
                                  f"the primary {primary['identifier']} answers with status {c['status']}: a switchover "
                                  "needs it available, and a failover is only for a primary that does not answer"))
        return act("SwitchoverGlobalCluster", primary["region"],
                   f"the health check fails while {primary['identifier']}'s Region ({primary['region']}) answers: a "
                   f"switchover, which loses no data, to {chosen['identifier']} in {chosen['region']}")
    if not spec["allowDataLoss"]:
        return plan_skip(skip(name, "data_loss_not_allowed",
                              f"the primary {primary['identifier']} in {primary['region']} does not answer, so only a "
                              f"failover could promote {chosen['identifier']}, and it may lose writes; this target does "
                              "not allow data loss"))
    ceiling, lag = spec["rpoCeiling"] or 0.0, chosen["lag"]
    if lag is None and chosen.get("lagError") is not None:
        return plan_skip(skip(name, "lag_unreadable", f"the replication lag of {chosen['identifier']} could not be read "
                              f"({chosen['lagError']}): the data a failover would lose is unknown"))
    if lag is None:
        return plan_skip(skip(name, "lag_unknown", "no recent AuroraGlobalDBRPOLag or AuroraGlobalDBReplicationLag for "
                              f"{chosen['identifier']}: the data a failover would lose is unknown"))
    if lag["seconds"] > ceiling:
        return plan_skip(skip(name, "lag_above_rpo", f"{chosen['identifier']} lags {lag['seconds']:.3f} s "
                              f"({lag['metric']}), more than the {number(ceiling)} s ceiling"))
    return act("FailoverGlobalCluster", chosen["region"],
               f"the primary {primary['identifier']} in {primary['region']} does not answer; {chosen['identifier']} "
               f"lags {lag['seconds']:.3f} s ({lag['metric']}), within the {number(ceiling)} s ceiling: a failover "
               "allowing data loss")


def plan_replica(region, c, name):
    """A read replica cluster: promoted while it still replicates."""
    if c["replicationSource"] is None:
        return plan_skip(skip(name, "already_promoted", f"{c['identifier']} no longer replicates from another cluster"))
    if c["status"] != "available":
        return plan_skip(skip(name, "not_available", f"{c['identifier']} is {c['status']}"))
    return {"skips": [], "actions": [promotion(
        name, {"operation": "PromoteReadReplicaDBCluster", "region": region, "cluster": c["identifier"]},
        c["replicationSource"], c["identifier"], region, c["identifier"],
        f"the health check fails; {c['identifier']} is promoted from a replica of {c['replicationSource']} "
        "to a standalone cluster")]}


def completed(p, topology):
    """Whether the promotion shows: the new writer writes (and nothing is in progress)."""
    op, kind = p["call"]["operation"], topology["kind"]
    if op == "FailoverDBCluster" and kind == "cluster":
        writer = next((i for i in topology["instances"] if i["isWriter"]), None)
        return writer is not None and writer["identifier"] == p["to"]
    if op in ("SwitchoverGlobalCluster", "FailoverGlobalCluster") and kind == "global":
        return (any(m["isWriter"] and m["identifier"] == p["to"] for m in topology["members"])
                and not topology["failoverStatus"])
    if op == "PromoteReadReplicaDBCluster" and kind == "read_replica":
        return topology["replicationSource"] is None and topology["status"] == "available"
    return False


def writer_endpoint(p, topology):
    if topology["kind"] in ("cluster", "read_replica"):
        return topology["endpoint"]
    if topology["kind"] == "global":
        m = next((m for m in topology["members"] if m["identifier"] == p["toCluster"]), None)
        return m["cluster"]["endpoint"] if m and m["cluster"] else None
    return None


# ---- promoting (promote.rs) ----------------------------------------------------------------------

def completion_view(t, p):
    """The least that shows whether `p` completed: the global cluster asked of the new primary's
    Region first, with the new primary's own cluster; or the cluster."""
    if t["kind"] != "global":
        return observe_topology(t)
    spec = t["global"]
    info = global_info(spec, [p["toRegion"]] + [r for r in spec["regions"] if r != p["toRegion"]])
    if info is None:
        return {"kind": "missing", "what": f"global cluster {spec['id']}"}
    cluster, members = describe_cluster(p["toRegion"], p["toCluster"]), []
    for arn, is_writer, sync in info["members"]:
        m = listed(arn, is_writer, sync)
        if m["identifier"].lower() == p["toCluster"].lower():
            m["answered"], m["cluster"] = True, cluster
        members.append(m)
    return {"kind": "global", "identifier": info["identifier"], "engineVersion": info["engineVersion"],
            "failoverStatus": info["failoverStatus"], "members": members}


def complete(inv, t, p, holder, trigger):
    """When `p` shows: the CNAME pointed at the new writer, the breaker `tripped` (completed)."""
    topology = completion_view(t, p)
    if not completed(p, topology):
        return {"completed": False}
    done = {"completed": True, "promotion": p, "completedAtMs": now_ms()}
    if p.get("record"):
        r = p["record"]
        endpoint = writer_endpoint(p, topology)
        if endpoint is None:
            raise Failure("Permanent.NoEndpoint", f"{p['toCluster']} reports no endpoint for the record")
        upsert_cname(r["hostedZoneId"], r["name"], r["ttl"], endpoint)
        done["record"] = {"name": r["name"], "value": endpoint, "ttl": r["ttl"]}
    changed = write("update_item", "UpdateItem", Key={"pk": S(f"breaker#{SCOPE}#{t['name']}")},
                    UpdateExpression="SET #state = :state, details = :details", ConditionExpression="holder = :holder",
                    ExpressionAttributeNames={"#state": "state"},
                    ExpressionAttributeValues={":state": S("tripped"), ":details": S(dumps(done)), ":holder": S(holder)})
    done["breakerUpdated"] = changed
    applied(inv, COMPLETE, t["name"], trigger, done)
    return done


def completion_or_error(inv, t, p, holder, trigger):
    try:
        return complete(inv, t, p, holder, trigger)
    except Failure as e:
        log.warning("could not check the promotion's completion of %s: %s", t["name"], e)
        return {"completed": False, "error": e.message}


def promote_guarded(inv, t, target, health_check_id, claimed, held):
    """Observe, decide, lease, trip the breaker, record the intent, call once, complete:
    (outcome, plan, extra)."""
    name, trigger, breaker_pk = target["name"], t["trigger"], f"breaker#{SCOPE}#{target['name']}"
    observed = observe(target, health_check_id)
    plan = decide(target, t["ms"], observed)
    # A failover may lose data on the word of one observation that the primary's Region is
    # down: read the clusters once more, and act only if the decision stands.
    if plan["actions"] and plan["actions"][0]["call"]["operation"] == "FailoverGlobalCluster":
        observed["topology"] = observe_topology(target)
        plan = decide(target, t["ms"], observed)
    passing = next((s for s in plan["skips"] if s["reason"] in RETRY_LATER), None)
    if passing is not None:
        raise call_error("DescribeDBClusters", passing["reason"], passing["detail"], True)
    details = {"observed": observed}
    if not plan["actions"]:
        b = observed["breaker"]
        if b is not None and b["state"] == "in_flight":  # its RDS event may have been lost: complete it now
            p = b.get("promotion")
            details["completion"] = completion_or_error(inv, target, p, b["holder"], trigger) if p else {"completed": False}
        for s in plan["skips"]:
            skipped(inv, trigger, s, details)
        return "skipped", plan, details
    p = plan["actions"][0]
    lease_pk = f"lease#aurora-promote#{target['resource']}"
    cooling = take_lease(inv, lease_pk, inv["deadline"], claimed[1])
    if cooling:
        s = skip(name, "cooldown", f"{target['resource']} was promoted by {cooling[0]}; cooling down until {cooling[1]} ms")
        skipped(inv, trigger, s, details)
        return "skipped", plan_skip(s), details
    try:
        tripped = trip_breaker(breaker_pk, trigger, now_ms(), p)
    except Failure:
        delete_if_held(breaker_pk, trigger, "release the breaker")  # a trip may have been written, its answer lost
        release_lease(inv, lease_pk)
        raise
    if not tripped:
        release_lease(inv, lease_pk)
        s = skip(name, "breaker_tripped", "another invocation tripped the breaker first")
        skipped(inv, trigger, s, details)
        return "skipped", plan_skip(s), details
    try:
        record_intent(inv, f"idem#{SCOPE}#{trigger}", p)
    except Failure:  # nothing was called: the lease and the breaker are given back
        release_lease(inv, lease_pk)
        delete_if_held(breaker_pk, trigger, "release the breaker")
        raise
    held["intent"] = True
    try:
        promote(p["call"])
    except Failure as e:
        if e.may_have_acted:  # the lease and the breaker stay until the retry reads the clusters
            log.error("the promotion call failed and may have taken effect: the breaker stays tripped: %s", e)
        else:  # refused: nothing was promoted
            release_lease(inv, lease_pk)
            delete_if_held(breaker_pk, trigger, "release the breaker")
        raise
    until = now_ms() + target["cooldownSeconds"] * 1000
    write("update_item", "UpdateItem", "settle the lease", Key={"pk": S(lease_pk)},
          UpdateExpression="SET until_ms = :until, #ttl = :ttl, #kind = :cooldown", ConditionExpression="holder = :holder",
          ExpressionAttributeNames={"#ttl": "ttl", "#kind": "kind"},
          ExpressionAttributeValues={":cooldown": S("cooldown"), ":until": N(until), ":ttl": N(until // 1000 + 86_400),
                                     ":holder": S(inv["id"])})
    log.warning("promotion requested target=%s operation=%s from=%s to=%s", name, p["call"]["operation"], p["from"], p["to"])
    applied(inv, PROMOTE, name, trigger, p)
    details["completion"] = completion_or_error(inv, target, p, trigger, trigger)
    return "promoted", plan, details


# ---- one invocation ------------------------------------------------------------------------------

def audit(inv, record):
    inv["records"].append(record)
    print(dumps({"type": "audit", "function": FUNCTION, "requestId": inv["id"], "dryRun": False, "record": record}),
          flush=True)


def applied(inv, action, target, trigger, details):
    audit(inv, {"action": action, "outcome": "applied", "target": target, "trigger": trigger, "details": details})


def skipped(inv, trigger, s, details):
    log.info("skip target=%s reason=%s detail=%s", s["target"], s["reason"], s["detail"])
    audit(inv, {"action": PROMOTE, "outcome": "skipped", "target": s["target"], "trigger": trigger,
                "reason": s["reason"], "details": details})


def failed(inv, target, trigger, error_type, details):
    audit(inv, {"action": PROMOTE, "outcome": "failed", "target": target, "trigger": trigger, "reason": error_type,
                "details": details})


def parse_transition(event):
    """The alarm transition of an EventBridge "CloudWatch Alarm State Change" event."""
    if event.get("source") == "aws.rds":
        raise Failure("Permanent.InvalidEvent", "invalid event: RDS events are not handled by this peer")
    if event.get("detail-type") != "CloudWatch Alarm State Change":
        raise Failure("Permanent.InvalidEvent", f"invalid event: field `detail-type`: expected \"CloudWatch Alarm "
                                                f"State Change\", got {json.dumps(event.get('detail-type'))}")
    try:
        d = event["detail"]
        at = datetime.fromisoformat(d["state"]["timestamp"].replace("Z", "+00:00"))
        metrics = [q["metricStat"]["metric"] for q in (d.get("configuration") or {}).get("metrics") or []
                   if q.get("metricStat")]
        t = {"name": d["alarmName"], "arn": event["resources"][0], "account": event["account"],
             "region": event["region"], "state": d["state"]["value"], "ms": (at - EPOCH) // timedelta(milliseconds=1),
             "tags": d.get("alarmTags") or {}, "dimensions": [m.get("dimensions") or {} for m in metrics]}
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise Failure("Permanent.InvalidEvent", f"invalid event: {e!r}") from e
    if t["state"] not in ("OK", "ALARM", "INSUFFICIENT_DATA"):
        raise Failure("Permanent.InvalidEvent", f"invalid event: field `detail.state.value`: {t['state']!r}")
    t["trigger"] = f"{t['arn']}|{t['state']}|{t['ms']}"
    return t


def health_check_of(t, target):
    """The target's health check, else the alarm's HealthCheckId dimension (if it names exactly one)."""
    if target["healthCheckId"]:
        return target["healthCheckId"]
    values = {d["HealthCheckId"] for d in t["dimensions"] if "HealthCheckId" in d}
    return values.pop() if len(values) == 1 else None


def handle_transition(inv, t):
    def line(target, outcome, plan, extra=None):
        return {"alarm": t["name"], "target": target, "outcome": outcome, "plan": plan, **(extra or {})}

    target = route(t)
    if "reason" in target:
        skipped(inv, t["trigger"], target, {})
        return line("", "skipped", plan_skip(target))
    name = target["name"]
    health_check_id = health_check_of(t, target)
    s = screen(t, target, now_ms())
    if s is None and health_check_id is None:
        s = skip(name, "no_health_check", "neither the target nor the alarm's HealthCheckId dimension names a "
                                          "health check to confirm with")
    if s is not None:
        skipped(inv, t["trigger"], s, {})
        return line(name, "skipped", plan_skip(s))
    pk = f"idem#{SCOPE}#{t['trigger']}"
    claimed = claim(inv, t["trigger"])
    if claimed[0] == "done":
        s = skip(name, "duplicate", "this alarm transition was already handled")
        skipped(inv, t["trigger"], s, {})
        return line(name, "skipped", plan_skip(s), {"previous": claimed[1]})
    held = {"intent": claimed[2]}  # taken over with an intent: the earlier attempt may have acted
    try:
        outcome, plan, extra = promote_guarded(inv, t, target, health_check_id, claimed, held)
    except Failure as e:  # kept for a takeover when the call may have acted, or an earlier attempt may have
        end_claim(inv, pk, hand_over=(held["intent"] and e.may_have_acted) or claimed[2])
        raise
    except Exception:
        end_claim(inv, pk, hand_over=held["intent"])
        raise
    result = line(name, outcome, plan, extra)
    end_claim(inv, pk, result)
    return result


def handler(event, context):
    remaining = context.get_remaining_time_in_millis()
    inv = {"id": context.aws_request_id, "records": [],
           "deadline": now_ms() + (remaining if 0 < remaining <= 900_000 else 60_000)}
    try:
        try:
            t = parse_transition(event)
        except Failure as e:
            log.warning("rejected event: %s", e)
            failed(inv, "event", "", e.error_type, {"error": e.message})
            raise
        if inv["deadline"] - now_ms() < RESERVE_MS:
            e = Failure("Retryable.DeadlineNear", f"stopped before the invocation deadline; not handled: {t['trigger']}")
            failed(inv, t["trigger"], "", e.error_type, {})
            raise e
        try:
            lines = [handle_transition(inv, t)]
        except Failure as e:
            log.error("transition failed alarm=%s error=%s", t["name"], e)
            failed(inv, t["name"], t["trigger"], e.error_type, {"error": e.message})
            raise
        return {"function": FUNCTION, "dryRun": False, "transitions": lines}
    finally:  # the EMF lines: per action kind, how many were applied, skipped and failed
        ts, counts = now_ms(), {}
        for r in inv["records"]:
            c = counts.setdefault(r["action"], [0, 0, 0])
            c[("applied", "skipped", "failed").index(r["outcome"])] += 1
        for action, (actions, skips, errors) in sorted(counts.items()):
            print(dumps({"_aws": {"Timestamp": ts, "CloudWatchMetrics": [{
                "Namespace": "Autonomic", "Dimensions": [["Function"], ["Function", "Action"]],
                "Metrics": [{"Name": n, "Unit": "Count"} for n in ("Actions", "Skips", "Errors")]}]},
                "Function": FUNCTION, "Action": action, "Actions": actions, "Skips": skips, "Errors": errors}),
                flush=True)
