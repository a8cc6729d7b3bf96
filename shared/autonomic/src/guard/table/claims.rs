//! Idempotency claims: `idem#<scope>#<key>`, `IN_PROGRESS` until its owner completes it (with the
//! result a duplicate delivery gets back) or gives it up; taken over once its owner's deadline has
//! passed, with the intent that owner recorded.

use super::*;

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

impl StateTable {
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
}
