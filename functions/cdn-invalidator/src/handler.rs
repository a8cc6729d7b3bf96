//! One SQS batch: parse each message → resolve its distribution(s) and paths → segment → plan
//! within the limits → claim and send each call → report exactly the messages not submitted.

use std::collections::{BTreeMap, HashMap};

use autonomic::audit::{AuditRecord, Outcome, Reporter};
use autonomic::events::from_value;
use autonomic::guard::{Claim, Lease, StateTable};
use autonomic::runtime::{Handler, now_ms};
use autonomic::{AwsError, FunctionError};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::api::CloudFrontApi;
use crate::config::InvalidatorConfig;
use crate::messages::{Body, Target, parse_body};
use crate::paths::{escape_literal, normalize};
use crate::planner::{self, InProgress, InvalidationCall, Part};

pub const FUNCTION: &str = "cdn-invalidator";
const SCOPE: &str = "cdn-invalidator";
const CREATE_INVALIDATION: &str = "create_invalidation";
const MESSAGE: &str = "message";

fn distribution_lease(distribution: &str) -> String {
    format!("cdn-distribution#{distribution}")
}

/// The invalidator, built once per container.
pub struct CdnInvalidator<C> {
    pub api: C,
    pub state: StateTable,
    pub config: InvalidatorConfig,
    pub reporter: Reporter,
    /// Domain name → distribution id, from ListDistributions, kept for the container's life.
    domains: Mutex<Option<HashMap<String, String>>>,
}

impl<C: CloudFrontApi> CdnInvalidator<C> {
    pub fn new(api: C, state: StateTable, config: InvalidatorConfig, reporter: Reporter) -> Self {
        Self {
            api,
            state,
            config,
            reporter,
            domains: Mutex::new(None),
        }
    }
}

/// The distribution serving `domain`: an exact alternate name, else a wildcard one
/// (`*.example.com` serves `static.example.com`).
fn lookup(domains: &HashMap<String, String>, domain: &str) -> Option<String> {
    domains.get(domain).cloned().or_else(|| {
        let (_, parent) = domain.split_once('.')?;
        domains.get(&format!("*.{parent}")).cloned()
    })
}

/// What a message resolved to.
enum Resolution {
    /// Nothing to invalidate, and nothing wrong (the S3 test event): acknowledged.
    Acknowledge(&'static str, String),
    Parts(Vec<Part>),
}

/// The state of one batch as it is worked through.
struct Batch<'a> {
    request_id: &'a str,
    deadline_ms: i64,
    fifo: bool,
    records: &'a [SqsMessage],
    /// Message index → why it is reported failed.
    failed: BTreeMap<usize, String>,
    /// FIFO message group → index of its first failed message.
    group_failed_at: HashMap<String, usize>,
    submitted: Vec<bool>,
    /// Whether ListDistributions was called in this batch, and its error if it failed (asked once
    /// per batch at most, so a throttled API is not asked again for every message).
    refreshed: bool,
    list_error: Option<String>,
    /// Distributions whose lease this invocation holds.
    leases: Vec<String>,
    audit: Vec<AuditRecord>,
    calls: Vec<Value>,
}

impl Batch<'_> {
    fn message_id(&self, i: usize) -> &str {
        self.records[i].message_id.as_deref().unwrap_or_default()
    }

    fn group(&self, i: usize) -> Option<&str> {
        self.records[i]
            .attributes
            .get("MessageGroupId")
            .map(String::as_str)
    }

    /// Whether an earlier message of `i`'s FIFO group failed.
    fn blocked(&self, i: usize) -> Option<usize> {
        if !self.fifo {
            return None;
        }
        let at = *self.group_failed_at.get(self.group(i)?)?;
        (at < i).then_some(at)
    }
}

impl<C: CloudFrontApi> Handler for CdnInvalidator<C> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let sqs: SqsEvent = from_value(&event.payload)?;
        if let Some(i) = sqs.records.iter().position(|r| r.message_id.is_none()) {
            // Without an id a message cannot be reported alone: fail the batch rather than lose it.
            return Err(autonomic::events::EventError::new(
                format!("Records[{i}].messageId"),
                "missing required field",
            )
            .into());
        }
        let fifo = sqs.records.iter().any(|r| {
            r.event_source_arn
                .as_deref()
                .is_some_and(|a| a.ends_with(".fifo"))
        });
        let mut batch = Batch {
            request_id: &event.context.request_id,
            deadline_ms: event.context.deadline as i64,
            fifo,
            records: &sqs.records,
            failed: BTreeMap::new(),
            group_failed_at: HashMap::new(),
            submitted: vec![false; sqs.records.len()],
            refreshed: false,
            list_error: None,
            leases: Vec::new(),
            audit: Vec::new(),
            calls: Vec::new(),
        };

        let mut parts = Vec::new();
        for i in 0..sqs.records.len() {
            if let Some(at) = batch.blocked(i) {
                let reason = format!(
                    "an earlier message ({}) of its FIFO group failed",
                    batch.message_id(at)
                );
                self.fail(&mut batch, i, reason);
                continue;
            }
            match self.resolve(&mut batch, i).await {
                Ok(Resolution::Parts(p)) => parts.extend(p),
                Ok(Resolution::Acknowledge(reason, detail)) => {
                    self.audit(
                        &mut batch,
                        MESSAGE,
                        Outcome::Skipped,
                        i,
                        Some(reason),
                        json!({"detail": detail}),
                    );
                }
                Err(reason) => self.fail(&mut batch, i, reason),
            }
        }

        let mut in_progress: HashMap<String, InProgress> = HashMap::new();
        for mut segment in planner::segments(parts, fifo) {
            segment.retain(|p| {
                !batch.failed.contains_key(&p.message) && batch.blocked(p.message).is_none()
            });
            let Some(first) = segment.first() else {
                continue;
            };
            let distribution = first.distribution.clone();
            let current = match in_progress.get(&distribution) {
                Some(c) => *c,
                None => match self.open_distribution(&mut batch, &distribution).await {
                    Ok(c) => *in_progress.entry(distribution.clone()).or_insert(c),
                    Err(reason) => {
                        for p in &segment {
                            self.fail(&mut batch, p.message, reason.clone());
                        }
                        continue;
                    }
                },
            };
            let plan =
                planner::plan_segment(&segment, current, self.config.collapse_threshold, fifo);
            for (m, reason) in plan.deferred {
                self.fail(&mut batch, m, reason);
            }
            for call in plan.calls {
                match self.send(&mut batch, &call).await {
                    Ok(()) => {
                        let entry = in_progress.entry(distribution.clone()).or_default();
                        entry.wildcards += call.wildcards();
                        entry.files += call.paths.len() - call.wildcards();
                        for &m in &call.messages {
                            batch.submitted[m] = true;
                        }
                    }
                    Err(reason) => {
                        for &m in &call.messages {
                            self.fail(&mut batch, m, reason.clone());
                        }
                    }
                }
            }
        }

        for distribution in std::mem::take(&mut batch.leases) {
            if let Err(e) = self
                .state
                .release_lease(&distribution_lease(&distribution), batch.request_id)
                .await
            {
                tracing::warn!(error = %e, %distribution, "could not release the distribution lease; it ends at the deadline");
            }
        }

        // A message is reported when any of its paths was not submitted. In dry run nothing was
        // submitted, so every message stays on the queue.
        let dry_run = self.config.common.dry_run;
        let failures: Vec<BatchItemFailure> = (0..sqs.records.len())
            .filter(|i| {
                dry_run
                    || batch.failed.contains_key(i)
                    || (batch.blocked(*i).is_some() && !batch.submitted[*i])
            })
            .map(|i| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = batch.message_id(i).to_string();
                f
            })
            .collect();
        self.reporter.metrics(&batch.audit, now_ms());
        tracing::info!(
            messages = sqs.records.len(),
            calls = batch.calls.len(),
            failed = failures.len(),
            dry_run,
            "batch done"
        );
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        let mut value = serde_json::to_value(&response).map_err(|e| {
            FunctionError::from(autonomic::events::EventError::new(
                ".",
                format!("cannot serialise the response: {e}"),
            ))
        })?;
        if dry_run {
            value["plan"] = json!({"calls": batch.calls, "failed": batch.failed});
        }
        Ok(value)
    }
}

impl<C: CloudFrontApi> CdnInvalidator<C> {
    fn audit(
        &self,
        batch: &mut Batch,
        action: &str,
        outcome: Outcome,
        i: usize,
        reason: Option<&str>,
        details: Value,
    ) {
        let record = AuditRecord {
            action: action.to_string(),
            outcome,
            target: batch.message_id(i).to_string(),
            trigger: batch.message_id(i).to_string(),
            reason: reason.map(str::to_owned),
            details,
        };
        self.reporter
            .audit(batch.request_id, self.config.common.dry_run, &record);
        batch.audit.push(record);
    }

    fn fail(&self, batch: &mut Batch, i: usize, reason: String) {
        if batch.failed.contains_key(&i) {
            return;
        }
        tracing::warn!(message_id = %batch.message_id(i), %reason, "message not submitted");
        self.audit(
            batch,
            MESSAGE,
            Outcome::Failed,
            i,
            Some("not_submitted"),
            json!({"detail": reason}),
        );
        if batch.fifo
            && let Some(g) = batch.group(i).map(str::to_owned)
        {
            let at = batch.group_failed_at.entry(g).or_insert(i);
            *at = (*at).min(i);
        }
        batch.failed.insert(i, reason);
    }

    /// Takes the distribution's lease and counts what is in progress there. The lease makes one
    /// invocation at a time count and submit for a distribution, so that concurrent invocations
    /// cannot together pass CloudFront's in-progress limits.
    async fn open_distribution(
        &self,
        batch: &mut Batch<'_>,
        distribution: &str,
    ) -> Result<InProgress, String> {
        if !self.config.common.dry_run {
            let now = now_ms();
            let hold = std::time::Duration::from_millis(
                batch.deadline_ms.saturating_sub(now).max(1000) as u64,
            );
            match self
                .state
                .acquire_lease(
                    &distribution_lease(distribution),
                    batch.request_id,
                    now,
                    hold,
                )
                .await
            {
                Ok(Lease::Acquired { .. }) => batch.leases.push(distribution.to_string()),
                Ok(Lease::Held { holder, .. }) => {
                    return Err(format!(
                        "another invocation ({holder}) is sending invalidations for {distribution}"
                    ));
                }
                Err(e) => return Err(format!("could not take the distribution lease: {e}")),
            }
        }
        self.api
            .in_progress(distribution)
            .await
            .map_err(|e| format!("could not count invalidations in progress: {e}"))
    }

    /// A message's distribution(s) and normalised paths, or why it cannot be submitted.
    async fn resolve(&self, batch: &mut Batch<'_>, i: usize) -> Result<Resolution, String> {
        let body = batch.records[i].body.as_deref().unwrap_or_default();
        let body = parse_body(body).map_err(|e| e.to_string())?;
        let mut wanted: Vec<(Target, String)> = Vec::new();
        match body {
            Body::TestEvent => {
                return Ok(Resolution::Acknowledge(
                    "s3_test_event",
                    "S3 sends this when a notification is set up".into(),
                ));
            }
            Body::Request(r) => {
                let target = r.target().map_err(|e| e.to_string())?;
                tracing::info!(message_id = %batch.message_id(i), reason = ?r.reason, requester = ?r.requester, paths = r.paths.len(), "invalidation request");
                wanted.extend(r.paths.into_iter().map(|p| (target.clone(), p)));
            }
            Body::S3(objects) => {
                for o in objects {
                    let mapping = self.config.buckets.get(&o.bucket).ok_or_else(|| {
                        format!(
                            "no distribution is configured for bucket {:?} (BUCKET_DISTRIBUTIONS)",
                            o.bucket
                        )
                    })?;
                    let target = mapping.target().ok_or("invalid bucket mapping")?;
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
            let distribution = self.distribution_for(batch, &target).await?;
            let path = normalize(&raw).map_err(|e| format!("path {n} ({raw:?}): {e}"))?;
            by_distribution.entry(distribution).or_default().push(path);
        }
        Ok(Resolution::Parts(
            by_distribution
                .into_iter()
                .map(|(distribution, paths)| Part {
                    message: i,
                    message_id: batch.message_id(i).to_string(),
                    distribution,
                    paths,
                })
                .collect(),
        ))
    }

    async fn distribution_for(
        &self,
        batch: &mut Batch<'_>,
        target: &Target,
    ) -> Result<String, String> {
        let domain = match target {
            Target::DistributionId(id) => return Ok(id.clone()),
            Target::Domain(d) => d,
        };
        let mut cache = self.domains.lock().await;
        if let Some(id) = cache.as_ref().and_then(|c| lookup(c, domain)) {
            return Ok(id);
        }
        // Unknown: list again, once per batch (a distribution may have been added since).
        if !batch.refreshed {
            batch.refreshed = true;
            match self.api.distribution_domains().await {
                Ok(listed) => {
                    *cache = Some(
                        listed
                            .into_iter()
                            .flat_map(|(id, domains)| {
                                domains.into_iter().map(move |d| (d, id.clone()))
                            })
                            .collect(),
                    );
                }
                Err(e) => batch.list_error = Some(format!("could not list distributions: {e}")),
            }
        }
        if let Some(e) = &batch.list_error {
            return Err(e.clone());
        }
        cache
            .as_ref()
            .and_then(|c| lookup(c, domain))
            .ok_or_else(|| format!("no distribution has the domain name {domain:?}"))
    }

    /// Claims and sends one call; in dry run, only records it.
    async fn send(&self, batch: &mut Batch<'_>, call: &InvalidationCall) -> Result<(), String> {
        let messages: Vec<&str> = call.messages.iter().map(|&m| batch.message_id(m)).collect();
        let mut details = json!({
            "distribution": call.distribution,
            "callerReference": call.caller_reference,
            "paths": call.paths.len(),
            "wildcards": call.wildcards(),
            "messages": messages,
        });
        batch.calls.push(json!({"distribution": call.distribution, "callerReference": call.caller_reference, "paths": call.paths, "messages": messages}));
        let record = |outcome, reason: Option<String>, details: Value| AuditRecord {
            action: CREATE_INVALIDATION.into(),
            outcome,
            target: call.distribution.clone(),
            trigger: call.caller_reference.clone(),
            reason,
            details,
        };
        if self.config.common.dry_run {
            tracing::info!(distribution = %call.distribution, paths = call.paths.len(), "dry run: would create an invalidation");
            let r = record(Outcome::DryRun, None, details);
            self.reporter.audit(batch.request_id, true, &r);
            batch.audit.push(r);
            return Ok(());
        }
        let result = self.claim_and_create(batch, call).await;
        let r = match &result {
            Ok(id) => {
                details["invalidationId"] = json!(id);
                tracing::info!(distribution = %call.distribution, invalidation = %id, paths = call.paths.len(), "invalidation created");
                record(Outcome::Applied, None, details)
            }
            Err(e) => {
                tracing::error!(distribution = %call.distribution, error = %e, "invalidation not created");
                record(
                    Outcome::Failed,
                    Some(e.code.clone()),
                    json!({"error": e.to_string(), "call": details}),
                )
            }
        };
        self.reporter.audit(batch.request_id, false, &r);
        batch.audit.push(r);
        result.map(|_| ()).map_err(|e| e.to_string())
    }

    /// The claim makes a redelivered batch a no-op even where CloudFront's own CallerReference
    /// check does not run (moto); CloudFront's check covers a takeover after a crash.
    async fn claim_and_create(
        &self,
        batch: &Batch<'_>,
        call: &InvalidationCall,
    ) -> Result<String, AwsError> {
        let ttl = self.config.common.idempotency_ttl;
        let key = &call.caller_reference;
        match self
            .state
            .claim(
                SCOPE,
                key,
                batch.request_id,
                now_ms(),
                batch.deadline_ms,
                ttl,
            )
            .await?
        {
            Claim::Completed(previous) => {
                return Ok(previous["invalidationId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string());
            }
            Claim::InProgress { owner, .. } => {
                return Err(AwsError {
                    operation: "CreateInvalidation",
                    code: "InProgress".into(),
                    message: format!("the same invalidation is being sent by {owner}"),
                    class: autonomic::ErrorClass::Retryable,
                });
            }
            Claim::Claimed | Claim::TakenOver { .. } => {}
        }
        match self
            .api
            .create_invalidation(&call.distribution, key, &call.paths)
            .await
        {
            Ok(id) => {
                if let Err(e) = self
                    .state
                    .complete(
                        SCOPE,
                        key,
                        batch.request_id,
                        &json!({"invalidationId": id}),
                        now_ms(),
                        ttl,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "could not complete the claim; CloudFront's CallerReference still dedupes a resend");
                }
                Ok(id)
            }
            Err(e) => {
                // Resending later is safe either way: CloudFront answers a repeated CallerReference
                // with the invalidation it already made.
                if let Err(abandon) = self.state.abandon(SCOPE, key, batch.request_id).await {
                    tracing::warn!(error = %abandon, "could not abandon the claim; it expires at the deadline");
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_resolve_exactly_then_by_wildcard() {
        let domains: HashMap<String, String> = [
            ("static.example.com".to_string(), "E1".to_string()),
            ("*.example.com".to_string(), "E2".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            lookup(&domains, "static.example.com").as_deref(),
            Some("E1")
        );
        assert_eq!(lookup(&domains, "img.example.com").as_deref(), Some("E2"));
        // A wildcard covers one label only.
        assert_eq!(lookup(&domains, "a.b.example.com"), None);
        assert_eq!(lookup(&domains, "example.org"), None);
    }
}
