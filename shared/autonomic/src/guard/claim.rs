//! Idempotency claims as values: a held claim must be ended, one way or another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::table::{Claim, StateTable};
use crate::error::{CallError, FunctionError};
use crate::time::now_ms;

pub(super) static DROPPED: AtomicU64 = AtomicU64::new(0);

/// What is claimed: a function's scope and the event's key in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimKey {
    pub scope: &'static str,
    pub key: String,
}

impl ClaimKey {
    pub fn new(scope: &'static str, key: impl Into<String>) -> Self {
        Self {
            scope,
            key: key.into(),
        }
    }
}

impl std::fmt::Display for ClaimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.scope, self.key)
    }
}

/// The result of claiming an event.
#[derive(Debug)]
pub enum ClaimOutcome {
    /// Ours, new.
    Fresh(HeldClaim),
    /// Ours, taken over from an owner that ran out of time or handed it over after a failure
    /// that may have taken effect. `intent` is what that owner was about to do, if it said: check
    /// the target before acting again.
    TakenOver {
        claim: HeldClaim,
        intent: Option<Value>,
    },
    /// Done before: the result it returned.
    Completed(Value),
    /// Another live invocation holds it until `until_ms`.
    InProgress { owner: String, until_ms: i64 },
}

/// A claim as a handler uses it: ours (with the intent to check), or done before.
#[derive(Debug)]
pub enum Claimed {
    Mine {
        claim: HeldClaim,
        intent: Option<Value>,
    },
    /// Handled before: the result it returned (a duplicate delivery).
    Done(Value),
}

impl ClaimOutcome {
    /// The claim as a handler uses it; a claim another live invocation holds is
    /// [`FunctionError::ClaimHeld`] (retryable: the delivery comes back).
    pub fn into_claimed(self, key: &ClaimKey) -> Result<Claimed, FunctionError> {
        match self {
            ClaimOutcome::Fresh(claim) => Ok(Claimed::Mine {
                claim,
                intent: None,
            }),
            ClaimOutcome::TakenOver { claim, intent } => {
                tracing::warn!(claim = %key, ?intent, "taking over an interrupted attempt");
                Ok(Claimed::Mine { claim, intent })
            }
            ClaimOutcome::Completed(result) => Ok(Claimed::Done(result)),
            ClaimOutcome::InProgress { owner, until_ms } => Err(FunctionError::ClaimHeld {
                key: key.to_string(),
                owner,
                until_ms,
            }),
        }
    }
}

/// A claim this invocation holds. It ends by [`HeldClaim::complete`], [`HeldClaim::abandon`] or
/// [`HeldClaim::keep`] ([`HeldClaim::end`] chooses); dropped without that, it is kept until its
/// deadline, and the drop is logged as the bug it is.
#[must_use = "a held claim must be completed, abandoned or kept"]
#[derive(Debug)]
pub struct HeldClaim {
    table: StateTable,
    key: ClaimKey,
    owner: String,
    retention: Duration,
    previous_owner: Option<String>,
    intent_recorded: bool,
    /// Taken over with the previous owner's intent: that attempt may have acted.
    inherited_intent: bool,
    /// That intent, until it is written on this owner's claim (the takeover's write replaced
    /// the item): whoever takes the claim over from this owner must still find it.
    carried: Option<Box<Value>>,
    open: bool,
}

pub(super) async fn claim(
    table: &StateTable,
    key: ClaimKey,
    owner: &str,
    now_ms: i64,
    until_ms: i64,
    retention: Duration,
) -> Result<ClaimOutcome, CallError> {
    // A claim taken over with its previous owner's intent carries the evidence that the action
    // may have happened: it is kept, never deleted, if this attempt fails too.
    let held = |previous_owner, inherited_intent| HeldClaim {
        table: table.clone(),
        key: key.clone(),
        owner: owner.to_string(),
        retention,
        previous_owner,
        intent_recorded: inherited_intent,
        inherited_intent,
        carried: None,
        open: true,
    };
    let claimed = match table
        .claim(key.scope, &key.key, owner, now_ms, until_ms, retention)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            // The write may have taken effect with its answer lost: give back what may be ours,
            // so that the retry need not wait for this invocation's deadline.
            if let Err(abandon) = table.abandon(key.scope, &key.key, owner).await {
                tracing::warn!(error = %abandon, claim = %key, "could not abandon a claim after a failed take");
            }
            return Err(e);
        }
    };
    Ok(match claimed {
        Claim::Claimed => ClaimOutcome::Fresh(held(None, false)),
        Claim::TakenOver {
            intent,
            previous_owner,
        } => {
            let mut claim = held(Some(previous_owner), intent.is_some());
            if let Some(i) = &intent {
                // Carried forward at once: an attempt that ends with "not yet" hands the claim
                // on, and the one after it must still see what the first one may have done.
                if let Err(e) = table.record_intent(key.scope, &key.key, owner, i).await {
                    tracing::warn!(error = %e, claim = %key, "could not carry the interrupted attempt's intent forward; it is written when the claim is handed on");
                    claim.carried = Some(Box::new(i.clone()));
                }
            }
            ClaimOutcome::TakenOver { claim, intent }
        }
        Claim::Completed(result) => ClaimOutcome::Completed(result),
        Claim::InProgress { owner, until_ms } => ClaimOutcome::InProgress { owner, until_ms },
    })
}

impl HeldClaim {
    /// The owner this claim was taken over from: its leases belong to the same attempt.
    pub fn previous_owner(&self) -> Option<&str> {
        self.previous_owner.as_deref()
    }

    /// Records what this invocation is about to do, for whoever takes the claim over.
    pub async fn record_intent(&mut self, intent: &Value) -> Result<(), CallError> {
        self.table
            .record_intent(self.key.scope, &self.key.key, &self.owner, intent)
            .await?;
        self.intent_recorded = true;
        self.carried = None;
        Ok(())
    }

    /// Done: `result` is what a duplicate delivery gets back. A failure to write it is returned
    /// ([`HeldClaim::end`] turns it into a retryable error): the work is done, but until the
    /// claim says so a redelivery cannot know; it takes the claim over at this invocation's
    /// deadline and finds the recorded intent fulfilled.
    pub async fn complete(mut self, result: &Value) -> Result<(), CallError> {
        self.open = false;
        self.table
            .complete(
                self.key.scope,
                &self.key.key,
                &self.owner,
                result,
                now_ms(),
                self.retention,
            )
            .await
            .inspect_err(|e| {
                tracing::error!(error = %e, claim = %self.key, "could not complete the claim; a takeover will find its intent");
            })
    }

    /// Gives the claim back: nothing that could have taken effect was done, retry at once.
    pub async fn abandon(mut self) {
        self.open = false;
        if let Err(e) = self
            .table
            .abandon(self.key.scope, &self.key.key, &self.owner)
            .await
        {
            tracing::warn!(error = %e, claim = %self.key, "could not abandon the claim; it expires at the deadline");
        }
    }

    /// Keeps the claim and its intent, handed over at once: the work may have taken effect, so
    /// the next attempt takes it over and checks the target first.
    pub async fn keep(mut self, why: &str) {
        self.open = false;
        tracing::warn!(claim = %self.key, why, "keeping the claim for a takeover");
        if let Some(intent) = self.carried.take()
            && let Err(e) = self
                .table
                .record_intent(self.key.scope, &self.key.key, &self.owner, &intent)
                .await
        {
            tracing::error!(error = %e, claim = %self.key, "could not carry the interrupted attempt's intent forward");
        }
        if let Err(e) = self
            .table
            .hand_over(self.key.scope, &self.key.key, &self.owner, now_ms())
            .await
        {
            tracing::warn!(error = %e, claim = %self.key, "could not hand the claim over; it expires at the deadline");
        }
    }

    /// Ends the claim as `result` requires: completed on success; kept when the failure may have
    /// taken effect after an intent was recorded, and on any failure of an attempt that took the
    /// claim over with an intent (the earlier attempt may have acted: deleting the claim would
    /// lose that); abandoned otherwise. Returns `result`, or, when the claim of work that was
    /// done could not be completed, a retryable [`FunctionError::NotYet`].
    pub async fn end<T: serde::Serialize>(
        self,
        result: Result<T, FunctionError>,
    ) -> Result<T, FunctionError> {
        match &result {
            Ok(value) => {
                let key = self.key.to_string();
                let recorded = serde_json::to_value(value).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, claim = %key, "the result could not be recorded as JSON");
                    Value::Null
                });
                if let Err(e) = self.complete(&recorded).await {
                    // Done, not yet written down: the redelivery finishes the bookkeeping.
                    return Err(FunctionError::NotYet {
                        code: "ClaimNotCompleted".into(),
                        detail: format!(
                            "the work is done, but recording it on {key} failed ({e}): the retry records it"
                        ),
                        acted: true,
                    });
                }
            }
            Err(e) if e.may_have_taken_effect() && self.intent_recorded => {
                self.keep("the failed call may have taken effect").await
            }
            Err(_) if self.inherited_intent => {
                self.keep("taken over with an intent: the earlier attempt may have acted")
                    .await
            }
            Err(_) => self.abandon().await,
        }
        result
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        if self.open {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            tracing::error!(claim = %self.key, "a held claim was dropped without being ended: it is kept until its deadline");
        }
    }
}
