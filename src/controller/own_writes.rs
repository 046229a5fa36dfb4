//! [`OwnWrites`]: the writes repositories made to live objects, remembered until their watch
//! events arrive, so the echo of a repository's own write does not wake that repository again.
//! Other repositories whose rules select the object are still woken: for them it is news.
//!
//! An apply is recognised by the resourceVersion the API server returned; a delete (which
//! mostly returns no object) by the object's next deletion event. An event that arrives while a
//! write of its object is still in flight is held until the write returns, then judged (and, if
//! it is not the echo, handled as usual): the watch may be faster than the response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitcontroller_sync::ObjectId;
use tokio::sync::mpsc::UnboundedSender;

use super::repository::RepoKey;
use crate::cluster::{LiveChange, LiveChangeKind};

/// How long a write is remembered when no event for it arrives (an apply that changed
/// nothing makes no event).
const FORGET_AFTER: Duration = Duration::from_secs(300);
/// How often forgotten writes are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What a write left behind, to recognise its event by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// The object now has this resourceVersion.
    Version(String),
    /// The object was deleted: its next deletion event is ours.
    Deletion,
}

/// Whose a watch event is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Nobody's we know of: wake every repository that selects the object.
    Foreign,
    /// The echo of this repository's own write: wake the others only.
    Own(RepoKey),
    /// A write of the object is in flight; the change comes back once it returns.
    Held,
}

/// Writes by object, shared by every writer and the live-change mapper. Cheap to clone.
#[derive(Clone, Default)]
pub struct OwnWrites {
    inner: Arc<Mutex<Inner>>,
    /// Where held changes go once their object's writes returned.
    replay: Option<UnboundedSender<LiveChange>>,
}

impl std::fmt::Debug for OwnWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnWrites").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    objects: HashMap<ObjectId, Writes>,
    swept_at: Option<Instant>,
}

#[derive(Default)]
struct Writes {
    in_flight: usize,
    done: Vec<Done>,
    held: Vec<LiveChange>,
}

struct Done {
    by: RepoKey,
    written: Written,
    at: Instant,
}

impl Done {
    fn made(&self, change: &LiveChange) -> bool {
        match (&self.written, change.kind) {
            (Written::Version(version), LiveChangeKind::Applied) => {
                change.resource_version.as_ref() == Some(version)
            }
            (Written::Deletion, LiveChangeKind::Deleted) => true,
            _ => false,
        }
    }
}

impl OwnWrites {
    /// Held changes are sent to `replay` (the live-change channel) when their writes return.
    pub fn new(replay: UnboundedSender<LiveChange>) -> Self {
        Self {
            inner: Arc::default(),
            replay: Some(replay),
        }
    }

    /// Records that `by` starts writing `id`; finish the returned write with what it left.
    pub fn begin(&self, id: ObjectId, by: RepoKey) -> PendingWrite {
        let mut inner = self.inner.lock().expect("own writes lock");
        inner.sweep(Instant::now());
        inner.objects.entry(id.clone()).or_default().in_flight += 1;
        PendingWrite {
            owner: self.clone(),
            id: Some(id),
            by,
        }
    }

    /// Whose the change of `id` is. An echo is recognised once: a later event with the same
    /// resourceVersion cannot happen.
    pub fn classify(&self, id: &ObjectId, change: &LiveChange) -> Echo {
        let mut inner = self.inner.lock().expect("own writes lock");
        let Some(writes) = inner.objects.get_mut(id) else {
            return Echo::Foreign;
        };
        let echo = if let Some(at) = writes.done.iter().position(|done| done.made(change)) {
            Echo::Own(writes.done.remove(at).by)
        } else if writes.in_flight > 0 {
            writes.held.push(change.clone());
            Echo::Held
        } else {
            Echo::Foreign
        };
        if writes.is_empty() {
            inner.objects.remove(id);
        }
        echo
    }

    fn finish(&self, id: ObjectId, by: RepoKey, written: Option<Written>) {
        let held = {
            let mut inner = self.inner.lock().expect("own writes lock");
            let writes = inner.objects.entry(id.clone()).or_default();
            writes.in_flight = writes.in_flight.saturating_sub(1);
            if let Some(written) = written {
                writes.done.push(Done {
                    by,
                    written,
                    at: Instant::now(),
                });
            }
            let held = if writes.in_flight == 0 {
                std::mem::take(&mut writes.held)
            } else {
                Vec::new()
            };
            if writes.is_empty() {
                inner.objects.remove(&id);
            }
            held
        };
        if let Some(replay) = &self.replay {
            for change in held {
                let _ = replay.send(change);
            }
        }
    }

    /// How many objects have writes remembered (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("own writes lock").objects.len()
    }
}

impl Writes {
    fn is_empty(&self) -> bool {
        self.in_flight == 0 && self.done.is_empty() && self.held.is_empty()
    }
}

impl Inner {
    /// Forgets writes whose event never came (at most every [`SWEEP_EVERY`]).
    fn sweep(&mut self, now: Instant) {
        if self
            .swept_at
            .is_some_and(|at| now.saturating_duration_since(at) < SWEEP_EVERY)
        {
            return;
        }
        self.swept_at = Some(now);
        self.objects.retain(|_, writes| {
            writes
                .done
                .retain(|done| now.saturating_duration_since(done.at) < FORGET_AFTER);
            !writes.is_empty()
        });
    }
}

/// A write in flight. [`PendingWrite::finish`] it with what it left; dropping it unfinished
/// (the write failed or was cancelled) releases the events held for it.
#[must_use = "finish the write with what it left"]
pub struct PendingWrite {
    owner: OwnWrites,
    id: Option<ObjectId>,
    by: RepoKey,
}

impl PendingWrite {
    /// The write returned: `written` is what it left (None: it failed, nothing to echo).
    pub fn finish(mut self, written: Option<Written>) {
        if let Some(id) = self.id.take() {
            self.owner.finish(id, self.by.clone(), written);
        }
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.owner.finish(id, self.by.clone(), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TypeKey;

    fn id(name: &str) -> ObjectId {
        ObjectId {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: name.into(),
        }
    }

    fn change(name: &str, kind: LiveChangeKind, version: &str) -> LiveChange {
        LiveChange {
            key: TypeKey {
                group: String::new(),
                kind: "ConfigMap".into(),
            },
            namespace: Some("ns".into()),
            name: name.into(),
            kind,
            labels: Default::default(),
            old_labels: None,
            resource_version: Some(version.into()),
        }
    }

    fn repo() -> RepoKey {
        RepoKey::new("ns", "repo")
    }

    #[test]
    fn the_echo_of_an_apply_is_recognised_once_by_its_resource_version() {
        let writes = OwnWrites::default();
        writes
            .begin(id("a"), repo())
            .finish(Some(Written::Version("7".into())));
        let applied = |v| change("a", LiveChangeKind::Applied, v);
        assert_eq!(writes.classify(&id("a"), &applied("6")), Echo::Foreign);
        assert_eq!(writes.classify(&id("a"), &applied("7")), Echo::Own(repo()));
        assert_eq!(writes.classify(&id("a"), &applied("7")), Echo::Foreign);
        assert_eq!(writes.classify(&id("b"), &applied("7")), Echo::Foreign);
        assert_eq!(writes.len(), 0, "nothing left once the echo came");
    }

    #[test]
    fn a_delete_echoes_as_the_next_deletion() {
        let writes = OwnWrites::default();
        writes
            .begin(id("a"), repo())
            .finish(Some(Written::Deletion));
        assert_eq!(
            writes.classify(&id("a"), &change("a", LiveChangeKind::Applied, "9")),
            Echo::Foreign
        );
        assert_eq!(
            writes.classify(&id("a"), &change("a", LiveChangeKind::Deleted, "10")),
            Echo::Own(repo())
        );
    }

    #[test]
    fn events_faster_than_the_response_are_held_then_judged() {
        let (tx, mut replayed) = tokio::sync::mpsc::unbounded_channel();
        let writes = OwnWrites::new(tx);
        let pending = writes.begin(id("a"), repo());
        let echo = change("a", LiveChangeKind::Applied, "7");
        let other = change("a", LiveChangeKind::Applied, "6");
        assert_eq!(writes.classify(&id("a"), &other), Echo::Held);
        assert_eq!(writes.classify(&id("a"), &echo), Echo::Held);
        assert!(replayed.try_recv().is_err(), "held while in flight");
        pending.finish(Some(Written::Version("7".into())));
        let again: Vec<_> = std::iter::from_fn(|| replayed.try_recv().ok()).collect();
        assert_eq!(again, [other.clone(), echo.clone()]);
        assert_eq!(writes.classify(&id("a"), &again[0]), Echo::Foreign);
        assert_eq!(writes.classify(&id("a"), &again[1]), Echo::Own(repo()));
    }

    #[test]
    fn a_failed_write_releases_what_it_held() {
        let (tx, mut replayed) = tokio::sync::mpsc::unbounded_channel();
        let writes = OwnWrites::new(tx);
        let pending = writes.begin(id("a"), repo());
        let event = change("a", LiveChangeKind::Applied, "3");
        assert_eq!(writes.classify(&id("a"), &event), Echo::Held);
        drop(pending);
        assert_eq!(replayed.try_recv().unwrap(), event);
        assert_eq!(writes.classify(&id("a"), &event), Echo::Foreign);
        assert_eq!(writes.len(), 0);
    }

    #[test]
    fn writes_without_an_event_are_forgotten() {
        let writes = OwnWrites::default();
        writes
            .begin(id("a"), repo())
            .finish(Some(Written::Version("1".into())));
        let later = Instant::now() + FORGET_AFTER + SWEEP_EVERY;
        writes.inner.lock().unwrap().sweep(later);
        assert_eq!(writes.len(), 0);
    }
}
