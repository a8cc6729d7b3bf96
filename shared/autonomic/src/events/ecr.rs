//! The EventBridge "ECR Image Action" event: an image was pushed to (or deleted from) a repository.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, from_value};

pub const ECR_IMAGE_ACTION: &str = "ECR Image Action";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EcrImageActionType {
    Push,
    Delete,
}

/// The `detail` of an ECR Image Action event, plus the envelope fields a function needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EcrImageAction {
    pub action_type: EcrImageActionType,
    /// `SUCCESS` or `FAILURE`.
    pub result: String,
    pub repository_name: String,
    pub image_digest: String,
    /// Absent for an untagged push.
    #[serde(default)]
    pub image_tag: Option<String>,
    #[serde(skip_deserializing, default)]
    pub account: String,
    #[serde(skip_deserializing, default)]
    pub region: String,
}

impl EcrImageAction {
    /// A successful push of an image, the only action that should roll anything forward.
    pub fn is_successful_push(&self) -> bool {
        self.action_type == EcrImageActionType::Push && self.result == "SUCCESS"
    }
}

/// Parses an EventBridge "ECR Image Action" event.
pub fn parse_ecr_image_action(payload: &Value) -> Result<EcrImageAction, EventError> {
    let event: EventBridgeEvent<Value> = super::eventbridge_envelope(payload, ECR_IMAGE_ACTION)?;
    let mut detail: EcrImageAction =
        from_value(&event.detail).map_err(|e| e.nested_in("detail"))?;
    detail.account = event
        .account
        .ok_or_else(|| EventError::new("account", "missing required field"))?;
    detail.region = event
        .region
        .ok_or_else(|| EventError::new("region", "missing required field"))?;
    Ok(detail)
}
