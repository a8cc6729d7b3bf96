//! Leases as values: a lock on a target while acting, settled as the cooldown or released.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::table::{Lease, LeaseKind, StateTable};
use crate::context::Invocation;
use crate::error::CallError;
use crate::time::now_ms;

pub(super) static DROPPED: AtomicU64 = AtomicU64::new(0);

/// How often a held lock is read again while waiting for it.
const POLL: Duration = Duration::from_millis(250);

/// A lease's name: what kind of target, and which one (`asg-cooldown#web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseName(String);

impl LeaseName {
    pub fn new(kind: &str, target: &str) -> Self {
        Self(format!("{kind}#{target}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LeaseName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of taking a lease.
#[derive(Debug)]
pub enum LeaseOutcome {
    Acquired(HeldLease),
    /// Settled by an invocation that acted: the target cools down until `until_ms`.
    Cooldown {
        holder: String,
        until_ms: i64,
    },
    /// Locked by another invocation that did not let go within this invocation's time.
    Contended {
        holder: String,
        until_ms: i64,
    },
}

/// A lease this invocation holds as a lock. It ends by [`HeldLease::settle`] (the cooldown),
/// [`HeldLease::release`] or [`HeldLease::keep`]; dropped without that, it is kept until it ends,
/// and the drop is logged as the bug it is.
#[must_use = "a held lease must be settled, released or kept"]
#[derive(Debug)]
pub struct HeldLease {
    table: StateTable,
    name: LeaseName,
    holder: String,
    until_ms: i64,
    open: bool,
}

pub(super) async fn take(
    table: &StateTable,
    inv: &Invocation,
    name: &LeaseName,
    until_ms: i64,
    inherit_from: Option<&str>,
) -> Result<LeaseOutcome, CallError> {
    let mut pause = POLL;
    loop {
        let now = now_ms();
        let attempt = table
            .acquire_lease(
                name.as_str(),
                &inv.request_id,
                now,
                until_ms.max(now),
                inherit_from,
            )
            .await;
        let attempt = match attempt {
            Ok(a) => a,
            Err(e) => {
                // The write may have taken effect with its answer lost: give back what may be
                // ours, so that no retry waits for a lock nobody holds.
                if let Err(release) = table.release_lease(name.as_str(), &inv.request_id).await {
                    tracing::warn!(error = %release, lease = %name, "could not release a lease after a failed take");
                }
                return Err(e);
            }
        };
        match attempt {
            Lease::Acquired { until_ms } => {
                return Ok(LeaseOutcome::Acquired(HeldLease {
                    table: table.clone(),
                    name: name.clone(),
                    holder: inv.request_id.clone(),
                    until_ms,
                    open: true,
                }));
            }
            Lease::Held {
                holder,
                until_ms,
                kind: LeaseKind::Cooldown,
            } => return Ok(LeaseOutcome::Cooldown { holder, until_ms }),
            Lease::Held {
                holder, until_ms, ..
            } => {
                // A live lock ends soon (its holder settles or releases it): wait while there is
                // time for the work after it, then report contention, never a final skip.
                if !inv.has_time_for(pause) {
                    return Ok(LeaseOutcome::Contended { holder, until_ms });
                }
                tracing::info!(lease = %name, %holder, "lease locked by another invocation: waiting");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl HeldLease {
    /// The action happened: the lease becomes the target's cooldown, ending at `until_ms`.
    pub async fn settle(mut self, until_ms: i64) {
        self.open = false;
        if let Err(e) = self
            .table
            .settle_lease(self.name.as_str(), &self.holder, until_ms)
            .await
        {
            tracing::warn!(error = %e, lease = %self.name, "could not settle the lease; it ends when the lock does");
        }
    }

    /// Nothing happened: the next attempt may take the lease at once.
    pub async fn release(mut self) {
        self.open = false;
        if let Err(e) = self
            .table
            .release_lease(self.name.as_str(), &self.holder)
            .await
        {
            tracing::warn!(error = %e, lease = %self.name, "could not release the lease; it ends when the lock does");
        }
    }

    /// Something may have happened: the lock stays until it ends, or until the attempt that
    /// takes the claim over inherits it.
    pub fn keep(mut self, why: &str) {
        self.open = false;
        tracing::warn!(lease = %self.name, why, until_ms = self.until_ms, "keeping the lease");
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if self.open {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            tracing::error!(lease = %self.name, "a held lease was dropped without being ended: it is kept until it ends");
        }
    }
}
