//! The guarded step: the one sequence every mutating action goes through, written once.
//!
//! A function supplies what is new ([`Step`]: its decision, its call, and what to check when it
//! takes over an interrupted attempt); [`Guards::step`] does the rest, in this order, and none of
//! it can be left out:
//!
//! 1. Dry run: decide, audit what would be done (or the skip), and stop. Nothing is claimed.
//! 2. Claim the event. Completed before: a `duplicate` skip, audited, with what it returned then.
//! 3. Taken over with the intent an interrupted attempt recorded: take the lock (inheriting that
//!    attempt's), then [`Step::resume`] says what became of it: done (recorded as such, the lock
//!    settled), superseded (a skip), not yet (an error: the claim and the lock are kept for the
//!    next attempt), or untouched (on to 4, still holding the lock).
//! 4. [`Step::decide`]: observe and plan. A skip is audited and completes the claim.
//! 5. The lock (a plain lock, or a lease that settles into a cooldown): a cooldown met is a skip;
//!    a lock another live invocation holds past this one's time is retryable contention.
//! 6. [`Step::recheck`] under the lock: read again; a skip releases the lock.
//! 7. [`super::apply`]: the intent recorded on the claim, [`Step::call`], the lock settled (the
//!    cooldown), released (refused) or kept (may have taken effect). A failure that may have taken
//!    effect is checked with [`Step::confirm`]; a refusal may be a decision ([`Step::refused`]);
//!    whatever [`Step::recheck`] took is given back ([`Step::undo`]) when the call was refused or
//!    never made, or answered having changed nothing ([`Step::declined`]).
//! 8. [`Step::finish`] after the call (bookkeeping that needs the result).
//! 9. The claim ends: completed with the outcome, kept (may have taken effect) or given back.
//!
//! Every outcome but a failure is audited here; a failure is audited by the batch driver that
//! runs the step ([`crate::batch::Driver`]), once.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Claimed, Guards, HeldClaim, HeldLease, LeaseName, LeaseOutcome};
use crate::context::Invocation;
use crate::error::{CallError, FunctionError};
use crate::plan::Skip;
use crate::time::now_ms;

/// What keeps two invocations apart on a target while one acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// Nothing beyond the claim (the target is guarded elsewhere).
    None,
    /// A lock held while acting and released after it: held elsewhere is contention, never a
    /// skip.
    Lock(LeaseName),
    /// A lock held until `hold_until_ms` at least, then settled as a cooldown until the time
    /// [`Step::cooldown_until_ms`] gives: a cooldown met is a `cooldown` skip.
    Lease { name: LeaseName, hold_until_ms: i64 },
}

impl Lock {
    fn name(&self) -> Option<&LeaseName> {
        match self {
            Lock::None => None,
            Lock::Lock(name) | Lock::Lease { name, .. } => Some(name),
        }
    }
}

/// An action decided on: its target, and the intent recorded before the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Act<I> {
    pub target: String,
    pub intent: I,
}

/// What [`Step::decide`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<I> {
    Act(Act<I>),
    Skip(Skip),
}

/// What [`Step::recheck`] found under the lock: the intent to carry out (the same, or one planned
/// afresh), or a skip.
#[derive(Debug, Clone, PartialEq)]
pub enum Recheck<I> {
    Proceed(I),
    Skip(Skip),
}

/// A call that changed nothing and came to something else (k8s-rollout: a patch that met a
/// conflict and, read again, no longer rolls): the skip it stands for, or the error that brings
/// the delivery back ([`FunctionError::NotYet`]).
#[derive(Debug)]
pub enum Declined {
    Skip(Skip),
    NotYet(FunctionError),
}

/// What became of an interrupted attempt's recorded intent.
#[derive(Debug, Clone, PartialEq)]
pub enum Resumed<D> {
    /// It took effect: this is what it did.
    Done(D),
    /// Nothing of it is left to do (someone else changed the target since).
    Skip(Skip),
    /// Visibly untouched: decide afresh.
    Afresh,
}

/// What a step came to, as recorded on the claim (a duplicate delivery gets it back) and
/// returned to the function.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome<I, D> {
    /// The call was made, or an interrupted attempt's call was found made (`resumed`: `intent`
    /// is then that attempt's).
    Acted {
        target: String,
        intent: I,
        done: D,
        resumed: bool,
    },
    /// Dry run: what would be done.
    WouldAct { target: String, intent: I },
    /// Not acted on, and why.
    Skipped { skip: Skip },
    /// Handled before: what that delivery recorded.
    Duplicate { skip: Skip, previous: Value },
}

/// What a function supplies for one guarded action. Every method runs inside [`Guards::step`];
/// the ones with a default are the hooks a simple action does not need.
pub trait Step: Sync {
    /// Recorded on the claim before the call, and handed to whoever takes the claim over.
    type Intent: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// What the call returns, recorded on the claim.
    type Done: Serialize + Clone + Send + Sync;

    /// The audit action (`set_desired_capacity`).
    fn action(&self) -> &str;
    /// The target, as named before anything is read (a duplicate skip names it).
    fn target(&self) -> &str;
    /// The lock the action takes on its target.
    fn lock(&self, inv: &Invocation) -> Lock;

    /// When the target's cooldown ends once `intent` has taken effect (its lock is settled until
    /// then); now, for an action with no cooldown.
    fn cooldown_until_ms(&self, _intent: &Self::Intent) -> i64 {
        now_ms()
    }

    /// Observe and plan: the action, or why not.
    fn decide(
        &self,
        inv: &mut Invocation,
    ) -> impl Future<Output = Result<Decision<Self::Intent>, FunctionError>> + Send;

    /// A claim taken over with the intent an interrupted attempt recorded (the lock is held):
    /// what became of it. [`FunctionError::NotYet`] keeps the claim and the lock for the next
    /// attempt.
    fn resume(
        &self,
        inv: &mut Invocation,
        intent: Self::Intent,
    ) -> impl Future<Output = Result<Resumed<Self::Done>, FunctionError>> + Send;

    /// Under the lock, just before the call: read again, and carry out `intent` (or a fresh one),
    /// or skip. What it takes (a breaker) is given back by [`Step::undo`] if the call is refused
    /// or never made.
    fn recheck(
        &self,
        _inv: &mut Invocation,
        intent: Self::Intent,
    ) -> impl Future<Output = Result<Recheck<Self::Intent>, FunctionError>> + Send {
        async move { Ok(Recheck::Proceed(intent)) }
    }

    /// The mutating call.
    fn call(
        &self,
        intent: &Self::Intent,
    ) -> impl Future<Output = Result<Self::Done, CallError>> + Send;

    /// After a call that failed without a refusal: whether it took effect after all.
    fn confirm(
        &self,
        _intent: &Self::Intent,
    ) -> impl Future<Output = Result<Option<Self::Done>, CallError>> + Send {
        async { Ok(None) }
    }

    /// A refusal that is a decision rather than a failure: the skip it stands for.
    fn refused(&self, _intent: &Self::Intent, _e: &CallError) -> Option<Skip> {
        None
    }

    /// After a call that answered: whether it changed nothing after all and came to something
    /// else. Then the lock is released, [`Step::undo`] gives back what the re-check took, and the
    /// step ends with the skip or the error.
    fn declined(&self, _inv: &mut Invocation, _done: &Self::Done) -> Option<Declined> {
        None
    }

    /// Gives back what [`Step::recheck`] took, when the call was refused or never made.
    fn undo(&self, _intent: &Self::Intent) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// After a successful call: bookkeeping that needs its result. An error must say it acted
    /// ([`FunctionError::NotYet`] with `acted`): the call was made.
    fn finish(
        &self,
        _inv: &mut Invocation,
        _intent: &Self::Intent,
        done: Self::Done,
    ) -> impl Future<Output = Result<Self::Done, FunctionError>> + Send {
        async move { Ok(done) }
    }

    /// More for the audit records of this step (the alarm, the image).
    fn audit_details(&self) -> Value {
        json!({})
    }

    /// Whether the service itself answers a repeated request with what the first one made, as
    /// documented (CloudFront's `CallerReference`). Then no intent is recorded before the call (a
    /// takeover simply makes the same request), and a claim that cannot be marked done after a
    /// successful call does not fail the step (a duplicate delivery would only repeat the
    /// request, to the same effect).
    fn service_deduplicates(&self) -> bool {
        false
    }

    /// Whether the action goes on after the call (k8s-rollout watches the rollout its patch
    /// started): then [`Guards::begin`] hands the claim back still held, and the function ends it
    /// when the action concludes; a crash before that leaves the claim, with its intent, to a
    /// takeover.
    fn concludes_later(&self) -> bool {
        false
    }
}

/// What [`Guards::begin`] comes to: ended, or acted with the claim still held for the action to
/// conclude ([`HeldClaim::end`] with the conclusion).
#[derive(Debug)]
pub enum Begun<I, D> {
    Ended(Outcome<I, D>),
    Concluding {
        outcome: Outcome<I, D>,
        claim: HeldClaim,
    },
}

impl Guards {
    /// Runs `step` for the event `trigger`, claimed under `key`: see the module documentation.
    pub async fn step<S: Step>(
        &self,
        inv: &mut Invocation,
        trigger: &str,
        key: &str,
        step: &S,
    ) -> Result<Outcome<S::Intent, S::Done>, FunctionError> {
        match self.begin(inv, trigger, key, step).await? {
            Begun::Ended(outcome) => Ok(outcome),
            Begun::Concluding { outcome, claim } => claim.end(Ok(outcome)).await,
        }
    }

    /// [`Guards::step`] for an action that [`Step::concludes_later`]: when it acted, the claim
    /// comes back still held.
    pub async fn begin<S: Step>(
        &self,
        inv: &mut Invocation,
        trigger: &str,
        key: &str,
        step: &S,
    ) -> Result<Begun<S::Intent, S::Done>, FunctionError> {
        if inv.dry_run {
            return Ok(Begun::Ended(match step.decide(inv).await? {
                Decision::Skip(skip) => skipped(inv, step, trigger, skip),
                Decision::Act(act) => {
                    inv.applied(
                        step.action(),
                        &act.target,
                        trigger,
                        details(step, Some(&act.intent), None::<&S::Done>),
                    );
                    Outcome::WouldAct {
                        target: act.target,
                        intent: act.intent,
                    }
                }
            }));
        }
        let (mut claim, intent) = match self.claim_event(inv, key).await? {
            Claimed::Mine { claim, intent } => (claim, intent),
            Claimed::Done(previous) => {
                let skip = Skip::new(step.target(), "duplicate", "this event was already handled");
                inv.skipped(step.action(), trigger, &skip, step.audit_details());
                return Ok(Begun::Ended(Outcome::Duplicate { skip, previous }));
            }
        };
        let intent = intent.and_then(|raw| match serde_json::from_value::<S::Intent>(raw) {
            Ok(i) => Some(i),
            Err(e) => {
                // Nothing is done on it: decided afresh, as for a claim with no intent.
                tracing::warn!(error = %e, "the claim's recorded intent is not this step's: deciding afresh");
                None
            }
        });
        let outcome = self
            .step_claimed(inv, trigger, step, &mut claim, intent)
            .await;
        match outcome {
            Ok(outcome @ Outcome::Acted { .. }) if step.concludes_later() => {
                Ok(Begun::Concluding { outcome, claim })
            }
            Ok(done) if step.service_deduplicates() => {
                if let Err(e) = claim.complete(&json!(done)).await {
                    tracing::warn!(error = %e, target = %step.target(), "done; its claim could not be completed (the service deduplicates a repeated request)");
                }
                Ok(Begun::Ended(done))
            }
            outcome => claim.end(outcome).await.map(Begun::Ended),
        }
    }

    async fn step_claimed<S: Step>(
        &self,
        inv: &mut Invocation,
        trigger: &str,
        step: &S,
        claim: &mut HeldClaim,
        interrupted: Option<S::Intent>,
    ) -> Result<Outcome<S::Intent, S::Done>, FunctionError> {
        let lock = step.lock(inv);
        let previous_owner = claim.previous_owner().map(str::to_owned);
        // A takeover holds the lock before it reads: what it finds may need it kept or settled.
        let mut held = None;
        if let Some(intent) = interrupted {
            held = match self.take(inv, &lock, previous_owner.as_deref()).await? {
                Taken::Held(lease) => lease,
                Taken::Cooldown(skip) => return Ok(skipped(inv, step, trigger, skip)),
            };
            match step.resume(inv, intent.clone()).await {
                Ok(Resumed::Done(done)) => {
                    // Its cooldown may never have been settled: settle it now.
                    if let Some(lease) = held {
                        lease.settle(step.cooldown_until_ms(&intent)).await;
                    }
                    tracing::info!(target = %step.target(), "the interrupted attempt's action had taken effect");
                    inv.applied(
                        step.action(),
                        step.target(),
                        trigger,
                        details(step, Some(&intent), Some(&done)),
                    );
                    return Ok(Outcome::Acted {
                        target: step.target().to_string(),
                        intent,
                        done,
                        resumed: true,
                    });
                }
                Ok(Resumed::Skip(skip)) => {
                    release(held).await;
                    return Ok(skipped(inv, step, trigger, skip));
                }
                Ok(Resumed::Afresh) => {}
                Err(e) => {
                    // Not yet: the next attempt takes the claim over and inherits the lock.
                    if let Some(lease) = held {
                        lease.keep("the interrupted attempt's action is not settled yet");
                    }
                    return Err(e);
                }
            }
        }
        let act = match step.decide(inv).await {
            Ok(Decision::Act(act)) => act,
            Ok(Decision::Skip(skip)) => {
                release(held).await;
                return Ok(skipped(inv, step, trigger, skip));
            }
            // An earlier attempt may have acted and it does not show yet: the lock stays for the
            // next attempt, as on resume.
            Err(e) if e.may_have_taken_effect() => {
                if let Some(lease) = held {
                    lease.keep("an earlier attempt's action is not settled yet");
                }
                return Err(e);
            }
            Err(e) => {
                release(held).await;
                return Err(e);
            }
        };
        let lease = match held {
            Some(lease) => Some(lease),
            None => match self.take(inv, &lock, previous_owner.as_deref()).await? {
                Taken::Held(lease) => lease,
                Taken::Cooldown(skip) => return Ok(skipped(inv, step, trigger, skip)),
            },
        };
        let intent = match step.recheck(inv, act.intent).await {
            Ok(Recheck::Proceed(intent)) => intent,
            Ok(Recheck::Skip(skip)) => {
                release(lease).await;
                return Ok(skipped(inv, step, trigger, skip));
            }
            Err(e) => {
                release(lease).await;
                return Err(e);
            }
        };
        let recorded = match serde_json::to_value(&intent) {
            Ok(v) => v,
            Err(e) => {
                release(lease).await;
                step.undo(&intent).await;
                return Err(FunctionError::Serialize(e.to_string()));
            }
        };
        // Whether the call was made: a failure before it (recording the intent) changed nothing.
        let reached = std::sync::atomic::AtomicBool::new(false);
        let call = async {
            reached.store(true, std::sync::atomic::Ordering::SeqCst);
            step.call(&intent).await
        };
        let called = match lease {
            Some(lease) => {
                super::apply(
                    claim,
                    lease,
                    &recorded,
                    || step.cooldown_until_ms(&intent),
                    call,
                )
                .await
            }
            None if step.service_deduplicates() => call.await,
            None => match claim.record_intent(&recorded).await {
                Ok(()) => call.await,
                Err(e) => {
                    drop(call);
                    Err(e)
                }
            },
        };
        let done = match called {
            Ok(done) => done,
            Err(e) if !reached.load(std::sync::atomic::Ordering::SeqCst) => {
                // Never called: nothing happened, and what recheck took goes back.
                step.undo(&intent).await;
                return Err(e.into());
            }
            Err(e) if e.may_have_taken_effect() => match step.confirm(&intent).await {
                Ok(Some(done)) => {
                    // Found made: the lock kept for the uncertain call is not needed any more.
                    if let Some(name) = lock.name() {
                        self.release(name, &inv.request_id).await;
                    }
                    done
                }
                Ok(None) => return Err(e.into()),
                Err(look) => {
                    tracing::warn!(error = %look, "could not check whether the failed call took effect");
                    return Err(e.into());
                }
            },
            Err(e) => {
                step.undo(&intent).await;
                return match step.refused(&intent, &e) {
                    Some(skip) => Ok(skipped(inv, step, trigger, skip)),
                    None => Err(e.into()),
                };
            }
        };
        if let Some(declined) = step.declined(inv, &done) {
            // Nothing changed: the lock the call settled goes, and what the re-check took.
            if let Some(name) = lock.name() {
                self.release(name, &inv.request_id).await;
            }
            step.undo(&intent).await;
            return match declined {
                Declined::Skip(skip) => Ok(skipped(inv, step, trigger, skip)),
                Declined::NotYet(e) => Err(e),
            };
        }
        let done = step.finish(inv, &intent, done).await?;
        inv.applied(
            step.action(),
            &act.target,
            trigger,
            details(step, Some(&intent), Some(&done)),
        );
        Ok(Outcome::Acted {
            target: act.target,
            intent,
            done,
            resumed: false,
        })
    }

    /// Takes `lock` for this invocation (inheriting `previous_owner`'s): held, none needed, or
    /// the cooldown skip; contention is the error.
    async fn take(
        &self,
        inv: &Invocation,
        lock: &Lock,
        previous_owner: Option<&str>,
    ) -> Result<Taken, FunctionError> {
        match lock {
            Lock::None => Ok(Taken::Held(None)),
            Lock::Lock(name) => Ok(Taken::Held(Some(
                self.lock(inv, name, inv.deadline_ms, previous_owner)
                    .await?,
            ))),
            Lock::Lease {
                name,
                hold_until_ms,
            } => match self
                .lease(inv, name, *hold_until_ms, previous_owner)
                .await?
            {
                LeaseOutcome::Acquired(lease) => Ok(Taken::Held(Some(lease))),
                LeaseOutcome::Cooldown { holder, until_ms } => Ok(Taken::Cooldown(Skip::new(
                    name.as_str(),
                    "cooldown",
                    format!(
                        "acted on by another invocation ({holder}); cooling down for {} s more",
                        (until_ms - now_ms() + 999).max(0) / 1000
                    ),
                ))),
                LeaseOutcome::Contended { holder, until_ms } => {
                    Err(FunctionError::LeaseContention {
                        lease: name.to_string(),
                        holder,
                        until_ms,
                    })
                }
            },
        }
    }
}

/// A lock taken (or none needed), or the cooldown met instead.
enum Taken {
    Held(Option<HeldLease>),
    Cooldown(Skip),
}

async fn release(lease: Option<HeldLease>) {
    if let Some(lease) = lease {
        lease.release().await;
    }
}

fn skipped<S: Step>(
    inv: &mut Invocation,
    step: &S,
    trigger: &str,
    skip: Skip,
) -> Outcome<S::Intent, S::Done> {
    let mut details = step.audit_details();
    if let Value::Object(map) = &mut details {
        map.insert("detail".into(), json!(skip.detail));
    }
    inv.skipped(step.action(), trigger, &skip, details);
    Outcome::Skipped { skip }
}

fn details<S: Step>(step: &S, intent: Option<&S::Intent>, done: Option<&S::Done>) -> Value {
    let mut d = step.audit_details();
    if let Value::Object(map) = &mut d {
        if let Some(i) = intent {
            map.insert("intent".into(), json!(i));
        }
        if let Some(done) = done {
            map.insert("done".into(), json!(done));
        }
    }
    d
}
