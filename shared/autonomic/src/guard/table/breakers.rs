//! Circuit breakers: `breaker#<name>`, tripped by an action that must not repeat until an
//! operator resets it (deletes the item); no TTL.

use super::*;

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

impl StateTable {
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
}
