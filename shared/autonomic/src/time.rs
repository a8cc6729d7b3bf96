//! The clock ([`now_ms`]), and timestamps as AWS writes them in alarm payloads. Below every
//! other module: nothing here imports the rest of the crate.
//!
//! CloudWatch writes `2019-10-02T17:04:40.985+0000` (no colon in the offset) in state timestamps
//! and SNS `StateChangeTime`, which RFC 3339 parsers reject; EventBridge envelopes use RFC 3339.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Milliseconds since the epoch, now: the one place handlers read the clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Parses RFC 3339 and CloudWatch's `+0000` form.
pub fn parse_aws_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde adapter for [`parse_aws_timestamp`]; serialises as RFC 3339 with milliseconds.
pub mod aws_timestamp {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_aws_timestamp(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid timestamp {s:?}: expected RFC 3339 or YYYY-MM-DDThh:mm:ss.sss+0000"
            ))
        })
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_to_the_same_instant() {
        let a = parse_aws_timestamp("2019-10-02T17:04:40.985+0000").unwrap();
        let b = parse_aws_timestamp("2019-10-02T17:04:40.985Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.timestamp_millis(), 1_570_035_880_985);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_aws_timestamp("yesterday").is_none());
        assert!(parse_aws_timestamp("").is_none());
    }
}
