//! One SQS batch: parse each message → resolve its distribution(s) and paths → take the
//! distributions' leases → plan within the limits per segment → claim and send each call →
//! report exactly the messages not submitted.

use std::collections::BTreeSet;

use autonomic::events::{EventError, from_value};
use autonomic::runtime::Handler;
use autonomic::{FunctionError, Invocation, Skip};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::CloudFrontApi;
use crate::domains::ListOnce;
use crate::invalidator::{Batch, CdnInvalidator, DryRunPlan, Response};
use crate::ledger::{Ledger, NotSubmitted};
use crate::planner::{self, Part};
use crate::resolve::Resolution;

/// The action kind of a message's own record (acknowledged or not submitted).
const MESSAGE: &str = "message";

impl<C: CloudFrontApi> Handler for CdnInvalidator<C> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let sqs: SqsEvent = from_value(&event.payload)?;
        if let Some(i) = sqs.records.iter().position(|r| r.message_id.is_none()) {
            // Without an id a message cannot be reported alone: fail the batch rather than lose it.
            let field = format!("Records[{i}].messageId");
            return Err(EventError::new(field, "missing required field").into());
        }
        let fifo = sqs.records.iter().any(|r| {
            r.event_source_arn
                .as_deref()
                .is_some_and(|a| a.ends_with(".fifo"))
        });
        let dry_run = self.config.common.dry_run;
        let mut batch = Batch {
            inv: Invocation::from_lambda(&self.reporter, &event.context, dry_run),
            ledger: Ledger::new(&sqs.records, fifo),
            list_once: ListOnce::default(),
            leases: Vec::new(),
            calls: Vec::new(),
            state_table_error: None,
        };
        self.handle_batch(&mut batch).await;
        for lease in std::mem::take(&mut batch.leases) {
            lease.release().await;
        }
        let failures = batch.ledger.failures(dry_run);
        tracing::info!(
            messages = batch.ledger.len(),
            calls = batch.calls.len(),
            failed = failures.len(),
            dry_run,
            "batch done"
        );
        let Batch {
            inv,
            ledger,
            calls,
            state_table_error,
            ..
        } = batch;
        inv.finish();
        if let Some(e) = state_table_error {
            return Err(e.into());
        }
        let mut batch = SqsBatchResponse::default();
        batch.batch_item_failures = failures;
        let response = Response {
            batch,
            plan: dry_run.then(|| DryRunPlan {
                calls,
                failed: ledger.failed_reasons(),
            }),
        };
        serde_json::to_value(&response).map_err(|e| FunctionError::Serialize(e.to_string()))
    }
}

impl<C: CloudFrontApi> CdnInvalidator<C> {
    async fn handle_batch(&self, batch: &mut Batch<'_>) {
        let mut parts = Vec::new();
        for i in 0..batch.ledger.len() {
            if let Some(blocked) = batch.ledger.blocked(i) {
                self.fail(batch, i, blocked);
                continue;
            }
            if batch.inv.should_stop() {
                self.fail(batch, i, NotSubmitted::Deadline);
                continue;
            }
            match self.resolve(batch, i).await {
                Ok(Resolution::Parts(p)) => parts.extend(p),
                Ok(Resolution::Acknowledge(reason, detail)) => {
                    let id = batch.ledger.message_id(i);
                    let skip = Skip::new(id, reason, detail);
                    batch
                        .inv
                        .skipped(MESSAGE, id, &skip, json!({"detail": skip.detail}));
                }
                Err(reason) => self.fail(batch, i, reason),
            }
        }

        let distributions: BTreeSet<String> = parts
            .iter()
            .filter(|p| !batch.ledger.has_failed(p.message))
            .map(|p| p.distribution.clone())
            .collect();
        let mut opened = self.open_distributions(batch, distributions).await;
        for mut segment in planner::segments(parts, batch.ledger.fifo()) {
            segment.retain(|p| {
                !batch.ledger.has_failed(p.message) && batch.ledger.blocked(p.message).is_none()
            });
            let Some(first) = segment.first() else {
                continue;
            };
            let distribution = first.distribution.clone();
            let current = match opened.get(&distribution) {
                Some(Ok(c)) => *c,
                Some(Err(reason)) => {
                    let reason = reason.clone();
                    self.fail_parts(batch, &segment, &reason);
                    continue;
                }
                None => continue, // every message of it failed before the leases were taken
            };
            if batch.inv.should_stop() {
                self.fail_parts(batch, &segment, &NotSubmitted::Deadline);
                continue;
            }
            let sent = self.send_segment(batch, &segment, current).await;
            opened.insert(distribution, Ok(sent));
        }
    }

    pub(crate) fn fail_parts(&self, batch: &mut Batch<'_>, parts: &[Part], reason: &NotSubmitted) {
        for p in parts {
            self.fail(batch, p.message, reason.clone());
        }
    }

    /// Records and audits that message `i` is not submitted (once per message).
    pub(crate) fn fail(&self, batch: &mut Batch<'_>, i: usize, reason: NotSubmitted) {
        let id = batch.ledger.message_id(i);
        let (code, detail) = (reason.code(), reason.to_string());
        if batch.ledger.fail(i, reason) {
            tracing::warn!(message_id = %id, code, %detail, "message not submitted");
            batch
                .inv
                .failed(MESSAGE, id, id, code, json!({"detail": detail}));
        }
    }
}
