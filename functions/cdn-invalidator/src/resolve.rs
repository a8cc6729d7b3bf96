//! A message's distribution(s) and normalised paths, or the typed reason it cannot be submitted.

use std::collections::BTreeMap;

use crate::api::CloudFrontApi;
use crate::domains::LookupError;
use crate::invalidator::{Batch, CdnInvalidator};
use crate::ledger::NotSubmitted;
use crate::messages::{Body, Target, parse_body};
use crate::paths::{escape_literal, normalize};
use crate::planner::Part;

/// What a message resolved to.
pub enum Resolution {
    /// Nothing to invalidate, and nothing wrong (the S3 test event): acknowledged, with the
    /// skip reason and its detail.
    Acknowledge(&'static str, String),
    Parts(Vec<Part>),
}

impl<C: CloudFrontApi> CdnInvalidator<C> {
    pub(crate) async fn resolve(
        &self,
        batch: &mut Batch<'_>,
        i: usize,
    ) -> Result<Resolution, NotSubmitted> {
        let message_id = batch.ledger.message_id(i);
        let body = batch.ledger.message(i).body.as_deref().unwrap_or_default();
        let body = parse_body(body).map_err(|e| NotSubmitted::Malformed(e.to_string()))?;
        let mut wanted: Vec<(Target, String)> = Vec::new();
        match body {
            Body::TestEvent => {
                return Ok(Resolution::Acknowledge(
                    "s3_test_event",
                    "S3 sends this when a notification is set up".into(),
                ));
            }
            Body::Request(r) => {
                let target = r
                    .target()
                    .map_err(|e| NotSubmitted::Malformed(e.to_string()))?;
                tracing::info!(%message_id, reason = ?r.reason, requester = ?r.requester, paths = r.paths.len(), "invalidation request");
                wanted.extend(r.paths.into_iter().map(|p| (target.clone(), p)));
            }
            Body::S3(objects) => {
                for o in objects {
                    let mapping = self.config.buckets.get(&o.bucket).ok_or_else(|| {
                        NotSubmitted::Unresolvable(format!(
                            "no distribution is configured for bucket {:?} (BUCKET_DISTRIBUTIONS)",
                            o.bucket
                        ))
                    })?;
                    let target = mapping.target().ok_or_else(|| {
                        NotSubmitted::Unresolvable("invalid bucket mapping".into())
                    })?;
                    // An object key is a name, not a path pattern: its %, * and ? are literal.
                    if let Some(path) = mapping.path_for(&escape_literal(&o.key)) {
                        wanted.push((target, path));
                    }
                }
                if wanted.is_empty() {
                    return Ok(Resolution::Acknowledge(
                        "outside_mapped_prefix",
                        "no object is under the bucket's stripPrefix".into(),
                    ));
                }
            }
        }
        let mut by_distribution: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (n, (target, raw)) in wanted.into_iter().enumerate() {
            let distribution = match target {
                Target::DistributionId(id) => id,
                Target::Domain(domain) => self
                    .domains
                    .resolve(&self.api, &mut batch.list_once, &domain)
                    .await
                    .map_err(|e| match e {
                        LookupError::Unknown(d) => NotSubmitted::Unresolvable(d),
                        LookupError::ListFailed(d) => NotSubmitted::AwsError(d),
                    })?,
            };
            let path = normalize(&raw)
                .map_err(|e| NotSubmitted::Malformed(format!("path {n} ({raw:?}): {e}")))?;
            by_distribution.entry(distribution).or_default().push(path);
        }
        Ok(Resolution::Parts(
            by_distribution
                .into_iter()
                .map(|(distribution, paths)| Part {
                    message: i,
                    message_id: message_id.to_string(),
                    distribution,
                    paths,
                })
                .collect(),
        ))
    }
}
