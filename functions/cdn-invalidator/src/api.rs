//! The CloudFront calls the invalidator makes, behind a small trait implemented for the SDK client.

use std::future::Future;

use autonomic::CallError;
use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use crate::planner::InProgress;

pub trait CloudFrontApi: Send + Sync + 'static {
    /// Every distribution's id with its domain names (alternate names and `*.cloudfront.net`).
    fn distribution_domains(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, Vec<String>)>, CallError>> + Send;

    /// The file and wildcard paths of the distribution's invalidations still in progress.
    fn in_progress(
        &self,
        distribution: &str,
    ) -> impl Future<Output = Result<InProgress, CallError>> + Send;

    /// Creates an invalidation; returns its id.
    fn create_invalidation(
        &self,
        distribution: &str,
        caller_reference: &str,
        paths: &[String],
    ) -> impl Future<Output = Result<String, CallError>> + Send;
}

impl CloudFrontApi for Client {
    async fn distribution_domains(&self) -> Result<Vec<(String, Vec<String>)>, CallError> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .list_distributions()
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| CallError::aws("cloudfront", "ListDistributions", e))?;
            let Some(list) = page.distribution_list() else {
                break;
            };
            for d in list.items() {
                let mut domains = vec![d.domain_name().to_ascii_lowercase()];
                if let Some(aliases) = d.aliases() {
                    domains.extend(aliases.items().iter().map(|a| a.to_ascii_lowercase()));
                }
                out.push((d.id().to_string(), domains));
            }
            match (list.is_truncated(), list.next_marker()) {
                (true, Some(next)) => marker = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn in_progress(&self, distribution: &str) -> Result<InProgress, CallError> {
        let mut counts = InProgress::default();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .list_invalidations()
                .distribution_id(distribution)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| CallError::aws("cloudfront", "ListInvalidations", e))?;
            let Some(list) = page.invalidation_list() else {
                break;
            };
            // The list runs newest first and invalidations finish within minutes: a page with
            // nothing in progress ends the search rather than paging through all history.
            let mut page_in_progress = 0;
            for summary in list.items().iter().filter(|s| s.status() == "InProgress") {
                page_in_progress += 1;
                let inv = self
                    .get_invalidation()
                    .distribution_id(distribution)
                    .id(summary.id())
                    .send()
                    .await
                    .map_err(|e| CallError::aws("cloudfront", "GetInvalidation", e))?;
                let paths = inv
                    .invalidation()
                    .and_then(|i| i.invalidation_batch())
                    .and_then(|b| b.paths())
                    .map(|p| p.items())
                    .unwrap_or_default();
                for p in paths {
                    if p.ends_with('*') {
                        counts.wildcards += 1;
                    } else {
                        counts.files += 1;
                    }
                }
            }
            match (list.is_truncated(), list.next_marker()) {
                (true, Some(next)) if page_in_progress > 0 => marker = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(counts)
    }

    async fn create_invalidation(
        &self,
        distribution: &str,
        caller_reference: &str,
        paths: &[String],
    ) -> Result<String, CallError> {
        let paths = Paths::builder()
            .quantity(paths.len() as i32)
            .set_items(Some(paths.to_vec()))
            .build()
            .map_err(|e| construction("CreateInvalidation", e))?;
        let batch = InvalidationBatch::builder()
            .caller_reference(caller_reference)
            .paths(paths)
            .build()
            .map_err(|e| construction("CreateInvalidation", e))?;
        let out = self
            .create_invalidation()
            .distribution_id(distribution)
            .invalidation_batch(batch)
            .send()
            .await
            .map_err(|e| CallError::aws("cloudfront", "CreateInvalidation", e))?;
        Ok(out
            .invalidation()
            .map(|i| i.id().to_string())
            .unwrap_or_default())
    }
}

fn construction(operation: &'static str, e: impl std::fmt::Display) -> CallError {
    CallError::new(
        "cloudfront",
        operation,
        "ConstructionFailure",
        e.to_string(),
        autonomic::ErrorClass::Permanent,
    )
}
