"""The benchmark's Python/boto3 peer of cdn-invalidator (functions/cdn-invalidator).

Written as a careful Python engineer would write this Lambda: configuration read, clients created
and the state table probed once at import (cold start); plain functions per event. It makes the
same AWS calls as the Rust function, in the same order, with the same DynamoDB items, conditions
and CreateInvalidation content, and prints the same audit and EMF lines.

What it implements (the path the benchmark drives):
- cold start: STATE_TABLE_NAME, IDEMPOTENCY_TTL_SECONDS, COLLAPSE_THRESHOLD, BUCKET_DISTRIBUTIONS
  (inline, or by reference to an SSM parameter: `ssm:NAME`, read with GetParameter); the probe
  GetItem of `probe#cold-start`; botocore timeouts and retries as shared/autonomic/src/aws.rs sets
  them.
- per SQS batch: each body parsed as an invalidation request (`distributionId` or `domain`,
  `paths`); S3's test event acknowledged; a domain resolved through ListDistributions, cached for
  the container's life and listed again at most once per batch when unknown; paths normalised and
  merged per distribution (duplicates and covered paths dropped, crowded folders collapsed into
  `folder/*`); the distribution's lease (`lease#cdn-distribution#ID`), the count of paths in
  progress (ListInvalidations, GetInvalidation of those in progress) and CloudFront's in-progress
  limits (what does not fit is deferred); per call, an idempotency claim on its CallerReference
  (`autonomic-` + SHA-256 of distribution, sorted paths and sorted message ids: a new message is
  new work, a redelivered batch is a no-op), CreateInvalidation, the claim completed (or given
  back on failure); the lease released; the partial batch response (`batchItemFailures`).

What it leaves out: S3 event notifications (direct or via SNS) are reported failed as
unresolvable, not turned into paths; FIFO queues are handled as standard ones (no per-group
ordering, no single-call runs); DRY_RUN is refused at cold start; `file:` and `s3://` document
references; AUTONOMIC_RECORD_OPERATIONS (a test aid); the SDK's 10 s operation timeout (botocore
has per-attempt timeouts only); the Rust code's exact error texts and log format.
"""

import bisect
import hashlib
import json
import logging
import os
import time
from collections import Counter

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

FUNCTION = SCOPE = "cdn-invalidator"
WORK_RESERVE_MS = 12_000
MAX_FILES, MAX_WILDCARDS, MAX_PATHS_PER_CALL, MAX_PATHS_PER_REQUEST = 3000, 15, 3000, 3000
KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/!$&'()*+,;=:@?")
HEX = frozenset(b"0123456789abcdefABCDEF")
AWS_ERRORS = (ClientError, BotoCoreError)
log = logging.getLogger(FUNCTION)
log.setLevel(logging.INFO)


class NotSubmitted(Exception):
    """Why a message was not submitted: a stable code and a detail."""

    def __init__(self, code, detail):
        super().__init__(detail)
        self.code, self.detail = code, detail


def now_ms():
    return int(time.time() * 1000)


def error_code(e):
    return e.response["Error"]["Code"] if isinstance(e, ClientError) else type(e).__name__


# As shared/autonomic/src/aws.rs: connect 3.1 s, an attempt 4 s, standard retries, 3 attempts in all.
CONFIG = Config(connect_timeout=3.1, read_timeout=4, retries={"mode": "standard", "total_max_attempts": 3})


def env(name):
    return (os.environ.get(name) or "").strip()


def load_document(name):
    """A document variable's text: inline JSON, or read once from an SSM parameter (`ssm:NAME`)."""
    value = env(name)
    if not value or value[0] in "{[":
        return value
    if value.startswith("ssm:"):
        ssm = boto3.client("ssm", config=CONFIG)
        return ssm.get_parameter(Name=value[4:].strip(), WithDecryption=True)["Parameter"]["Value"]
    raise RuntimeError(f"{name}: expected a JSON document or ssm:NAME (file: and s3:// are not modelled)")


# Cold start: configuration, clients, the state-table probe.
BUCKETS = json.loads(load_document("BUCKET_DISTRIBUTIONS") or "{}")
TABLE = env("STATE_TABLE_NAME")
RETENTION_S = int(env("IDEMPOTENCY_TTL_SECONDS") or 86400)
COLLAPSE_THRESHOLD = int(env("COLLAPSE_THRESHOLD") or 20)
if not TABLE or not 900 <= RETENTION_S <= 366 * 86400 or COLLAPSE_THRESHOLD < 1:
    raise RuntimeError("invalid configuration: STATE_TABLE_NAME, IDEMPOTENCY_TTL_SECONDS or COLLAPSE_THRESHOLD")
if env("DRY_RUN").lower() in ("true", "1", "yes"):
    raise RuntimeError("DRY_RUN is not modelled by this peer")
ddb = boto3.client("dynamodb", config=CONFIG)
cloudfront = boto3.client("cloudfront", config=CONFIG)
try:
    ddb.get_item(TableName=TABLE, Key={"pk": {"S": "probe#cold-start"}}, ConsistentRead=True)
except ClientError as e:
    if "NotFound" in error_code(e) or error_code(e).startswith("AccessDenied"):
        raise RuntimeError(f"STATE_TABLE_NAME: table {TABLE!r} cannot be read: {e}") from e
    log.warning("could not read the state table at cold start: %s", e)
log.info("cdn-invalidator ready: buckets=%d collapse_threshold=%d", len(BUCKETS), COLLAPSE_THRESHOLD)
DOMAINS = None  # domain name -> distribution id, for the container's life


# --- the state table: items and conditions as shared/autonomic/src/guard/table.rs writes them ---

def S(v):
    return {"S": v}


def N(v):
    return {"N": str(v)}


def read_item(pk):
    return ddb.get_item(TableName=TABLE, Key={"pk": S(pk)}, ConsistentRead=True).get("Item")


def condition_failed(e):
    return isinstance(e, ClientError) and error_code(e) == "ConditionalCheckFailedException"


def delete_if(pk, condition, names, values):
    try:
        kw = {"ExpressionAttributeNames": names} if names else {}
        ddb.delete_item(TableName=TABLE, Key={"pk": S(pk)}, ConditionExpression=condition,
                        ExpressionAttributeValues=values, **kw)
    except AWS_ERRORS as e:
        if not condition_failed(e):
            log.warning("could not delete %s: %s", pk, e)


def abandon_claim(pk, owner):
    delete_if(pk, "#owner = :owner AND #status = :in_progress", {"#owner": "owner", "#status": "status"},
              {":owner": S(owner), ":in_progress": S("IN_PROGRESS")})


def release_lease(pk, holder):
    delete_if(pk, "holder = :holder", None, {":holder": S(holder)})


def claim(pk, owner, until_ms):
    """None when the claim is ours; the stored result when it was completed before."""
    now = now_ms()
    try:
        for _ in range(3):
            try:
                ddb.put_item(
                    TableName=TABLE,
                    Item={"pk": S(pk), "status": S("IN_PROGRESS"), "owner": S(owner),
                          "expires_at": N(until_ms), "ttl": N(now // 1000 + RETENTION_S)},
                    ConditionExpression="attribute_not_exists(pk) OR (#status = :in_progress AND expires_at < :now)"
                                        " OR (#status = :completed AND #ttl < :now_s)",
                    ExpressionAttributeNames={"#status": "status", "#ttl": "ttl"},
                    ExpressionAttributeValues={":in_progress": S("IN_PROGRESS"), ":completed": S("COMPLETED"),
                                               ":now": N(now), ":now_s": N(now // 1000)},
                    ReturnValues="ALL_OLD")
                return None
            except ClientError as e:
                if not condition_failed(e):
                    raise
            item = read_item(pk)
            if item is None:
                continue
            if item.get("status", {}).get("S") == "COMPLETED":
                return json.loads(item.get("result", {}).get("S", "null"))
            if item.get("owner", {}).get("S") == owner:
                return None
            raise NotSubmitted("in_progress", f"{pk} is held by {item.get('owner', {}).get('S')}")
        raise NotSubmitted("in_progress", f"claim {pk} is held by another invocation")
    except AWS_ERRORS:
        abandon_claim(pk, owner)
        raise


def complete_claim(pk, owner, result):
    try:
        ddb.update_item(
            TableName=TABLE, Key={"pk": S(pk)},
            UpdateExpression="SET #status = :completed, #result = :result, #ttl = :ttl REMOVE expires_at",
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#status": "status", "#result": "result", "#ttl": "ttl", "#owner": "owner"},
            ExpressionAttributeValues={":completed": S("COMPLETED"), ":result": S(dumps(result)),
                                       ":ttl": N(now_ms() // 1000 + RETENTION_S), ":owner": S(owner)})
    except AWS_ERRORS as e:
        log.error("could not complete the claim %s: %s", pk, e)


def acquire_lease(pk, holder, now, until_ms):
    """True when ours; else (holder, kind) of whoever holds it."""
    for _ in range(3):
        try:
            ddb.put_item(TableName=TABLE,
                         Item={"pk": S(pk), "holder": S(holder), "until_ms": N(until_ms), "kind": S("lock"),
                               "ttl": N(until_ms // 1000 + 86_400)},
                         ExpressionAttributeValues={":now": N(now)},
                         ConditionExpression="attribute_not_exists(pk) OR until_ms <= :now")
            return True
        except ClientError as e:
            if not condition_failed(e):
                raise
        item = read_item(pk)
        if item is None:
            continue
        if item["holder"]["S"] == holder:
            return True
        return item["holder"]["S"], "lock" if item.get("kind", {}).get("S") == "lock" else "cooldown"
    return "", "lock"


# --- paths: normalising, reducing, planning (planner.rs, paths.rs) ---

def normalize(raw):
    b = raw.encode()
    if not b:
        raise ValueError("empty path")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in raw):
        raise ValueError("control character in path")
    if b"*" in b and b.index(b"*") != len(b) - 1:
        raise ValueError("a wildcard (*) may only end a path")
    out, i = ("" if b[0] == ord("/") else "/"), 0
    while i < len(b):
        if b[i] == ord("%") and i + 2 < len(b) and b[i + 1] in HEX and b[i + 2] in HEX:
            out, i = out + b[i:i + 3].decode(), i + 3
            continue
        out += chr(b[i]) if b[i] in KEEP else f"%{b[i]:02X}"
        i += 1
    if len(out) > 4000:
        raise ValueError(f"path is {len(out)} characters once encoded; CloudFront allows 4000")
    return out


def minimal(prefixes):
    kept = []
    for p in sorted(set(prefixes)):
        if not kept or not p.startswith(kept[-1]):
            kept.append(p)
    return kept


def covering(prefixes, path):
    probe = path[:-1] if path.endswith("*") else path
    i = bisect.bisect_right(prefixes, probe)
    return prefixes[i - 1] if i and probe.startswith(prefixes[i - 1]) else None


def reduce_paths(paths, threshold, max_wildcards):
    """(wildcard prefixes, files): duplicates and covered paths dropped, crowded folders collapsed."""
    prefixes = minimal(p[:-1] for p in paths if p.endswith("*"))
    files = sorted({p for p in paths if not p.endswith("*") and covering(prefixes, p) is None})
    if threshold is None:
        return prefixes, files
    folders = Counter(f[:f.rindex("/") + 1] for f in files)
    crowded = sorted((-n, d) for d, n in folders.items() if d != "/" and n > threshold)
    if not crowded:
        return prefixes, files
    wide = list(prefixes)
    for _, folder in crowded:
        if len(minimal(wide)) >= max_wildcards:
            break
        wide.append(folder)
    return reduce_paths([p + "*" for p in wide] + files, None, 0)


def caller_reference(distribution, paths, message_ids):
    h = hashlib.sha256(distribution.encode())
    for p in sorted(paths):
        h.update(b"\n" + p.encode())
    h.update(b"\n\0")
    for m in sorted(set(message_ids)):
        h.update(b"\n" + m.encode())
    return "autonomic-" + h.hexdigest()[:32]


def plan_segment(parts, files_in_progress, wildcards_in_progress):
    """(calls, deferred parts): the longest prefix of the parts that fits CloudFront's limits."""
    file_room, wild_room = max(0, MAX_FILES - files_in_progress), max(0, MAX_WILDCARDS - wildcards_in_progress)
    reduced = lambda k: reduce_paths([p for part in parts[:k] for p in part["paths"]], COLLAPSE_THRESHOLD, wild_room)
    fits = lambda k: (lambda s: len(s[1]) <= file_room and len(s[0]) <= wild_room)(reduced(k))
    lo, hi = 0, len(parts)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    while lo > 0 and not fits(lo):
        lo -= 1
    if lo == 0:
        return [], parts
    prefixes, files = reduced(lo)
    paths = [p + "*" for p in prefixes] + files
    calls = [{"paths": paths[i:i + MAX_PATHS_PER_CALL], "messages": set()} for i in range(0, len(paths), MAX_PATHS_PER_CALL)]
    for part in parts[:lo]:
        for path in part["paths"]:
            c = covering(prefixes, path)
            target = c + "*" if c is not None else path
            call = next((call for call in calls if target in call["paths"]), None)
            if call:
                call["messages"].add(part["message"])
    for call in calls:
        ids = [p["message_id"] for p in parts[:lo] if p["message"] in call["messages"]]
        call["ref"] = caller_reference(parts[0]["distribution"], call["paths"], ids)
    return calls, parts[lo:]


# --- one batch ---

def dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class Batch:
    """One invocation: its deadline, its messages and what became of each, its audit records."""

    def __init__(self, records, context):
        self.records, self.request_id = records, context.aws_request_id
        self.deadline_ms = now_ms() + context.get_remaining_time_in_millis()
        self.failed, self.submitted, self.audits, self.leases = {}, set(), [], []
        self.listed, self.list_error, self.state_table_error = False, None, None

    def has_time_for(self, ms):
        return self.deadline_ms - now_ms() >= ms + WORK_RESERVE_MS

    def audit(self, action, outcome, target, trigger, reason, details):
        record = {"action": action, "outcome": outcome, "target": target, "trigger": trigger}
        record.update({"reason": reason} if reason else {})
        record["details"] = details
        print(dumps({"type": "audit", "function": FUNCTION, "requestId": self.request_id,
                     "dryRun": False, "record": record}), flush=True)
        self.audits.append(record)

    def fail(self, i, reason):
        if i not in self.failed:
            self.failed[i] = reason
            mid = self.records[i]["messageId"]
            log.warning("message %s not submitted: %s: %s", mid, reason.code, reason.detail)
            self.audit("message", "failed", mid, mid, reason.code, {"detail": reason.detail})

    def note(self, e):
        code = error_code(e)
        if "NotFound" in code or code.startswith("AccessDenied"):
            self.state_table_error = self.state_table_error or e

    def finish(self):
        """The EMF lines: per action kind, how many were applied, skipped and failed."""
        counts = {}
        for r in self.audits:
            c = counts.setdefault(r["action"], [0, 0, 0])
            c[{"applied": 0, "skipped": 1, "failed": 2}[r["outcome"]]] += 1
        for action, (actions, skips, errors) in sorted(counts.items()):
            print(dumps({"_aws": {"Timestamp": now_ms(), "CloudWatchMetrics": [{
                "Namespace": "Autonomic", "Dimensions": [["Function"], ["Function", "Action"]],
                "Metrics": [{"Name": n, "Unit": "Count"} for n in ("Actions", "Skips", "Errors")]}]},
                "Function": FUNCTION, "Action": action, "Actions": actions, "Skips": skips, "Errors": errors}),
                flush=True)


def resolve_domain(batch, domain):
    """The distribution serving `domain`: exact, else a wildcard alias; listed at most once per batch."""
    global DOMAINS

    def lookup():
        if DOMAINS is None:
            return None
        return DOMAINS.get(domain) or ("." in domain and DOMAINS.get("*." + domain.split(".", 1)[1])) or None

    known = lookup()
    if known:
        return known
    if not batch.listed:
        batch.listed, found, marker = True, {}, None
        try:
            while True:
                page = cloudfront.list_distributions(**({"Marker": marker} if marker else {})).get("DistributionList")
                if page is None:
                    break
                for d in page.get("Items", []):
                    for name in [d["DomainName"]] + d.get("Aliases", {}).get("Items", []):
                        found[name.lower()] = d["Id"]
                if not (page.get("IsTruncated") and page.get("NextMarker")):
                    break
                marker = page["NextMarker"]
            DOMAINS = found
        except AWS_ERRORS as e:
            batch.list_error = f"could not list distributions: {e}"
    if batch.list_error:
        raise NotSubmitted("aws_error", batch.list_error)
    known = lookup()
    if not known:
        raise NotSubmitted("unresolvable", f"no distribution has the domain name {domain!r}")
    return known


def resolve(batch, i):
    """Message i's parts (one per distribution), or None when it is acknowledged as nothing to do."""
    mid = batch.records[i]["messageId"]
    try:
        body = json.loads(batch.records[i].get("body") or "")
    except ValueError as e:
        raise NotSubmitted("malformed", f"not JSON: {e}")
    if not isinstance(body, dict):
        raise NotSubmitted("malformed", "expected a JSON object")
    if body.get("Event") == "s3:TestEvent":
        batch.audit("message", "skipped", mid, mid, "s3_test_event",
                    {"detail": "S3 sends this when a notification is set up"})
        return None
    if "Records" in body or body.get("Type") == "Notification":
        raise NotSubmitted("unresolvable", "S3 notifications are not modelled by this peer")
    unknown = set(body) - {"distributionId", "domain", "paths", "reason", "requester"}
    paths, dist, domain = body.get("paths"), body.get("distributionId"), body.get("domain")
    texts = [body.get(k) for k in ("distributionId", "domain", "reason", "requester") if body.get(k) is not None]
    if unknown or not isinstance(paths, list) or not all(isinstance(t, str) for t in paths + texts):
        raise NotSubmitted("malformed", f"not an invalidation request (unknown fields: {sorted(unknown)})")
    if (dist is None) == (domain is None) or not (dist if dist is not None else domain).strip():
        raise NotSubmitted("malformed", "distributionId: give a distributionId or a domain, not both")
    if not paths or len(paths) > MAX_PATHS_PER_REQUEST:
        raise NotSubmitted("malformed", f"paths: {len(paths)} paths; 1 to {MAX_PATHS_PER_REQUEST} allowed")
    log.info("invalidation request %s: reason=%s requester=%s paths=%d", mid, body.get("reason"),
             body.get("requester"), len(paths))
    by_distribution = {}
    for n, raw in enumerate(paths):
        target = dist.strip() if dist is not None else resolve_domain(batch, domain.strip().lower())
        try:
            by_distribution.setdefault(target, []).append(normalize(raw))
        except ValueError as e:
            raise NotSubmitted("malformed", f"path {n} ({raw!r}): {e}")
    return [{"message": i, "message_id": mid, "distribution": d, "paths": p}
            for d, p in sorted(by_distribution.items())]


def open_distribution(batch, dist):
    """Takes the distribution's lease (waiting for a live lock while there is time), then counts
    the paths in progress there: (files, wildcards)."""
    if not batch.has_time_for(0):
        raise NotSubmitted("deadline", "the invocation stopped taking new work before its deadline")
    pk, pause = f"lease#cdn-distribution#{dist}", 0.25
    while True:
        now = now_ms()
        try:
            got = acquire_lease(pk, batch.request_id, now, max(batch.deadline_ms, now))
        except AWS_ERRORS as e:
            release_lease(pk, batch.request_id)
            batch.note(e)
            raise NotSubmitted("aws_error", f"could not take the distribution lease: {e}")
        if got is True:
            batch.leases.append(pk)
            break
        holder, kind = got
        if kind == "cooldown" or not batch.has_time_for(pause * 1000):
            raise NotSubmitted("lease_held", f"another invocation ({holder}) is sending invalidations for {dist}")
        log.info("lease %s locked by %s: waiting", pk, holder)
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
    files = wildcards = 0
    marker = None
    try:
        while True:
            page = cloudfront.list_invalidations(DistributionId=dist, **({"Marker": marker} if marker else {}))
            page = page.get("InvalidationList")
            if page is None:
                break
            running = [s for s in page.get("Items", []) if s["Status"] == "InProgress"]
            for s in running:
                inv = cloudfront.get_invalidation(DistributionId=dist, Id=s["Id"])["Invalidation"]
                for p in inv["InvalidationBatch"]["Paths"].get("Items", []):
                    wildcards, files = (wildcards + 1, files) if p.endswith("*") else (wildcards, files + 1)
            if not (page.get("IsTruncated") and page.get("NextMarker") and running):
                break
            marker = page["NextMarker"]
    except AWS_ERRORS as e:
        raise NotSubmitted("aws_error", f"could not count invalidations in progress: {e}")
    return files, wildcards


def send(batch, dist, call):
    """Claims the call's CallerReference, creates the invalidation, completes the claim."""
    ids = [batch.records[m]["messageId"] for m in sorted(call["messages"])]
    details = {"distribution": dist, "callerReference": call["ref"], "paths": len(call["paths"]),
               "wildcards": sum(p.endswith("*") for p in call["paths"]), "messages": ids}
    pk = f"idem#{SCOPE}#{call['ref']}"
    try:
        try:
            previous = claim(pk, batch.request_id, batch.deadline_ms)
        except AWS_ERRORS as e:
            batch.note(e)
            raise
        if previous is not None:
            invalidation_id = (previous or {}).get("invalidationId") or ""
        else:
            try:
                out = cloudfront.create_invalidation(DistributionId=dist, InvalidationBatch={
                    "Paths": {"Quantity": len(call["paths"]), "Items": call["paths"]}, "CallerReference": call["ref"]})
            except AWS_ERRORS:
                abandon_claim(pk, batch.request_id)
                raise
            invalidation_id = out["Invalidation"]["Id"]
            complete_claim(pk, batch.request_id, {"invalidationId": invalidation_id})
    except (NotSubmitted, *AWS_ERRORS) as e:
        code = "InProgress" if isinstance(e, NotSubmitted) else error_code(e)
        log.error("invalidation not created on %s: %s", dist, e)
        batch.audit("create_invalidation", "failed", dist, call["ref"], code, {"error": str(e), "call": details})
        raise e if isinstance(e, NotSubmitted) else NotSubmitted("aws_error", str(e))
    details["invalidationId"] = invalidation_id
    log.info("invalidation %s created on %s: %d paths", invalidation_id, dist, len(call["paths"]))
    batch.audit("create_invalidation", "applied", dist, call["ref"], None, details)


def handler(event, context):
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("invalid event: Records: expected a list of SQS messages")
    for i, r in enumerate(records):
        if not isinstance(r.get("messageId"), str):
            raise ValueError(f"invalid event: Records[{i}].messageId: missing required field")
    batch = Batch(records, context)
    parts = []
    for i in range(len(records)):
        try:
            if not batch.has_time_for(0):
                raise NotSubmitted("deadline", "the invocation stopped taking new work before its deadline")
            parts.extend(resolve(batch, i) or [])
        except NotSubmitted as reason:
            batch.fail(i, reason)
    opened = {}
    for dist in sorted({p["distribution"] for p in parts if p["message"] not in batch.failed}):
        try:
            opened[dist] = open_distribution(batch, dist)
        except NotSubmitted as reason:
            opened[dist] = reason
    segments = {}  # per distribution, in order of first message
    for p in parts:
        segments.setdefault(p["distribution"], []).append(p)
    for dist, segment in segments.items():
        segment = [p for p in segment if p["message"] not in batch.failed]
        if not segment or dist not in opened:
            continue
        state = opened[dist]
        if isinstance(state, tuple) and not batch.has_time_for(0):
            state = NotSubmitted("deadline", "the invocation stopped taking new work before its deadline")
        if isinstance(state, NotSubmitted):
            for p in segment:
                batch.fail(p["message"], state)
            continue
        calls, deferred = plan_segment(segment, *state)
        for p in deferred:
            batch.fail(p["message"], NotSubmitted("deferred", f"CloudFront's in-progress limits on {dist} leave no room"))
        files, wildcards = state
        for call in calls:
            try:
                send(batch, dist, call)
                wildcards += sum(p.endswith("*") for p in call["paths"])
                files += sum(not p.endswith("*") for p in call["paths"])
                batch.submitted.update(call["messages"])
            except NotSubmitted as reason:
                for m in sorted(call["messages"]):
                    batch.fail(m, reason)
        opened[dist] = (files, wildcards)
    for pk in batch.leases:
        release_lease(pk, batch.request_id)
    log.info("batch done: messages=%d failed=%d", len(records), len(batch.failed))
    batch.finish()
    if batch.state_table_error:
        raise batch.state_table_error
    return {"batchItemFailures": [{"itemIdentifier": records[i]["messageId"]} for i in sorted(batch.failed)]}
