//! What every Autonomic function stands on.
//!
//! One event's way through a function (see `GUIDE.md`):
//! payload → [`events`] (typed, normalised) → observe (read-only AWS calls) → plan (pure,
//! [`plan::Plan`]) → [`guard`] (idempotency, cooldown leases) → apply (skipped in dry-run) →
//! [`audit`] record + EMF metrics + response.

pub mod audit;
pub mod aws;
pub mod config;
pub mod error;
pub mod events;
pub mod guard;
pub mod plan;
pub mod runtime;
pub mod time;

pub use error::{AwsError, ErrorClass, FunctionError};
pub use plan::{Plan, Skip};
