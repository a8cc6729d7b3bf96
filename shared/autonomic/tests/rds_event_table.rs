//! The RDS event table in code against the Aurora User Guide's rows (a copy in
//! `tests/fixtures/aurora-db-cluster-events.txt`): the same IDs, each with the guide's message,
//! and each documented message classified as the table says, whatever ID it comes with.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;

use autonomic::events::{DOCUMENTED_EVENTS, Phase, Promotion, classify_rds_event};

/// The guide's rows: event ID → message with each backticked placeholder as `{}`.
fn documented() -> BTreeMap<String, String> {
    let text = include_str!("fixtures/aurora-db-cluster-events.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            assert_eq!(cells.len(), 3, "{l}");
            let mut message = String::new();
            for (i, part) in cells[2].split('`').enumerate() {
                message.push_str(if i % 2 == 1 { "{}" } else { part });
            }
            (cells[1].to_string(), message)
        })
        .collect()
}

#[test]
fn the_table_holds_the_guides_ids_with_the_guides_messages() {
    let guide = documented();
    let table: BTreeMap<String, String> = DOCUMENTED_EVENTS
        .iter()
        .map(|d| (d.id.to_string(), d.message.to_string()))
        .collect();
    assert_eq!(table, guide);
}

/// The classes the table gives, checked here row by row against what each documented message
/// says: a failure is never a completion, and global failover's 0238 completes, 0239 fails.
#[test]
fn each_documented_message_has_the_class_its_words_give() {
    use Phase::*;
    use Promotion::*;
    let want: BTreeMap<&str, Option<(Promotion, Phase)>> = [
        ("RDS-EVENT-0069", Some((Failover, Failed))),
        ("RDS-EVENT-0070", Some((Failover, Failed))),
        ("RDS-EVENT-0071", Some((Failover, Completed))),
        ("RDS-EVENT-0072", Some((Failover, Started))),
        ("RDS-EVENT-0073", Some((Failover, Started))),
        ("RDS-EVENT-0181", Some((GlobalSwitchover, Started))),
        ("RDS-EVENT-0182", Some((GlobalSwitchover, Progress))),
        ("RDS-EVENT-0183", Some((GlobalSwitchover, Progress))),
        ("RDS-EVENT-0184", Some((GlobalSwitchover, Progress))),
        ("RDS-EVENT-0185", Some((GlobalSwitchover, Completed))),
        ("RDS-EVENT-0186", Some((GlobalSwitchover, Cancelled))),
        ("RDS-EVENT-0187", Some((GlobalSwitchover, Failed))),
        ("RDS-EVENT-0238", Some((GlobalFailover, Completed))),
        ("RDS-EVENT-0239", Some((GlobalFailover, Failed))),
        ("RDS-EVENT-0240", Some((GlobalFailover, Progress))),
        ("RDS-EVENT-0241", Some((GlobalFailover, Progress))),
        ("RDS-EVENT-0397", None),
        ("RDS-EVENT-0423", Some((GlobalSwitchover, Progress))),
        ("RDS-EVENT-0519", Some((GlobalFailover, Completed))),
    ]
    .into_iter()
    .collect();
    let guide = documented();
    assert_eq!(
        want.keys().copied().collect::<Vec<_>>(),
        guide.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (id, template) in &guide {
        let message = template.replace("{}", "orders-west");
        assert_eq!(
            classify_rds_event(id, &message),
            (want[id.as_str()], None),
            "{id}: {message}"
        );
        // Sent under any other ID, the message still decides.
        for other in guide.keys().filter(|o| *o != id) {
            assert_eq!(
                classify_rds_event(other, &message).0,
                want[id.as_str()],
                "{id} as {other}"
            );
        }
    }
}
