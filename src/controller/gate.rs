//! The write gate: asked right before every write the controller makes (server-side apply,
//! delete, finalizer, status, Event, Git push), so a replica that is not (or no longer) the
//! leader writes nothing, and `git-controller diff` can run every step with writes off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Whether writes are allowed now; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct WriteGate {
    /// True while this replica may write: the leader-election "leading" flag (always true
    /// without leader election).
    leading: Arc<AtomicBool>,
}

impl WriteGate {
    /// A gate that follows `leading` (leader election flips it).
    pub fn new(leading: Arc<AtomicBool>) -> Self {
        Self { leading }
    }

    /// A gate that never opens (`git-controller diff`).
    pub fn closed() -> Self {
        Self::new(Arc::new(AtomicBool::new(false)))
    }

    /// Whether a write may happen now.
    pub fn is_open(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
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
