//! Taking the distributions' leases, and sending each planned call under its claim.

use std::collections::{BTreeSet, HashMap};

use autonomic::guard::{Claimed, LeaseName, LeaseOutcome};
use autonomic::{CallError, FunctionError};
use serde_json::{Value, json};

use crate::api::CloudFrontApi;
use crate::handler::{Batch, CdnInvalidator};
use crate::ledger::NotSubmitted;
use crate::planner::{self, InProgress, InvalidationCall, Part};

/// The action kind of an invalidation, in audit records and metrics.
pub const CREATE_INVALIDATION: &str = "create_invalidation";

/// The lease that makes one invocation at a time count and submit for a distribution.
pub fn distribution_lease(distribution: &str) -> LeaseName {
    LeaseName::new("cdn-distribution", distribution)
}

impl<C: CloudFrontApi> CdnInvalidator<C> {
    /// Takes each distribution's lease (in sorted order, so two invocations can never wait for
    /// each other) and counts what is in progress there. The lease makes one invocation at a time
    /// count and submit for a distribution, so that concurrent invocations cannot together pass
    /// CloudFront's in-progress limits. A lease held by another invocation is waited for while
    /// this one has time left.
    pub(crate) async fn open_distributions(
        &self,
        batch: &mut Batch<'_>,
        distributions: BTreeSet<String>,
    ) -> HashMap<String, Result<InProgress, NotSubmitted>> {
        let mut opened = HashMap::new();
        for distribution in distributions {
            let counted = self.open(batch, &distribution).await;
            opened.insert(distribution, counted);
        }
        opened
    }

    async fn open(
        &self,
        batch: &mut Batch<'_>,
        distribution: &str,
    ) -> Result<InProgress, NotSubmitted> {
        if batch.inv.should_stop() {
            return Err(NotSubmitted::Deadline);
        }
        if !batch.inv.dry_run {
            let name = distribution_lease(distribution);
            let deadline = batch.inv.deadline_ms;
            match self.guards.lease(&batch.inv, &name, deadline, None).await {
                Ok(LeaseOutcome::Acquired(lease)) => batch.leases.push(lease),
                Ok(
                    LeaseOutcome::Contended { holder, .. } | LeaseOutcome::Cooldown { holder, .. },
                ) => {
                    return Err(NotSubmitted::LeaseHeld(format!(
                        "another invocation ({holder}) is sending invalidations for {distribution}"
                    )));
                }
                Err(e) => {
                    batch.note_state_table_error(&e);
                    return Err(NotSubmitted::AwsError(format!(
                        "could not take the distribution lease: {e}"
                    )));
                }
            }
        }
        self.api.in_progress(distribution).await.map_err(|e| {
            NotSubmitted::AwsError(format!("could not count invalidations in progress: {e}"))
        })
    }

    /// Plans one segment within the limits and sends its calls; returns what is in progress on
    /// the distribution after it.
    pub(crate) async fn send_segment(
        &self,
        batch: &mut Batch<'_>,
        segment: &[Part],
        mut current: InProgress,
    ) -> InProgress {
        let threshold = self.config.collapse_threshold;
        let plan = planner::plan_segment(segment, current, threshold, batch.ledger.fifo());
        // A deferred message is named by its id: find it among the segment's parts, not by a
        // scan of the whole batch for each one.
        let index: HashMap<&str, usize> = segment
            .iter()
            .map(|p| (p.message_id.as_str(), p.message))
            .collect();
        for skip in &plan.skips {
            if let Some(&i) = index.get(skip.target.as_str()) {
                self.fail(batch, i, NotSubmitted::Deferred(skip.detail.clone()));
            }
        }
        for call in plan.actions {
            match self.send(batch, &call).await {
                Ok(()) => {
                    current.wildcards += call.wildcards();
                    current.files += call.paths.len() - call.wildcards();
                    for &m in &call.messages {
                        batch.ledger.submitted(m);
                    }
                }
                Err(reason) => {
                    for &m in &call.messages {
                        self.fail(batch, m, reason.clone());
                    }
                }
            }
        }
        current
    }

    /// Claims and sends one call; in dry run, only records it.
    pub(crate) async fn send(
        &self,
        batch: &mut Batch<'_>,
        call: &InvalidationCall,
    ) -> Result<(), NotSubmitted> {
        let messages: Vec<&str> = call
            .messages
            .iter()
            .map(|&m| batch.ledger.message_id(m))
            .collect();
        let mut details = json!({
            "distribution": call.distribution,
            "callerReference": call.caller_reference,
            "paths": call.paths.len(),
            "wildcards": call.wildcards(),
            "messages": messages,
        });
        batch.calls.push(json!({"distribution": call.distribution, "callerReference": call.caller_reference, "paths": call.paths, "messages": messages}));
        let (target, trigger) = (&call.distribution, &call.caller_reference);
        if batch.inv.dry_run {
            tracing::info!(distribution = %call.distribution, paths = call.paths.len(), "dry run: would create an invalidation");
            batch
                .inv
                .applied(CREATE_INVALIDATION, target, trigger, details);
            return Ok(());
        }
        match self.claim_and_create(batch, call).await {
            Ok(id) => {
                details["invalidationId"] = json!(id);
                tracing::info!(distribution = %call.distribution, invalidation = %id, paths = call.paths.len(), "invalidation created");
                batch
                    .inv
                    .applied(CREATE_INVALIDATION, target, trigger, details);
                Ok(())
            }
            Err(e) => {
                tracing::error!(distribution = %call.distribution, error = %e, "invalidation not created");
                let code = e.code().to_string();
                let details = json!({"error": e.to_string(), "call": details});
                batch
                    .inv
                    .failed(CREATE_INVALIDATION, target, trigger, &code, details);
                Err(match e {
                    FunctionError::ClaimHeld { .. } => NotSubmitted::InProgress(e.to_string()),
                    e => NotSubmitted::AwsError(e.to_string()),
                })
            }
        }
    }

    /// The claim makes a redelivered batch a no-op even where CloudFront's own CallerReference
    /// check does not run (moto); CloudFront's check covers a takeover after a crash, so no intent
    /// is recorded and a failed call gives the claim back. (Unlike the other functions, a claim
    /// that cannot be completed after the call does not fail the messages: see below.)
    async fn claim_and_create(
        &self,
        batch: &mut Batch<'_>,
        call: &InvalidationCall,
    ) -> Result<String, FunctionError> {
        let key = &call.caller_reference;
        let claimed = self.guards.claim_event(&batch.inv, key).await;
        if let Err(FunctionError::Call(e)) = &claimed {
            batch.note_state_table_error(e);
        }
        let claim = match claimed? {
            Claimed::Done(previous) => return Ok(invalidation_id(&previous)),
            Claimed::Mine { claim, .. } => claim,
        };
        let created = self
            .api
            .create_invalidation(&call.distribution, key, &call.paths)
            .await
            .map(|id| json!({"invalidationId": id}))
            .map_err(FunctionError::from);
        match created {
            Ok(done) => {
                // Created: the messages are done even if the claim cannot say so. CloudFront
                // answers a repeated CallerReference with the invalidation it already made
                // (documented), so a duplicate delivery that finds this claim unfinished sends the
                // same request and creates nothing new. Failing the messages instead would only
                // send them round again.
                if let Err(e) = claim.complete(&done).await {
                    tracing::warn!(distribution = %call.distribution, error = %e, "invalidation created; its claim could not be completed");
                }
                Ok(invalidation_id(&done))
            }
            Err(e) => claim.end(Err(e)).await.map(|v| invalidation_id(&v)),
        }
    }
}

fn invalidation_id(result: &Value) -> String {
    result["invalidationId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Batch<'_> {
    /// A state table that is missing or denied makes the whole batch fail (Lambda records the
    /// error), rather than return success with every message reported.
    pub(crate) fn note_state_table_error(&mut self, e: &CallError) {
        if e.service == "dynamodb" && (e.is_not_found() || e.is_access_denied()) {
            self.state_table_error.get_or_insert_with(|| e.clone());
        }
    }
}
