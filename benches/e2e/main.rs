//! End-to-end figures of issue 15's table, each side by side with its baseline, from one run,
//! against the tests' cluster (`KUBECONFIG`, or a kubelite started for the run) and real git
//! daemons on loopback. The controller is this build's binary: `cargo bench` builds it with
//! the release profile. Prints each figure as it is measured, then one Markdown table
//! (`ours ÷ baseline`: below 1 is better). Asserts nothing about time.
//!
//! Rows (`E2E_ROWS`, comma-separated; all by default):
//! - `apply`: Git → cluster, N ConfigMaps (`E2E_APPLY_SIZES`, default `500,2000,10000`), the
//!   controller already running, until all exist; vs `kubectl apply --server-side` (up to
//!   `E2E_KUBECTL_MAX` objects, default 10000) and vs the API server's ceiling: raw server-side
//!   applies from one client, `E2E_FLOOD_IN_FLIGHT` at a time (default `16,64`, the fastest).
//! - `export`: cluster → Git, N live ConfigMaps (`E2E_EXPORT_SIZES`, default `500,2000`),
//!   process start included, until all are files in the remote; vs `kubectl get -o json` +
//!   one file each + `git add/commit/push`.
//! - `steady`: N objects synced both ways (`E2E_STEADY_OBJECTS`, default 10000; half from
//!   Git, half exported), default settings: RSS, CPU, API writes and commits per minute over
//!   a quiet window (`E2E_STEADY_SECONDS`, default 60); then `E2E_LATENCY_ROUNDS` (20) single
//!   live changes, each after 1.5 s of quiet, until the commit is in the remote (p50, p90) and
//!   the CPU each cost, the controller's and the API server's (its `process_cpu_seconds_total`).
//!   The same at `E2E_STEADY_SMALL` objects (default 500) gives the CPU per change at 10,000
//!   vs 500 and the memory growth per 1,000 objects.
//! - `latency`: the scheduler's cases with `E2E_LATENCY_OBJECTS` exported ConfigMaps (default
//!   500), default settings: one live change after a quiet period (p50/p90 over
//!   `E2E_LATENCY_ROUNDS` changes), one change during unrelated churn (a ConfigMap no rule
//!   selects changing every 200 ms), one object changed every 100 ms for 20 s (when commits
//!   land), a burst of 20 changes (commits, time until the last is in the remote). With
//!   `E2E_BASELINE_BIN` set to another build of git-controller, both run side by side, rounds
//!   interleaved, and each row compares them.
//! - `repos`: `E2E_REPOS` GitRepositories × objects (default `100x20`) on one remote vs the
//!   same objects in one repository: time and CPU to converge, RSS, API writes, idle CPU over
//!   `E2E_IDLE_SECONDS` (default 30).
//!
//! `E2E_BIN` replaces the controller under test (e.g. a build of an older commit).
//! A quick run: `E2E_APPLY_SIZES=500 E2E_EXPORT_SIZES=500 E2E_STEADY_OBJECTS=2000
//! E2E_STEADY_SECONDS=20 E2E_LATENCY_ROUNDS=5 E2E_REPOS=10x20 cargo bench --bench e2e`.
//! Only the latency cases against a baseline build: `E2E_ROWS=latency
//! E2E_BASELINE_BIN=/tmp/baseline/target/release/git-controller cargo bench --bench e2e`.
//! Planning time is measured by criterion: `cargo bench -p gitcontroller-sync --bench plan`.

#[path = "../../tests/common/mod.rs"]
mod common;

mod apply;
mod export;
mod fixtures;
mod latency;
mod measure;
mod repos;
mod steady;
mod subject;
mod table;

use std::time::Duration;

use git_controller::api::crds;
use gitcontroller_testkit::cluster::{apply_crds, client};

/// The longest any row waits for the controller.
pub const LIMIT: Duration = Duration::from_secs(900);

/// What every row needs: the cluster, the controller binary and the settings.
pub struct Env {
    /// The cluster.
    pub client: kube::Client,
    /// The controller under test.
    pub binary: String,
    /// The largest size `kubectl apply` runs at.
    pub kubectl_max: usize,
    /// Applies in flight for the API ceiling.
    pub flood_in_flight: Vec<usize>,
    /// The steady-state quiet window.
    pub steady_window: Duration,
    /// Single changes measured for latency.
    pub latency_rounds: usize,
    /// The idle window of the many-repositories row.
    pub idle_window: Duration,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} does not parse")),
        Err(_) => default,
    }
}

fn list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {s:?} is not a number"))
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let rows = std::env::var("E2E_ROWS").unwrap_or_default();
    let wants = |row: &str| rows.is_empty() || rows.split(',').any(|r| r.trim() == row);
    let binary = std::env::var("E2E_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_git-controller").to_string());
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let env = Env {
        client,
        binary,
        kubectl_max: var("E2E_KUBECTL_MAX", 10_000),
        flood_in_flight: list("E2E_FLOOD_IN_FLIGHT", "16,64"),
        steady_window: Duration::from_secs(var("E2E_STEADY_SECONDS", 60)),
        latency_rounds: var("E2E_LATENCY_ROUNDS", 20),
        idle_window: Duration::from_secs(var("E2E_IDLE_SECONDS", 30)),
    };
    println!("machine: {}", measure::machine());
    println!(
        "controller: {} ({} build of the bench)",
        env.binary,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mut table = table::Table::default();
    if wants("apply") {
        for n in list("E2E_APPLY_SIZES", "500,2000,10000") {
            apply::git_to_cluster(&env, &mut table, n).await;
        }
    }
    if wants("export") {
        for n in list("E2E_EXPORT_SIZES", "500,2000") {
            export::cluster_to_git(&env, &mut table, n).await;
        }
    }
    if wants("steady") {
        let small = var("E2E_STEADY_SMALL", 500usize);
        let small = (small > 0).then_some(small);
        let big = steady::steady(&env, var("E2E_STEADY_OBJECTS", 10_000)).await;
        let small = match small {
            Some(n) => Some(steady::steady(&env, n).await),
            None => None,
        };
        steady::rows(&mut table, &big, small.as_ref());
    }
    if wants("latency") {
        let baseline = std::env::var("E2E_BASELINE_BIN").ok();
        let n = var("E2E_LATENCY_OBJECTS", 500usize);
        latency::latency(&env, &mut table, n, baseline.as_deref()).await;
    }
    if wants("repos") {
        let spec = std::env::var("E2E_REPOS").unwrap_or_else(|_| "100x20".into());
        let (repositories, per) = spec
            .split_once('x')
            .and_then(|(r, k)| Some((r.parse().ok()?, k.parse().ok()?)))
            .unwrap_or_else(|| panic!("E2E_REPOS={spec:?} is not like 100x20"));
        repos::many_repositories(&env, &mut table, repositories, per).await;
    }
    println!("load average after the run: {}", measure::load());
    table.print();
}
