//! The invalidator itself: its name, its claims' scope, the struct built once per container and
//! the state of one batch. Below the handler and the phases (resolve, submit), which use them.

use crate::api::CloudFrontApi;
use crate::config::InvalidatorConfig;
use crate::domains::{DomainCache, ListOnce};
use crate::ledger::Ledger;
use autonomic::audit::Reporter;
use autonomic::guard::{Guards, HeldLease, StateTable};
use autonomic::{CallError, Invocation};
use serde_json::Value;

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
    pub(crate) calls: Vec<Value>,
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
