//! Taking the distributions' leases, and sending each planned call under its claim.

use std::collections::{BTreeSet, HashMap};

use autonomic::guard::{Act, Decision, LeaseName, LeaseOutcome, Lock, Outcome, Resumed, Step};
use autonomic::{CallError, FunctionError, Invocation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::CloudFrontApi;
use crate::invalidator::{Batch, CdnInvalidator, PlannedCall};
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

    /// Sends one call through the guarded step ([`InvalidationStep`]); in dry run, only records
    /// it.
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
        batch.calls.push(PlannedCall {
            distribution: call.distribution.clone(),
            caller_reference: call.caller_reference.clone(),
            paths: call.paths.clone(),
            messages: messages.iter().map(|m| m.to_string()).collect(),
        });
        let step = InvalidationStep {
            api: &self.api,
            call,
            messages: messages.iter().map(|m| m.to_string()).collect(),
        };
        let key = &call.caller_reference;
        match self.guards.step(&mut batch.inv, key, key, &step).await {
            Ok(Outcome::WouldAct { .. }) => {
                tracing::info!(distribution = %call.distribution, paths = call.paths.len(), "dry run: would create an invalidation");
                Ok(())
            }
            Ok(Outcome::Acted { done, .. }) => {
                tracing::info!(distribution = %call.distribution, invalidation = %done, paths = call.paths.len(), "invalidation created");
                Ok(())
            }
            // A redelivered batch: CreateInvalidation was sent for these messages before.
            Ok(Outcome::Duplicate { .. } | Outcome::Skipped { .. }) => Ok(()),
            Err(e) => {
                if let FunctionError::Call(c) = &e {
                    batch.note_state_table_error(c);
                }
                tracing::error!(distribution = %call.distribution, error = %e, "invalidation not created");
                let details = json!({"error": e.to_string(), "call": step.audit_details()});
                batch.inv.failed(
                    CREATE_INVALIDATION,
                    &call.distribution,
                    &call.caller_reference,
                    e.code(),
                    details,
                );
                Err(match e {
                    FunctionError::ClaimHeld { .. } => NotSubmitted::InProgress(e.to_string()),
                    e => NotSubmitted::AwsError(e.to_string()),
                })
            }
        }
    }
}

/// What a call records: its distribution and reference (the paths are in the audit's counts).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationRequest {
    pub distribution: String,
    pub caller_reference: String,
}

/// One CreateInvalidation as a guarded step. The batch planned it; what is new here is only the
/// call, and that CloudFront answers a repeated `CallerReference` with the invalidation it made
/// (documented): the claim makes a redelivered batch a no-op even where that check does not run
/// (moto), no intent is recorded, and a claim that cannot be completed after the call does not
/// send the messages round again.
struct InvalidationStep<'a, C> {
    api: &'a C,
    call: &'a InvalidationCall,
    messages: Vec<String>,
}

impl<C: CloudFrontApi> Step for InvalidationStep<'_, C> {
    type Intent = InvalidationRequest;
    type Done = String;

    fn action(&self) -> &str {
        CREATE_INVALIDATION
    }

    fn target(&self) -> &str {
        &self.call.distribution
    }

    /// The distribution's lease is taken for the whole batch ([`CdnInvalidator::open_distributions`]).
    fn lock(&self, _inv: &Invocation) -> Lock {
        Lock::None
    }

    async fn decide(
        &self,
        _inv: &mut Invocation,
    ) -> Result<Decision<InvalidationRequest>, FunctionError> {
        Ok(Decision::Act(Act {
            target: self.call.distribution.clone(),
            intent: InvalidationRequest {
                distribution: self.call.distribution.clone(),
                caller_reference: self.call.caller_reference.clone(),
            },
        }))
    }

    /// Never called: no intent is recorded. The same request again would do.
    async fn resume(
        &self,
        _inv: &mut Invocation,
        _intent: InvalidationRequest,
    ) -> Result<Resumed<String>, FunctionError> {
        Ok(Resumed::Afresh)
    }

    async fn call(&self, r: &InvalidationRequest) -> Result<String, CallError> {
        self.api
            .create_invalidation(&r.distribution, &r.caller_reference, &self.call.paths)
            .await
    }

    fn audit_details(&self) -> Value {
        json!({
            "distribution": self.call.distribution,
            "callerReference": self.call.caller_reference,
            "paths": self.call.paths.len(),
            "wildcards": self.call.wildcards(),
            "messages": self.messages,
        })
    }

    fn service_deduplicates(&self) -> bool {
        true
    }
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
