//! `s3://BUCKET/KEY` documents: one signed GetObject at cold start.
//!
//! Written here rather than taken from aws-sdk-s3: that client (S3's endpoint rules, checksums,
//! its many operations) cost each function's zip about 0.15 MB for this one call. The request is
//! the SDK's: the same URL (virtual-hosted where the bucket name allows it, path-style against a
//! custom endpoint such as an emulator), signed by aws-sigv4 with the SDK's S3 settings (a test
//! compares the two). It honours `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL`, FIPS and
//! dual-stack, and like every other call it has time limits and retries.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::aws::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, OPERATION_TIMEOUT, OperationRecorder};
use crate::error::{CallError, ErrorClass};

/// How many times a retryable failure is tried, as the SDK's standard retry mode does.
const ATTEMPTS: u32 = 3;
/// The most of an error answer that is read.
const MAX_ERROR_BYTES: u64 = 64 * 1024;

/// A key's path segments keep RFC 3986's unreserved characters; everything else is encoded.
const KEY_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn fail(code: &str, message: impl Into<String>, class: ErrorClass) -> CallError {
    CallError::new("s3", "GetObject", code, message, class)
}

/// The endpoint override S3 clients take from the environment or the profile:
/// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
fn endpoint_override(sdk: &SdkConfig) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| utf8_percent_encode(segment, KEY_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// A bucket that can be the first label of a host name under a wildcard certificate.
fn virtual_hostable(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-')
}

/// The object's GetObject URL: path-style under an endpoint override; otherwise S3's own endpoint
/// for the Region (FIPS and dual-stack as configured), virtual-hosted when the bucket name allows
/// it. `x-id=GetObject` names the operation, as the SDK's requests do.
pub fn object_url(
    endpoint: Option<&str>,
    region: &str,
    fips: bool,
    dual_stack: bool,
    bucket: &str,
    key: &str,
) -> String {
    let key = encode_key(key);
    if let Some(endpoint) = endpoint {
        return format!(
            "{}/{bucket}/{key}?x-id=GetObject",
            endpoint.trim_end_matches('/')
        );
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let service = match (fips, dual_stack) {
        (false, false) => "s3",
        (true, false) => "s3-fips",
        (false, true) => "s3.dualstack",
        (true, true) => "s3-fips.dualstack",
    };
    if virtual_hostable(bucket) {
        format!("https://{bucket}.{service}.{region}.{suffix}/{key}?x-id=GetObject")
    } else {
        format!("https://{service}.{region}.{suffix}/{bucket}/{key}?x-id=GetObject")
    }
}

/// Signs a GET of `url` (with `headers`, signed too) as the SDK signs S3 requests: the path
/// encoded once and not normalised, the payload's hash in `x-amz-content-sha256`, the session
/// token signed.
pub fn signed_get(
    url: &str,
    headers: &[(&str, &str)],
    credentials: aws_credential_types::Credentials,
    region: &str,
    now: SystemTime,
) -> Result<http::Request<()>, String> {
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let mut request = http::Request::builder().method("GET").uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(()).map_err(|e| format!("request: {e}"))?;
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| format!("{url} has no host"))?;
    let host = http::HeaderValue::from_str(&host).map_err(|e| format!("host: {e}"))?;
    request.headers_mut().insert(http::header::HOST, host);
    let signable = SignableRequest::new(
        "GET",
        url,
        request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("signable request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

/// An error answer's `<Code>` and `<Message>` (S3 answers in XML).
fn error_fields(body: &str) -> (Option<String>, Option<String>) {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].trim().to_string())
    };
    (field("Code"), field("Message"))
}

/// Reads the object's text (at most `max_bytes`). Answers and faults are classified as
/// [`CallError::aws`] does: a missing object or a refusal is permanent, throttling, a 5xx, a
/// timeout or a dropped connection retryable (and retried, up to three attempts in all).
pub async fn read(
    sdk: &SdkConfig,
    bucket: &str,
    key: &str,
    max_bytes: u64,
) -> Result<String, CallError> {
    let endpoint = endpoint_override(sdk);
    let region = sdk.region().map(|r| r.as_ref().to_string());
    let Some(region) = region else {
        return Err(fail(
            "RegionNotConfigured",
            "no Region is configured (AWS_REGION) to sign the request for",
            ErrorClass::Permanent,
        ));
    };
    let url = object_url(
        endpoint.as_deref(),
        &region,
        sdk.use_fips().unwrap_or(false),
        sdk.use_dual_stack().unwrap_or(false),
        bucket,
        key,
    );
    if let Some(recorder) = OperationRecorder::from_env() {
        recorder.record("s3", "GetObject");
    }
    // One connector (one pool) for every attempt. Its connect limit is the only one it needs:
    // each attempt's own time limit bounds the rest, the answer and its body.
    let connector = crate::aws::http::connector(
        &HttpConnectorSettings::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build(),
    );
    let call = async {
        let mut attempt = 1;
        loop {
            match tokio::time::timeout(
                ATTEMPT_TIMEOUT,
                get(sdk, &connector, &url, &region, max_bytes),
            )
            .await
            {
                Ok(Ok(text)) => return Ok(text),
                Ok(Err(e)) if e.class == ErrorClass::Permanent || attempt == ATTEMPTS => {
                    return Err(e);
                }
                Err(_) if attempt == ATTEMPTS => {
                    return Err(fail(
                        "Timeout",
                        format!("no answer within {ATTEMPT_TIMEOUT:?}, {ATTEMPTS} attempts"),
                        ErrorClass::Retryable,
                    ));
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            attempt += 1;
        }
    };
    tokio::time::timeout(OPERATION_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(fail(
                "Timeout",
                format!("no answer within {OPERATION_TIMEOUT:?}"),
                ErrorClass::Retryable,
            ))
        })
}

async fn get(
    sdk: &SdkConfig,
    connector: &SharedHttpConnector,
    url: &str,
    region: &str,
    max_bytes: u64,
) -> Result<String, CallError> {
    let provider = sdk.credentials_provider().ok_or_else(|| {
        fail(
            "NoCredentials",
            "no credentials provider is configured",
            ErrorClass::Permanent,
        )
    })?;
    // The provider's own failures (a credentials endpoint down) may pass.
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| fail("CredentialsNotLoaded", e.to_string(), ErrorClass::Retryable))?;
    let now = sdk
        .time_source()
        .map(|t| t.now())
        .unwrap_or_else(SystemTime::now);
    let signed = signed_get(url, &[], credentials, region, now)
        .map_err(|e| fail("ConstructionFailure", e, ErrorClass::Permanent))?;
    let request = HttpRequest::try_from(signed.map(|()| SdkBody::empty()))
        .map_err(|e| fail("ConstructionFailure", e.to_string(), ErrorClass::Permanent))?;

    let response = connector.call(request).await.map_err(|e| {
        fail(
            "DispatchFailure",
            crate::error::source_chain(&e),
            ErrorClass::Retryable,
        )
    })?;

    let status = response.status().as_u16();
    let ok = (200..300).contains(&status);
    let length = response
        .headers()
        .get("content-length")
        .and_then(|n| n.trim().parse::<u64>().ok());
    if ok {
        match length {
            Some(n) if n <= max_bytes => {}
            Some(n) => {
                return Err(fail(
                    "TooLarge",
                    format!("is {n} bytes, more than the {max_bytes} a document may have"),
                    ErrorClass::Permanent,
                ));
            }
            None => {
                return Err(fail(
                    "NoLength",
                    "S3 sent no Content-Length for it",
                    ErrorClass::Permanent,
                ));
            }
        }
    }
    // Never more than the limit is read, whatever the length said; an error answer is small.
    let limit = if ok { max_bytes } else { MAX_ERROR_BYTES };
    let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
        response.into_body(),
        usize::try_from(limit).unwrap_or(usize::MAX),
    ))
    .await
    .map_err(|e| {
        if ok && e.is::<http_body_util::LengthLimitError>() {
            fail(
                "TooLarge",
                format!("is more than the {max_bytes} bytes a document may have"),
                ErrorClass::Permanent,
            )
        } else {
            fail("ReadBody", e.to_string(), ErrorClass::Retryable)
        }
    })?
    .to_bytes();
    if ok {
        return String::from_utf8(body.to_vec())
            .map_err(|_| fail("NotUtf8", "is not UTF-8 text", ErrorClass::Permanent));
    }
    let text = String::from_utf8_lossy(&body);
    match error_fields(&text) {
        (Some(code), message) => {
            let mut e = CallError::from_code("s3", "GetObject", code, message.unwrap_or_default());
            // A 5xx or a 429 is worth another try whatever its code says (the SDK retries by
            // status too); a wrong reference is made permanent by the caller.
            if ErrorClass::of_status(status) == ErrorClass::Retryable {
                e.class = ErrorClass::Retryable;
            }
            Err(e)
        }
        // No code (a proxy's bare 5xx, an empty body): the status decides.
        (None, _) => Err(fail(
            &format!("HTTP{status}"),
            text.trim().to_string(),
            ErrorClass::of_status(status),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_the_sdk_s() {
        assert_eq!(
            object_url(
                None,
                "eu-west-1",
                false,
                false,
                "config",
                "autonomic/rules.json"
            ),
            "https://config.s3.eu-west-1.amazonaws.com/autonomic/rules.json?x-id=GetObject"
        );
        assert_eq!(
            object_url(None, "eu-west-1", false, false, "my.bucket", "a b/c+d.json"),
            "https://s3.eu-west-1.amazonaws.com/my.bucket/a%20b/c%2Bd.json?x-id=GetObject"
        );
        assert_eq!(
            object_url(None, "us-gov-west-1", true, false, "config", "r"),
            "https://config.s3-fips.us-gov-west-1.amazonaws.com/r?x-id=GetObject"
        );
        assert_eq!(
            object_url(None, "cn-north-1", false, true, "config", "r"),
            "https://config.s3.dualstack.cn-north-1.amazonaws.com.cn/r?x-id=GetObject"
        );
        assert_eq!(
            object_url(
                Some("http://127.0.0.1:5000/"),
                "us-east-1",
                false,
                false,
                "b",
                "k/x"
            ),
            "http://127.0.0.1:5000/b/k/x?x-id=GetObject"
        );
    }

    #[test]
    fn error_answers_are_read() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>\
                    <Message>The specified key does not exist.</Message></Error>";
        assert_eq!(
            error_fields(body),
            (
                Some("NoSuchKey".into()),
                Some("The specified key does not exist.".into())
            )
        );
        assert_eq!(error_fields("bad gateway"), (None, None));
    }
}
