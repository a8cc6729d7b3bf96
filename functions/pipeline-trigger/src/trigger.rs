//! The trigger itself: its name, its claims' scope, its pipeline lock, and the struct built once
//! per container. Below the handler and the start step, which use it.

use crate::api::PipelineApi;
use crate::config::TriggerConfig;
use autonomic::audit::Reporter;
use autonomic::guard::{Guards, LeaseName, StateTable};

pub const FUNCTION: &str = "pipeline-trigger";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "pipeline-trigger";

/// A lock on a pipeline while a start of it is made: a start that may have taken effect holds
/// back the next start of the same pipeline until its retry has resolved it, so two pushes do not
/// start in an order CodePipeline did not see them in. It is settled at once: no cooldown.
pub fn pipeline_lease(pipeline: &str) -> LeaseName {
    LeaseName::new("pipeline-start", pipeline)
}

/// The trigger, built once per container.
pub struct PipelineTrigger<A> {
    pub api: A,
    pub guards: Guards,
    pub config: TriggerConfig,
    pub reporter: Reporter,
}

impl<A: PipelineApi> PipelineTrigger<A> {
    pub fn new(api: A, state: StateTable, config: TriggerConfig, reporter: Reporter) -> Self {
        Self {
            api,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }
}
