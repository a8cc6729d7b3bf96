//! Guards on DynamoDB, and the one sequence that makes an action safe.
//!
//! One table (`STATE_TABLE_NAME`, partition key `pk` of type S, TTL attribute `ttl`) holds:
//! - `idem#<scope>#<key>`: an idempotency claim, `IN_PROGRESS` until its owner completes it, then
//!   `COMPLETED` with the stored result. An in-progress claim expires at its owner's invocation
//!   deadline (or at once when its owner hands it over), so a crashed invocation never blocks
//!   retries for longer than that.
//! - `lease#<name>`: a lease on a target, a `lock` while its holder acts, then (settled) a
//!   `cooldown` until a time, or released.
//! - `mark#<name>`: a watermark that only rises (the newest alarm transition handled).
//! - `breaker#<name>`: a circuit breaker, tripped by an action that must not repeat until an
//!   operator resets it (deletes the item); no TTL.
//!
//! A function states its decisions; the guards are typed values that cannot be forgotten:
//! 1. [`Guards::claim`] the event: fresh, taken over (with the intent its previous owner
//!    recorded), completed (with the stored result), or in progress elsewhere. A held claim
//!    ([`HeldClaim`]) ends by [`HeldClaim::complete`], [`HeldClaim::abandon`], or
//!    [`HeldClaim::keep`]; [`HeldClaim::end`] picks the right one for a handler's result.
//! 2. [`Guards::lease`] the target: a lock, waited for within the invocation's time when another
//!    live invocation holds it; a cooldown is reported as such.
//! 3. [`apply`]: record the intent, make the mutating call, then settle the lease as the cooldown
//!    (success), release it (the service refused), or keep it (the call may have taken effect).

mod claim;
mod lease;
mod step;
mod table;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

pub use claim::{ClaimKey, ClaimOutcome, Claimed, HeldClaim};
pub use lease::{HeldLease, LeaseName, LeaseOutcome};
pub use step::{Act, Begun, Decision, Declined, Lock, Outcome, Recheck, Resumed, Step};
pub use table::{BreakerRecord, Claim, Lease, LeaseKind, LeaseRecord, StateTable};

use crate::context::Invocation;
use crate::error::{CallError, FunctionError};
use crate::time::now_ms;

/// How many guard values were dropped without being ended (a programming error, logged): tests
/// assert that the fallback ran.
pub fn dropped_unsettled() -> u64 {
    claim::DROPPED.load(std::sync::atomic::Ordering::Relaxed)
        + lease::DROPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A function's guards: its state table, its claim scope and how long a handled event is
/// remembered.
#[derive(Debug, Clone)]
pub struct Guards {
    /// Private: the guards are the only door to the state table.
    table: StateTable,
    scope: &'static str,
    retention: Duration,
}

impl Guards {
    pub fn new(table: StateTable, scope: &'static str, retention: Duration) -> Self {
        Self {
            table,
            scope,
            retention,
        }
    }

    /// The claim key of `key` in this function's scope.
    pub fn key(&self, key: impl Into<String>) -> ClaimKey {
        ClaimKey::new(self.scope, key)
    }

    /// Claims `key` for this invocation until its deadline.
    pub async fn claim(&self, inv: &Invocation, key: &str) -> Result<ClaimOutcome, CallError> {
        claim::claim(
            &self.table,
            self.key(key),
            &inv.request_id,
            now_ms(),
            inv.deadline_ms,
            self.retention,
        )
        .await
    }

    /// Claims `key` as a handler uses it: [`Claimed::Mine`] or [`Claimed::Done`]; held by another
    /// live invocation, [`FunctionError::ClaimHeld`].
    pub async fn claim_event(&self, inv: &Invocation, key: &str) -> Result<Claimed, FunctionError> {
        let outcome = self.claim(inv, key).await?;
        outcome.into_claimed(&self.key(key))
    }

    /// Takes `name` as this invocation's lock until `until_ms`. A lock another live invocation
    /// holds is waited for while this invocation has time left; `inherit_from` is the previous
    /// owner of a claim taken over, whose lease is this attempt's own.
    pub async fn lease(
        &self,
        inv: &Invocation,
        name: &LeaseName,
        until_ms: i64,
        inherit_from: Option<&str>,
    ) -> Result<LeaseOutcome, CallError> {
        lease::take(&self.table, inv, name, until_ms, inherit_from).await
    }

    /// [`Guards::lease`] for a target that has no cooldown of its own: a lease held by another
    /// invocation, locked or settled, is contention ([`FunctionError::LeaseContention`],
    /// retryable), never a skip.
    pub async fn lock(
        &self,
        inv: &Invocation,
        name: &LeaseName,
        until_ms: i64,
        inherit_from: Option<&str>,
    ) -> Result<HeldLease, FunctionError> {
        match self.lease(inv, name, until_ms, inherit_from).await? {
            LeaseOutcome::Acquired(lease) => Ok(lease),
            LeaseOutcome::Cooldown { holder, until_ms }
            | LeaseOutcome::Contended { holder, until_ms } => Err(FunctionError::LeaseContention {
                lease: name.to_string(),
                holder,
                until_ms,
            }),
        }
    }

    /// Ends `holder`'s lease `name` now, if it is still theirs; a failure only leaves it to end
    /// by itself, so it is logged, not returned.
    pub async fn release(&self, name: &LeaseName, holder: &str) {
        if let Err(e) = self.table.release_lease(name.as_str(), holder).await {
            tracing::warn!(error = %e, lease = %name, "could not release the lease; it ends by itself");
        }
    }
}

/// The other items of the state table, through [`Guards`]: the one door to it.
impl Guards {
    /// The lease `name` as it stands (a lock, a cooldown), if any.
    pub async fn read_lease(&self, name: &LeaseName) -> Result<Option<LeaseRecord>, CallError> {
        self.table.read_lease(name.as_str()).await
    }

    /// The watermark `name`, if any: the newest event of its kind handled.
    pub async fn read_watermark(&self, name: &str) -> Result<Option<i64>, CallError> {
        self.table.read_watermark(name).await
    }

    /// Raises the watermark `name` to `value` (expiring at `ttl_s`); `false` when it already stood
    /// at or above it (a newer event was handled).
    pub async fn advance_watermark(
        &self,
        name: &str,
        value: i64,
        ttl_s: i64,
    ) -> Result<bool, CallError> {
        self.table.advance_watermark(name, value, ttl_s).await
    }

    /// Every entry of the registry `name`.
    pub async fn registry(&self, name: &str) -> Result<Vec<(String, Value)>, CallError> {
        self.table.registry(name).await
    }

    /// Sets `key` in the registry `name`.
    pub async fn registry_set(
        &self,
        name: &str,
        key: &str,
        value: &Value,
    ) -> Result<(), CallError> {
        self.table.registry_set(name, key, value).await
    }

    /// Removes `key` from the registry `name`.
    pub async fn registry_remove(&self, name: &str, key: &str) -> Result<(), CallError> {
        self.table.registry_remove(name, key).await
    }

    /// The breaker `name`, if tripped.
    pub async fn read_breaker(&self, name: &str) -> Result<Option<BreakerRecord>, CallError> {
        self.table.read_breaker(name).await
    }

    /// Trips the breaker `name` for `holder` at `now_ms`, recording `details`: whether this call
    /// tripped it (one of any number of concurrent trips wins).
    pub async fn trip_breaker(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        details: &Value,
    ) -> Result<bool, CallError> {
        self.table.trip_breaker(name, holder, now_ms, details).await
    }

    /// Takes over the breaker `name` from `from` (the same event's interrupted attempt).
    pub async fn take_over_breaker(
        &self,
        name: &str,
        from: &str,
        holder: &str,
        now_ms: i64,
        details: &Value,
    ) -> Result<bool, CallError> {
        self.table
            .take_over_breaker(name, from, holder, now_ms, details)
            .await
    }

    /// Moves `holder`'s breaker `name` to `state` with `details`: whether it was still theirs.
    pub async fn update_breaker(
        &self,
        name: &str,
        holder: &str,
        state: &str,
        details: &Value,
    ) -> Result<bool, CallError> {
        self.table
            .update_breaker(name, holder, state, details)
            .await
    }

    /// Resets `holder`'s breaker `name`, if it is still theirs.
    pub async fn release_breaker(&self, name: &str, holder: &str) -> Result<(), CallError> {
        self.table.release_breaker(name, holder).await
    }

    /// Ends the lease `name` if `holder` holds it, reporting a failure (see [`Guards::release`]
    /// for the best-effort form).
    pub async fn release_lease(&self, name: &LeaseName, holder: &str) -> Result<(), CallError> {
        self.table.release_lease(name.as_str(), holder).await
    }
}

/// The end of every guarded action: records `intent` on the claim (so a takeover can tell whether
/// the call happened), makes `call`, then settles the lease as a cooldown until `cooldown_until`
/// on success, releases it when the service refused the request, and keeps it when the call may
/// have taken effect. The claim itself is ended by the caller ([`HeldClaim::end`]).
pub async fn apply<T>(
    claim: &mut HeldClaim,
    lease: HeldLease,
    intent: &Value,
    cooldown_until: impl FnOnce() -> i64,
    call: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    if let Err(e) = claim.record_intent(intent).await {
        lease.release().await;
        return Err(e);
    }
    match call.await {
        Ok(v) => {
            lease.settle(cooldown_until()).await;
            Ok(v)
        }
        Err(e) if e.may_have_taken_effect() => {
            lease.keep("the call may have taken effect");
            Err(e)
        }
        Err(e) => {
            lease.release().await;
            Err(e)
        }
    }
}
