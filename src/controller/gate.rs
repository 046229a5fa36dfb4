//! The write gate: asked right before every write the controller makes (server-side apply,
//! delete, finalizer, status, Event, Git push), so a replica that is not (or no longer) the
//! leader writes nothing, and `git-controller diff` can run every step with writes off.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::{Error, Result};
use crate::leader::LeaderGate;

/// Whether writes are allowed now; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct WriteGate {
    /// Open while this replica leads (always, without leader election). It checks the
    /// renew deadline itself, so it closes in time even if the renewing task runs late.
    leading: LeaderGate,
}

impl WriteGate {
    /// A gate that follows leader election.
    pub fn new(leading: LeaderGate) -> Self {
        Self { leading }
    }

    /// A gate that never opens (`git-controller diff`).
    pub fn closed() -> Self {
        Self::new(LeaderGate::from(Arc::new(AtomicBool::new(false))))
    }

    /// Whether a write may happen now.
    pub fn is_open(&self) -> bool {
        self.leading.is_leading()
    }

    /// `Ok` when a write may happen now, else [`Error::WritesNotAllowed`]. Call it right
    /// before the write, not once per reconcile: leadership can end in between.
    pub fn check(&self) -> Result<()> {
        if self.is_open() {
            Ok(())
        } else {
            Err(Error::WritesNotAllowed)
        }
    }
}
