"""The benchmark's Python/boto3 peer of pipeline-trigger (functions/pipeline-trigger).

Written as a careful Python engineer would write this Lambda: configuration and clients built once
at import (cold start), plain functions per event. Run as `python -m awslambdaric pipeline_trigger.handler`.

What it does, with the Rust function's AWS calls in the same order and with the same DynamoDB
items, attributes and condition expressions (shared/autonomic/src/guard/table.rs):
- Cold start: the same environment (STATE_TABLE_NAME, PIPELINE_ROUTES, DRY_RUN,
  IDEMPOTENCY_TTL_SECONDS, MAX_EVENT_AGE_SECONDS); PIPELINE_ROUTES inline, `file:` or `ssm:NAME`
  (ssm:GetParameter, decrypted); the state-table probe (a consistent GetItem of `probe#cold-start`).
  botocore set up as the Rust SDK is: connect 3.1 s, 4 s per attempt, standard retries, 3 attempts.
- Per event: parse the ECR push and plan it (the Rust skips: other ECR events, not a push, failed,
  untagged, stale, unrouted, routed twice); per routed pipeline: the idempotency claim (a completed
  one is a `duplicate` or `retag` skip, one held elsewhere an error, one taken over replays its
  recorded intent), GetPipeline and the same checks, the pipeline's lock lease (waited for while
  another invocation holds it; settled at once, so no cooldown), the intent, StartPipelineExecution
  with the same variables, sourceRevisions and clientRequestToken, the lease settled, the claim
  completed; on failure the lease released or kept and the claim abandoned or handed over as the
  Rust guards decide. Audit records and EMF lines go to stdout as the Rust function writes them.

What it leaves out: `s3://` documents; the validation of the routes document beyond what parsing
needs (the Rust names every problem); tag filters beyond the common forms (glob: fnmatch's *, ? and
[..]; semver: comparators =, >, >=, <, <= on full versions, and the prerelease rule); a repository
glob is fnmatch per path segment; no 10 s per-operation timeout (botocore has none); the Lambda
error type is the exception class (the Rust's `Retryable.Code` leads the message); fewer log lines.
"""

import datetime
import fnmatch
import hashlib
import json
import logging
import os
import re
import time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

FUNCTION = SCOPE = "pipeline-trigger"
ACTION = "start_pipeline_execution"
WORK_RESERVE_MS = 12_000  # no new work with less left (context.rs)
IN_PROGRESS, COMPLETED = "IN_PROGRESS", "COMPLETED"
BUSY = {"ConcurrentPipelineExecutionsLimitExceededException", "ConflictException"}  # refused, retry later
RETRYABLE = BUSY | {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                    "InternalServerError", "InternalFailure", "ServiceUnavailable", "RequestTimeout",
                    "TransactionInProgressException"}
# Codes with which a service says it refused the request before acting on it (error.rs).
REFUSED = BUSY | {"ValidationException", "AccessDeniedException", "ConditionalCheckFailedException",
                  "ResourceNotFoundException", "PipelineNotFoundException"}
log = logging.getLogger(FUNCTION)
log.setLevel(logging.INFO)


class FunctionError(Exception):
    def __init__(self, error_type, message, may_have_taken_effect=False):
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message, self.may_have_taken_effect = error_type, message, may_have_taken_effect


def code_of(e):
    return e.response.get("Error", {}).get("Code") if isinstance(e, ClientError) else None


def aws_error(operation, e):
    """A failed call, classified as error.rs does: only a refusal rules out that it took effect."""
    code = code_of(e)
    if code is None:
        return FunctionError("Retryable.Timeout", f"{operation} failed: {e}", True)
    kind = "Retryable" if code in RETRYABLE else "Permanent"
    message = e.response["Error"].get("Message", "")
    return FunctionError(f"{kind}.{code}", f"{operation} failed: {code}: {message}", code not in REFUSED)


def dumps(value):
    """JSON as serde_json writes it here: compact, keys sorted."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def now_ms():
    return time.time_ns() // 1_000_000


def seconds(name, default, low, high):
    value = os.environ.get(name, "").strip() or str(default)
    if not value.isdigit() or not low <= int(value) <= high:
        raise ValueError(f"{name}: expected whole seconds in {low}..={high}, got {value!r}")
    return int(value)


# ---- routes: tag filters and variable templates -------------------------------------------------
def parse_version(tag):
    """`1.4.0`, `v1.4.0`, `1.4.0-rc1` → (major, minor, patch, prerelease); None if not a version."""
    m = re.fullmatch(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?", tag)
    return m and (int(m[1]), int(m[2]), int(m[3]), m[4] or "")


def precedence(v):
    pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in v[3].split(".")) if v[3] else None
    return (*v[:3], (0, pre) if pre else (1,))  # a prerelease sorts before its release


def semver_filter(req):
    comparators = []
    for text in req.split(","):
        m = re.fullmatch(r"\s*(>=|<=|>|<|=)\s*(\S+)\s*", text)
        if not m or not parse_version(m[2]):
            raise ValueError(f"semver {req!r}: this peer takes comparators =, >, >=, <, <= on full versions")
        comparators.append((m[1], parse_version(m[2])))
    tests = {"=": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
             "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}

    def matches(v):
        # A prerelease matches only a range that names a prerelease of the same version (Cargo's rule).
        if v[3] and not any(c[1][3] and c[1][:3] == v[:3] for c in comparators):
            return False
        return all(tests[op](precedence(v), precedence(bound)) for op, bound in comparators)
    return matches


def tag_filter(spec):
    """tag → (matches, the version when the filter is a semver range)."""
    if not spec:
        return lambda tag: (True, None)
    (kind, pattern), = spec.items()
    if kind == "semver":
        in_range = semver_filter(pattern)
        return lambda tag: ((v := parse_version(tag)) is not None and in_range(v), v)
    regex = re.compile(fnmatch.translate(pattern) if kind == "glob" else f"(?:{pattern})\\Z")
    return lambda tag: (regex.match(tag) is not None, None)


def parse_template(text):
    """`{registry}/{repository}@{digest}` → ["...", ("registry",), ...]; `{{` and `}}` are braces."""
    parts = []
    for m in re.finditer(r"\{\{|\}\}|\{([^}]*)\}|([^{}]+)|(.)", text):
        if m[1] in ("tag", "digest", "repository", "registry", "account", "region", "major", "minor", "patch",
                    "prerelease"):
            parts.append((m[1],))
        elif m[0] in ("{{", "}}") or m[2] is not None:
            parts.append(m[0][0] if m[2] is None else m[2])
        else:
            raise ValueError(f"template {text!r}: unknown value or lone brace at {m[0]!r}")
    return parts


def render(parts, push, version):
    suffix = "amazonaws.com.cn" if push["region"].startswith("cn-") else "amazonaws.com"
    values = {**push, "registry": f"{push['account']}.dkr.ecr.{push['region']}.{suffix}"}
    if version:
        values.update(major=str(version[0]), minor=str(version[1]), patch=str(version[2]), prerelease=version[3])
    return "".join(p if isinstance(p, str) else values.get(p[0], "") for p in parts)


def compile_route(spec):
    pattern = spec["repository"]
    segments = pattern.split("/")
    return {**spec, "tag_filter": tag_filter(spec.get("tags")),
            "repository_matches": lambda name: len(name.split("/")) == len(segments) and all(
                fnmatch.fnmatchcase(n, s) for n, s in zip(name.split("/"), segments)),
            "templates": {name: parse_template(text) for name, text in spec.get("variables", {}).items()}}


# ---- cold start ---------------------------------------------------------------------------------
AWS_CONFIG = Config(connect_timeout=3.1, read_timeout=4, retries={"mode": "standard", "max_attempts": 3})
SSM = boto3.client("ssm", config=AWS_CONFIG)
DDB = boto3.client("dynamodb", config=AWS_CONFIG)
CODEPIPELINE = boto3.client("codepipeline", config=AWS_CONFIG)


def load_document(value):
    value = value.strip()
    if value.startswith("ssm:"):
        return SSM.get_parameter(Name=value[4:].strip(), WithDecryption=True)["Parameter"]["Value"]
    if value.startswith("file:"):
        with open(os.path.join(os.environ.get("LAMBDA_TASK_ROOT", ""), value[5:].strip())) as f:
            return f.read()
    return value  # inline JSON


ROUTES = [compile_route(r) for r in json.loads(load_document(os.environ["PIPELINE_ROUTES"]))["routes"]]
DRY_RUN = os.environ.get("DRY_RUN", "").strip().lower() in ("true", "1", "yes")
TABLE = os.environ["STATE_TABLE_NAME"].strip()
RETENTION_S = seconds("IDEMPOTENCY_TTL_SECONDS", 86_400, 900, 366 * 86_400)
MAX_AGE_S = seconds("MAX_EVENT_AGE_SECONDS", 3600, 0, 7 * 86_400)  # 0: no limit
if MAX_AGE_S > RETENTION_S:
    raise ValueError("MAX_EVENT_AGE_SECONDS must be at most IDEMPOTENCY_TTL_SECONDS")


def read(pk):
    """One item, read consistently."""
    try:
        return DDB.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    except (ClientError, BotoCoreError) as e:
        raise aws_error("GetItem", e) from e


try:  # a missing table or permission fails the cold start, not every event after it
    read("probe#cold-start")
except FunctionError as e:
    if "NotFound" in e.error_type or "AccessDenied" in e.error_type:
        raise ValueError(f"STATE_TABLE_NAME: table {TABLE!r} cannot be read: {e}") from e
    log.warning("could not read the state table at cold start: %s", e)
log.info("pipeline-trigger ready: %d routes, dry_run=%s", len(ROUTES), DRY_RUN)


# ---- one invocation: audit records, EMF, the plan -----------------------------------------------
class Invocation:
    def __init__(self, context):
        now = now_ms()
        self.request_id, self.outcomes = context.aws_request_id, []
        self.deadline_ms = now + int(context.get_remaining_time_in_millis())
        if not 1_577_836_800_000 <= self.deadline_ms <= now + 900_000:
            self.deadline_ms = now + 60_000  # not a Lambda deadline: the Rust runtime's fallback

    def time_left_ms(self):
        return self.deadline_ms - now_ms()

    def record(self, outcome, target, trigger, reason, details):
        record = {"action": ACTION, "outcome": outcome, "target": target, "trigger": trigger, "details": details}
        if reason is not None:
            record["reason"] = reason
        self.outcomes.append(outcome)
        print(dumps({"type": "audit", "function": FUNCTION, "requestId": self.request_id, "dryRun": DRY_RUN,
                     "record": record}), flush=True)

    def finish(self):
        if not self.outcomes:
            return
        count = lambda *kinds: sum(o in kinds for o in self.outcomes)  # noqa: E731
        print(dumps({"_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{
            "Namespace": "Autonomic", "Dimensions": [["Function"], ["Function", "Action"]],
            "Metrics": [{"Name": n, "Unit": "Count"} for n in ("Actions", "Skips", "Errors")]}]},
            "Function": FUNCTION, "Action": ACTION, "Actions": count("applied", "dry_run"),
            "Skips": count("skipped"), "Errors": count("failed")}), flush=True)


def skip(target, reason, detail):
    return {"target": target, "reason": reason, "detail": detail}


def parse_event(payload):
    def invalid(field, message):
        return FunctionError("Permanent.InvalidEvent", f"invalid event: field `{field}`: {message}")
    for field in ("detail-type", "source", "detail"):
        if not isinstance(payload, dict) or field not in payload:
            raise invalid(field, "missing required field")
    if payload["source"] != "aws.ecr":
        raise invalid("source", f'expected "aws.ecr", got {json.dumps(payload["source"])}')
    if payload["detail-type"] != "ECR Image Action":
        return {"other": payload["detail-type"]}
    d = payload["detail"]
    for field in ("action-type", "result", "repository-name", "image-digest"):
        if not isinstance(d, dict) or not isinstance(d.get(field), str):
            raise invalid(f"detail.{field}", "missing required field")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", d["image-digest"]):
        raise invalid("detail.image-digest", f"{json.dumps(d['image-digest'])} is not a sha256 digest")
    for field in ("account", "region", "time"):
        if not isinstance(payload.get(field), str):
            raise invalid(field, "missing required field")
    try:
        when = datetime.datetime.fromisoformat(payload["time"])
    except ValueError:
        raise invalid("time", f"invalid timestamp {json.dumps(payload['time'])}") from None
    return {"action": d["action-type"], "result": d["result"], "repository": d["repository-name"],
            "digest": d["image-digest"], "tag": d.get("image-tag") or "", "account": payload["account"],
            "region": payload["region"], "time_ms": int(when.timestamp()) * 1000 + when.microsecond // 1000}


def plan(push, now):
    """(trigger, starts, skips), as planner.rs decides them."""
    if "other" in push:
        other = push["other"]
        return other, [], [skip(other, "other_ecr_event", f"{json.dumps(other)} is not an image push")]
    repo, tag, digest = push["repository"], push["tag"], push["digest"]
    trigger = f"{repo}:{tag}@{digest}"
    if push["action"] != "PUSH":
        return trigger, [], [skip(repo, "not_a_push", f"action-type {push['action']} is not a push")]
    if push["result"] != "SUCCESS":
        return trigger, [], [skip(repo, "push_failed", f"the push's result is {push['result']}")]
    if not tag:
        return trigger, [], [skip(repo, "untagged", "an untagged manifest (a platform image or an attestation of a "
                                                    "multi-arch push)")]
    age = now - push["time_ms"]
    if MAX_AGE_S and age > MAX_AGE_S * 1000:
        detail = f"push is {age // 1000} s old, more than the {MAX_AGE_S} s allowed"
        return trigger, [], [skip(f"{repo}:{tag}", "stale", detail)]
    starts, skips, started_by = [], [], {}
    for route in ROUTES:
        matched, version = route["tag_filter"](tag)
        if not route["repository_matches"](repo) or not matched:
            continue
        image = {"tag": tag, "digest": digest, "repository": repo, "account": push["account"], "region": push["region"]}
        for pipeline in route["pipelines"]:
            if pipeline in started_by:
                detail = f"route {json.dumps(started_by[pipeline])} already starts it for this push"
                skips.append(skip(pipeline, "routed_twice", detail))
                continue
            started_by[pipeline] = route["name"]
            start = {"route": route["name"], "pipeline": pipeline, "repository": repo, "digest": digest, "tag": tag,
                     "variables": {n: render(t, image, version) for n, t in route["templates"].items()},
                     # Derived from the start, so a retried call is the same request to CodePipeline.
                     "clientRequestToken": hashlib.sha256(f"{pipeline}\n{repo}\n{digest}\n{tag}".encode()).hexdigest(),
                     # What is started once: this digest on this pipeline (per tag if re-tags start too).
                     "claimKey": f"start#{pipeline}#{repo}#{digest}"
                                 + (f"#{tag}" if route.get("onRetag") == "start" else "")}
            if route.get("sourceRevision"):
                start["sourceRevision"] = {"actionName": route["sourceRevision"]["actionName"], "imageDigest": digest}
            starts.append(start)
    if not starts and not skips:
        skips.append(skip(f"{repo}:{tag}", "unrouted", "no route takes this repository and tag"))
    return trigger, starts, skips


def line(start, outcome, extra=None):
    """One pipeline's line in the response (and a completed claim's stored result)."""
    kept = {k: start[k] for k in ("pipeline", "route", "tag", "variables", "sourceRevision") if k in start}
    return {**kept, "outcome": outcome, **(extra or {})}


# ---- the guards: claims and leases on the state table --------------------------------------------
def write(operation, call, **kw):
    """A conditional write; whether it was made (False: its condition did not hold)."""
    try:
        call(TableName=TABLE, **kw)
        return True
    except (ClientError, BotoCoreError) as e:
        if code_of(e) == "ConditionalCheckFailedException":
            return False
        raise aws_error(operation, e) from e


def update(pk, expression, condition, values, names=None):
    names = {"ExpressionAttributeNames": names} if names else {}
    return write("UpdateItem", DDB.update_item, Key={"pk": {"S": pk}}, UpdateExpression=expression,
                 ConditionExpression=condition, ExpressionAttributeValues=values, **names)


def quietly(what, fn, *args):
    """Bookkeeping: a failure is logged, not returned; the item then ends by itself."""
    try:
        fn(*args)
    except FunctionError as e:
        log.warning("could not %s: %s", what, e)


def abandon(c):
    write("DeleteItem", DDB.delete_item, Key={"pk": {"S": c["pk"]}},
          ConditionExpression="#owner = :owner AND #status = :in_progress",
          ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
          ExpressionAttributeValues={":owner": {"S": c["owner"]}, ":in_progress": {"S": IN_PROGRESS}})


def release(pk, holder):
    quietly("release the lease", lambda: write("DeleteItem", DDB.delete_item, Key={"pk": {"S": pk}},
                                               ConditionExpression="holder = :holder",
                                               ExpressionAttributeValues={":holder": {"S": holder}}))


def json_or_none(attribute):
    try:
        return json.loads(attribute["S"])
    except (KeyError, TypeError, ValueError):
        return None


def claim(inv, key):
    """('mine', claim) or ('done', its stored result); a claim another live invocation holds is an error."""
    c = {"pk": f"idem#{SCOPE}#{key}", "owner": inv.request_id, "previous_owner": None, "intent": None,
         "inherited": False, "intent_recorded": False}
    now = now_ms()
    for _ in range(3):  # the item lost to can vanish (abandoned) between the two calls
        try:
            old = DDB.put_item(
                TableName=TABLE, ReturnValues="ALL_OLD",
                Item={"pk": {"S": c["pk"]}, "status": {"S": IN_PROGRESS}, "owner": {"S": c["owner"]},
                      "expires_at": {"N": str(inv.deadline_ms)}, "ttl": {"N": str(now // 1000 + RETENTION_S)}},
                ConditionExpression="attribute_not_exists(pk) OR (#status = :in_progress AND expires_at < :now) "
                                    "OR (#status = :completed AND #ttl < :now_s)",
                ExpressionAttributeNames={"#status": "status", "#ttl": "ttl"},
                ExpressionAttributeValues={":in_progress": {"S": IN_PROGRESS}, ":completed": {"S": COMPLETED},
                                           ":now": {"N": str(now)}, ":now_s": {"N": str(now // 1000)}},
            ).get("Attributes") or {}
        except (ClientError, BotoCoreError) as e:
            if code_of(e) != "ConditionalCheckFailedException":
                quietly("abandon a claim after a failed take", abandon, c)  # the write may have been made
                raise aws_error("PutItem", e) from e
        else:
            if old.get("status", {}).get("S") == IN_PROGRESS:  # taken over from an owner out of time
                c.update(previous_owner=old.get("owner", {}).get("S", ""), intent=json_or_none(old.get("intent")))
                c["inherited"] = c["intent_recorded"] = c["intent"] is not None
            return "mine", c
        item = read(c["pk"])
        if item is None:
            continue
        if item.get("status", {}).get("S") == COMPLETED:
            return "done", json_or_none(item.get("result"))
        if item.get("owner", {}).get("S") == c["owner"]:  # our own write, retried after a lost answer
            return "mine", c
        owner, until = item.get("owner", {}).get("S", ""), item.get("expires_at", {}).get("N", "0")
        raise FunctionError("Retryable.InProgress",
                            f"in progress elsewhere: {SCOPE}#{key} is being handled by {owner} until {until} ms")
    raise FunctionError("Retryable.InProgress", f"in progress elsewhere: {SCOPE}#{key}")


def end_claim(c, result, error):
    """Completed on success; handed over (expired at once, intent kept) when the failure may have taken
    effect after the intent was recorded or the claim was taken over with one; abandoned otherwise."""
    if error is None:
        quietly("complete the claim", update, c["pk"],
                "SET #status = :completed, #result = :result, #ttl = :ttl REMOVE expires_at", "#owner = :owner",
                {":completed": {"S": COMPLETED}, ":result": {"S": dumps(result)},
                 ":ttl": {"N": str(now_ms() // 1000 + RETENTION_S)}, ":owner": {"S": c["owner"]}},
                {"#status": "status", "#result": "result", "#ttl": "ttl", "#owner": "owner"})
    elif (error.may_have_taken_effect and c["intent_recorded"]) or c["inherited"]:
        log.warning("keeping the claim %s for a takeover", c["pk"])
        quietly("hand the claim over", update, c["pk"], "SET expires_at = :expired",
                "#owner = :owner AND #status = :in_progress",
                {":expired": {"N": str(now_ms() - 1)}, ":owner": {"S": c["owner"]}, ":in_progress": {"S": IN_PROGRESS}},
                {"#owner": "owner", "#status": "status"})
    else:
        quietly("abandon the claim", abandon, c)


def lock(inv, name, inherit_from):
    """Takes lease#NAME as this invocation's lock until its deadline, waiting while another live
    invocation holds it; held elsewhere past that (or settled elsewhere) is contention."""
    pk, holder, pause = f"lease#{name}", inv.request_id, 0.25
    while True:
        now = now_ms()
        until = max(inv.deadline_ms, now)
        condition, values = "attribute_not_exists(pk) OR until_ms <= :now", {":now": {"N": str(now)}}
        if inherit_from is not None:  # a taken-over claim's previous owner: its lease is this attempt's
            condition, values[":previous"] = condition + " OR holder = :previous", {"S": inherit_from}
        held = ("", str(now), "lock")
        for _ in range(3):
            try:
                if write("PutItem", DDB.put_item, ConditionExpression=condition, ExpressionAttributeValues=values,
                         Item={"pk": {"S": pk}, "holder": {"S": holder}, "until_ms": {"N": str(until)},
                               "kind": {"S": "lock"}, "ttl": {"N": str(until // 1000 + 86_400)}}):
                    return pk
            except FunctionError:
                release(pk, holder)  # the write may have been made
                raise
            item = read(pk)
            if item is None:
                continue  # released between the two calls
            if item.get("holder", {}).get("S") == holder:
                return pk
            kind = "lock" if item.get("kind", {}).get("S") == "lock" else "cooldown"
            held = (item.get("holder", {}).get("S", ""), item.get("until_ms", {}).get("N", "0"), kind)
            break
        if held[2] == "cooldown" or inv.time_left_ms() < pause * 1000 + WORK_RESERVE_MS:
            raise FunctionError("Retryable.LeaseContention", f"lease {name} is held by {held[0]} until {held[1]} ms")
        log.info("lease %s locked by %s: waiting", name, held[0])
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


# ---- the pipeline ---------------------------------------------------------------------------------
def check_pipeline(start):
    """GetPipeline, then the checks: it exists, is V2, declares every variable, has the source action."""
    name = start["pipeline"]
    try:
        p = CODEPIPELINE.get_pipeline(name=name).get("pipeline")
    except (ClientError, BotoCoreError) as e:
        if code_of(e) != "PipelineNotFoundException":
            raise aws_error("GetPipeline", e) from e
        p = None
    if p is None:
        raise FunctionError("Permanent.NotFound", f"pipeline not found: {name}")
    declared = {v["name"] for v in p.get("variables", [])}
    sources = {a["name"] for s in p.get("stages", []) for a in s.get("actions", [])
               if (a["actionTypeId"]["category"], a["actionTypeId"]["provider"]) == ("Source", "ECR")}
    problems = []
    if p.get("pipelineType") != "V2":
        problems.append(("PipelineNotV2", f"pipeline {name} is of type {p.get('pipelineType') or 'V1'}"))
    problems += [("UndeclaredVariable", f"pipeline {name} does not declare the variable {v}")
                 for v in start["variables"] if v not in declared]
    problems += [("InvalidVariableValue", f"variable {v} renders to {len(x)} characters")
                 for v, x in start["variables"].items() if not 1 <= len(x) <= 1000]
    if "sourceRevision" in start and start["sourceRevision"]["actionName"] not in sources:
        action = start["sourceRevision"]["actionName"]
        problems.append(("NoSuchSourceAction", f"pipeline {name} has no ECR source action {action!r}"))
    if problems:
        raise FunctionError(f"Permanent.{problems[0][0]}", problems[0][1])


def start_execution(start):
    kw = {"name": start["pipeline"], "clientRequestToken": start["clientRequestToken"]}
    if start["variables"]:
        kw["variables"] = [{"name": n, "value": v} for n, v in sorted(start["variables"].items())]
    if "sourceRevision" in start:
        kw["sourceRevisions"] = [{"actionName": start["sourceRevision"]["actionName"], "revisionType": "IMAGE_DIGEST",
                                  "revisionValue": start["sourceRevision"]["imageDigest"]}]
    try:
        return CODEPIPELINE.start_pipeline_execution(**kw).get("pipelineExecutionId", "")
    except (ClientError, BotoCoreError) as e:
        raise aws_error("StartPipelineExecution", e) from e


def guarded_start(inv, start, trigger, c):
    """Check, lock, record the intent, start, settle the lock (guard::apply)."""
    check_pipeline(start)
    lease = lock(inv, f"pipeline-start#{start['pipeline']}", c["previous_owner"])
    try:  # the intent, so that a takeover can tell whether the start was made
        if not update(c["pk"], "SET intent = :intent", "#owner = :owner",
                      {":intent": {"S": dumps(start)}, ":owner": {"S": c["owner"]}}, {"#owner": "owner"}):
            raise FunctionError("Permanent.ConditionalCheckFailedException", "UpdateItem failed: not our claim")
    except FunctionError:
        release(lease, inv.request_id)
        raise
    c["intent_recorded"] = True
    try:
        execution_id = start_execution(start)
    except FunctionError as e:
        if not e.may_have_taken_effect:  # else the lock stays until the takeover inherits it
            release(lease, inv.request_id)
        raise
    now = now_ms()  # settled at once: no cooldown, the next push may start straight away
    quietly("settle the lease", update, lease, "SET until_ms = :until, #ttl = :ttl, #kind = :cooldown",
            "holder = :holder",
            {":cooldown": {"S": "cooldown"}, ":until": {"N": str(now)}, ":ttl": {"N": str(now // 1000 + 86_400)},
             ":holder": {"S": inv.request_id}}, {"#ttl": "ttl", "#kind": "kind"})
    log.info("started %s: execution %s", start["pipeline"], execution_id)
    inv.record("applied", start["pipeline"], trigger, None, {**start, "executionId": execution_id})
    return line(start, "started", {"executionId": execution_id})


def start_one(inv, start, trigger):
    if DRY_RUN:
        check_pipeline(start)
        inv.record("dry_run", start["pipeline"], trigger, None, start)
        return line(start, "would_start")
    kind, c = claim(inv, start["claimKey"])
    if kind == "done":
        previous_tag = c.get("tag") if isinstance(c, dict) else None
        if previous_tag == start["tag"]:
            s = skip(start["pipeline"], "duplicate", "already started for this push")
        else:
            detail = f"{start['pipeline']} already started for this digest as tag {previous_tag or '?'}"
            s = skip(start["pipeline"], "retag", detail)
        inv.record("skipped", s["target"], trigger, s["reason"], {})
        return line(start, "skipped", {"reason": s["reason"], "detail": s["detail"], "previous": c})
    if isinstance(c["intent"], dict) and "clientRequestToken" in c["intent"]:
        start = c["intent"]  # replay the interrupted start: the same request, the same token
    try:
        result = guarded_start(inv, start, trigger, c)
    except FunctionError as e:
        end_claim(c, None, e)
        raise
    end_claim(c, result, None)
    return result


def handler(event, context):
    inv = Invocation(context)
    try:
        try:
            push = parse_event(event)
        except FunctionError as e:
            inv.record("failed", "event", "", e.error_type, {"error": e.message})
            raise
        trigger, starts, skips = plan(push, now_ms())
        for s in skips:
            inv.record("skipped", s["target"], trigger, s["reason"], {})
        lines, errors, not_done = [], [], []
        for start in starts:
            if inv.time_left_ms() < WORK_RESERVE_MS:  # what is left comes back with the retry
                not_done.append(start["pipeline"])
                lines.append(line(start, "not_done"))
                continue
            try:
                lines.append(start_one(inv, start, trigger))
            except FunctionError as e:
                log.error("start of %s failed: %s", start["pipeline"], e)
                inv.record("failed", start["pipeline"], trigger, e.error_type, {"error": e.message})
                lines.append(line(start, "failed", {"errorType": e.error_type, "error": e.message}))
                errors.append(e)
        if not_done:
            e = FunctionError("Retryable.DeadlineNear",
                              f"stopped before the invocation deadline; not handled: {', '.join(not_done)}")
            inv.record("failed", ",".join(not_done), trigger, e.error_type, {"error": e.message})
            errors.insert(0, e)
        if errors:  # a retryable one first, so that the delivery is retried
            raise next((e for e in errors if e.error_type.startswith("Retryable.")), errors[0])
        return {"function": FUNCTION, "dryRun": DRY_RUN, "image": trigger, "starts": lines, "skips": skips}
    finally:
        inv.finish()
