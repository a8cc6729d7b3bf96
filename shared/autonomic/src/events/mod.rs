//! Typed events, parsed from the payloads AWS delivers, with errors that name the bad field.
//!
//! Parsing tolerates unknown fields (AWS adds them over time). A missing field, a field of the
//! wrong type or a value out of range gives an [`EventError`] whose `field` is the JSON path, for
//! example `detail.state.value` or `Records[1].Sns.Message.NewStateValue`.

mod alarm;
mod ecr;
mod rds;

pub use alarm::{
    AlarmKind, AlarmState, AlarmTransition, Delivery, MetricRef, parse_alarm_transitions,
};
pub use ecr::{
    ECR_IMAGE_ACTION, EcrEvent, EcrImageAction, EcrImageActionType, parse_ecr_event,
    parse_ecr_image_action,
};
pub use rds::{
    DOCUMENTED_EVENTS, DocumentedEvent, Phase, Promotion, RDS_CLUSTER_EVENT, RDS_INSTANCE_EVENT,
    RDS_SOURCE, RdsEvent, classify as classify_rds_event, is_rds_event, parse_rds_event,
};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A payload that cannot be understood; `field` is the JSON path of the first problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: field `{field}`: {message}")]
pub struct EventError {
    pub field: String,
    pub message: String,
}

impl EventError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, seen from an enclosing document (`Records[0].Sns.Message` + `.AlarmName`).
    pub fn nested_in(self, prefix: &str) -> Self {
        let field = if self.field == "." || self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        Self { field, ..self }
    }
}

/// Deserialises `value` as `T`, reporting the path of the failing field.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, EventError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        // serde reports a missing field at its parent's path: name the field itself.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            let field = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            return EventError::new(field, "missing required field");
        }
        EventError::new(path, message)
    })
}

/// The EventBridge envelope, checked to carry `detail_type`, with `detail` left to the caller so
/// that a payload of another type is named as such rather than as a missing detail field.
fn eventbridge_envelope(
    payload: &Value,
    detail_type: &str,
) -> Result<aws_lambda_events::eventbridge::EventBridgeEvent<Value>, EventError> {
    let event: aws_lambda_events::eventbridge::EventBridgeEvent<Value> = from_value(payload)?;
    if event.detail_type != detail_type {
        return Err(EventError::new(
            "detail-type",
            format!("expected {detail_type:?}, got {:?}", event.detail_type),
        ));
    }
    Ok(event)
}

/// Parses JSON text (a message body, an SNS `Message`), naming the field on failure.
pub fn from_json_str<T: DeserializeOwned>(text: &str) -> Result<T, EventError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| EventError::new(".", format!("not valid JSON: {e}")))?;
    from_value(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Vec<Inner>,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
        name: String,
    }

    #[test]
    fn names_a_missing_field_by_its_full_path() {
        let v = serde_json::json!({"inner": [{"count": 1, "name": "a"}, {"count": 2}]});
        let e = from_value::<Outer>(&v).unwrap_err();
        assert_eq!(e.field, "inner[1].name");
    }

    #[test]
    fn names_a_field_of_the_wrong_type() {
        let v = serde_json::json!({"inner": [{"count": "three", "name": "a"}]});
        let e = from_value::<Outer>(&v).unwrap_err();
        assert_eq!(e.field, "inner[0].count");
        assert!(e.message.contains("invalid type"), "{}", e.message);
    }

    #[test]
    fn a_top_level_missing_field_is_named_without_a_dot() {
        let e = from_value::<Outer>(&serde_json::json!({})).unwrap_err();
        assert_eq!(e.field, "inner");
    }

    #[test]
    fn invalid_json_text_is_an_error_not_a_panic() {
        let e = from_json_str::<Outer>("{\"inner\": [").unwrap_err();
        assert!(e.message.starts_with("not valid JSON"), "{e}");
    }
}
