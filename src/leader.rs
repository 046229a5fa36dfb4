//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly
//! one writes. It follows client-go's `leaderelection`:
//!
//! - **Skew-safe.** A standby never compares the holder's `renewTime` with its own clock. It
//!   remembers when *it* last saw the Lease record change, by its monotonic clock, and takes
//!   the Lease over only after `leaseDurationSeconds` without a change. (`renewTime` is written
//!   for people reading the Lease.) A holder whose clock is off by minutes neither loses a live
//!   Lease nor keeps a dead one.
//! - **One winner per term.** Every write of the Lease carries the `resourceVersion` it read;
//!   of two candidates writing at once, one gets a conflict and stays standby.
//! - **Writes stop before the term can end for others.** The leader's [`LeaderGate`] closes
//!   when the leader has not renewed for [`LeaseConfig::renew_deadline`] (10 s of a 15 s
//!   term), counted from *before* its last successful renewal was sent; a standby counts the
//!   term from when it *saw* that renewal, which is later. Writes ask the gate right before
//!   they happen.
//! - **Released on shutdown.** [`Leadership::release`] empties the holder; standbys watch the
//!   Lease and take it over at once instead of waiting out the term.
//!
//! `kube-lease-manager` was considered: it decides expiry from `renewTime +
//! leaseDurationSeconds` against the local wall clock (with a tolerance), which is the skew
//! this module avoids.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::{Notify, watch};

/// Where the Lease lives, who this candidate is, and the timing of a term.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (unique per process).
    pub identity: String,
    /// How long a standby waits, after it last saw the Lease change, before taking it over.
    pub lease_duration: Duration,
    /// How long the leader keeps writing without a successful renewal. Shorter than
    /// `lease_duration`: the difference absorbs clocks that run at different rates.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby looks again (a standby also looks as soon as
    /// the Lease changes).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: a 15 s term, writes stop 10 s after the last renewal, renew every
    /// 2 s.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate is after one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Holds the Lease.
    Leader,
    /// Someone else holds it.
    Standby,
}

/// Whether this process may write now. Cheap to clone and to ask; ask right before each write.
///
/// Open without leader election; with it, open only while this process holds the Lease and
/// its last renewal is younger than the renew deadline.
#[derive(Clone, Debug)]
pub struct LeaderGate {
    /// False once leadership ended (lost, past the renew deadline, or shutting down); shared
    /// as the flag behind the controller's `WriteGate`.
    open: Arc<AtomicBool>,
    /// Milliseconds after `epoch` until which the last renewal keeps the gate open.
    valid_until_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl LeaderGate {
    /// A gate that is always open (no leader election: every replica writes).
    pub fn always_open() -> Self {
        Self::from(Arc::new(AtomicBool::new(true)))
    }

    /// A gate that stays closed until [`acquire_with_gate`] wins the Lease for it: a candidate
    /// that does not lead (yet). Made before the election so that code started earlier (the
    /// webhook receiver) can ask whether this process leads.
    pub fn closed() -> Self {
        Self::from(Arc::new(AtomicBool::new(false)))
    }

    /// Whether this process leads (or needs not): true means a write now is safe.
    pub fn is_leading(&self) -> bool {
        let elapsed = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.open.load(Ordering::SeqCst) && elapsed < self.valid_until_ms.load(Ordering::SeqCst)
    }

    /// The flag behind the gate, for code that holds an `Arc<AtomicBool>` (the controller's
    /// `WriteGate`). The renewing task turns it false when leadership ends, at the renew
    /// deadline at the latest; [`LeaderGate::is_leading`] also checks the deadline itself, so
    /// it stays right even if that task runs late.
    pub fn shared_flag(&self) -> Arc<AtomicBool> {
        self.open.clone()
    }

    /// Closes the gate for good: no more writes from this process (shutdown, lost Lease).
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }

    /// Opens the gate until `deadline`.
    fn open_until(&self, deadline: Instant) {
        let ms = u64::try_from(deadline.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        self.valid_until_ms.store(ms, Ordering::SeqCst);
        self.open.store(true, Ordering::SeqCst);
    }
}

impl From<Arc<AtomicBool>> for LeaderGate {
    /// A gate that follows `flag` alone, with no deadline.
    fn from(flag: Arc<AtomicBool>) -> Self {
        Self {
            open: flag,
            valid_until_ms: Arc::new(AtomicU64::new(u64::MAX)),
            epoch: Instant::now(),
        }
    }
}

/// The Lease record a candidate last saw, and when it saw it change (its monotonic clock).
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    record: LeaseSpec,
    changed_at: Instant,
}

impl Observation {
    /// Remembers `record` seen at `now`; the clock restarts only if the record changed.
    pub fn update(previous: Option<Self>, record: &LeaseSpec, now: Instant) -> Self {
        match previous {
            Some(seen) if seen.record == *record => seen,
            _ => Self {
                record: record.clone(),
                changed_at: now,
            },
        }
    }

    /// Whether the holder has let its term run out: no change of the record for the term the
    /// record names, by our clock. The holder's `renewTime` is never compared with our clock.
    pub fn expired(&self, now: Instant) -> bool {
        let term = self
            .record
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(Duration::from_secs(15), Duration::from_secs);
        now.saturating_duration_since(self.changed_at) >= term
    }

    /// The holder in the record; `None` when the Lease is free (released or never held).
    pub fn holder(&self) -> Option<&str> {
        self.record
            .holder_identity
            .as_deref()
            .filter(|holder| !holder.is_empty())
    }
}

/// One candidate for the Lease: its config and what it last saw.
pub struct Candidate {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observation>,
}

impl Candidate {
    /// A candidate that has not looked at the Lease yet.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// What this candidate last saw of the Lease.
    pub fn observed(&self) -> Option<&Observation> {
        self.observed.as_ref()
    }

    /// One round: reads the Lease, renews it if we hold it, takes it if it is free or its
    /// holder let the term run out, else stays standby.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Role, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.config.name).await? else {
            return self.create().await;
        };
        let now = Instant::now();
        let record = lease.spec.clone().unwrap_or_default();
        let seen = Observation::update(self.observed.take(), &record, now);
        let held_by_us = seen.holder() == Some(self.config.identity.as_str());
        let free = seen.holder().is_none() || seen.expired(now);
        self.observed = Some(seen);
        let wall_now = MicroTime(jiff::Timestamp::now());
        let transitions = record.lease_transitions.unwrap_or(0);
        let next = if held_by_us {
            self.record(record.acquire_time.clone(), transitions, wall_now)
        } else if free {
            self.record(Some(wall_now.clone()), transitions + 1, wall_now)
        } else {
            return Ok(Role::Standby);
        };
        let lease = Lease {
            spec: Some(next),
            ..lease
        };
        // replace() sends the resourceVersion we read: if anyone wrote in between, we get a
        // 409 and stay standby for this round.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.saw_own_write(&written);
                Ok(Role::Leader)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Role::Standby),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if we hold it: empty holder, a 1 s term. Returns whether it did.
    pub async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(false);
        };
        let record = lease.spec.clone().unwrap_or_default();
        if record.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        let now = MicroTime(jiff::Timestamp::now());
        let released = LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..record
        };
        let lease = Lease {
            spec: Some(released),
            ..lease
        };
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        Ok(true)
    }

    fn record(&self, acquired: Option<MicroTime>, transitions: i32, now: MicroTime) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: acquired,
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    async fn create(&mut self) -> Result<Role, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(self.record(Some(now.clone()), 0, now)),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => {
                self.saw_own_write(&written);
                Ok(Role::Leader)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Role::Standby),
            Err(e) => Err(e),
        }
    }

    /// Our own write is a change we saw (as the server stored it: `MicroTime` is truncated
    /// to microseconds).
    fn saw_own_write(&mut self, written: &Lease) {
        let record = written.spec.clone().unwrap_or_default();
        self.observed = Some(Observation::update(None, &record, Instant::now()));
    }
}

/// This process's leadership: the gate writes ask, renewed in the background until released
/// or lost.
pub struct Leadership {
    gate: LeaderGate,
    lost: Arc<Notify>,
    stop: watch::Sender<bool>,
    renewer: tokio::task::JoinHandle<Candidate>,
}

impl Leadership {
    /// The gate every write asks right before it happens.
    pub fn gate(&self) -> LeaderGate {
        self.gate.clone()
    }

    /// Completes when the Lease is lost (another candidate holds it, or it could not be
    /// renewed before the renew deadline); the gate is closed by then.
    pub fn lost(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let lost = self.lost.clone();
        async move { lost.notified().await }
    }

    /// Stops renewing and gives the Lease back, so a standby takes over at once. Close the
    /// gate and let in-flight writes finish first.
    pub async fn release(self) -> Result<bool, kube::Error> {
        self.gate.close();
        let _ = self.stop.send(true);
        let Ok(mut candidate) = self.renewer.await else {
            return Ok(false);
        };
        candidate.release().await
    }
}

/// Waits until this candidate holds the Lease (looking again every `retry_period` and
/// whenever the Lease changes), then keeps renewing it in the background.
pub async fn acquire(client: Client, config: LeaseConfig) -> Result<Leadership, kube::Error> {
    acquire_with_gate(client, config, LeaderGate::closed()).await
}

/// [`acquire`], opening `gate` (a [`LeaderGate::closed`] made earlier) once the Lease is won.
pub async fn acquire_with_gate(
    client: Client,
    config: LeaseConfig,
    gate: LeaderGate,
) -> Result<Leadership, kube::Error> {
    let mut candidate = Candidate::new(client.clone(), config.clone());
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let changes = watcher(
        api,
        watcher::Config::default().fields(&format!("metadata.name={}", config.name)),
    )
    .default_backoff();
    futures::pin_mut!(changes);
    let mut last_holder: Option<String> = None;
    let won_at = loop {
        let started = Instant::now();
        match candidate.try_acquire_or_renew().await {
            Ok(Role::Leader) => break started,
            Ok(Role::Standby) => {
                let holder = candidate
                    .observed()
                    .and_then(Observation::holder)
                    .map(str::to_string);
                if holder != last_holder {
                    tracing::info!(
                        lease = %config.name,
                        holder = holder.as_deref().unwrap_or(""),
                        "standing by: another candidate holds the Lease"
                    );
                    last_holder = holder;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "leader election: could not read or write the Lease")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.retry_period) => {}
            // A change (a release, a renewal): look again at once.
            _ = changes.next() => {}
        }
    };
    let deadline = won_at + config.renew_deadline;
    gate.open_until(deadline);
    tracing::info!(lease = %config.name, identity = %config.identity, "became the leader");
    let lost = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let renewer = tokio::spawn(keep_renewing(
        candidate,
        gate.clone(),
        lost.clone(),
        stopped,
        deadline,
    ));
    Ok(Leadership {
        gate,
        lost,
        stop,
        renewer,
    })
}

/// Renews every `retry_period` until stopped; closes the gate and notifies `lost` when another
/// candidate holds the Lease or no renewal succeeded before the deadline.
async fn keep_renewing(
    mut candidate: Candidate,
    gate: LeaderGate,
    lost: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    mut deadline: Instant,
) -> Candidate {
    let retry_period = candidate.config.retry_period;
    let renew_deadline = candidate.config.renew_deadline;
    let lose = |why: &str| {
        gate.close();
        tracing::error!("leader election: {why}; stopping writes");
        lost.notify_one();
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(retry_period) => {}
            _ = stop.changed() => return candidate,
            _ = tokio::time::sleep_until(deadline.into()) => {
                lose("no renewal succeeded before the renew deadline");
                return candidate;
            }
        }
        let started = Instant::now();
        match tokio::time::timeout_at(deadline.into(), candidate.try_acquire_or_renew()).await {
            Ok(Ok(Role::Leader)) => {
                deadline = started + renew_deadline;
                gate.open_until(deadline);
            }
            Ok(Ok(Role::Standby)) => {
                lose("another candidate holds the Lease");
                return candidate;
            }
            Ok(Err(error)) => tracing::warn!(%error, "leader election: renewal failed"),
            Err(_) => {
                lose("no renewal succeeded before the renew deadline");
                return candidate;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renew_offset_secs: i64) -> LeaseSpec {
        let renew = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(renew_offset_secs);
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renew)),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_term_runs_out_only_after_the_lease_duration_without_a_change_by_our_clock() {
        let t0 = Instant::now();
        // renewTime an hour in the past (the holder's clock is behind): not expired at once.
        let stale_clock = record("a", -3600);
        let seen = Observation::update(None, &stale_clock, t0);
        assert!(!seen.expired(t0));
        assert!(!seen.expired(t0 + Duration::from_secs(14)));
        assert!(seen.expired(t0 + Duration::from_secs(15)));

        // The same record seen again does not restart the clock...
        let again = Observation::update(
            Some(seen.clone()),
            &stale_clock,
            t0 + Duration::from_secs(10),
        );
        assert!(again.expired(t0 + Duration::from_secs(15)));
        // ...a renewal (any change of the record) does.
        let renewed = record("a", -3598);
        let renewed_seen = Observation::update(Some(again), &renewed, t0 + Duration::from_secs(10));
        assert!(!renewed_seen.expired(t0 + Duration::from_secs(15)));
        assert!(renewed_seen.expired(t0 + Duration::from_secs(25)));
    }

    #[test]
    fn a_renew_time_in_the_future_does_not_keep_a_dead_holder() {
        let t0 = Instant::now();
        let seen = Observation::update(None, &record("a", 3600), t0);
        assert!(seen.expired(t0 + Duration::from_secs(15)));
    }

    #[test]
    fn the_term_is_the_one_the_record_names() {
        let t0 = Instant::now();
        let mut short = record("a", 0);
        short.lease_duration_seconds = Some(1);
        let seen = Observation::update(None, &short, t0);
        assert!(!seen.expired(t0 + Duration::from_millis(900)));
        assert!(seen.expired(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn an_empty_holder_is_free() {
        let mut released = record("", 0);
        let seen = Observation::update(None, &released, Instant::now());
        assert_eq!(seen.holder(), None);
        released.holder_identity = None;
        assert_eq!(
            Observation::update(None, &released, Instant::now()).holder(),
            None
        );
        assert_eq!(
            Observation::update(None, &record("a", 0), Instant::now()).holder(),
            Some("a")
        );
    }

    #[test]
    fn the_gate_closes_at_its_deadline_even_if_nobody_closes_it() {
        let gate = LeaderGate::closed();
        assert!(!gate.is_leading());
        gate.open_until(Instant::now() + Duration::from_millis(50));
        assert!(gate.is_leading());
        assert!(gate.shared_flag().load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!gate.is_leading(), "past the renew deadline");
        gate.open_until(Instant::now() + Duration::from_secs(60));
        gate.close();
        assert!(!gate.is_leading());
        assert!(!gate.shared_flag().load(Ordering::SeqCst));
        assert!(LeaderGate::always_open().is_leading());
    }
}
