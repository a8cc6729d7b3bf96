//! The guarded step, each of its paths once, against the real state table (moto over HTTP), with
//! a small stand-in target: a dial set to a number. Every function's action is one of these
//! paths; the functions' own tests show them on their real targets.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autonomic::guard::{
    Act, Begun, ClaimOutcome, Decision, Declined, Guards, LeaseName, Lock, Outcome, Recheck,
    Resumed, Step,
};
use autonomic::time::now_ms;
use autonomic::{CallError, ErrorClass, FunctionError, Invocation, Skip};
use autonomic_testkit::{hold_lease, invocation, state_table, unique};
use serde::{Deserialize, Serialize};

const DAY: Duration = Duration::from_secs(86_400);
const MINUTE: Duration = Duration::from_secs(60);

/// The target: a number, and how often it was set.
#[derive(Clone, Default)]
struct Dial {
    value: Arc<Mutex<i64>>,
    calls: Arc<AtomicUsize>,
    undone: Arc<AtomicUsize>,
}

impl Dial {
    fn value(&self) -> i64 {
        *self.value.lock().unwrap()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SetTo {
    from: i64,
    to: i64,
}

/// Setting the dial to `to`, with whatever the path under test needs.
struct SetDial {
    dial: Dial,
    to: i64,
    lock: LeaseName,
    /// A plain lock instead of a lease that settles into a cooldown.
    plain_lock: bool,
    /// The call fails with this; `acts` says whether it set the dial first.
    fault: Option<(CallError, bool)>,
    decide_skip: bool,
    recheck_skip: bool,
    refusal_is_a_decision: bool,
    confirm: bool,
    resume_not_yet: bool,
    concludes_later: bool,
    /// The call answers having changed nothing (and comes to a skip).
    declines: bool,
}

impl SetDial {
    fn new(dial: &Dial, to: i64) -> Self {
        SetDial {
            dial: dial.clone(),
            to,
            lock: LeaseName::new("dial", &unique("d")),
            plain_lock: false,
            fault: None,
            decide_skip: false,
            recheck_skip: false,
            refusal_is_a_decision: false,
            confirm: false,
            resume_not_yet: false,
            concludes_later: false,
            declines: false,
        }
    }
}

impl Step for SetDial {
    type Intent = SetTo;
    type Done = i64;

    fn action(&self) -> &str {
        "set_dial"
    }

    fn target(&self) -> &str {
        "dial"
    }

    fn lock(&self, inv: &Invocation) -> Lock {
        if self.plain_lock {
            Lock::Lock(self.lock.clone())
        } else {
            Lock::Lease {
                name: self.lock.clone(),
                hold_until_ms: inv.deadline_ms,
            }
        }
    }

    fn cooldown_until_ms(&self, _intent: &SetTo) -> i64 {
        now_ms() + 60_000
    }

    async fn decide(&self, _inv: &mut Invocation) -> Result<Decision<SetTo>, FunctionError> {
        let from = self.dial.value();
        if self.decide_skip || from == self.to {
            return Ok(Decision::Skip(Skip::new(
                "dial",
                "at_value",
                "nothing to do",
            )));
        }
        Ok(Decision::Act(Act {
            target: "dial".into(),
            intent: SetTo { from, to: self.to },
        }))
    }

    async fn resume(
        &self,
        _inv: &mut Invocation,
        intent: SetTo,
    ) -> Result<Resumed<i64>, FunctionError> {
        if self.resume_not_yet {
            return Err(FunctionError::NotYet {
                code: "NotSettled".into(),
                detail: "the interrupted call does not show yet".into(),
                acted: true,
            });
        }
        let now = self.dial.value();
        Ok(if now == intent.to {
            Resumed::Done(now)
        } else if now != intent.from {
            Resumed::Skip(Skip::new("dial", "superseded", "moved since"))
        } else {
            Resumed::Afresh
        })
    }

    async fn recheck(
        &self,
        _inv: &mut Invocation,
        intent: SetTo,
    ) -> Result<Recheck<SetTo>, FunctionError> {
        if self.recheck_skip {
            return Ok(Recheck::Skip(Skip::new(
                "dial",
                "moved",
                "moved while locking",
            )));
        }
        Ok(Recheck::Proceed(intent))
    }

    async fn call(&self, intent: &SetTo) -> Result<i64, CallError> {
        self.dial.calls.fetch_add(1, Ordering::SeqCst);
        if let Some((e, acts)) = &self.fault {
            if *acts {
                *self.dial.value.lock().unwrap() = intent.to;
            }
            return Err(e.clone());
        }
        if self.declines {
            return Ok(self.dial.value());
        }
        *self.dial.value.lock().unwrap() = intent.to;
        Ok(intent.to)
    }

    fn declined(&self, _inv: &mut Invocation, done: &i64) -> Option<Declined> {
        (self.declines && *done != self.to).then(|| {
            Declined::Skip(Skip::new(
                "dial",
                "moved_meanwhile",
                "nothing to change now",
            ))
        })
    }

    async fn confirm(&self, intent: &SetTo) -> Result<Option<i64>, CallError> {
        Ok((self.confirm && self.dial.value() == intent.to).then_some(intent.to))
    }

    fn refused(&self, _intent: &SetTo, e: &CallError) -> Option<Skip> {
        self.refusal_is_a_decision
            .then(|| Skip::new("dial", "refused", e.to_string()))
    }

    async fn undo(&self, _intent: &SetTo) {
        self.dial.undone.fetch_add(1, Ordering::SeqCst);
    }

    fn concludes_later(&self) -> bool {
        self.concludes_later
    }
}

async fn guards() -> Guards {
    Guards::new(state_table("step-test").await, "step-test", DAY)
}

fn refused() -> CallError {
    CallError::new(
        "dial",
        "Set",
        "ValidationError",
        "no",
        ErrorClass::Permanent,
    )
}

fn timeout() -> CallError {
    CallError::new("dial", "Set", "Timeout", "lost", ErrorClass::Retryable)
}

fn reason<I, D>(o: &Outcome<I, D>) -> &str {
    match o {
        Outcome::Skipped { skip } | Outcome::Duplicate { skip, .. } => &skip.reason,
        Outcome::Acted { .. } => "acted",
        Outcome::WouldAct { .. } => "would_act",
    }
}

async fn run(
    g: &Guards,
    who: &str,
    key: &str,
    step: &SetDial,
) -> Result<Outcome<SetTo, i64>, FunctionError> {
    let mut inv = invocation("t", who, MINUTE);
    g.step(&mut inv, "event", key, step).await
}

#[tokio::test]
async fn dry_run_plans_and_changes_nothing() {
    let g = guards().await;
    let dial = Dial::default();
    let (reporter, audit) = autonomic::audit::Reporter::in_memory("t");
    let mut inv = Invocation::new(&reporter, "dry", now_ms() + 60_000, true);
    let o = g
        .step(&mut inv, "e", "k", &SetDial::new(&dial, 4))
        .await
        .unwrap();
    assert_eq!(
        o,
        Outcome::WouldAct {
            target: "dial".into(),
            intent: SetTo { from: 0, to: 4 }
        }
    );
    assert_eq!((dial.value(), dial.calls.load(Ordering::SeqCst)), (0, 0));
    assert!(audit.lock().unwrap()[0].contains("dry_run"));
    // Nothing was claimed: the real run acts.
    assert_eq!(
        reason(&run(&g, "real", "k", &SetDial::new(&dial, 4)).await.unwrap()),
        "acted"
    );
}

#[tokio::test]
async fn acts_once_settles_the_cooldown_and_a_duplicate_gets_the_recorded_outcome() {
    let g = guards().await;
    let dial = Dial::default();
    let step = SetDial::new(&dial, 4);
    let o = run(&g, "first", "k", &step).await.unwrap();
    assert!(
        matches!(
            &o,
            Outcome::Acted {
                done: 4,
                resumed: false,
                ..
            }
        ),
        "{o:?}"
    );
    let again = run(&g, "again", "k", &step).await.unwrap();
    let Outcome::Duplicate { previous, .. } = &again else {
        panic!("{again:?}")
    };
    assert_eq!(previous["outcome"], "acted");
    assert_eq!(previous["intent"]["to"], 4);
    // Another event on the same target meets the cooldown the first one settled.
    let mut other = SetDial::new(&dial, 6);
    other.lock = step.lock.clone();
    assert_eq!(
        reason(&run(&g, "other", "k2", &other).await.unwrap()),
        "cooldown"
    );
    assert_eq!(dial.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_decided_skip_completes_the_claim() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.decide_skip = true;
    assert_eq!(reason(&run(&g, "a", "k", &step).await.unwrap()), "at_value");
    step.decide_skip = false;
    assert_eq!(
        reason(&run(&g, "b", "k", &step).await.unwrap()),
        "duplicate"
    );
    assert_eq!(dial.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_lock_a_live_invocation_holds_is_contention_and_the_claim_goes_back() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.plain_lock = true;
    let other = hold_lease(&g, &step.lock, "other").await;
    let (reporter, _) = autonomic::audit::Reporter::in_memory("t");
    // Little time: the wait for the lock gives up inside it.
    let mut inv = Invocation::new(&reporter, "short", now_ms() + 13_000, false);
    let e = g.step(&mut inv, "e", "k", &step).await.unwrap_err();
    assert_eq!(e.error_type(), "Retryable.LeaseContention");
    other.release().await;
    assert_eq!(
        reason(&run(&g, "retry", "k", &step).await.unwrap()),
        "acted"
    );
}

#[tokio::test]
async fn a_recheck_skip_releases_the_lock() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.recheck_skip = true;
    assert_eq!(reason(&run(&g, "a", "k", &step).await.unwrap()), "moved");
    let mut next = SetDial::new(&dial, 4);
    next.lock = step.lock.clone();
    assert_eq!(
        reason(&run(&g, "b", "k2", &next).await.unwrap()),
        "acted",
        "no cooldown left"
    );
}

#[tokio::test]
async fn a_refusal_gives_back_the_lock_the_claim_and_what_recheck_took() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.fault = Some((refused(), false));
    let e = run(&g, "a", "k", &step).await.unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ValidationError");
    assert_eq!(dial.undone.load(Ordering::SeqCst), 1);
    step.fault = None;
    assert_eq!(reason(&run(&g, "b", "k", &step).await.unwrap()), "acted");
    // A refusal that is a decision is a skip.
    let mut decided = SetDial::new(&dial, 7);
    decided.fault = Some((refused(), false));
    decided.refusal_is_a_decision = true;
    assert_eq!(
        reason(&run(&g, "c", "k3", &decided).await.unwrap()),
        "refused"
    );
}

#[tokio::test]
async fn an_uncertain_failure_found_made_is_acted() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.fault = Some((timeout(), true));
    step.confirm = true;
    let o = run(&g, "a", "k", &step).await.unwrap();
    assert!(matches!(o, Outcome::Acted { done: 4, .. }), "{o:?}");
    assert_eq!(dial.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_uncertain_failure_is_resumed_by_the_takeover_never_made_twice() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.fault = Some((timeout(), true));
    let e = run(&g, "a", "k", &step).await.unwrap_err();
    assert!(e.may_have_taken_effect());
    step.fault = None;
    let o = run(&g, "b", "k", &step).await.unwrap();
    assert!(
        matches!(
            o,
            Outcome::Acted {
                resumed: true,
                done: 4,
                ..
            }
        ),
        "{o:?}"
    );
    assert_eq!(
        dial.calls.load(Ordering::SeqCst),
        1,
        "found made, not made again"
    );
}

#[tokio::test]
async fn a_takeover_of_an_untouched_intent_acts_and_of_a_moved_target_is_superseded() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.fault = Some((timeout(), false));
    run(&g, "a", "k", &step).await.unwrap_err();
    step.fault = None;
    let o = run(&g, "b", "k", &step).await.unwrap();
    assert!(matches!(o, Outcome::Acted { resumed: false, .. }), "{o:?}");
    assert_eq!((dial.value(), dial.calls.load(Ordering::SeqCst)), (4, 2));
    // Interrupted again; someone else moves the dial meanwhile.
    let mut step = SetDial::new(&dial, 8);
    step.fault = Some((timeout(), false));
    run(&g, "c", "k2", &step).await.unwrap_err();
    *dial.value.lock().unwrap() = 5;
    step.fault = None;
    assert_eq!(
        reason(&run(&g, "d", "k2", &step).await.unwrap()),
        "superseded"
    );
    assert_eq!(dial.value(), 5);
}

#[tokio::test]
async fn not_yet_on_resume_keeps_the_claim_and_the_lock_for_the_next_attempt() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.plain_lock = true;
    step.fault = Some((timeout(), true));
    run(&g, "a", "k", &step).await.unwrap_err();
    step.resume_not_yet = true;
    let e = run(&g, "b", "k", &step).await.unwrap_err();
    assert_eq!(e.error_type(), "Retryable.NotSettled");
    // The next attempt takes the claim over from "b" with the intent, and inherits its lock.
    let inv = invocation("t", "c", MINUTE);
    match g.claim(&inv, "k").await.unwrap() {
        ClaimOutcome::TakenOver { claim, intent } => {
            assert_eq!(claim.previous_owner(), Some("b"));
            assert_eq!(intent.unwrap()["to"], 4);
            let lease = g
                .lock(&inv, &step.lock, inv.deadline_ms, Some("b"))
                .await
                .unwrap();
            lease.release().await;
            claim.abandon().await;
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
}

#[tokio::test]
async fn an_action_that_concludes_later_keeps_its_claim_until_it_does() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.concludes_later = true;
    let mut inv = invocation("t", "a", MINUTE);
    let Begun::Concluding { outcome, claim } = g.begin(&mut inv, "e", "k", &step).await.unwrap()
    else {
        panic!("expected the claim back")
    };
    assert!(matches!(outcome, Outcome::Acted { done: 4, .. }));
    // Still held while it concludes: another delivery meets it in progress.
    let e = run(&g, "b", "k", &step).await.unwrap_err();
    assert_eq!(e.error_type(), "Retryable.InProgress");
    // Concluded: a duplicate gets the conclusion.
    claim
        .end(Ok(serde_json::json!({"verified": true})))
        .await
        .unwrap();
    match run(&g, "c", "k", &step).await.unwrap() {
        Outcome::Duplicate { previous, .. } => assert_eq!(previous["verified"], true),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_that_changed_nothing_is_its_skip_and_gives_everything_back() {
    let g = guards().await;
    let dial = Dial::default();
    let mut step = SetDial::new(&dial, 4);
    step.declines = true;
    assert_eq!(
        reason(&run(&g, "a", "k", &step).await.unwrap()),
        "moved_meanwhile"
    );
    assert_eq!(
        dial.undone.load(Ordering::SeqCst),
        1,
        "what the re-check took goes back"
    );
    // No cooldown was settled: the next event on the target acts.
    let mut next = SetDial::new(&dial, 4);
    next.lock = step.lock.clone();
    assert_eq!(reason(&run(&g, "b", "k2", &next).await.unwrap()), "acted");
    // And the declined event's claim is done: its redelivery is a duplicate.
    assert_eq!(
        reason(&run(&g, "c", "k", &step).await.unwrap()),
        "duplicate"
    );
}
