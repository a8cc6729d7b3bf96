//! The promoter itself: its name, its claims' scope and audit actions, the names of its leases,
//! breakers and marks, and the struct built once per container. Below the handler, the
//! observation, the promotion step and the RDS events, which all use it.

use crate::api::AuroraApi;
use crate::config::PromoterConfig;
use crate::targets::Target;
use autonomic::audit::Reporter;
use autonomic::guard::{Guards, LeaseName, StateTable};

pub const FUNCTION: &str = "aurora-promoter";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "aurora-promoter";
/// The audit action of completing a promotion (breaker `tripped`, record updated).
pub const COMPLETE: &str = "complete_promotion";
/// The audit action of releasing a breaker after RDS reported the promotion failed.
pub const RELEASE: &str = "release_breaker";
/// The audit action of an RDS event that changed nothing.
pub const NOTE: &str = "note_rds_event";

/// The lock on a cluster (or global cluster) while it is promoted, then its cooldown.
pub fn resource_lease(target: &Target) -> LeaseName {
    LeaseName::new("aurora-promote", &target.resource())
}

/// The breaker item of a target: `breaker#aurora-promoter#<target>`.
pub fn breaker_name(target: &str) -> String {
    format!("{SCOPE}#{target}")
}

/// When Aurora last completed a failover of a cluster (from RDS events).
pub fn moved_mark(region: &str, cluster: &str) -> String {
    format!("aurora-moved#{region}#{}", cluster.to_ascii_lowercase())
}

/// The promoter, built once per container.
pub struct AuroraPromoter<A> {
    pub api: A,
    pub guards: Guards,
    pub config: PromoterConfig,
    pub reporter: Reporter,
}

impl<A: AuroraApi> AuroraPromoter<A> {
    pub fn new(api: A, state: StateTable, config: PromoterConfig, reporter: Reporter) -> Self {
        Self {
            api,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }
}
