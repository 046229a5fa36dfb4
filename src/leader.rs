//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly
//! one writes.
//!
//! The holder renews the Lease every `renew_every`; a standby takes it over once
//! `renewTime + leaseDurationSeconds` has passed. Every update carries the Lease's
//! `resourceVersion`, so two candidates can never both win the same term. A leader that cannot
//! renew before its term ends drops write permission at once (writes check it right before
//! they happen) and reports the loss.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// Where the Lease lives and how long a term lasts.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (pod name).
    pub identity: String,
    /// How long a term lasts without renewal.
    pub duration: Duration,
    /// How often the holder renews (and a standby retries).
    pub renew_every: Duration,
}

/// What a candidate currently is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Holds the Lease.
    Leader,
    /// Someone else holds it.
    Standby,
}

/// Tries once to acquire or renew the Lease; returns the resulting role.
pub async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
) -> Result<Role, kube::Error> {
    let now = jiff::Timestamp::now();
    let desired = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.duration.as_secs() as i32),
        acquire_time: acquire.or(Some(MicroTime(now))),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(desired(0, None)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Role::Leader),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Role::Standby),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let transitions = spec.lease_transitions.unwrap_or(0);
    let spec = if holder == config.identity {
        desired(transitions, spec.acquire_time.clone())
    } else {
        let expires = spec.renew_time.as_ref().map(|t| {
            t.0 + jiff::SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds.unwrap_or(15),
            ))
        });
        let free = holder.is_empty() || expires.is_none_or(|e| e < now);
        if !free {
            return Ok(Role::Standby);
        }
        desired(transitions + 1, None)
    };
    lease.spec = Some(spec);
    // replace() sends the resourceVersion we read: if anyone wrote in between, we get a 409
    // and stay standby for this round.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(Role::Leader),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Role::Standby),
        Err(e) => Err(e),
    }
}

/// Waits until this candidate holds the Lease, then keeps renewing it in the background.
/// `leading` is true exactly while the Lease is held; when a renewal fails past the term,
/// `leading` turns false and `lost` is notified.
pub async fn acquire(
    client: Client,
    config: LeaseConfig,
    leading: Arc<AtomicBool>,
    lost: Arc<tokio::sync::Notify>,
) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    loop {
        match try_acquire_or_renew(&api, &config).await {
            Ok(Role::Leader) => break,
            Ok(Role::Standby) => {}
            Err(error) => {
                tracing::warn!(%error, "leader election: could not read or write the Lease")
            }
        }
        tokio::time::sleep(config.renew_every).await;
    }
    leading.store(true, Ordering::SeqCst);
    tracing::info!(lease = %config.name, identity = %config.identity, "became the leader");
    tokio::spawn(async move {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(config.renew_every).await;
            match try_acquire_or_renew(&api, &config).await {
                Ok(Role::Leader) => last_renewed = tokio::time::Instant::now(),
                Ok(Role::Standby) => {
                    leading.store(false, Ordering::SeqCst);
                    tracing::error!(
                        "leader election: another candidate holds the Lease; stopping writes"
                    );
                    lost.notify_one();
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "leader election: renewal failed");
                    // Stop writing before the term could have passed for the others.
                    if last_renewed.elapsed() + config.renew_every >= config.duration {
                        leading.store(false, Ordering::SeqCst);
                        tracing::error!("leader election: term expired; stopping writes");
                        lost.notify_one();
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}
