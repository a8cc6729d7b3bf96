//! The Auto Scaling calls the scaler makes, behind a small trait implemented for the SDK client.

use std::future::Future;

use autonomic::CallError;
use aws_sdk_autoscaling::Client;

use crate::planner::GroupState;

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
}

impl AsgApi for Client {
    async fn describe_group(&self, name: &str) -> Result<Option<GroupState>, CallError> {
        let out = self
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
        self.set_desired_capacity()
            .auto_scaling_group_name(name)
            .desired_capacity(desired)
            .honor_cooldown(honor_cooldown)
            .send()
            .await
            .map_err(|e| CallError::aws("autoscaling", "SetDesiredCapacity", e))?;
        Ok(())
    }
}
