//! The AWS calls the scaler makes (Auto Scaling, and CloudWatch's DescribeAlarms), behind a small
//! trait implemented for the SDK clients.

use std::collections::HashMap;
use std::future::Future;

use autonomic::CallError;
use autonomic::events::AlarmState;

use crate::planner::GroupState;

/// The SDK clients the scaler calls.
#[derive(Debug, Clone)]
pub struct AwsApi {
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

pub trait AsgApi: Send + Sync + 'static {
    /// The group's bounds, desired capacity and launching instances; `None` if it does not exist.
    fn describe_group(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<GroupState>, CallError>> + Send;

    /// Sets the desired capacity.
    fn set_desired_capacity(
        &self,
        name: &str,
        desired: i32,
        honor_cooldown: bool,
    ) -> impl Future<Output = Result<(), CallError>> + Send;

    /// The current state of each named alarm that exists.
    fn alarm_states(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<HashMap<String, AlarmState>, CallError>> + Send;
}

impl AsgApi for AwsApi {
    async fn describe_group(&self, name: &str) -> Result<Option<GroupState>, CallError> {
        let out = self
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| CallError::aws("autoscaling", "DescribeAutoScalingGroups", e))?;
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let pending = g
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state()
                    .is_some_and(|s| s.as_str().starts_with("Pending"))
            })
            .count() as i32;
        Ok(Some(GroupState {
            name: name.to_string(),
            min_size: g.min_size().unwrap_or_default(),
            max_size: g.max_size().unwrap_or_default(),
            desired: g.desired_capacity().unwrap_or_default(),
            pending,
        }))
    }

    async fn set_desired_capacity(
        &self,
        name: &str,
        desired: i32,
        honor_cooldown: bool,
    ) -> Result<(), CallError> {
        self.autoscaling
            .set_desired_capacity()
            .auto_scaling_group_name(name)
            .desired_capacity(desired)
            .honor_cooldown(honor_cooldown)
            .send()
            .await
            .map_err(|e| CallError::aws("autoscaling", "SetDesiredCapacity", e))?;
        Ok(())
    }

    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, AlarmState>, CallError> {
        let mut states = HashMap::new();
        // DescribeAlarms takes 100 names a call.
        for chunk in names.chunks(100) {
            let out = self
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
                .send()
                .await
                .map_err(|e| CallError::aws("cloudwatch", "DescribeAlarms", e))?;
            let metric = out
                .metric_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value().map(|s| s.as_str())));
            let composite = out
                .composite_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value().map(|s| s.as_str())));
            for (name, state) in metric.chain(composite) {
                let state = match state {
                    Some("ALARM") => AlarmState::Alarm,
                    Some("OK") => AlarmState::Ok,
                    _ => AlarmState::InsufficientData,
                };
                if let Some(name) = name {
                    states.insert(name.to_string(), state);
                }
            }
        }
        Ok(states)
    }
}
