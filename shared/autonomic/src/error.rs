//! Errors at the edge of a function: retryable or permanent, with the AWS code and message kept.
//!
//! The Lambda error type (`Diagnostic::error_type`) reads `Retryable.<Code>` or
//! `Permanent.<Code>`, so an on-failure destination, a DLQ consumer or an alarm can tell a
//! throttled call worth retrying from an event that will never succeed.

use std::fmt;

// The SDK crates re-export one `SdkError` and one `ProvideErrorMetadata` from aws-smithy; taking
// them from the DynamoDB crate (a dependency here anyway) works for every service's errors.
pub use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use lambda_runtime::Diagnostic;
use serde::Serialize;

use crate::config::ConfigError;
use crate::events::EventError;

/// Whether trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorClass {
    Retryable,
    Permanent,
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorClass::Retryable => "Retryable",
            ErrorClass::Permanent => "Permanent",
        })
    }
}

/// AWS error codes that mean "later may work".
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "PriorRequestNotComplete",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "RequestTimeout",
    "RequestTimeoutException",
    "TooManyInvalidationsInProgress",
    "ScalingActivityInProgress",
    "ResourceContention",
];

/// A failed AWS call: which operation, the service's code and message, and whether to retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct AwsError {
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {}: {}",
            self.operation, self.code, self.message
        )
    }
}

impl AwsError {
    /// Keeps the code and message of any SDK error and classifies it.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let message = e
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string());
                let class = if RETRYABLE_CODES.contains(&code.as_str()) {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Permanent
                };
                Self {
                    operation,
                    code,
                    message,
                    class,
                }
            }
            SdkError::TimeoutError(_) => Self::transport(operation, "Timeout", &err),
            SdkError::DispatchFailure(_) => Self::transport(operation, "DispatchFailure", &err),
            SdkError::ResponseError(_) => Self::transport(operation, "ResponseError", &err),
            SdkError::ConstructionFailure(_) => Self {
                operation,
                code: "ConstructionFailure".into(),
                message: source_chain(&err),
                class: ErrorClass::Permanent,
            },
            _ => Self::transport(operation, "Unknown", &err),
        }
    }

    fn transport(operation: &'static str, code: &str, err: &dyn std::error::Error) -> Self {
        Self {
            operation,
            code: code.to_string(),
            message: source_chain(err),
            class: ErrorClass::Retryable,
        }
    }

    /// Whether a mutating call that failed this way may still have taken effect: the request may
    /// have reached AWS (a timeout, a dropped connection, a server-side failure). A guard must then
    /// stay in place rather than invite a second attempt.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self.code.as_str(),
            "Timeout" | "DispatchFailure" | "ResponseError" | "Unknown" | "ServiceUnavailable"
        ) || self.code.starts_with("Internal")
    }

    /// The service said "no such thing" (a group, a table, a distribution).
    pub fn is_not_found(&self) -> bool {
        self.code.contains("NotFound") || self.code == "NoSuchEntity"
    }
}

/// "outer: inner: innermost", since SDK errors keep the useful part in their sources.
fn source_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The payload cannot be understood; retrying the same payload cannot help.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// Configuration problems (only ever at cold start).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A target the event names does not exist (a deleted group, an unknown distribution).
    #[error("{what} not found: {name}")]
    NotFound { what: &'static str, name: String },
    /// Another invocation holds this work right now; a retry later will see its result.
    #[error("in progress elsewhere: {0}")]
    InProgress(String),
}

impl FunctionError {
    pub fn class(&self) -> ErrorClass {
        match self {
            FunctionError::Aws(e) => e.class,
            FunctionError::InProgress(_) => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }

    /// The short code after the class in the Lambda error type.
    pub fn code(&self) -> &str {
        match self {
            FunctionError::InvalidEvent(_) => "InvalidEvent",
            FunctionError::Config(_) => "InvalidConfig",
            FunctionError::Aws(e) => &e.code,
            FunctionError::NotFound { .. } => "NotFound",
            FunctionError::InProgress(_) => "InProgress",
        }
    }

    /// `Retryable.ThrottlingException`, `Permanent.InvalidEvent`, ...
    pub fn error_type(&self) -> String {
        format!("{}.{}", self.class(), self.code())
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Self {
        Diagnostic {
            error_type: e.error_type(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_tell_retryable_from_permanent() {
        let throttled = FunctionError::Aws(AwsError {
            operation: "SetDesiredCapacity",
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
            class: ErrorClass::Retryable,
        });
        let d: Diagnostic = throttled.into();
        assert_eq!(d.error_type, "Retryable.Throttling");
        assert_eq!(
            d.error_message,
            "SetDesiredCapacity failed: Throttling: Rate exceeded"
        );

        let bad =
            FunctionError::InvalidEvent(EventError::new("detail.state", "missing required field"));
        let d: Diagnostic = bad.into();
        assert_eq!(d.error_type, "Permanent.InvalidEvent");
        assert!(d.error_message.contains("detail.state"));
    }
}
