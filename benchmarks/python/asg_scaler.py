"""The benchmark's Python/boto3 peer of asg-scaler (functions/asg-scaler).

Written as a careful Python engineer would write this Lambda: configuration and clients created
once, at module level; plain functions per event. On the path the benchmark drives it makes the
same AWS calls in the same order as the Rust function, writes the same DynamoDB items under the
same conditions, and prints the same audit and EMF lines.

What it does. Init: SCALING_RULES (inline JSON, or `ssm:NAME` read with GetParameter
WithDecryption), STATE_TABLE_NAME, MAX_EVENT_AGE_SECONDS, IDEMPOTENCY_TTL_SECONDS, and the
cold-start GetItem probe of the state table. Per event: parse the EventBridge "CloudWatch Alarm
State Change" event; route it to the first matching rule (name, namePrefix, nameGlob, tag) and its
group (named, from a tag, or the AutoScalingGroupName dimension); claim the transition
(idempotency); observe the group, its lease and the alarm's watermark; plan one step within the
bounds and maxStep (future_dated, stale, superseded, cooldown, at_min, at_max, ...); take the
group's lease as a lock; re-read the group and raise the watermark under it; record the intent,
SetDesiredCapacity, settle the lease as the cooldown; end the claim; keep an ALARM that keeps
stepping in the held-alarms registry; an audit line per action or skip, an EMF line at the end.

What it leaves out: DRY_RUN (refused at init); the scheduled sweep (so no DescribeAlarms); the
alarm Lambda-action and SNS shapes; `file:` and `s3://` documents; validating the rules document
beyond using it; recovering a claim taken over from an interrupted attempt (its recorded intent is
not checked, its lease not inherited: the step is planned afresh); waiting for a lock another
live invocation holds (the Rust function waits while it has time; this peer fails at once with
the same retryable LeaseContention).
"""

import fnmatch
import json
import logging
import os
import time
from datetime import datetime, timezone

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

FUNCTION = SCOPE = "asg-scaler"
ACTION = "set_desired_capacity"
SKEW_MS = 120_000  # how far in the future a transition may be dated
RESERVE_MS = 12_000  # no new work starts with less time than this left
HELD_ALARMS = "registry#asg-scaler-held-alarms"
PUT_OFF = ("cooldown", "group_cooldown", "scale_out_in_progress")  # step again later
AT_BOUND = ("at_max", "at_min", "step_too_large", "bounds_conflict")  # stop stepping
# Codes with which a service refuses a request before acting on it; any other failure may have acted.
REFUSED = {"ValidationError", "ValidationException", "AccessDenied", "AccessDeniedException", "ResourceContention",
           "ConditionalCheckFailedException", "ResourceNotFoundException", "ScalingActivityInProgress"}
RETRYABLE = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "ProvisionedThroughputExceededException",
             "ScalingActivityInProgress", "ResourceContention"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

log = logging.getLogger(FUNCTION)
log.setLevel(logging.INFO)


class Failure(Exception):
    """A failed transition, typed as the Rust function types it (`Retryable.InProgress`, ...)."""

    def __init__(self, error_type, message, may_have_acted=False):
        super().__init__(message)
        self.error_type, self.may_have_acted = error_type, may_have_acted


def call_failure(e):
    if not isinstance(e, ClientError):  # a timeout or a dropped connection: it may have acted
        return Failure("Retryable.Transport", str(e), True)
    code = e.response["Error"].get("Code", "Unknown")
    retryable = code in RETRYABLE or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return Failure(("Retryable." if retryable else "Permanent.") + code, str(e), code not in REFUSED)


def now_ms():
    return time.time_ns() // 1_000_000


def dumps(value):
    """serde_json's compact form, keys sorted as its maps sort them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---- init, once per container --------------------------------------------------------------------

CONFIG = Config(connect_timeout=3.1, read_timeout=4, retries={"mode": "standard", "max_attempts": 3})


def load_document(name):
    value = os.environ.get(name, "").strip()
    if value.startswith(("{", "[")):
        return value
    if value.startswith("ssm:"):
        ssm = boto3.client("ssm", config=CONFIG)
        return ssm.get_parameter(Name=value[4:].strip(), WithDecryption=True)["Parameter"]["Value"]
    raise RuntimeError(f"{name}: expected a JSON document or ssm:NAME, got {value[:24]!r}")


RULES = json.loads(load_document("SCALING_RULES"))["rules"]
if os.environ.get("DRY_RUN", "").strip().lower() in ("true", "1", "yes"):
    raise RuntimeError("DRY_RUN: not supported by this peer")
TABLE = os.environ["STATE_TABLE_NAME"].strip()
TTL_S = int(os.environ.get("IDEMPOTENCY_TTL_SECONDS") or 86_400)
MAX_AGE_S = int(os.environ.get("MAX_EVENT_AGE_SECONDS") or 600) or None  # 0 turns the check off
ddb = boto3.client("dynamodb", config=CONFIG)
asg = boto3.client("autoscaling", config=CONFIG)
try:  # a missing table or permission fails the cold start; a passing fault is left to the events
    ddb.get_item(TableName=TABLE, Key={"pk": {"S": "probe#cold-start"}}, ConsistentRead=True)
except ClientError as e:
    if "NotFound" in e.response["Error"]["Code"] or e.response["Error"]["Code"].startswith("AccessDenied"):
        raise
    log.warning("could not read the state table at cold start: %s", e)
log.info("asg-scaler ready rules=%d table=%s", len(RULES), TABLE)


# ---- the state table (items and conditions as shared/autonomic/src/guard/table.rs writes them) ----

def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def get_item(pk):
    return ddb.get_item(TableName=TABLE, Key={"pk": S(pk)}, ConsistentRead=True).get("Item")


def write(op, best_effort=None, **kwargs):
    """Whether the write was made (False: its condition did not hold). With `best_effort` (what
    it does, in words), a failure is logged instead of raised."""
    try:
        getattr(ddb, op)(TableName=TABLE, **kwargs)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        if best_effort is None:
            raise
    except BotoCoreError:
        if best_effort is None:
            raise
    log.warning("could not %s", best_effort)
    return False


def claim(inv, pk):
    """None when the claim is ours; the stored result when the transition was handled before."""
    for _ in range(3):  # the item we lost to may vanish (abandoned) between the two calls
        now = now_ms()
        try:
            if write("put_item", Item={"pk": S(pk), "status": S("IN_PROGRESS"), "owner": S(inv["id"]),
                                       "expires_at": N(inv["deadline"]), "ttl": N(now // 1000 + TTL_S)},
                     ConditionExpression="attribute_not_exists(pk) OR (#status = :in_progress AND expires_at < :now) "
                                         "OR (#status = :completed AND #ttl < :now_s)",
                     ExpressionAttributeNames={"#status": "status", "#ttl": "ttl"},
                     ExpressionAttributeValues={":in_progress": S("IN_PROGRESS"), ":completed": S("COMPLETED"),
                                                ":now": N(now), ":now_s": N(now // 1000)},
                     ReturnValues="ALL_OLD"):
                return None
        except (ClientError, BotoCoreError):
            end_claim(inv, pk)  # the write may have been made with its answer lost
            raise
        item = get_item(pk)
        if item is None:
            continue
        if item["status"]["S"] == "COMPLETED":
            return json.loads(item.get("result", S("null"))["S"])
        if item["owner"]["S"] == inv["id"]:  # our own write, retried after its answer was lost
            return None
        raise Failure("Retryable.InProgress", f"in progress elsewhere: {pk} is being handled by {item['owner']['S']}")
    raise Failure("Retryable.InProgress", f"in progress elsewhere: {pk}")


def end_claim(inv, pk, result=None, hand_over=False):
    """Completed with `result`; else handed over at once (the call may have acted) or given back."""
    key, owner = {"pk": S(pk)}, {":owner": S(inv["id"])}
    if result is not None:
        write("update_item", "complete the claim", Key=key, ConditionExpression="#owner = :owner",
              UpdateExpression="SET #status = :completed, #result = :result, #ttl = :ttl REMOVE expires_at",
              ExpressionAttributeNames={"#status": "status", "#result": "result", "#ttl": "ttl", "#owner": "owner"},
              ExpressionAttributeValues={":completed": S("COMPLETED"), ":result": S(dumps(result)),
                                         ":ttl": N(now_ms() // 1000 + TTL_S), **owner})
        return
    mine = {"ConditionExpression": "#owner = :owner AND #status = :in_progress",
            "ExpressionAttributeNames": {"#owner": "owner", "#status": "status"}}
    if hand_over:
        write("update_item", "hand the claim over", Key=key, UpdateExpression="SET expires_at = :expired",
              ExpressionAttributeValues={":expired": N(now_ms() - 1), ":in_progress": S("IN_PROGRESS"), **owner}, **mine)
    else:
        write("delete_item", "abandon the claim", Key=key,
              ExpressionAttributeValues={":in_progress": S("IN_PROGRESS"), **owner}, **mine)


def take_lease(inv, pk, until_ms):
    """None when the lock is ours; (holder, until) when the group is cooling down."""
    for _ in range(3):  # released between our two calls: try again
        now = now_ms()
        until = max(until_ms, now)
        try:
            if write("put_item", Item={"pk": S(pk), "holder": S(inv["id"]), "until_ms": N(until), "kind": S("lock"),
                                       "ttl": N(until // 1000 + 86_400)},
                     ConditionExpression="attribute_not_exists(pk) OR until_ms <= :now",
                     ExpressionAttributeValues={":now": N(now)}):
                return None
        except (ClientError, BotoCoreError):
            release_lease(inv, pk)
            raise
        item = get_item(pk)
        if item is None:
            continue
        holder, held_until = item["holder"]["S"], int(item["until_ms"]["N"])
        if holder == inv["id"]:
            return None
        if item.get("kind", S("cooldown"))["S"] != "lock":
            return holder, held_until
        raise Failure("Retryable.LeaseContention", f"lease {pk} is held by {holder} until {held_until} ms")
    raise Failure("Retryable.LeaseContention", f"lease {pk} keeps changing hands")


def release_lease(inv, pk):
    write("delete_item", "release the lease", Key={"pk": S(pk)}, ConditionExpression="holder = :holder",
          ExpressionAttributeValues={":holder": S(inv["id"])})


def advance_watermark(t, value, best_effort=None):
    """Raises the alarm's watermark to `value` unless it stands higher; whether it stands there now."""
    return write("put_item", best_effort, Item={"pk": S(f"mark#alarm#{t['arn']}"), "value": N(value),
                                                "ttl": N(now_ms() // 1000 + TTL_S)},
                 ConditionExpression="attribute_not_exists(pk) OR #value <= :value",
                 ExpressionAttributeNames={"#value": "value"}, ExpressionAttributeValues={":value": N(value)})


# ---- the event, the rules and the plan -----------------------------------------------------------

def parse_transition(event):
    """(transition as the Rust function serialises it, its state-change ms, its transition id)."""
    if event.get("detail-type") != "CloudWatch Alarm State Change":
        raise Failure("Permanent.InvalidEvent", "this peer takes only EventBridge alarm state changes")
    try:
        d = event["detail"]
        queries = (d.get("configuration") or {}).get("metrics") or []
        rule = (d.get("configuration") or {}).get("alarmRule")
        metrics = [{"namespace": m.get("namespace"), "name": m["name"], "dimensions": m.get("dimensions") or {}}
                   for m in (q["metricStat"]["metric"] for q in queries if q.get("metricStat"))]
        single = len(metrics) == 1 and all(q.get("expression") is None for q in queries)
        kind = {"type": "composite", "rule": rule} if rule is not None else {"type": "metric" if single else "metric_math"}
        at = datetime.fromisoformat(d["state"]["timestamp"]).astimezone(timezone.utc)
        ms = (at - EPOCH) // (at.resolution * 1000)
        t = {"name": d["alarmName"], "arn": event["resources"][0], "account": event["account"],
             "region": event["region"], "state": d["state"]["value"],
             "previous_state": (d.get("previousState") or {}).get("value"),
             "state_changed_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z",
             "reason": d["state"].get("reason", ""), "kind": kind, "metrics": metrics,
             "tags": d.get("alarmTags") or {}, "delivery": "event_bridge"}
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise Failure("Permanent.InvalidEvent", f"invalid event: {e!r}") from e
    return t, ms, f"{t['arn']}|{t['state']}|{ms}"


def matches(rule, t):
    m = rule["match"]
    if "name" in m:
        return t["name"] == m["name"]
    if "namePrefix" in m:
        return t["name"].startswith(m["namePrefix"])
    if "nameGlob" in m:
        return fnmatch.fnmatchcase(t["name"], m["nameGlob"])
    tag = m.get("tag") or {}
    return tag.get("key") in t["tags"] and tag.get("value") in (None, t["tags"][tag["key"]])


def skip(target, reason, detail):
    return {"target": target, "reason": reason, "detail": detail}


def route(t):
    """(rule, group, adjustment), or the skip."""
    if t["state"] == "INSUFFICIENT_DATA":
        return skip(t["name"], "insufficient_data", "INSUFFICIENT_DATA never scales")
    rule = next((r for r in RULES if matches(r, t)), None)
    if rule is None:
        return skip(t["name"], "no_matching_rule", f"no rule matches alarm {json.dumps(t['name'])}")
    adjustment = rule["onAlarm"] if t["state"] == "ALARM" else rule.get("onOk")
    if adjustment is None:
        return skip(t["name"], "no_action_for_state", f"rule {json.dumps(rule['name'])} does not act on {t['state']}")
    if "group" in rule:
        group = rule["group"]
    elif "groupFromTag" in rule:
        group = t["tags"].get(rule["groupFromTag"])
    else:
        named = {m["dimensions"]["AutoScalingGroupName"] for m in t["metrics"] if "AutoScalingGroupName" in m["dimensions"]}
        group = named.pop() if len(named) == 1 else None
    if not group:
        return skip(t["name"], "group_unknown", f"rule {json.dumps(rule['name'])} names no group this alarm carries")
    return rule, group, adjustment


def describe(name):
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    g = next((g for g in groups if g["AutoScalingGroupName"] == name), None)
    if g is None:
        raise Failure("Permanent.NotFound", f"Auto Scaling group not found: {name}")
    pending = sum(i.get("LifecycleState", "").startswith("Pending") for i in g.get("Instances", []))
    return {"name": name, "min": g["MinSize"], "max": g["MaxSize"], "desired": g["DesiredCapacity"], "pending": pending}


def plan(t, ms, rule, adj, g, cooldown_until, newest, now):
    """The step (a ScaleAction, camelCase, as the Rust function records it) or the skip."""
    if ms > now + SKEW_MS:
        return skip(g["name"], "future_dated", f"transition is dated {(ms - now) // 1000} s in the future, "
                                               f"more than the {SKEW_MS // 1000} s clocks may differ")
    if MAX_AGE_S and now - ms > MAX_AGE_S * 1000:
        return skip(g["name"], "stale", f"transition is {(now - ms) // 1000} s old, more than the {MAX_AGE_S} s allowed")
    if newest is not None and ms < newest <= now + SKEW_MS:
        return skip(g["name"], "superseded", f"a newer transition of this alarm (at {newest} ms) was already handled")
    if cooldown_until is not None and cooldown_until > now:
        return skip(g["name"], "cooldown", f"group scaled recently; cooling down for {(cooldown_until - now + 999) // 1000} s more")
    max_step, desired = max(rule["maxStep"], 1), g["desired"]
    if "change" in adj:
        step = adj["change"]
    else:  # percent of the desired capacity, rounded away from zero, at least minStep
        size = max(-(-max(desired, 0) * abs(adj["percent"]) // 100), adj.get("minStep", 1))
        step = size if adj["percent"] > 0 else -size
    step = max(-max_step, min(max_step, step))
    lo, hi = max(g["min"], rule.get("minCapacity", g["min"])), min(g["max"], rule.get("maxCapacity", g["max"]))
    target = max(lo, min(hi, desired + step))
    if lo > hi:
        return skip(g["name"], "bounds_conflict", f"rule bounds and group bounds leave no room (lower {lo} > upper {hi})")
    if step < 0 and g["pending"] > 0:
        return skip(g["name"], "scale_out_in_progress", f"{g['pending']} instance(s) still Pending from a scale-out")
    if step > 0 and target <= desired:
        return skip(g["name"], "at_max", f"desired {desired} is at the upper bound {hi}")
    if step < 0 and target >= desired:
        return skip(g["name"], "at_min", f"desired {desired} is at the lower bound {lo}")
    if abs(target - desired) > max_step:
        return skip(g["name"], "step_too_large", f"reaching the bounds [{lo}, {hi}] from {desired} takes more than maxStep {max_step}")
    return {"group": g["name"], "from": desired, "to": target, "honorCooldown": rule.get("honorCooldown", False),
            "cooldownSeconds": rule["cooldownSeconds"], "rule": rule["name"], "alarm": t["name"]}


# ---- one invocation ------------------------------------------------------------------------------

def audit(inv, outcome, target, trigger, details, reason=None):
    record = {"action": ACTION, "outcome": outcome, "target": target, "trigger": trigger, "details": details}
    if reason is not None:
        record["reason"] = reason
    inv["outcomes"].append(outcome)
    print(dumps({"type": "audit", "function": FUNCTION, "requestId": inv["id"], "dryRun": False, "record": record}), flush=True)


def skipped(inv, t, tid, s):
    """Audits a skip and makes it the (plan, results) of the transition."""
    log.info("skip target=%s reason=%s detail=%s", s["target"], s["reason"], s["detail"])
    audit(inv, "skipped", s["target"], tid, {"alarm": t["name"], "state": t["state"], "detail": s["detail"]}, s["reason"])
    return {"actions": [], "skips": [s]}, []


def act(inv, t, ms, tid, rule, name, adj, held):
    """Observe, plan, lock, re-check and apply (guarded.rs): the transition's (plan, results)."""
    now = now_ms()
    group, lease_pk = describe(name), f"lease#asg-cooldown#{name}"
    lease = get_item(lease_pk)
    cooldown_until = int(lease["until_ms"]["N"]) if lease and lease.get("kind", S(""))["S"] != "lock" else None
    mark = get_item(f"mark#alarm#{t['arn']}")
    newest = int(mark["value"]["N"]) if mark and "value" in mark else None
    action = plan(t, ms, rule, adj, group, cooldown_until, newest, now)
    if "reason" in action:
        if ms <= now + SKEW_MS:  # a skipped transition still counts as handled for staleness
            advance_watermark(t, ms, "raise the alarm watermark")
        return skipped(inv, t, tid, action)
    cooldown_ms = action["cooldownSeconds"] * 1000
    cooling = take_lease(inv, lease_pk, max(inv["deadline"], now + cooldown_ms))
    if cooling:
        return skipped(inv, t, tid, skip(name, "cooldown", f"group scaled by another invocation ({cooling[0]}); "
                                                           f"cooling down for {(cooling[1] - now_ms() + 999) // 1000} s more"))
    try:  # under the lock: the group read again (re-planned if it moved), then the watermark
        again = describe(name)
        if again != group:
            action = plan(t, ms, rule, adj, again, None, newest, now_ms())
        superseded = ("the group changed while planning and no step is due now" if "reason" in action else
                      None if advance_watermark(t, ms) else "a newer transition of this alarm was handled meanwhile")
        if not superseded and not write("update_item", Key={"pk": S(f"idem#{SCOPE}#{tid}")},
                                        UpdateExpression="SET intent = :intent", ConditionExpression="#owner = :owner",
                                        ExpressionAttributeNames={"#owner": "owner"},
                                        ExpressionAttributeValues={":intent": S(dumps(action)), ":owner": S(inv["id"])}):
            raise Failure("Permanent.ConditionalCheckFailedException", "UpdateItem failed: the claim is no longer ours")
    except Exception:
        release_lease(inv, lease_pk)
        raise
    if superseded:
        release_lease(inv, lease_pk)
        return skipped(inv, t, tid, skip(name, "superseded", superseded))
    held["intent"] = True
    try:
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=action["to"], HonorCooldown=action["honorCooldown"])
    except (ClientError, BotoCoreError) as e:
        failure = call_failure(e)
        if failure.may_have_acted:  # the lock stays until it ends, or until a takeover
            log.warning("keeping the lease %s: the call may have taken effect", lease_pk)
        else:
            release_lease(inv, lease_pk)
        if action["honorCooldown"] and failure.error_type.endswith(".ScalingActivityInProgress"):
            return skipped(inv, t, tid, skip(name, "group_cooldown", f"the group's own cooldown refused: {e}"))
        audit(inv, "failed", name, tid, {"alarm": t["name"], "from": action["from"], "to": action["to"], "error": str(e),
                                         "ambiguous": failure.may_have_acted}, failure.error_type.split(".", 1)[1])
        raise failure from e
    until = now_ms() + cooldown_ms
    write("update_item", "settle the lease", Key={"pk": S(lease_pk)}, ConditionExpression="holder = :holder",
          UpdateExpression="SET until_ms = :until, #ttl = :ttl, #kind = :cooldown",
          ExpressionAttributeNames={"#ttl": "ttl", "#kind": "kind"},
          ExpressionAttributeValues={":cooldown": S("cooldown"), ":until": N(until), ":ttl": N(until // 1000 + 86_400),
                                     ":holder": S(inv["id"])})
    log.info("set desired capacity group=%s from=%d to=%d rule=%s", name, action["from"], action["to"], action["rule"])
    audit(inv, "applied", name, tid, {"alarm": t["name"], "state": t["state"], "rule": action["rule"],
                                      "from": action["from"], "to": action["to"]})
    return {"actions": [action], "skips": []}, [{"group": name, "from": action["from"], "to": action["to"], "outcome": "applied"}]


def keep_stepping(t, rule, response):
    """An ALARM keeps stepping (followup.rs): held with its next step's time, or dropped at its bound."""
    if not rule.get("keepStepping", True) or t["state"] != "ALARM":
        return
    reason = (response["plan"]["skips"] or [{}])[0].get("reason")
    key, names = {"pk": S(HELD_ALARMS)}, {"#key": t["arn"]}
    if response["results"] or reason in PUT_OFF:
        due = now_ms() + (rule["cooldownSeconds"] * 1000 if response["results"] else 0)
        # A nested path can be set only once its map exists.
        if write("update_item", "keep stepping", Key=key, UpdateExpression="SET entries = if_not_exists(entries, :empty)",
                 ExpressionAttributeValues={":empty": {"M": {}}}):
            write("update_item", "keep stepping", Key=key, UpdateExpression="SET entries.#key = :value",
                  ExpressionAttributeNames=names, ExpressionAttributeValues={":value": S(dumps({"transition": t, "dueMs": due}))})
    elif reason in AT_BOUND:
        write("update_item", "stop stepping", Key=key, UpdateExpression="REMOVE entries.#key",
              ConditionExpression="attribute_exists(entries)", ExpressionAttributeNames=names)


def handle_transition(inv, t, ms, tid):
    routed = route(t)
    response = {"alarm": t["name"], "state": t["state"], "transition": tid, "rule": None, "results": []}
    if isinstance(routed, dict):
        response["plan"] = skipped(inv, t, tid, routed)[0]
        return response
    rule, group, adj = routed
    response["rule"], pk = rule["name"], f"idem#{SCOPE}#{tid}"
    previous = claim(inv, pk)
    if previous is not None:
        response["plan"] = skipped(inv, t, tid, skip(group, "duplicate", "this transition was already handled"))[0]
        response["previous"] = previous
        return response
    held = {"intent": False}
    try:
        response["plan"], response["results"] = act(inv, t, ms, tid, rule, group, adj, held)
    except Exception as e:
        end_claim(inv, pk, hand_over=held["intent"] and getattr(e, "may_have_acted", True))
        raise
    end_claim(inv, pk, response)
    keep_stepping(t, rule, response)
    return response


def failed(inv, target, trigger, e):
    """Audits a failure and gives it as the invocation's error."""
    failure = e if isinstance(e, Failure) else call_failure(e)
    log.error("transition failed target=%s error_type=%s error=%s", target, failure.error_type, e)
    audit(inv, "failed", target, trigger, {"error": str(e)}, failure.error_type)
    return failure


def handler(event, context):
    remaining = context.get_remaining_time_in_millis()
    inv = {"id": context.aws_request_id, "outcomes": [],
           "deadline": now_ms() + (remaining if remaining <= 900_000 else 60_000)}
    try:
        try:
            t, ms, tid = parse_transition(event)
        except Failure as e:
            raise failed(inv, "event", "", e)
        try:
            if inv["deadline"] - now_ms() < RESERVE_MS:
                raise Failure("Retryable.DeadlineNear", f"stopped before the invocation deadline; not handled: {tid}")
            response = handle_transition(inv, t, ms, tid)
        except (Failure, ClientError, BotoCoreError) as e:
            raise failed(inv, t["name"], tid, e) from e
        return {"function": FUNCTION, "dryRun": False, "transitions": [response]}
    finally:  # the EMF line: how many were applied, skipped and failed
        if inv["outcomes"]:
            counts = [sum(o in kinds for o in inv["outcomes"]) for kinds in (("applied",), ("skipped",), ("failed",))]
            print(dumps({"_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{
                "Namespace": "Autonomic", "Dimensions": [["Function"], ["Function", "Action"]],
                "Metrics": [{"Name": n, "Unit": "Count"} for n in ("Actions", "Skips", "Errors")]}]},
                "Function": FUNCTION, "Action": ACTION, "Actions": counts[0], "Skips": counts[1], "Errors": counts[2]}), flush=True)
