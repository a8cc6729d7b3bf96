//! The scaling decisions: pure functions of the transition, the rules, what was observed and the
//! time. No I/O, no clock, no SDK types.

use std::time::Duration;

use autonomic::events::{AlarmState, AlarmTransition};
use autonomic::{Plan, Skip};
use serde::{Deserialize, Serialize};

use crate::rules::{Adjustment, GroupSource, Rule, Rules};

/// The dimension that names a group on Auto Scaling and EC2 metrics.
pub const GROUP_DIMENSION: &str = "AutoScalingGroupName";

/// The action kind, in audit records and metrics.
pub const SET_DESIRED_CAPACITY: &str = "set_desired_capacity";

/// A group as DescribeAutoScalingGroups showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub name: String,
    pub min_size: i32,
    pub max_size: i32,
    pub desired: i32,
    /// Instances still launching (lifecycle state `Pending*`).
    pub pending: i32,
}

/// One SetDesiredCapacity call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleAction {
    pub group: String,
    pub from: i32,
    pub to: i32,
    pub honor_cooldown: bool,
    pub cooldown_seconds: u32,
    pub rule: String,
    pub alarm: String,
}

/// How far in the future a transition's time may be (clocks differ a little). A transition dated
/// later than this is rejected (`future_dated`): it is a forged, replayed or mis-clocked event, and
/// acting on it would raise the alarm's watermark above every genuine transition. A watermark that
/// stands beyond it (written before this check existed) is ignored for the same reason.
pub const CLOCK_SKEW_ALLOWANCE_MS: i64 = 120_000;

/// What the planner needs besides the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Transitions older than this are stale; `None` turns the check off.
    pub max_event_age: Option<Duration>,
}

/// The rule and group a transition is routed to, or why it is not.
#[derive(Debug, Clone)]
pub enum Route<'a> {
    Scale {
        rule: &'a Rule,
        group: String,
        adjustment: Adjustment,
    },
    Skip(Skip),
}

/// Picks the rule and the group for `t`. Everything here is known from the event and the rules.
pub fn route<'a>(t: &AlarmTransition, rules: &'a Rules) -> Route<'a> {
    let target = t.name.as_str();
    if t.state == AlarmState::InsufficientData {
        return Route::Skip(Skip::new(
            target,
            "insufficient_data",
            "INSUFFICIENT_DATA never scales",
        ));
    }
    let Some(rule) = rules.find(t) else {
        return Route::Skip(Skip::new(
            target,
            "no_matching_rule",
            format!("no rule matches alarm {:?}", t.name),
        ));
    };
    let Some(adjustment) = rule.adjustment(t.state) else {
        return Route::Skip(Skip::new(
            target,
            "no_action_for_state",
            format!("rule {:?} does not act on {}", rule.spec.name, t.state),
        ));
    };
    let group = match &rule.group {
        GroupSource::Named(g) => Some(g.clone()),
        GroupSource::Dimension => t.dimension(GROUP_DIMENSION).map(str::to_owned),
        GroupSource::Tag(key) => t.tags.get(key).cloned(),
    };
    let Some(group) = group.filter(|g| !g.is_empty()) else {
        let from = match &rule.group {
            GroupSource::Tag(key) => format!("alarm tag {key:?}"),
            _ => format!("a single {GROUP_DIMENSION} dimension"),
        };
        return Route::Skip(Skip::new(
            target,
            "group_unknown",
            format!(
                "rule {:?} takes the group from {from}, which the alarm does not carry",
                rule.spec.name
            ),
        ));
    };
    Route::Scale {
        rule,
        group,
        adjustment,
    }
}

/// What was read before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub group: GroupState,
    /// The group's cooldown lease ends at this time (epoch ms), if one was taken.
    pub cooldown_until_ms: Option<i64>,
    /// The state-change time (epoch ms) of the newest transition of this alarm already handled.
    pub newest_handled_ms: Option<i64>,
}

/// Decides the one scaling step (or the skip) for a routed transition at `now_ms`.
pub fn plan(
    t: &AlarmTransition,
    rule: &Rule,
    adjustment: Adjustment,
    observed: &Observed,
    settings: Settings,
    now_ms: i64,
) -> Plan<ScaleAction> {
    let g = &observed.group;
    let skip = |reason: &str, detail: String| Plan::skip(Skip::new(&g.name, reason, detail));
    let changed_ms = t.state_changed_at.timestamp_millis();

    if changed_ms > now_ms.saturating_add(CLOCK_SKEW_ALLOWANCE_MS) {
        return skip(
            "future_dated",
            format!(
                "transition is dated {} s in the future, more than the {} s clocks may differ",
                (changed_ms - now_ms) / 1000,
                CLOCK_SKEW_ALLOWANCE_MS / 1000
            ),
        );
    }
    if let Some(stale) = autonomic::plan::stale(
        &g.name,
        "transition",
        changed_ms,
        now_ms,
        settings.max_event_age,
    ) {
        return Plan::skip(stale);
    }
    if let Some(newest) = observed.newest_handled_ms
        && newest > changed_ms
        && newest <= now_ms.saturating_add(CLOCK_SKEW_ALLOWANCE_MS)
    {
        return skip(
            "superseded",
            format!("a newer transition of this alarm (at {newest} ms) was already handled"),
        );
    }
    if let Some(until) = observed.cooldown_until_ms
        && until > now_ms
    {
        return skip(
            "cooldown",
            format!(
                "group scaled recently; cooling down for {} s more",
                (until - now_ms + 999) / 1000
            ),
        );
    }

    let max_step = rule.spec.max_step.max(1);
    let step = adjustment.step(g.desired).clamp(-max_step, max_step);
    let lo = g.min_size.max(rule.spec.min_capacity.unwrap_or(i32::MIN));
    let hi = g.max_size.min(rule.spec.max_capacity.unwrap_or(i32::MAX));
    if lo > hi {
        return skip(
            "bounds_conflict",
            format!("rule bounds and group bounds leave no room (lower {lo} > upper {hi})"),
        );
    }
    if step < 0 && g.pending > 0 {
        return skip(
            "scale_out_in_progress",
            format!("{} instance(s) still Pending from a scale-out", g.pending),
        );
    }
    let target = g.desired.saturating_add(step).clamp(lo, hi);
    if step > 0 && target <= g.desired {
        return skip(
            "at_max",
            format!("desired {} is at the upper bound {hi}", g.desired),
        );
    }
    if step < 0 && target >= g.desired {
        return skip(
            "at_min",
            format!("desired {} is at the lower bound {lo}", g.desired),
        );
    }
    if (target - g.desired).abs() > max_step {
        return skip(
            "step_too_large",
            format!(
                "reaching the bounds [{lo}, {hi}] from {} takes more than maxStep {max_step}",
                g.desired
            ),
        );
    }
    Plan::act(ScaleAction {
        group: g.name.clone(),
        from: g.desired,
        to: target,
        honor_cooldown: rule.spec.honor_cooldown,
        cooldown_seconds: rule.spec.cooldown_seconds,
        rule: rule.spec.name.clone(),
        alarm: t.name.clone(),
    })
}
