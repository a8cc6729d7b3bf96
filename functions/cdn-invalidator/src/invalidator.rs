//! The invalidator itself: its name, its claims' scope, the struct built once per container and
//! the state of one batch. Below the handler and the phases (resolve, submit), which use them.

use std::collections::BTreeMap;

use autonomic::audit::Reporter;
use autonomic::guard::{Guards, HeldLease, StateTable};
use autonomic::{CallError, Invocation};
use aws_lambda_events::sqs::SqsBatchResponse;
use serde::Serialize;

use crate::api::CloudFrontApi;
use crate::config::InvalidatorConfig;
use crate::domains::{DomainCache, ListOnce};
use crate::ledger::Ledger;

pub const FUNCTION: &str = "cdn-invalidator";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "cdn-invalidator";
/// The invalidator, built once per container.
pub struct CdnInvalidator<C> {
    pub api: C,
    pub guards: Guards,
    pub config: InvalidatorConfig,
    pub reporter: Reporter,
    pub(crate) domains: DomainCache,
}

/// The state of one batch as it is worked through.
pub(crate) struct Batch<'a> {
    pub(crate) inv: Invocation,
    pub(crate) ledger: Ledger<'a>,
    pub(crate) list_once: ListOnce,
    /// Distribution leases this invocation holds, released when the batch ends.
    pub(crate) leases: Vec<HeldLease>,
    /// The calls made (or planned in dry run), for the dry-run response.
    pub(crate) calls: Vec<PlannedCall>,
    pub(crate) state_table_error: Option<CallError>,
}

impl<C: CloudFrontApi> CdnInvalidator<C> {
    pub fn new(api: C, state: StateTable, config: InvalidatorConfig, reporter: Reporter) -> Self {
        Self {
            api,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            domains: DomainCache::default(),
            reporter,
        }
    }
}

/// The function's answer to a batch: the messages SQS is to deliver again, and in dry run the
/// plan.
#[derive(Debug, Serialize)]
pub struct Response {
    #[serde(flatten)]
    pub batch: SqsBatchResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<DryRunPlan>,
}

/// What a dry run would send, and which messages it would report (by their index in the batch).
#[derive(Debug, Serialize)]
pub struct DryRunPlan {
    pub calls: Vec<PlannedCall>,
    pub failed: BTreeMap<usize, String>,
}

/// One CreateInvalidation, as sent or planned.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedCall {
    pub distribution: String,
    pub caller_reference: String,
    pub paths: Vec<String>,
    pub messages: Vec<String>,
}
