//! What every Autonomic function stands on.
//!
//! One event's way through a function:
//! payload → [`events`] (typed, normalised) → observe (read-only AWS calls) → plan (pure,
//! [`plan::Plan`]) → [`guard`] (claim, lease, intent; see `docs/architecture.md`) → apply (skipped in
//! dry-run) → [`audit`] record + EMF metrics ([`context::Invocation`]) + response.

pub mod audit;
pub mod aws;
pub mod batch;
pub mod cold_start;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod glob;
pub mod guard;
pub mod logging;
pub mod plan;
pub mod runtime;
pub mod tags;
pub mod time;

pub use context::Invocation;
pub use error::{CallError, ErrorClass, FunctionError};
pub use plan::{Plan, Skip};
