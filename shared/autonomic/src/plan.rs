//! A plan: the actions a planner decided on and the skips with their reasons.
//!
//! Planners are pure functions (event + observed state + config + time → `Plan`); the plan is what
//! dry-run returns, what the audit log records and what tests assert on.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Something the planner decided not to do, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// What was not acted on (a group, a distribution, an alarm).
    pub target: String,
    /// A stable, machine-readable reason (`no_matching_rule`, `cooldown`, `stale`, ...).
    pub reason: String,
    /// The reason in words, with the figures behind it.
    pub detail: String,
}

impl Skip {
    pub fn new(target: impl Into<String>, reason: &str, detail: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            reason: reason.to_string(),
            detail: detail.into(),
        }
    }
}

/// The `stale` skip of `target` when its event (`what`: a transition, a push) happened at
/// `event_ms`, more than `max_age` before `now_ms`; `None` when it is recent enough or there is
/// no limit.
pub fn stale(
    target: &str,
    what: &str,
    event_ms: i64,
    now_ms: i64,
    max_age: Option<Duration>,
) -> Option<Skip> {
    let max_age = max_age?;
    let age_ms = now_ms.saturating_sub(event_ms);
    (age_ms > max_age.as_millis() as i64).then(|| {
        Skip::new(
            target,
            "stale",
            format!(
                "{what} is {} s old, more than the {} s allowed",
                age_ms / 1000,
                max_age.as_secs()
            ),
        )
    })
}

/// Actions of type `A` to take, and the skips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan<A> {
    pub actions: Vec<A>,
    pub skips: Vec<Skip>,
}

impl<A> Default for Plan<A> {
    fn default() -> Self {
        Self {
            actions: Vec::new(),
            skips: Vec::new(),
        }
    }
}

impl<A> Plan<A> {
    pub fn act(action: A) -> Self {
        Self {
            actions: vec![action],
            skips: Vec::new(),
        }
    }

    pub fn skip(skip: Skip) -> Self {
        Self {
            actions: Vec::new(),
            skips: vec![skip],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.skips.is_empty()
    }

    /// Appends another plan's actions and skips.
    pub fn extend(&mut self, other: Plan<A>) {
        self.actions.extend(other.actions);
        self.skips.extend(other.skips);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_actions_and_skips() {
        let mut plan = Plan::act("scale web to 4");
        plan.extend(Plan::skip(Skip::new("api", "cooldown", "scaled 30 s ago")));
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "actions": ["scale web to 4"],
                "skips": [{"target": "api", "reason": "cooldown", "detail": "scaled 30 s ago"}]
            })
        );
    }
}
