//! What an SQS message body can be: an invalidation request, an S3 event notification (straight
//! from S3 or wrapped by SNS), or S3's test event.

use autonomic::events::{EventError, from_json_str, from_value};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which distribution: by id, or by one of its domain names (an alternate domain name or its
/// `*.cloudfront.net` name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    DistributionId(String),
    Domain(String),
}

/// An invalidation request; the format is `invalidation-request.schema.json` in this crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvalidationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
}

/// The most paths one request may carry: CloudFront's in-progress limit for files.
pub const MAX_PATHS_PER_REQUEST: usize = 3000;

impl InvalidationRequest {
    pub fn target(&self) -> Result<Target, EventError> {
        match (&self.distribution_id, &self.domain) {
            (Some(id), None) if !id.trim().is_empty() => {
                Ok(Target::DistributionId(id.trim().to_string()))
            }
            (None, Some(d)) if !d.trim().is_empty() => {
                Ok(Target::Domain(d.trim().to_ascii_lowercase()))
            }
            (Some(_), Some(_)) => Err(EventError::new(
                "distributionId",
                "give distributionId or domain, not both",
            )),
            _ => Err(EventError::new(
                "distributionId",
                "needs a distributionId or a domain",
            )),
        }
    }
}

/// An object an S3 notification names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct S3Object {
    pub bucket: String,
    /// The key, decoded (S3 sends it form-encoded: `+` for space, `%XX` escapes).
    pub key: String,
}

/// A parsed message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Request(InvalidationRequest),
    S3(Vec<S3Object>),
    /// `s3:TestEvent`, sent when a notification is configured: acknowledged, ignored.
    TestEvent,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireS3Event {
    #[serde(rename = "Records")]
    records: Vec<WireS3Record>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireS3Record {
    s3: WireS3Entity,
}

#[derive(Deserialize)]
struct WireS3Entity {
    bucket: WireS3Bucket,
    object: WireS3ObjectRef,
}

#[derive(Deserialize)]
struct WireS3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct WireS3ObjectRef {
    key: String,
}

/// Parses a message body.
pub fn parse_body(text: &str) -> Result<Body, EventError> {
    let value: Value = from_json_str(text)?;
    parse_value(&value, 0)
}

fn parse_value(value: &Value, depth: u8) -> Result<Body, EventError> {
    let Some(obj) = value.as_object() else {
        return Err(EventError::new(".", "expected a JSON object"));
    };
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Body::TestEvent);
    }
    // SNS to SQS without raw message delivery: the S3 event is the envelope's Message.
    if obj.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let message = obj
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| EventError::new("Message", "an SNS envelope needs a string Message"))?;
        let inner: Value = from_json_str(message).map_err(|e| e.nested_in("Message"))?;
        return parse_value(&inner, 1).map_err(|e| e.nested_in("Message"));
    }
    if obj.contains_key("Records") {
        let event: WireS3Event = from_value(value)?;
        if event.records.is_empty() {
            return Err(EventError::new("Records", "no records"));
        }
        let objects = event
            .records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                decode_key(&r.s3.object.key)
                    .map(|key| S3Object {
                        bucket: r.s3.bucket.name,
                        key,
                    })
                    .map_err(|e| EventError::new(format!("Records[{i}].s3.object.key"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Body::S3(objects));
    }
    let request: InvalidationRequest = from_value(value)?;
    request.target()?;
    if request.paths.is_empty() {
        return Err(EventError::new("paths", "no paths"));
    }
    if request.paths.len() > MAX_PATHS_PER_REQUEST {
        return Err(EventError::new(
            "paths",
            format!(
                "{} paths; one request may carry at most {MAX_PATHS_PER_REQUEST}",
                request.paths.len()
            ),
        ));
    }
    Ok(Body::Request(request))
}

/// S3 notification keys are form-encoded.
fn decode_key(key: &str) -> Result<String, String> {
    let plus_decoded = key.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("key is not UTF-8 once decoded: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_by_id_and_by_domain() {
        let b = parse_body(
            r#"{"distributionId": "E1", "paths": ["/a"], "reason": "deploy", "requester": "ci"}"#,
        )
        .unwrap();
        let Body::Request(r) = b else { panic!() };
        assert_eq!(r.target().unwrap(), Target::DistributionId("E1".into()));
        let Body::Request(r) =
            parse_body(r#"{"domain": "Static.Example.com", "paths": ["/a"]}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            r.target().unwrap(),
            Target::Domain("static.example.com".into())
        );
    }

    #[test]
    fn rejects_bad_requests_naming_the_field() {
        let cases = [
            (r#"{"paths": ["/a"]}"#, "distributionId"),
            (
                r#"{"distributionId": "E1", "domain": "x", "paths": ["/a"]}"#,
                "distributionId",
            ),
            (r#"{"distributionId": "E1", "paths": []}"#, "paths"),
            (r#"{"distributionId": "E1", "paths": "/a"}"#, "paths"),
            (
                r#"{"distributionId": "E1", "paths": ["/a", 3]}"#,
                "paths[1]",
            ),
            (r#"{"distributionId": "E1", "path": ["/a"]}"#, "path"),
            (r#"[1]"#, "."),
            (r#"{"distributionId": "#, "."),
        ];
        for (body, field) in cases {
            let e = parse_body(body).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
        }
    }

    #[test]
    fn decodes_s3_keys() {
        let body = r#"{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "img/a+b%C3%BC.png", "size": 1}}}]}"#;
        let Body::S3(objects) = parse_body(body).unwrap() else {
            panic!()
        };
        assert_eq!(objects[0].key, "img/a bü.png");
        assert_eq!(objects[0].bucket, "b");
    }

    #[test]
    fn unwraps_sns_and_recognises_the_test_event() {
        let inner = r#"{"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}"#;
        let sns = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        assert!(matches!(parse_body(&sns).unwrap(), Body::S3(o) if o.len() == 1));
        let test = r#"{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}"#;
        assert_eq!(parse_body(test).unwrap(), Body::TestEvent);
        let bad = serde_json::json!({"Type": "Notification", "Message": "{\"Records\": [{}]}"})
            .to_string();
        assert_eq!(parse_body(&bad).unwrap_err().field, "Message.Records[0].s3");
    }
}
