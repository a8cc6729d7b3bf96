//! The EKS bearer token, minted in-process (no aws CLI, no exec plugin), as
//! aws-iam-authenticator makes it: an STS `GetCallerIdentity` URL presigned with SigV4 in its
//! query, with the cluster name in the signed header `x-k8s-aws-id`; the token is
//! `k8s-aws-v1.` + base64url (no padding) of that URL.
//!
//! EKS accepts it for 15 minutes from `X-Amz-Date`, whatever `X-Amz-Expires` says, so a client is
//! rebuilt with a fresh token when its token would not last the invocation ([`TOKEN_LIFETIME`]).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The token's prefix, which tells EKS how to read the rest.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds the token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long a token may be used: EKS accepts it for 15 minutes from its signing; a minute is
/// kept for clocks and for a call in flight. A client is reused only if its token lasts the
/// invocation.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// The STS endpoint a token is presigned for (regional, as EKS expects by default).
pub fn sts_url(region: &str) -> String {
    let host = if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    };
    format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15")
}

/// Mints a token for `cluster` in `region` with `credentials`, signed at `now`.
pub fn mint(
    credentials: Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, String> {
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let url = sts_url(region);
    let headers = [(CLUSTER_ID_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("signable request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .header(CLUSTER_ID_HEADER, cluster)
        .body(())
        .map_err(|e| format!("request: {e}"))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(request.uri().to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let b64 = token.strip_prefix(TOKEN_PREFIX).unwrap();
        String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn a_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session".into()),
            None,
            "test",
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let token = mint(creds, "eu-west-1", "prod", at).unwrap();
        assert!(!token.contains('='), "no padding: {token}");
        let url = decode(&token);
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        for part in [
            "Action=GetCallerIdentity",
            "Version=2011-06-15",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20251124%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20251124T160000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=session",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing in {url}");
        }
        // Bound to the cluster: another cluster's token differs only by its signature.
        let other = decode(
            &mint(
                Credentials::new(
                    "AKIDEXAMPLE",
                    "secret",
                    Some("session".into()),
                    None,
                    "test",
                ),
                "eu-west-1",
                "staging",
                at,
            )
            .unwrap(),
        );
        assert_ne!(url, other);
        assert_eq!(
            url.split("X-Amz-Signature").next(),
            other.split("X-Amz-Signature").next()
        );
    }

    #[test]
    fn china_regions_use_their_own_sts_host() {
        assert_eq!(
            sts_url("cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn/?Action=GetCallerIdentity&Version=2011-06-15"
        );
    }
}
