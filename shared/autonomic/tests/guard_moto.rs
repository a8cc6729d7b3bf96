//! Idempotency claims and leases against a real DynamoDB API (moto server over HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::time::Duration;

use autonomic::guard::{Claim, Lease, StateTable};
use autonomic_testkit::{Moto, create_state_table, unique};
use serde_json::json;

const DAY: Duration = Duration::from_secs(86_400);
const NOW: i64 = 1_800_000_000_000;

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

async fn table() -> StateTable {
    let config = Moto::shared().sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("state");
    create_state_table(&client, &name).await;
    StateTable::new(client, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_claims_of_one_key_give_one_winner() {
    let table = table().await;
    let claims = (0..10).map(|i| {
        let table = table.clone();
        tokio::spawn(async move {
            table
                .claim(
                    "test",
                    "transition-1",
                    &format!("owner-{i}"),
                    NOW,
                    NOW + 30_000,
                    DAY,
                )
                .await
                .unwrap()
        })
    });
    let results: Vec<Claim> = futures_join(claims).await;
    let winners = results.iter().filter(|c| **c == Claim::Claimed).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|c| matches!(c, Claim::Claimed | Claim::InProgress { .. })),
        "{results:?}"
    );
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_expired_in_progress_claim_can_be_taken_over() {
    let table = table().await;
    assert_eq!(
        table
            .claim("t", "k", "crashed", NOW, NOW + 1_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    // Before the holder's deadline: in progress.
    assert_eq!(
        table
            .claim("t", "k", "retry", NOW + 500, NOW + 10_000, DAY)
            .await
            .unwrap(),
        Claim::InProgress {
            owner: "crashed".into(),
            until_ms: NOW + 1_000
        }
    );
    // After it: the retry takes over, and the crashed owner can no longer complete.
    assert_eq!(
        table
            .claim("t", "k", "retry", NOW + 1_001, NOW + 10_000, DAY)
            .await
            .unwrap(),
        Claim::TakenOver {
            intent: None,
            previous_owner: "crashed".into()
        }
    );
    let late = table
        .complete(
            "t",
            "k",
            "crashed",
            &json!({"late": true}),
            NOW + 2_000,
            DAY,
        )
        .await;
    assert!(late.is_err(), "a lost claim must not complete");
}

#[tokio::test]
async fn a_completed_claim_returns_the_stored_result() {
    let table = table().await;
    assert_eq!(
        table
            .claim("t", "k", "a", NOW, NOW + 1_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let result = json!({"group": "web", "from": 2, "to": 4});
    table
        .complete("t", "k", "a", &result, NOW + 10, DAY)
        .await
        .unwrap();
    // Long after the in-progress deadline, a duplicate still sees the result, not a new claim.
    assert_eq!(
        table
            .claim("t", "k", "b", NOW + 60_000, NOW + 90_000, DAY)
            .await
            .unwrap(),
        Claim::Completed(result)
    );
}

#[tokio::test]
async fn an_abandoned_claim_can_be_claimed_again_at_once() {
    let table = table().await;
    assert_eq!(
        table
            .claim("t", "k", "a", NOW, NOW + 60_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    table.abandon("t", "k", "a").await.unwrap();
    assert_eq!(
        table
            .claim("t", "k", "b", NOW + 1, NOW + 60_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    // Abandoning someone else's claim does nothing.
    table.abandon("t", "k", "a").await.unwrap();
    assert!(matches!(
        table
            .claim("t", "k", "c", NOW + 2, NOW + 60_000, DAY)
            .await
            .unwrap(),
        Claim::InProgress { .. }
    ));
}

#[tokio::test]
async fn a_completed_claim_past_its_retention_is_claimable() {
    let table = table().await;
    let one_second = Duration::from_secs(1);
    table
        .claim("t", "k", "a", NOW, NOW + 100, one_second)
        .await
        .unwrap();
    table
        .complete("t", "k", "a", &json!(1), NOW, one_second)
        .await
        .unwrap();
    // moto does not enforce TTL; the condition must treat an expired item as gone.
    assert_eq!(
        table
            .claim("t", "k", "b", NOW + 5_000, NOW + 6_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_has_one_holder_until_it_expires() {
    let table = table().await;
    let window = Duration::from_secs(300);
    let tries = (0..10).map(|i| {
        let table = table.clone();
        tokio::spawn(async move {
            table
                .acquire_lease("asg/web", &format!("h{i}"), NOW, NOW + ms(window), None)
                .await
                .unwrap()
        })
    });
    let results = futures_join(tries).await;
    let acquired = results
        .iter()
        .filter(|l| matches!(l, Lease::Acquired { .. }))
        .count();
    assert_eq!(acquired, 1, "{results:?}");

    // Inside the window: held. At its end: free again.
    assert!(matches!(
        table.acquire_lease("asg/web", "late", NOW + 299_999, NOW + 299_999 + ms(window), None).await.unwrap(),
        Lease::Held { until_ms, .. } if until_ms == NOW + 300_000
    ));
    assert_eq!(
        table
            .acquire_lease(
                "asg/web",
                "later",
                NOW + 300_000,
                NOW + 300_000 + ms(window),
                None
            )
            .await
            .unwrap(),
        Lease::Acquired {
            until_ms: NOW + 600_000
        }
    );
}

#[tokio::test]
async fn a_released_lease_is_free_and_only_its_holder_can_release_it() {
    let table = table().await;
    let w = Duration::from_secs(60);
    assert!(matches!(
        table
            .acquire_lease("l", "a", NOW, NOW + ms(w), None)
            .await
            .unwrap(),
        Lease::Acquired { .. }
    ));
    table.release_lease("l", "someone-else").await.unwrap();
    assert!(matches!(
        table
            .acquire_lease("l", "b", NOW, NOW + ms(w), None)
            .await
            .unwrap(),
        Lease::Held { .. }
    ));
    table.release_lease("l", "a").await.unwrap();
    assert!(matches!(
        table
            .acquire_lease("l", "b", NOW, NOW + ms(w), None)
            .await
            .unwrap(),
        Lease::Acquired { .. }
    ));
    assert_eq!(
        table.read_lease("l").await.unwrap().map(|l| l.holder),
        Some("b".to_string())
    );
}

#[tokio::test]
async fn a_watermark_only_rises() {
    let table = table().await;
    assert_eq!(table.read_watermark("alarm").await.unwrap(), None);
    assert!(table.advance_watermark("alarm", 100, 0).await.unwrap());
    assert!(!table.advance_watermark("alarm", 50, 0).await.unwrap());
    assert!(table.advance_watermark("alarm", 100, 0).await.unwrap());
    assert!(table.advance_watermark("alarm", 101, 0).await.unwrap());
    assert_eq!(table.read_watermark("alarm").await.unwrap(), Some(101));
}

#[tokio::test]
async fn a_takeover_sees_the_intent_the_previous_owner_recorded() {
    let table = table().await;
    assert_eq!(
        table
            .claim("t", "k", "first", NOW, NOW + 1_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let intent = json!({"group": "web", "from": 2, "to": 4});
    table
        .record_intent("t", "k", "first", &intent)
        .await
        .unwrap();
    // Only the owner can record an intent.
    assert!(
        table
            .record_intent("t", "k", "other", &json!(1))
            .await
            .is_err()
    );
    assert_eq!(
        table
            .claim("t", "k", "second", NOW + 2_000, NOW + 9_000, DAY)
            .await
            .unwrap(),
        Claim::TakenOver {
            intent: Some(intent),
            previous_owner: "first".into()
        }
    );
}

#[tokio::test]
async fn claiming_again_as_the_same_owner_is_not_a_conflict() {
    // What the SDK does when a conditional put succeeded but its response was lost.
    let table = table().await;
    assert_eq!(
        table
            .claim("t", "k", "me", NOW, NOW + 1_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        table
            .claim("t", "k", "me", NOW, NOW + 1_000, DAY)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let w = Duration::from_secs(60);
    assert!(matches!(
        table
            .acquire_lease("l", "me", NOW, NOW + ms(w), None)
            .await
            .unwrap(),
        Lease::Acquired { .. }
    ));
    assert!(matches!(
        table
            .acquire_lease("l", "me", NOW, NOW + ms(w), None)
            .await
            .unwrap(),
        Lease::Acquired { .. }
    ));
}

#[tokio::test]
async fn a_settled_lease_ends_when_settled() {
    let table = table().await;
    let lock = Duration::from_secs(30);
    assert!(matches!(
        table
            .acquire_lease("g", "a", NOW, NOW + ms(lock), None)
            .await
            .unwrap(),
        Lease::Acquired { .. }
    ));
    table.settle_lease("g", "a", NOW + 5_000).await.unwrap();
    assert!(matches!(
        table
            .acquire_lease("g", "b", NOW + 4_999, NOW + 4_999 + ms(lock), None)
            .await
            .unwrap(),
        Lease::Held { .. }
    ));
    assert!(matches!(
        table
            .acquire_lease("g", "b", NOW + 5_000, NOW + 5_000 + ms(lock), None)
            .await
            .unwrap(),
        Lease::Acquired { .. }
    ));
    // Settling someone else's lease does nothing.
    table.settle_lease("g", "a", NOW).await.unwrap();
    assert_eq!(
        table.read_lease("g").await.unwrap().map(|l| l.holder),
        Some("b".to_string())
    );
}
