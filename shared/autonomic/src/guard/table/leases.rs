//! Leases on targets: `lease#<name>`, a lock while its holder acts, then settled as a cooldown
//! until a time, or released.

use super::*;

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

impl StateTable {
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

    /// Reads a lease without taking it (observe step: "is this target cooling down?").
    pub async fn read_lease(&self, name: &str) -> Result<Option<LeaseRecord>, CallError> {
        let item = self.read(&lease_pk(name)).await?;
        Ok(item.map(|item| LeaseRecord {
            holder: get_s(&item, "holder").unwrap_or_default().to_string(),
            until_ms: get_n(&item, "until_ms").unwrap_or_default(),
            kind: LeaseKind::parse(get_s(&item, "kind")),
        }))
    }
}
