//! Bearer token checks: a fixed token, or an EKS presigned STS token checked for form and
//! freshness (its signature needs STS).
//!
//! Separate: the token format is AWS's, not Kubernetes'.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use super::TokenCheck;
use super::query::Query;

/// Whether `token` passes `check` at `now`; the error says why not.
pub(super) fn check_token(
    check: &TokenCheck,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), String> {
    match check {
        TokenCheck::Static(expected) => {
            if token == expected {
                Ok(())
            } else {
                Err("not the configured token".to_string())
            }
        }
        TokenCheck::EksPresigned { cluster } => {
            check_eks_token(token, now).map_err(|why| format!("EKS token for {cluster}: {why}"))
        }
    }
}

fn check_eks_token(token: &str, now: DateTime<Utc>) -> Result<(), String> {
    let encoded = token
        .strip_prefix("k8s-aws-v1.")
        .ok_or("no k8s-aws-v1. prefix")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))?;
    let url = String::from_utf8(bytes).map_err(|_| "the URL is not UTF-8")?;
    let rest = url.strip_prefix("https://").ok_or("not an https URL")?;
    let (location, query) = rest.split_once('?').ok_or("the URL has no query")?;
    let (host, path) = location.split_once('/').unwrap_or((location, ""));
    if !path.is_empty() {
        return Err(format!("path /{path} is not /"));
    }
    let regional = host
        .strip_prefix("sts.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .is_some_and(|region| {
            !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if host != "sts.amazonaws.com" && !regional {
        return Err(format!("host {host} is not STS"));
    }
    let params = Query::parse(query);
    let need = |key: &str| {
        params
            .get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no {key}"))
    };
    let require = |key: &str, want: &str| -> Result<(), String> {
        let got = need(key)?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{key} is {got}, not {want}"))
        }
    };
    require("Action", "GetCallerIdentity")?;
    require("Version", "2011-06-15")?;
    require("X-Amz-Algorithm", "AWS4-HMAC-SHA256")?;
    let credential: Vec<&str> = need("X-Amz-Credential")?.split('/').collect();
    if credential.len() != 5 || credential[3] != "sts" || credential[4] != "aws4_request" {
        return Err(format!(
            "X-Amz-Credential {} is not KEY/DATE/REGION/sts/aws4_request",
            credential.join("/")
        ));
    }
    let date = need("X-Amz-Date")?;
    let signed = NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|e| format!("X-Amz-Date {date}: {e}"))?
        .and_utc();
    let age = now.signed_duration_since(signed);
    if age > TimeDelta::minutes(15) {
        return Err(format!("signed at {date}, more than 15 minutes ago"));
    }
    if age < -TimeDelta::minutes(5) {
        return Err(format!("signed at {date}, more than 5 minutes from now"));
    }
    let expires = need("X-Amz-Expires")?;
    if expires.parse::<u64>().is_err() {
        return Err(format!(
            "X-Amz-Expires {expires} is not a number of seconds"
        ));
    }
    if !need("X-Amz-SignedHeaders")?
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("x-k8s-aws-id"))
    {
        return Err("x-k8s-aws-id is not a signed header".to_string());
    }
    let signature = need("X-Amz-Signature")?;
    if signature.len() != 64 || !signature.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("X-Amz-Signature is not 64 hex digits".to_string());
    }
    // The signature itself cannot be checked without STS.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_stand_in::query::percent_decode;

    fn presigned(host: &str, date: &str) -> String {
        let url = format!(
            "https://{host}/?Action=GetCallerIdentity&Version=2011-06-15\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20250101%2Fus-east-1%2Fsts%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id\
             &X-Amz-Signature={}",
            "0a".repeat(32)
        );
        format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url))
    }

    #[test]
    fn eks_tokens_are_checked_for_form_and_freshness() {
        let check = TokenCheck::EksPresigned {
            cluster: "prod".to_string(),
        };
        let now = Utc::now();
        let date = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        check_token(
            &check,
            &presigned("sts.eu-west-1.amazonaws.com", &date(now)),
            now,
        )
        .unwrap();
        check_token(&check, &presigned("sts.amazonaws.com", &date(now)), now).unwrap();
        let stale = date(now - TimeDelta::minutes(16));
        assert!(check_token(&check, &presigned("sts.amazonaws.com", &stale), now).is_err());
        let future = date(now + TimeDelta::minutes(6));
        assert!(check_token(&check, &presigned("sts.amazonaws.com", &future), now).is_err());
        assert!(check_token(&check, &presigned("evil.example.com", &date(now)), now).is_err());
        assert!(check_token(&check, "k8s-aws-v1.bm90IGEgdXJs", now).is_err());

        let fixed = TokenCheck::Static("t".to_string());
        check_token(&fixed, "t", now).unwrap();
        assert!(check_token(&fixed, "u", now).is_err());
        assert_eq!(percent_decode("a%2Fb%3bc+d%"), "a/b;c d%");
    }
}
