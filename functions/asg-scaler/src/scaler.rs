//! The scaler itself: its name, its claims' scope, the names of its leases and watermarks, and the
//! struct built once per container. Below the handler and the phases, which all use it.

use crate::api::AsgApi;
use crate::config::ScalerConfig;
use autonomic::audit::Reporter;
use autonomic::events::AlarmTransition;
use autonomic::guard::{Guards, LeaseName, StateTable};

pub const FUNCTION: &str = "asg-scaler";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "asg-scaler";
/// The lease on a group: a lock while scaling it, then its cooldown.
pub fn group_lease(group: &str) -> LeaseName {
    LeaseName::new("asg-cooldown", group)
}

/// The watermark of an alarm: the newest transition of it handled.
pub fn alarm_watermark(t: &AlarmTransition) -> String {
    format!("alarm#{}", t.arn)
}

/// The scaler, built once per container.
pub struct AsgScaler<A> {
    pub api: A,
    pub guards: Guards,
    pub config: ScalerConfig,
    pub reporter: Reporter,
}

impl<A: AsgApi> AsgScaler<A> {
    pub fn new(api: A, state: StateTable, config: ScalerConfig, reporter: Reporter) -> Self {
        Self {
            api,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }
}
