//! One alarm type for every alarm-driven function, from each way AWS delivers an alarm to Lambda:
//! the EventBridge "CloudWatch Alarm State Change" event, the alarm's own Lambda action, and SNS
//! notifications (one or many records).
//!
//! The wire types are ours rather than `aws_lambda_events::cloudwatch_alarms`: its metric period is
//! a `u16` (a one-day period, 86 400 s, would fail to parse) and its timestamps do not accept the
//! `+0000` offsets CloudWatch writes. The EventBridge and SNS envelopes are `aws_lambda_events`'.

use std::collections::BTreeMap;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, from_json_str, from_value};
use crate::time::aws_timestamp;

pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl std::fmt::Display for AlarmState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of alarm changed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlarmKind {
    /// One metric, one statistic.
    Metric,
    /// Metric math: several metrics and expressions.
    MetricMath,
    /// A composite alarm over other alarms.
    Composite { rule: String },
}

/// How the transition reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    EventBridge,
    LambdaAction,
    Sns,
}

/// A metric an alarm watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricRef {
    pub namespace: Option<String>,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// One alarm state transition, however it was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmTransition {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    #[serde(with = "aws_timestamp")]
    pub state_changed_at: DateTime<Utc>,
    pub reason: String,
    pub kind: AlarmKind,
    /// The metrics the alarm reads (empty for composite alarms).
    pub metrics: Vec<MetricRef>,
    /// Propagated alarm tags (`alarmTags` / `AlarmTags`); empty when tag propagation is off.
    pub tags: BTreeMap<String, String>,
    pub delivery: Delivery,
}

impl AlarmTransition {
    /// The value of a dimension on the alarm's metrics, if exactly one value is named.
    ///
    /// A metric-math alarm over several groups names several values: that is ambiguous and gives
    /// `None`, so a caller never acts on one of them by guess.
    pub fn dimension(&self, key: &str) -> Option<&str> {
        let mut values = self
            .metrics
            .iter()
            .filter_map(|m| m.dimensions.get(key).map(String::as_str));
        let first = values.next()?;
        values.all(|v| v == first).then_some(first)
    }

    /// The metric of a single-metric alarm.
    pub fn metric(&self) -> Option<&MetricRef> {
        match (&self.kind, self.metrics.as_slice()) {
            (AlarmKind::Metric, [m]) => Some(m),
            _ => None,
        }
    }

    /// Identifies this transition across duplicate deliveries: the alarm ARN, the new state and the
    /// state-change time (to the millisecond) are the same in every copy, whatever the delivery.
    pub fn transition_id(&self) -> String {
        format!(
            "{}|{}|{}",
            self.arn,
            self.state,
            self.state_changed_at.timestamp_millis()
        )
    }
}

/// Parses an alarm payload in any of the three delivery shapes. SNS may carry several records;
/// the other shapes give exactly one transition.
pub fn parse_alarm_transitions(payload: &Value) -> Result<Vec<AlarmTransition>, EventError> {
    let Some(obj) = payload.as_object() else {
        return Err(EventError::new(".", "expected a JSON object"));
    };
    if obj.contains_key("Records") {
        parse_sns(payload)
    } else if obj.contains_key("detail-type") || obj.contains_key("detail") {
        parse_eventbridge(payload).map(|t| vec![t])
    } else if obj.contains_key("alarmData") {
        parse_lambda_action(payload).map(|t| vec![t])
    } else {
        Err(EventError::new(
            ".",
            "not an alarm delivery: expected `detail-type` (EventBridge), `alarmData` (alarm Lambda action) or `Records` (SNS)",
        ))
    }
}

fn alarm_kind(rule: Option<String>, metrics: &[MetricRef], has_expression: bool) -> AlarmKind {
    match rule {
        Some(rule) => AlarmKind::Composite { rule },
        None if metrics.len() == 1 && !has_expression => AlarmKind::Metric,
        None => AlarmKind::MetricMath,
    }
}

// ---- wire types shared by EventBridge and the Lambda action --------------------------------

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireAlarmData {
    alarm_name: String,
    state: WireState,
    #[serde(default)]
    previous_state: Option<WireState>,
    #[serde(default)]
    configuration: WireConfiguration,
    #[serde(default)]
    alarm_tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Serialize)]
struct WireState {
    value: AlarmState,
    #[serde(default)]
    reason: String,
    #[serde(with = "aws_timestamp")]
    timestamp: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireConfiguration {
    #[serde(default)]
    metrics: Vec<WireMetricQuery>,
    #[serde(default)]
    alarm_rule: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMetricQuery {
    #[serde(default)]
    metric_stat: Option<WireMetricStat>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
struct WireMetricStat {
    metric: WireMetric,
}

#[derive(Debug, Deserialize, Serialize)]
struct WireMetric {
    #[serde(default)]
    namespace: Option<String>,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

impl WireAlarmData {
    fn into_transition(
        self,
        arn: String,
        account: String,
        region: String,
        delivery: Delivery,
    ) -> AlarmTransition {
        let has_expression = self
            .configuration
            .metrics
            .iter()
            .any(|m| m.expression.is_some());
        let metrics: Vec<MetricRef> = self
            .configuration
            .metrics
            .into_iter()
            .filter_map(|q| q.metric_stat)
            .map(|s| MetricRef {
                namespace: s.metric.namespace,
                name: s.metric.name,
                dimensions: s.metric.dimensions,
            })
            .collect();
        let kind = alarm_kind(self.configuration.alarm_rule, &metrics, has_expression);
        AlarmTransition {
            name: self.alarm_name,
            arn,
            account,
            region,
            state: self.state.value,
            previous_state: self.previous_state.map(|s| s.value),
            state_changed_at: self.state.timestamp,
            reason: self.state.reason,
            kind,
            metrics,
            tags: self.alarm_tags.unwrap_or_default(),
            delivery,
        }
    }
}

fn parse_eventbridge(payload: &Value) -> Result<AlarmTransition, EventError> {
    let event: EventBridgeEvent<Value> = super::eventbridge_envelope(payload, ALARM_STATE_CHANGE)?;
    let arn = event
        .resources
        .as_deref()
        .and_then(|r| r.first())
        .cloned()
        .ok_or_else(|| EventError::new("resources", "missing the alarm ARN (resources[0])"))?;
    let account = event
        .account
        .ok_or_else(|| EventError::new("account", "missing required field"))?;
    let region = event
        .region
        .ok_or_else(|| EventError::new("region", "missing required field"))?;
    let detail: WireAlarmData = from_value(&event.detail).map_err(|e| e.nested_in("detail"))?;
    Ok(detail.into_transition(arn, account, region, Delivery::EventBridge))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLambdaAction {
    alarm_arn: String,
    account_id: String,
    region: String,
    alarm_data: WireAlarmData,
}

fn parse_lambda_action(payload: &Value) -> Result<AlarmTransition, EventError> {
    let event: WireLambdaAction = from_value(payload)?;
    Ok(event.alarm_data.into_transition(
        event.alarm_arn,
        event.account_id,
        event.region,
        Delivery::LambdaAction,
    ))
}

// ---- SNS: the classic alarm notification in `Message` -----------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireSnsAlarm {
    alarm_name: String,
    alarm_arn: String,
    #[serde(rename = "AWSAccountId")]
    aws_account_id: String,
    new_state_value: AlarmState,
    #[serde(default)]
    new_state_reason: String,
    #[serde(with = "aws_timestamp")]
    state_change_time: DateTime<Utc>,
    #[serde(default)]
    old_state_value: Option<AlarmState>,
    #[serde(default)]
    trigger: Option<WireSnsTrigger>,
    #[serde(default)]
    alarm_rule: Option<String>,
    #[serde(default)]
    alarm_tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireSnsTrigger {
    #[serde(default)]
    metric_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    dimensions: Vec<WireSnsDimension>,
    #[serde(default)]
    metrics: Vec<WireSnsMetricQuery>,
}

#[derive(Debug, Deserialize)]
struct WireSnsDimension {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireSnsMetricQuery {
    #[serde(default)]
    metric_stat: Option<WireSnsMetricStat>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireSnsMetricStat {
    metric: WireSnsMetric,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireSnsMetric {
    #[serde(default)]
    namespace: Option<String>,
    metric_name: String,
    #[serde(default)]
    dimensions: Vec<WireSnsDimension>,
}

fn dimensions(list: Vec<WireSnsDimension>) -> BTreeMap<String, String> {
    list.into_iter().map(|d| (d.name, d.value)).collect()
}

fn parse_sns(payload: &Value) -> Result<Vec<AlarmTransition>, EventError> {
    let event: SnsEvent = from_value(payload)?;
    if event.records.is_empty() {
        return Err(EventError::new("Records", "no records"));
    }
    event
        .records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let at = format!("Records[{i}].Sns.Message");
            let msg: WireSnsAlarm =
                from_json_str(&record.sns.message).map_err(|e| e.nested_in(&at))?;
            sns_transition(msg).map_err(|e| e.nested_in(&at))
        })
        .collect()
}

fn sns_transition(msg: WireSnsAlarm) -> Result<AlarmTransition, EventError> {
    // SNS's `Region` is a display name ("US East (N. Virginia)"): take the code from the ARN.
    let region = msg
        .alarm_arn
        .split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| EventError::new("AlarmArn", "not an alarm ARN (no region)"))?
        .to_string();
    let trigger = msg.trigger.unwrap_or_default();
    let has_expression = trigger.metrics.iter().any(|m| m.expression.is_some());
    let mut metrics: Vec<MetricRef> = trigger
        .metrics
        .into_iter()
        .filter_map(|q| q.metric_stat)
        .map(|s| MetricRef {
            namespace: s.metric.namespace,
            name: s.metric.metric_name,
            dimensions: dimensions(s.metric.dimensions),
        })
        .collect();
    if let Some(name) = trigger.metric_name {
        metrics.insert(
            0,
            MetricRef {
                namespace: trigger.namespace,
                name,
                dimensions: dimensions(trigger.dimensions),
            },
        );
    }
    let kind = alarm_kind(msg.alarm_rule, &metrics, has_expression);
    Ok(AlarmTransition {
        name: msg.alarm_name,
        arn: msg.alarm_arn,
        account: msg.aws_account_id,
        region,
        state: msg.new_state_value,
        previous_state: msg.old_state_value,
        state_changed_at: msg.state_change_time,
        reason: msg.new_state_reason,
        kind,
        metrics,
        tags: msg.alarm_tags.unwrap_or_default(),
        delivery: Delivery::Sns,
    })
}
