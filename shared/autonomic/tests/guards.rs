//! The typed guards (claims and leases as values) against a real DynamoDB API (moto over HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::time::Duration;

use autonomic::guard::{
    self, ClaimOutcome, Guards, HeldClaim, LeaseKind, LeaseName, LeaseOutcome, StateTable,
};
use autonomic::time::now_ms;
use autonomic::{CallError, ErrorClass, FunctionError};
use autonomic_testkit::{hold_lease, invocation, state_table};
use serde_json::json;

const DAY: Duration = Duration::from_secs(86_400);
const SCOPE: &str = "guards-test";
const MINUTE: Duration = Duration::from_secs(60);

async fn guards() -> Guards {
    Guards::new(state_table("guards-test").await, SCOPE, DAY)
}

fn fresh(outcome: ClaimOutcome) -> HeldClaim {
    match outcome {
        ClaimOutcome::Fresh(c) => c,
        other => panic!("expected a fresh claim, got {other:?}"),
    }
}

fn acquired(outcome: LeaseOutcome) -> guard::HeldLease {
    match outcome {
        LeaseOutcome::Acquired(l) => l,
        other => panic!("expected the lease, got {other:?}"),
    }
}

fn throttled() -> FunctionError {
    FunctionError::Call(CallError::new(
        "autoscaling",
        "SetDesiredCapacity",
        "Throttling",
        "Rate exceeded",
        ErrorClass::Retryable,
    ))
}

#[tokio::test]
async fn a_claim_kept_after_an_ambiguous_failure_is_taken_over_with_its_intent() {
    let g = guards().await;
    let first = invocation("t", "first", MINUTE);
    let mut claim = fresh(g.claim(&first, "transition-1").await.unwrap());
    let intent = json!({"group": "web", "from": 2, "to": 4});
    claim.record_intent(&intent).await.unwrap();
    // Throttling may come after the change was made: the claim is kept, intent and all.
    assert!(claim.end::<()>(Err(throttled())).await.is_err());
    let retry = invocation("t", "retry", MINUTE);
    match g.claim(&retry, "transition-1").await.unwrap() {
        ClaimOutcome::TakenOver { claim, intent: got } => {
            assert_eq!(got, Some(intent));
            assert_eq!(claim.previous_owner(), Some("first"));
            claim.complete(&json!({"done": true})).await.unwrap();
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
    let third = invocation("t", "third", MINUTE);
    assert!(matches!(
        g.claim(&third, "transition-1").await.unwrap(),
        ClaimOutcome::Completed(v) if v == json!({"done": true})
    ));
}

#[tokio::test]
async fn a_claim_whose_owner_died_is_taken_over_only_after_its_deadline() {
    let g = guards().await;
    let dying = invocation("t", "dying", Duration::from_millis(1500));
    let mut claim = fresh(g.claim(&dying, "k").await.unwrap());
    claim.record_intent(&json!({"to": 3})).await.unwrap();
    // The owner dies: the claim is never ended. Dropping it is counted and logged.
    let before = guard::dropped_unsettled();
    drop(claim);
    assert!(guard::dropped_unsettled() > before);
    let retry = invocation("t", "retry", MINUTE);
    assert!(matches!(
        g.claim(&retry, "k").await.unwrap(),
        ClaimOutcome::InProgress { owner, .. } if owner == "dying"
    ));
    while now_ms() <= dying.deadline_ms {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match g.claim(&retry, "k").await.unwrap() {
        ClaimOutcome::TakenOver { claim, intent } => {
            assert_eq!(intent, Some(json!({"to": 3})));
            claim.abandon().await;
        }
        other => panic!("expected a takeover, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failure_that_took_no_effect_gives_the_claim_back_at_once() {
    let g = guards().await;
    let first = invocation("t", "first", MINUTE);
    let claim = fresh(g.claim(&first, "k").await.unwrap());
    let ended = claim
        .end::<()>(Err(FunctionError::NotFound {
            what: "group",
            name: "web".into(),
        }))
        .await;
    assert_eq!(
        ended.unwrap_err().code(),
        "NotFound",
        "the error is handed back as it was"
    );
    let retry = invocation("t", "retry", MINUTE);
    fresh(g.claim(&retry, "k").await.unwrap()).abandon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_claimers_one_winner() {
    let g = guards().await;
    let tries = ["a", "b"].map(|who| {
        let g = g.clone();
        tokio::spawn(async move {
            let inv = invocation("t", who, MINUTE);
            match g.claim(&inv, "same").await.unwrap() {
                ClaimOutcome::Fresh(c) => {
                    c.complete(&json!(who)).await.unwrap();
                    true
                }
                ClaimOutcome::InProgress { .. } | ClaimOutcome::Completed(_) => false,
                other => panic!("{other:?}"),
            }
        })
    });
    let mut winners = 0;
    for t in tries {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn a_lease_settled_as_a_cooldown_blocks_until_it_ends() {
    let g = guards().await;
    let name = LeaseName::new("test-group", "web");
    let a = invocation("t", "a", MINUTE);
    let lease = acquired(g.lease(&a, &name, a.deadline_ms, None).await.unwrap());
    let cooldown_end = now_ms() + 1_500;
    lease.settle(cooldown_end).await;
    let b = invocation("t", "b", MINUTE);
    // A cooldown is not waited for: it is reported, at once.
    match g.lease(&b, &name, b.deadline_ms, None).await.unwrap() {
        LeaseOutcome::Cooldown { holder, until_ms } => {
            assert_eq!((holder.as_str(), until_ms), ("a", cooldown_end));
        }
        other => panic!("expected a cooldown, got {other:?}"),
    }
    while now_ms() < cooldown_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    acquired(g.lease(&b, &name, b.deadline_ms, None).await.unwrap())
        .release()
        .await;
}

#[tokio::test]
async fn a_released_lease_can_be_taken_at_once() {
    let g = guards().await;
    let name = LeaseName::new("test-group", "web");
    let a = invocation("t", "a", MINUTE);
    acquired(g.lease(&a, &name, a.deadline_ms, None).await.unwrap())
        .release()
        .await;
    let b = invocation("t", "b", MINUTE);
    let started = now_ms();
    let lease = acquired(g.lease(&b, &name, b.deadline_ms, None).await.unwrap());
    assert!(now_ms() - started < 1_000, "no wait for a released lease");
    lease.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_live_invocation_is_waited_for_not_skipped() {
    let g = guards().await;
    let name = LeaseName::new("test-group", "web");
    let lock = hold_lease(&g, &name, "holder").await;
    let waiter = {
        let g = g.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let inv = invocation("t", "waiter", MINUTE);
            g.lease(&inv, &name, inv.deadline_ms, None).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!waiter.is_finished(), "the waiter waits for the live lock");
    // The holder did nothing (it was superseded): the waiter gets the lease.
    lock.release().await;
    acquired(waiter.await.unwrap()).release().await;
}

#[tokio::test]
async fn a_lock_outliving_the_invocation_is_contention_not_a_cooldown() {
    let g = guards().await;
    let name = LeaseName::new("test-group", "web");
    let lock = hold_lease(&g, &name, "holder").await;
    // Too little time left to wait: contention, which the handler turns into a retryable error.
    let late = invocation("t", "late", Duration::from_secs(5));
    assert!(matches!(
        g.lease(&late, &name, late.deadline_ms, None).await.unwrap(),
        LeaseOutcome::Contended { holder, .. } if holder == "holder"
    ));
    lock.keep("test");
    let record = g.read_lease(&name).await.unwrap().unwrap();
    assert_eq!(record.kind, LeaseKind::Lock);
}

#[tokio::test]
async fn a_takeover_inherits_the_lock_of_the_attempt_it_took_over() {
    let g = guards().await;
    let name = LeaseName::new("test-group", "web");
    let dead = invocation("t", "dead", MINUTE);
    let lock = acquired(
        g.lease(&dead, &name, now_ms() + 600_000, None)
            .await
            .unwrap(),
    );
    lock.keep("the call may have taken effect");
    let retry = invocation("t", "retry", MINUTE);
    let lease = acquired(
        g.lease(&retry, &name, retry.deadline_ms, Some("dead"))
            .await
            .unwrap(),
    );
    lease.release().await;
}

#[tokio::test]
async fn apply_settles_releases_or_keeps_the_lease_by_what_the_call_said() {
    let table: StateTable = state_table("guards-test").await;
    let g = Guards::new(table.clone(), SCOPE, DAY);
    let name = LeaseName::new("test-group", "web");
    for (result, kind_after) in [
        (Ok(()), Some(LeaseKind::Cooldown)),
        (
            Err(CallError::new(
                "x",
                "Op",
                "ValidationError",
                "no",
                ErrorClass::Permanent,
            )),
            None,
        ),
        (
            Err(CallError::new(
                "x",
                "Op",
                "Timeout",
                "?",
                ErrorClass::Retryable,
            )),
            Some(LeaseKind::Lock),
        ),
    ] {
        table.release_lease(name.as_str(), "inv").await.unwrap();
        let inv = invocation("t", "inv", MINUTE);
        let mut claim = fresh(g.claim(&inv, &format!("{kind_after:?}")).await.unwrap());
        let lease = acquired(g.lease(&inv, &name, inv.deadline_ms, None).await.unwrap());
        let r = guard::apply(
            &mut claim,
            lease,
            &json!({"to": 1}),
            || now_ms() + 60_000,
            async { result.clone() },
        )
        .await;
        assert_eq!(r, result);
        let after = table.read_lease(name.as_str()).await.unwrap();
        assert_eq!(after.map(|l| l.kind), kind_after, "{result:?}");
        let _ended = claim
            .end(r.map(|()| json!(null)).map_err(FunctionError::from))
            .await;
    }
}

/// Work done whose claim cannot be marked completed (here: it expired and another invocation took
/// it over) is not reported as done: the invocation fails retryably, so the retry finishes the
/// bookkeeping, instead of the failure being only logged.
#[tokio::test]
async fn a_claim_that_cannot_be_completed_fails_the_invocation_retryably() {
    let g = guards().await;
    let first = invocation("t", "first", Duration::from_millis(1));
    let claim = fresh(g.claim(&first, "done-unrecorded").await.unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let retry = invocation("t", "retry", MINUTE);
    let taken = match g.claim(&retry, "done-unrecorded").await.unwrap() {
        ClaimOutcome::TakenOver { claim, .. } => claim,
        other => panic!("expected a takeover, got {other:?}"),
    };
    let e = claim.end(Ok(json!({"done": true}))).await.unwrap_err();
    assert_eq!(e.error_type(), "Retryable.ClaimNotCompleted", "{e}");
    assert!(e.may_have_taken_effect(), "the work was done");
    // The one who holds it now completes it; a duplicate then sees that result.
    assert_eq!(
        taken
            .end(Ok(json!({"done": "by the retry"})))
            .await
            .unwrap(),
        json!({"done": "by the retry"})
    );
    let later = invocation("t", "later", MINUTE);
    match g.claim(&later, "done-unrecorded").await.unwrap() {
        ClaimOutcome::Completed(result) => assert_eq!(result, json!({"done": "by the retry"})),
        other => panic!("expected the completed result, got {other:?}"),
    }
}
