//! ECR events from EventBridge (`source: aws.ecr`). Only a successful, tagged `ECR Image Action`
//! PUSH rolls anything forward; every other ECR event (a delete, an archive or restore, a
//! replication, a scan, ...) parses into a value a function skips with a reason, never an error.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, from_value};

pub const ECR_IMAGE_ACTION: &str = "ECR Image Action";
pub const ECR_SOURCE: &str = "aws.ecr";

/// The `action-type` of an ECR Image Action: PUSH, DELETE, or another kind ECR sends
/// (`UPDATE_STORAGE_CLASS` for archive and restore) kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EcrImageActionType {
    Push,
    Delete,
    Other(String),
}

impl From<String> for EcrImageActionType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "PUSH" => Self::Push,
            "DELETE" => Self::Delete,
            _ => Self::Other(s),
        }
    }
}

impl From<EcrImageActionType> for String {
    fn from(a: EcrImageActionType) -> Self {
        match a {
            EcrImageActionType::Push => "PUSH".into(),
            EcrImageActionType::Delete => "DELETE".into(),
            EcrImageActionType::Other(s) => s,
        }
    }
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
    /// When ECR saw the action (the envelope's `time`), epoch milliseconds.
    #[serde(skip_deserializing, default)]
    pub time_ms: i64,
}

impl EcrImageAction {
    /// A successful push of an image, the only action that should roll anything forward.
    pub fn is_successful_push(&self) -> bool {
        self.action_type == EcrImageActionType::Push && self.result == "SUCCESS"
    }

    /// Why a function that acts on tagged pushes leaves this event alone: `(reason, detail)`.
    /// A multi-arch push stores its per-platform manifests untagged before the tagged index, so
    /// untagged pushes are skipped and the tagged one (the index digest) is acted on.
    pub fn skip_reason(&self) -> Option<(&'static str, String)> {
        match &self.action_type {
            EcrImageActionType::Push => {}
            other => {
                return Some((
                    "not_a_push",
                    format!("action-type {} is not a push", String::from(other.clone())),
                ));
            }
        }
        if self.result != "SUCCESS" {
            return Some((
                "push_failed",
                format!("the push's result is {}", self.result),
            ));
        }
        if self.image_tag.as_deref().is_none_or(str::is_empty) {
            return Some((
                "untagged",
                "an untagged manifest (a platform image or an attestation of a multi-arch push)"
                    .into(),
            ));
        }
        None
    }
}

/// An ECR event as a function sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcrEvent {
    ImageAction(EcrImageAction),
    /// Another ECR detail-type (`ECR Replication Action`, `ECR Referrer Action`, `ECR Image
    /// Scan`, ...): nothing to act on, skipped with its name.
    Other {
        detail_type: String,
    },
}

impl EcrEvent {
    /// Why a function acting on tagged pushes skips this event: `(reason, detail)`.
    pub fn skip_reason(&self) -> Option<(&'static str, String)> {
        match self {
            EcrEvent::ImageAction(a) => a.skip_reason(),
            EcrEvent::Other { detail_type } => Some((
                "other_ecr_event",
                format!("{detail_type:?} is not an image push"),
            )),
        }
    }
}

/// Parses any ECR event from EventBridge; a payload of another source is an error.
pub fn parse_ecr_event(payload: &Value) -> Result<EcrEvent, EventError> {
    let event: EventBridgeEvent<Value> = from_value(payload)?;
    if event.source != ECR_SOURCE {
        return Err(EventError::new(
            "source",
            format!("expected {ECR_SOURCE:?}, got {:?}", event.source),
        ));
    }
    if event.detail_type != ECR_IMAGE_ACTION {
        return Ok(EcrEvent::Other {
            detail_type: event.detail_type,
        });
    }
    image_action(event).map(EcrEvent::ImageAction)
}

/// Parses an EventBridge "ECR Image Action" event; any other detail-type is an error.
pub fn parse_ecr_image_action(payload: &Value) -> Result<EcrImageAction, EventError> {
    image_action(super::eventbridge_envelope(payload, ECR_IMAGE_ACTION)?)
}

fn image_action(event: EventBridgeEvent<Value>) -> Result<EcrImageAction, EventError> {
    let mut detail: EcrImageAction =
        from_value(&event.detail).map_err(|e| e.nested_in("detail"))?;
    // The digest ends up in image references (`repo@sha256:...`): anything else is refused here.
    if !is_sha256_digest(&detail.image_digest) {
        return Err(EventError::new(
            "detail.image-digest",
            format!(
                "{:?} is not a sha256 digest (sha256: and 64 hex digits)",
                detail.image_digest
            ),
        ));
    }
    detail.account = event
        .account
        .ok_or_else(|| EventError::new("account", "missing required field"))?;
    detail.region = event
        .region
        .ok_or_else(|| EventError::new("region", "missing required field"))?;
    detail.time_ms = event
        .time
        .ok_or_else(|| EventError::new("time", "missing required field"))?
        .timestamp_millis();
    Ok(detail)
}

/// `sha256:` and 64 lowercase hex digits, as ECR writes image digests.
pub fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}
