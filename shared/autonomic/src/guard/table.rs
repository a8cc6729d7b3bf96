//! The state table's items and the conditional writes on them; the typed guards in
//! [`super::claim`] and [`super::lease`] are built on these. Time is an argument (epoch
//! milliseconds), never read here, so tests can move it.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde_json::Value;

use crate::error::{CallError, ProvideErrorMetadata, SdkError};

const PK: &str = "pk";
const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
const STATUS_COMPLETED: &str = "COMPLETED";

/// The result of trying to claim an idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Ours: do the work, then [`StateTable::complete`] (or [`StateTable::abandon`] on failure).
    Claimed,
    /// Ours, taken over from an owner that passed its deadline without completing. `intent` is what
    /// that owner recorded ([`StateTable::record_intent`]) before acting, if anything: the action
    /// may or may not have happened, so the new owner must check before acting again.
    TakenOver {
        intent: Option<Value>,
        previous_owner: String,
    },
    /// Done before: here is the result it returned.
    Completed(Value),
    /// Another invocation holds it until `until_ms`.
    InProgress { owner: String, until_ms: i64 },
}

/// The result of trying to take a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Ours until `until_ms`.
    Acquired { until_ms: i64 },
    /// Someone else's until `until_ms`: a lock while they act, or the cooldown after.
    Held {
        holder: String,
        until_ms: i64,
        kind: LeaseKind,
    },
}

/// What a held lease stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    /// Its holder is acting on the target now (or died doing so): contention, never a reason
    /// to skip for good.
    Lock,
    /// Its holder acted and settled it: the target is cooling down until the lease ends.
    Cooldown,
}

impl LeaseKind {
    fn as_str(self) -> &'static str {
        match self {
            LeaseKind::Lock => "lock",
            LeaseKind::Cooldown => "cooldown",
        }
    }

    /// Items written before leases had a kind were settled cooldowns or locks held as long as
    /// one: read them as cooldowns, as they were meant.
    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("lock") => LeaseKind::Lock,
            _ => LeaseKind::Cooldown,
        }
    }
}

/// A lease as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: String,
    pub until_ms: i64,
    pub kind: LeaseKind,
}

/// A circuit breaker as read from the table: present means tripped. It has no TTL: only an
/// operator (deleting the item) or the function's own bookkeeping (a promotion the service
/// reported failed) closes it again.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRecord {
    /// `in_flight` (the action was requested) or `tripped` (it is known to have completed).
    pub state: String,
    /// The invocation that tripped it.
    pub holder: String,
    pub since_ms: i64,
    /// What was done, as the function recorded it.
    pub details: Value,
}

/// The state table.
#[derive(Debug, Clone)]
pub struct StateTable {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn lease_pk(name: &str) -> String {
    format!("lease#{name}")
}

fn breaker_pk(name: &str) -> String {
    format!("breaker#{name}")
}

fn registry_pk(name: &str) -> String {
    format!("registry#{name}")
}

/// Whole seconds as i64, saturating (configuration bounds keep real values far below).
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Ok when the write succeeded or its condition did not hold (the item is not ours to change).
fn unless_condition_failed<O, E>(
    operation: &'static str,
    r: Result<O, SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Result<(), CallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    wrote_unless_condition_failed(operation, r).map(drop)
}

/// Whether the write was made: `false` when its condition did not hold.
fn wrote_unless_condition_failed<O, E>(
    operation: &'static str,
    r: Result<O, SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Result<bool, CallError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|se| se.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(CallError::aws("dynamodb", operation, e)),
    }
}

fn is_condition_failed(err: &SdkError<PutItemError, impl std::fmt::Debug>) -> bool {
    matches!(
        err.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

impl StateTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn idem_pk(scope: &str, key: &str) -> String {
        format!("idem#{scope}#{key}")
    }

    /// Claims `key` in `scope` for `owner` until `in_progress_until_ms` (the invocation deadline).
    ///
    /// Exactly one of any number of concurrent claims of one key gets [`Claim::Claimed`]; the
    /// others see the winner's claim. A claim whose holder passed its deadline can be taken over.
    pub async fn claim(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        now_ms: i64,
        in_progress_until_ms: i64,
        retention: Duration,
    ) -> Result<Claim, CallError> {
        let pk = Self::idem_pk(scope, key);
        // A few rounds at most: the item we lost to can vanish (abandoned) between our two calls.
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, s(&pk))
                .item("status", s(STATUS_IN_PROGRESS))
                .item("owner", s(owner))
                .item("expires_at", n(in_progress_until_ms))
                .item("ttl", n(now_ms / 1000 + secs(retention)))
                .condition_expression(
                    "attribute_not_exists(pk) \
                     OR (#status = :in_progress AND expires_at < :now) \
                     OR (#status = :completed AND #ttl < :now_s)",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
                .expression_attribute_values(":completed", s(STATUS_COMPLETED))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":now_s", n(now_ms / 1000))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match put {
                Ok(out) => {
                    // An in-progress item we replaced belonged to an owner that ran out of time.
                    return Ok(match out.attributes {
                        Some(old) if get_s(&old, "status") == Some(STATUS_IN_PROGRESS) => {
                            Claim::TakenOver {
                                intent: get_s(&old, "intent")
                                    .and_then(|i| serde_json::from_str(i).ok()),
                                previous_owner: get_s(&old, "owner")
                                    .unwrap_or_default()
                                    .to_string(),
                            }
                        }
                        _ => Claim::Claimed,
                    });
                }
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(CallError::aws("dynamodb", "PutItem", e)),
            }
            let Some(item) = self.read(&pk).await? else {
                continue;
            };
            let holder = get_s(&item, "owner").unwrap_or_default();
            match get_s(&item, "status") {
                Some(STATUS_COMPLETED) => {
                    let result = get_s(&item, "result")
                        .and_then(|r| serde_json::from_str(r).ok())
                        .unwrap_or(Value::Null);
                    return Ok(Claim::Completed(result));
                }
                // Our own write, whose response was lost and which the SDK retried.
                _ if holder == owner => return Ok(Claim::Claimed),
                _ => {
                    return Ok(Claim::InProgress {
                        owner: holder.to_string(),
                        until_ms: get_n(&item, "expires_at").unwrap_or_default(),
                    });
                }
            }
        }
        Ok(Claim::InProgress {
            owner: String::new(),
            until_ms: in_progress_until_ms,
        })
    }

    /// Records on `owner`'s claim what it is about to do, so that an owner taking over after a
    /// crash or timeout can tell whether it happened ([`Claim::TakenOver`]).
    pub async fn record_intent(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        intent: &Value,
    ) -> Result<(), CallError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(Self::idem_pk(scope, key)))
            .update_expression("SET intent = :intent")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":intent", s(intent.to_string()))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "UpdateItem", e))?;
        Ok(())
    }

    /// Marks `owner`'s claim completed with `result`, kept for `retention`.
    pub async fn complete(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        result: &Value,
        now_ms: i64,
        retention: Duration,
    ) -> Result<(), CallError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(Self::idem_pk(scope, key)))
            .update_expression(
                "SET #status = :completed, #result = :result, #ttl = :ttl REMOVE expires_at",
            )
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#result", "result")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":completed", s(STATUS_COMPLETED))
            .expression_attribute_values(":result", s(result.to_string()))
            .expression_attribute_values(":ttl", n(now_ms / 1000 + secs(retention)))
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "UpdateItem", e))?;
        Ok(())
    }

    /// Gives up `owner`'s in-progress claim (the work failed), so a retry can claim it at once.
    pub async fn abandon(&self, scope: &str, key: &str, owner: &str) -> Result<(), CallError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(Self::idem_pk(scope, key)))
            .condition_expression("#owner = :owner AND #status = :in_progress")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
            .send()
            .await;
        // Not ours any more (expired and taken over): nothing to give up.
        unless_condition_failed("DeleteItem", r)
    }

    /// Takes the lease `name` as a lock for `holder` until `until_ms`, unless someone else holds
    /// it now. `inherit_from` names a holder whose lease may be taken over however long it still
    /// runs: the previous owner of a claim this invocation took over, whose lock (or the cooldown
    /// it settled before dying) belongs to the same attempt.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
        inherit_from: Option<&str>,
    ) -> Result<Lease, CallError> {
        let pk = lease_pk(name);
        for _ in 0..3 {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, s(&pk))
                .item("holder", s(holder))
                .item("until_ms", n(until_ms))
                .item("kind", s(LeaseKind::Lock.as_str()))
                // Kept a day past expiry for the record; the condition, not TTL, decides.
                .item("ttl", n(until_ms / 1000 + 86_400))
                .expression_attribute_values(":now", n(now_ms));
            put = match inherit_from {
                Some(previous) => put
                    .condition_expression(
                        "attribute_not_exists(pk) OR until_ms <= :now OR holder = :previous",
                    )
                    .expression_attribute_values(":previous", s(previous)),
                None => put.condition_expression("attribute_not_exists(pk) OR until_ms <= :now"),
            };
            let put = put.send().await;
            match put {
                Ok(_) => return Ok(Lease::Acquired { until_ms }),
                Err(e) if is_condition_failed(&e) => {}
                Err(e) => return Err(CallError::aws("dynamodb", "PutItem", e)),
            }
            let Some(current) = self.read_lease(name).await? else {
                continue; // released between our two calls: try again
            };
            // Our own write, whose response was lost and which the SDK retried.
            if current.holder == holder {
                return Ok(Lease::Acquired {
                    until_ms: current.until_ms,
                });
            }
            return Ok(Lease::Held {
                holder: current.holder,
                until_ms: current.until_ms,
                kind: current.kind,
            });
        }
        Ok(Lease::Held {
            holder: String::new(),
            until_ms: now_ms,
            kind: LeaseKind::Lock,
        })
    }

    /// Turns `holder`'s lock into a cooldown that ends at `until_ms`. A lease that is no longer
    /// ours is left alone.
    pub async fn settle_lease(
        &self,
        name: &str,
        holder: &str,
        until_ms: i64,
    ) -> Result<(), CallError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(lease_pk(name)))
            .update_expression("SET until_ms = :until, #ttl = :ttl, #kind = :cooldown")
            .condition_expression("holder = :holder")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":cooldown", s(LeaseKind::Cooldown.as_str()))
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":ttl", n(until_ms / 1000 + 86_400))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        unless_condition_failed("UpdateItem", r)
    }

    /// Ends `holder`'s lease now (the guarded action did not happen, so its window should not
    /// block the next attempt). A lease that is no longer ours is left alone.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), CallError> {
        self.delete_if_held(&lease_pk(name), holder).await
    }

    /// Deletes the item `pk` if `holder` holds it; an item someone else holds is left alone.
    async fn delete_if_held(&self, pk: &str, holder: &str) -> Result<(), CallError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        unless_condition_failed("DeleteItem", r)
    }

    /// Raises the watermark `name` to `value` unless it is already higher. Returns whether it
    /// stands at `value` now.
    /// Used for "the newest transition of this alarm already handled".
    pub async fn advance_watermark(
        &self,
        name: &str,
        value: i64,
        ttl_s: i64,
    ) -> Result<bool, CallError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(format!("mark#{name}")))
            .item("value", n(value))
            .item("ttl", n(ttl_s))
            // Equal passes: an owner taking over an interrupted attempt re-passes its own mark.
            .condition_expression("attribute_not_exists(pk) OR #value <= :value")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":value", n(value))
            .send()
            .await;
        wrote_unless_condition_failed("PutItem", r)
    }

    /// The watermark `name`, if set.
    pub async fn read_watermark(&self, name: &str) -> Result<Option<i64>, CallError> {
        let item = self.read(&format!("mark#{name}")).await?;
        Ok(item.and_then(|item| get_n(&item, "value")))
    }

    /// Sets `key` to `value` in the registry `name` (one item holding a map: a small, named set
    /// of things to come back to, such as the alarms asg-scaler keeps stepping).
    pub async fn registry_set(
        &self,
        name: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), CallError> {
        let pk = registry_pk(name);
        // A nested path can be set only once its map exists.
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .update_expression("SET entries = if_not_exists(entries, :empty)")
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "UpdateItem", e))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&pk))
            .update_expression("SET entries.#key = :value")
            .expression_attribute_names("#key", key)
            .expression_attribute_values(":value", s(value.to_string()))
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "UpdateItem", e))?;
        Ok(())
    }

    /// Removes `key` from the registry `name`.
    pub async fn registry_remove(&self, name: &str, key: &str) -> Result<(), CallError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(registry_pk(name)))
            .update_expression("REMOVE entries.#key")
            .condition_expression("attribute_exists(entries)")
            .expression_attribute_names("#key", key)
            .send()
            .await;
        unless_condition_failed("UpdateItem", r)
    }

    /// The registry `name`: key → value.
    pub async fn registry(&self, name: &str) -> Result<Vec<(String, Value)>, CallError> {
        let item = self.read(&registry_pk(name)).await?;
        let Some(AttributeValue::M(entries)) = item.and_then(|mut i| i.remove("entries")) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, Value)> = entries
            .into_iter()
            .filter_map(|(k, v)| {
                let v = serde_json::from_str(v.as_s().ok()?).ok()?;
                Some((k, v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Trips the breaker `name` for `holder` unless it is tripped already: whether this call
    /// tripped it. Exactly one of any number of concurrent trips wins. A trip whose answer was
    /// lost and whose retry then met its own item is this call's (same holder, same details).
    pub async fn trip_breaker(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        details: &Value,
    ) -> Result<bool, CallError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(breaker_pk(name)))
            .item("state", s("in_flight"))
            .item("holder", s(holder))
            .item("since_ms", n(now_ms))
            .item("details", s(details.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if wrote_unless_condition_failed("PutItem", r)? {
            return Ok(true);
        }
        Ok(self.read_breaker(name).await?.is_some_and(|b| {
            b.state == "in_flight"
                && b.holder == holder
                && b.since_ms == now_ms
                && &b.details == details
        }))
    }

    /// The breaker `name`, if tripped.
    pub async fn read_breaker(&self, name: &str) -> Result<Option<BreakerRecord>, CallError> {
        let item = self.read(&breaker_pk(name)).await?;
        Ok(item.map(|item| BreakerRecord {
            state: get_s(&item, "state").unwrap_or_default().to_string(),
            holder: get_s(&item, "holder").unwrap_or_default().to_string(),
            since_ms: get_n(&item, "since_ms").unwrap_or_default(),
            details: get_s(&item, "details")
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or(Value::Null),
        }))
    }

    /// Moves `holder`'s breaker `name` to `state` with `details` (a promotion seen to complete).
    /// Whether it was `holder`'s to change.
    pub async fn update_breaker(
        &self,
        name: &str,
        holder: &str,
        state: &str,
        details: &Value,
    ) -> Result<bool, CallError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(breaker_pk(name)))
            .update_expression("SET #state = :state, details = :details")
            .condition_expression("holder = :holder")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(state))
            .expression_attribute_values(":details", s(details.to_string()))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        wrote_unless_condition_failed("UpdateItem", r)
    }

    /// Hands `from`'s in-flight breaker `name` to `to`: the retry of the delivery whose attempt
    /// tripped it found that attempt's call had not taken effect, and acts in its place. Whether
    /// it was `from`'s to hand over.
    pub async fn take_over_breaker(
        &self,
        name: &str,
        from: &str,
        to: &str,
        now_ms: i64,
        details: &Value,
    ) -> Result<bool, CallError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(breaker_pk(name)))
            .update_expression("SET holder = :to, since_ms = :now, details = :details")
            .condition_expression("holder = :from AND #state = :in_flight")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", s(to))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":details", s(details.to_string()))
            .expression_attribute_values(":in_flight", s("in_flight"))
            .send()
            .await;
        wrote_unless_condition_failed("UpdateItem", r)
    }

    /// Closes `holder`'s breaker `name` again (its action was refused, or the service reported
    /// it failed or was cancelled); a breaker another holder tripped is left alone.
    pub async fn release_breaker(&self, name: &str, holder: &str) -> Result<(), CallError> {
        self.delete_if_held(&breaker_pk(name), holder).await
    }

    /// One item, read consistently.
    async fn read(&self, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>, CallError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| CallError::aws("dynamodb", "GetItem", e))?;
        Ok(r.item)
    }

    /// Reads a lease without taking it (observe step: "is this target cooling down?").
    pub async fn read_lease(&self, name: &str) -> Result<Option<LeaseRecord>, CallError> {
        let item = self.read(&lease_pk(name)).await?;
        Ok(item.map(|item| LeaseRecord {
            holder: get_s(&item, "holder").unwrap_or_default().to_string(),
            until_ms: get_n(&item, "until_ms").unwrap_or_default(),
            kind: LeaseKind::parse(get_s(&item, "kind")),
        }))
    }

    /// Hands `owner`'s in-progress claim over at once, intent and all: the work failed in a way
    /// that may have taken effect, so the next attempt takes the claim over now and checks the
    /// target before acting (instead of waiting for this invocation's deadline).
    pub async fn hand_over(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<(), CallError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(Self::idem_pk(scope, key)))
            .update_expression("SET expires_at = :expired")
            .condition_expression("#owner = :owner AND #status = :in_progress")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expired", n(now_ms - 1))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
            .send()
            .await;
        unless_condition_failed("UpdateItem", r)
    }

    /// One read, at cold start: a missing table or a missing permission fails the start (as a
    /// configuration error naming `STATE_TABLE_NAME`), not every event after it. Any other
    /// failure (throttling, a timeout) is logged and left to the first event.
    pub async fn probe_at_cold_start(&self) -> Result<(), crate::FunctionError> {
        let read = self.read("probe#cold-start").await;
        crate::runtime::cold_start::phase("state table probe");
        match read {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() || e.is_access_denied() => Err(crate::config::ConfigError {
                problems: vec![crate::config::ConfigProblem {
                    variable: crate::config::CommonConfig::STATE_TABLE_NAME.into(),
                    source: None,
                    problem: format!("table {:?} cannot be read: {e}", self.table),
                }],
            }
            .into()),
            Err(e) => {
                tracing::warn!(error = %e, table = %self.table, "could not read the state table at cold start");
                Ok(())
            }
        }
    }
}
