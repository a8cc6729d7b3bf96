//! The API server's answers: a response body, JSON answers, and errors as real `Status` objects
//! ([`Failure`]). Below the HTTP routing, the store and the watch, which all answer with them.

use std::convert::Infallible;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

pub(super) type Body = BoxBody<Bytes, Infallible>;

/// An error answer: a real `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) message: String,
    /// The Deployment named in `details`, if the error is about one.
    name: Option<String>,
}

impl Failure {
    pub(super) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            reason,
            message: message.into(),
            name: None,
        }
    }

    pub(super) fn about(mut self, name: &str) -> Failure {
        self.name = Some(name.to_string());
        self
    }

    pub(super) fn not_found(name: &str) -> Failure {
        Failure::new(
            404,
            "NotFound",
            format!("deployments.apps \"{name}\" not found"),
        )
        .about(name)
    }

    pub(super) fn conflict(name: &str) -> Failure {
        Failure::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on deployments.apps \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
        )
        .about(name)
    }

    pub(super) fn invalid(name: &str, message: impl Into<String>) -> Failure {
        Failure::new(422, "Invalid", message).about(name)
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, "BadRequest", message)
    }

    pub(super) fn unknown_path() -> Failure {
        Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub(super) fn method_not_allowed() -> Failure {
        Failure::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub(super) fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(name) = &self.name {
            status["details"] = json!({"name": name, "group": "apps", "kind": "deployments"});
        }
        status
    }

    pub(super) fn response(&self) -> Response<Body> {
        json_response(
            StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &self.body(),
        )
    }
}

pub(super) fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

pub(super) fn ok(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, value)
}
