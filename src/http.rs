//! The operational HTTP endpoints, served on `--metrics-addr`:
//!
//! - `/metrics`: [`Metrics::render`] in the Prometheus text format.
//! - `/healthz`: `200 ok` while the process serves HTTP (the liveness probe).
//! - `/readyz`: `200 ok` when the API server was reachable at the last check and leader
//!   election is disabled, leading, or a healthy standby; `503` with the reason otherwise
//!   (the readiness probe).
//!
//! [`router`] returns a plain [`axum::Router`] so the caller can `merge` others into it or
//! serve them on another address with [`serve`]. Every listener is served by [`server`],
//! with its own connection cap and timeouts: the push webhook has its own listener and
//! limits, so a flood there does not reach these endpoints.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::{self, Metrics};

pub mod server;

/// Where this replica stands in leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LeaderState {
    /// Leader election is off: this replica is the only one and always active.
    Disabled = 0,
    /// This replica holds the lease and reconciles.
    Leading = 1,
    /// Another replica holds the lease; this one renews its view of it and waits (ready).
    Standby = 2,
    /// This replica lost the lease or cannot reach it (not ready; it should exit or recover).
    Lost = 3,
}

impl LeaderState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Disabled,
            1 => Self::Leading,
            2 => Self::Standby,
            _ => Self::Lost,
        }
    }
}

#[derive(Debug)]
struct HealthInner {
    api_reachable: AtomicBool,
    leader: AtomicU8,
}

/// Shared readiness state: cheap to clone (one `Arc`), every clone sees the same values.
///
/// Starts not ready: API server not reachable yet, leader election [`LeaderState::Disabled`].
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<HealthInner>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Not ready until [`Health::set_api_reachable`]`(true)`.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(HealthInner {
                api_reachable: AtomicBool::new(false),
                leader: AtomicU8::new(LeaderState::Disabled as u8),
            }),
        }
    }

    /// Records whether the last request to the API server succeeded.
    pub fn set_api_reachable(&self, reachable: bool) {
        self.inner.api_reachable.store(reachable, Ordering::Relaxed);
    }

    /// Whether the API server was reachable at the last check.
    pub fn api_reachable(&self) -> bool {
        self.inner.api_reachable.load(Ordering::Relaxed)
    }

    /// Records this replica's leader election state.
    pub fn set_leader_state(&self, state: LeaderState) {
        self.inner.leader.store(state as u8, Ordering::Relaxed);
    }

    /// This replica's leader election state.
    pub fn leader_state(&self) -> LeaderState {
        LeaderState::from_u8(self.inner.leader.load(Ordering::Relaxed))
    }

    /// Why the replica is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if !self.api_reachable() {
            return Some("the Kubernetes API server is not reachable");
        }
        match self.leader_state() {
            LeaderState::Disabled | LeaderState::Leading | LeaderState::Standby => None,
            LeaderState::Lost => Some("leader election lease lost"),
        }
    }

    /// Ready: API server reachable and leader election disabled, leading or standby.
    pub fn is_ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }
}

/// `/metrics`, `/healthz` and `/readyz`. Merge other routers into it with
/// [`Router::merge`].
pub fn router(metrics: Arc<Metrics>, health: Health) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    match health.not_ready_reason() {
                        None => (StatusCode::OK, "ok\n".to_owned()).into_response(),
                        Some(reason) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {reason}\n"),
                        )
                            .into_response(),
                    }
                }
            }),
        )
}

/// Binds `addr` and serves `router` with the operational endpoints' limits
/// ([`server::Limits::operational`]) until `shutdown` completes (then finishes the requests in
/// flight and returns). Fails when the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = server::bind(addr)?;
    serve_listener(listener, router, shutdown).await
}

/// Like [`serve`], on a listener that is already bound (e.g. to port 0, to learn the port
/// with `local_addr` first).
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(
        listener,
        router,
        server::Limits::operational(),
        None,
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_api_and_leader_state() {
        let health = Health::new();
        let seen_by_server = health.clone();
        assert!(!seen_by_server.is_ready());
        health.set_api_reachable(true);
        assert!(seen_by_server.is_ready());
        for (state, ready) in [
            (LeaderState::Leading, true),
            (LeaderState::Standby, true),
            (LeaderState::Lost, false),
            (LeaderState::Disabled, true),
        ] {
            health.set_leader_state(state);
            assert_eq!(seen_by_server.leader_state(), state);
            assert_eq!(seen_by_server.is_ready(), ready, "{state:?}");
        }
        health.set_api_reachable(false);
        assert_eq!(
            seen_by_server.not_ready_reason(),
            Some("the Kubernetes API server is not reachable")
        );
    }
}
