//! Errors at the edge of a function: retryable or permanent, with the AWS code and message kept.
//!
//! The Lambda error type (`Diagnostic::error_type`) reads `Retryable.<Code>` or
//! `Permanent.<Code>`, so an on-failure destination, a DLQ consumer or an alarm can tell a
//! throttled call worth retrying from an event that will never succeed.

use std::fmt;

// The SDK crates re-export one `SdkError` and one `ProvideErrorMetadata` from aws-smithy; taking
// them from the DynamoDB crate (a dependency here anyway) works for every service's errors.
pub use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
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

impl ErrorClass {
    /// An error answer without a code the caller knows: a 5xx or a 429 may pass.
    pub fn of_status(status: u16) -> Self {
        if status >= 500 || status == 429 {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        }
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
    // CodePipeline: too many executions running, or the pipeline busy; the start was not made.
    "ConcurrentPipelineExecutionsLimitExceededException",
    "ConflictException",
    // RDS: the cluster is busy (a failover, a modification); the request was not acted on.
    "InvalidDBClusterStateFault",
    "InvalidGlobalClusterStateFault",
    "InvalidDBInstanceState",
];

/// Error codes with which a service says it refused a request before acting on it. Any other
/// failure of a mutating call (throttling included: a proxy or the service may answer it after
/// the change was made) may have taken effect, so the guards stay in place and the next attempt
/// checks the target before acting again.
const REFUSED_CODES: &[&str] = &[
    "ValidationError",
    "ValidationException",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "InvalidArgument",
    "MissingParameter",
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ConditionalCheckFailedException",
    "ResourceNotFoundException",
    "ScalingActivityInProgress",
    "TooManyInvalidationsInProgress",
    "ResourceContention",
    "ConstructionFailure",
    "PipelineNotFoundException",
    "ConcurrentPipelineExecutionsLimitExceededException",
    "ConflictException",
    "InvalidDBClusterStateFault",
    "InvalidGlobalClusterStateFault",
    "InvalidDBInstanceState",
    "DBClusterNotFoundFault",
    "GlobalClusterNotFoundFault",
    "DBInstanceNotFound",
    "InvalidChangeBatch",
    "NoSuchHostedZone",
    "NoSuchHealthCheck",
];

/// A failed call to any remote API (an AWS service, the Kubernetes API): where, the service's
/// code and message, whether to retry, and whether it may have taken effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct CallError {
    /// The API: an IAM service prefix (`autoscaling`, `dynamodb`) or `kubernetes`.
    pub service: &'static str,
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    pub class: ErrorClass,
    /// The service said it refused the request before acting on it.
    pub refused: bool,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: {}: {}",
            self.operation, self.code, self.message
        )
    }
}

impl CallError {
    /// An error the caller classifies itself (a Kubernetes `Status`, a stand-in's answer).
    pub fn new(
        service: &'static str,
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
        class: ErrorClass,
    ) -> Self {
        let code = code.into();
        Self {
            refused: REFUSED_CODES.contains(&code.as_str()),
            service,
            operation,
            code,
            message: message.into(),
            class,
        }
    }

    /// A Kubernetes API answer that is not a success: its `Status` reason (`Conflict`,
    /// `Forbidden`, ...; `HTTP<code>` when the server gave none) and message. A 4xx is the server
    /// refusing the request before acting on it, except 429: as with AWS throttling, a proxy or
    /// a priority-and-fairness layer may answer it after the change was made. Retryable: 409
    /// Conflict (re-read and try again), 401 Unauthorized (a token expired or an access entry
    /// still propagating), 429, and 5xx (which may have taken effect). Permanent: 403 Forbidden,
    /// 404 NotFound, 422 Invalid, and the other 4xx.
    pub fn kubernetes(
        operation: &'static str,
        status_code: u16,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        let class = match status_code {
            401 | 409 | 429 => ErrorClass::Retryable,
            c if c >= 500 => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        };
        let code = if reason.is_empty() {
            format!("HTTP{status_code}")
        } else {
            reason.to_string()
        };
        Self {
            service: "kubernetes",
            operation,
            code,
            message: message.into(),
            class,
            refused: (400..500).contains(&status_code) && status_code != 429,
        }
    }

    /// A service's error answer, classified by its code (as [`CallError::aws`] does).
    pub fn from_code(
        service: &'static str,
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let code = code.into();
        let class = if RETRYABLE_CODES.contains(&code.as_str()) {
            ErrorClass::Retryable
        } else {
            ErrorClass::Permanent
        };
        Self::new(service, operation, code, message, class)
    }

    /// Keeps the code and message of any AWS SDK error and classifies it.
    pub fn aws<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match &err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                let message = e
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string());
                match e.code() {
                    Some(code) => Self::from_code(service, operation, code, message),
                    // No code (a proxy's bare 5xx, an empty body): the status decides.
                    None => {
                        let status = service_err.raw().status().as_u16();
                        let class = ErrorClass::of_status(status);
                        Self::new(service, operation, format!("HTTP{status}"), message, class)
                    }
                }
            }
            SdkError::TimeoutError(_) => Self::transport(service, operation, "Timeout", &err),
            SdkError::DispatchFailure(_) => {
                Self::transport(service, operation, "DispatchFailure", &err)
            }
            SdkError::ResponseError(_) => {
                Self::transport(service, operation, "ResponseError", &err)
            }
            // Never sent: the request could not be built.
            SdkError::ConstructionFailure(_) => Self::new(
                service,
                operation,
                "ConstructionFailure",
                source_chain(&err),
                ErrorClass::Permanent,
            ),
            _ => Self::transport(service, operation, "Unknown", &err),
        }
    }

    fn transport(
        service: &'static str,
        operation: &'static str,
        code: &str,
        err: &dyn std::error::Error,
    ) -> Self {
        Self::new(
            service,
            operation,
            code,
            source_chain(err),
            ErrorClass::Retryable,
        )
    }

    /// Whether a mutating call that failed this way may still have taken effect. Only a service
    /// that says it refused the request (validation, access denied, a conditional check, its own
    /// cooldown) rules that out; a timeout, a dropped connection, a 5xx and even throttling do
    /// not. The guards then stay in place and the next attempt checks the target first.
    pub fn may_have_taken_effect(&self) -> bool {
        !self.refused
    }

    /// The service said "no such thing" (a group, a table, a distribution).
    pub fn is_not_found(&self) -> bool {
        self.code.contains("NotFound") || self.code == "NoSuchEntity"
    }

    /// The service refused our identity or its permissions (a deploy problem, not an event one).
    pub fn is_access_denied(&self) -> bool {
        self.code.starts_with("AccessDenied") || self.code == "UnauthorizedOperation"
    }
}

/// "outer: inner: innermost", since SDK (and kube) errors keep the useful part in their sources.
pub fn source_chain(err: &dyn std::error::Error) -> String {
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
    /// A remote call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A target the event names does not exist (a deleted group, an unknown distribution).
    #[error("{what} not found: {name}")]
    NotFound { what: &'static str, name: String },
    /// Another invocation holds the claim on this work right now; a retry later will see its
    /// result (or take the claim over once its owner's deadline has passed).
    #[error("in progress elsewhere: {key} is being handled by {owner} until {until_ms} ms")]
    ClaimHeld {
        key: String,
        owner: String,
        until_ms: i64,
    },
    /// Another live invocation holds the target's lock (not a cooldown): it did not end within
    /// this invocation's time, so the event must come back rather than be skipped.
    #[error("lease {lease} is held by {holder} until {until_ms} ms")]
    LeaseContention {
        lease: String,
        holder: String,
        until_ms: i64,
    },
    /// The target, as it is, cannot take the planned action (a pipeline that does not declare a
    /// variable the route passes): permanent until someone changes the target or the config.
    #[error("{detail}")]
    Precondition { code: &'static str, detail: String },
    /// The invocation stopped taking new work before its deadline; what it did not do is named.
    #[error("stopped before the invocation deadline; not handled: {not_done}")]
    DeadlineNear { not_done: String },
    /// Not yet: the work cannot be finished now and the delivery must come back (a promotion not
    /// yet visible, a rollout in progress, the bookkeeping of an action that took effect).
    /// `acted` says whether something was done that a retry must find rather than repeat.
    #[error("{detail}")]
    NotYet {
        code: String,
        detail: String,
        acted: bool,
    },
    /// The response could not be serialised.
    #[error("cannot serialise the response: {0}")]
    Serialize(String),
}

impl FunctionError {
    /// The error an invocation that met several reports: a retryable one first, so that the
    /// delivery is retried for what can still succeed; `None` when there were none.
    pub fn first_retryable(mut errors: Vec<FunctionError>) -> Option<FunctionError> {
        match errors
            .iter()
            .position(|e| e.class() == ErrorClass::Retryable)
        {
            Some(i) => Some(errors.swap_remove(i)),
            None => errors.into_iter().next(),
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            FunctionError::Call(e) => e.class,
            FunctionError::ClaimHeld { .. }
            | FunctionError::LeaseContention { .. }
            | FunctionError::DeadlineNear { .. }
            | FunctionError::NotYet { .. } => ErrorClass::Retryable,
            _ => ErrorClass::Permanent,
        }
    }

    /// The short code after the class in the Lambda error type.
    pub fn code(&self) -> &str {
        match self {
            FunctionError::InvalidEvent(_) => "InvalidEvent",
            FunctionError::Config(_) => "InvalidConfig",
            FunctionError::Call(e) => &e.code,
            FunctionError::NotFound { .. } => "NotFound",
            FunctionError::Precondition { code, .. } => code,
            FunctionError::ClaimHeld { .. } => "InProgress",
            FunctionError::LeaseContention { .. } => "LeaseContention",
            FunctionError::DeadlineNear { .. } => "DeadlineNear",
            FunctionError::NotYet { code, .. } => code,
            FunctionError::Serialize(_) => "SerializeResponse",
        }
    }

    /// `Retryable.ThrottlingException`, `Permanent.InvalidEvent`, ...
    pub fn error_type(&self) -> String {
        format!("{}.{}", self.class(), self.code())
    }

    /// Whether the failed work may have taken effect (a remote call's failure, or work that
    /// acted and could not finish).
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            FunctionError::Call(e) => e.may_have_taken_effect(),
            FunctionError::NotYet { acted, .. } => *acted,
            _ => false,
        }
    }

    /// A retryable "not yet" that did nothing a retry must find.
    pub fn not_yet(code: impl Into<String>, detail: impl Into<String>) -> Self {
        FunctionError::NotYet {
            code: code.into(),
            detail: detail.into(),
            acted: false,
        }
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
    fn a_retryable_error_is_reported_first() {
        let permanent = || FunctionError::NotFound {
            what: "pipeline",
            name: "p".into(),
        };
        let retryable = FunctionError::DeadlineNear {
            not_done: "x".into(),
        };
        let e = FunctionError::first_retryable(vec![permanent(), retryable, permanent()]);
        assert_eq!(
            e.map(|e| e.code().to_string()).as_deref(),
            Some("DeadlineNear")
        );
        let e = FunctionError::first_retryable(vec![permanent()]);
        assert_eq!(e.map(|e| e.code().to_string()).as_deref(), Some("NotFound"));
        assert!(FunctionError::first_retryable(vec![]).is_none());
    }

    #[test]
    fn error_types_tell_retryable_from_permanent() {
        let throttled = FunctionError::Call(CallError::new(
            "autoscaling",
            "SetDesiredCapacity",
            "Throttling",
            "Rate exceeded",
            ErrorClass::Retryable,
        ));
        assert!(
            throttled.may_have_taken_effect(),
            "throttling may come after the change"
        );
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

    #[test]
    fn only_a_refusal_rules_out_an_effect() {
        let call = |code: &str| {
            CallError::new(
                "autoscaling",
                "SetDesiredCapacity",
                code,
                "",
                ErrorClass::Permanent,
            )
        };
        for code in [
            "ValidationError",
            "AccessDenied",
            "ScalingActivityInProgress",
        ] {
            assert!(!call(code).may_have_taken_effect(), "{code}");
        }
        for code in [
            "Throttling",
            "Timeout",
            "DispatchFailure",
            "InternalFailure",
            "Unknown",
        ] {
            assert!(call(code).may_have_taken_effect(), "{code}");
        }
        let held = FunctionError::LeaseContention {
            lease: "asg#web".into(),
            holder: "req-1".into(),
            until_ms: 1,
        };
        assert_eq!(held.error_type(), "Retryable.LeaseContention");
        assert!(!held.may_have_taken_effect());
    }
}
