//! Steady state and write-back latency with N objects synced both ways in one repository
//! (N/2 ConfigMaps from Git, N/2 live ones exported to Git), default settings:
//! memory, idle CPU, API writes and commits per minute, then one live change at a time after
//! a quiet period until its commit is in the remote (p50/p90, and the CPU each change cost).

use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

use crate::fixtures::{
    Directions, apply_one_repository, clear, configmap_json, flood, name, seed_configmaps, until,
};
use crate::measure::{ApiRequests, ProcSample};
use crate::subject::Controller;
use crate::table::{Row, Table, Unit, secs};
use crate::{Env, LIMIT};

/// What one steady-state run measured.
pub struct Steady {
    /// Objects synced (both directions together).
    pub objects: usize,
    /// Memory at the end of the quiet window.
    pub sample: ProcSample,
    /// CPU seconds per minute while nothing changes.
    pub cpu_per_minute: f64,
    /// API writes per minute while nothing changes.
    pub writes_per_minute: f64,
    /// Commits per minute while nothing changes.
    pub commits_per_minute: f64,
    /// One change → its commit in the remote, sorted.
    pub latencies: Vec<Duration>,
    /// CPU per change, the idle rate taken out.
    pub cpu_per_change: Duration,
    /// Reconciles per change.
    pub reconciles_per_change: f64,
    /// The API server's CPU per change, its idle rate taken out (when its metrics tell).
    pub api_cpu_per_change: Option<Duration>,
    /// Process start until everything was synced.
    pub converged: Duration,
}

impl Steady {
    fn percentile(&self, q: f64) -> Duration {
        self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize]
    }
}

/// Runs the steady state and the latency rounds with `objects` objects.
pub async fn steady(env: &Env, objects: usize) -> Steady {
    let client = &env.client;
    let half = objects / 2;
    let ns = TestNamespace::new(client, "bench-steady").await;
    let ns_name = ns.name().to_string();
    let bodies = (0..objects - half)
        .map(|i| configmap_json(&ns_name, &name("live", i), "cluster"))
        .collect();
    flood(client, &ns_name, bodies, 32).await;
    let git = GitDaemon::start();
    seed_configmaps(&git, &ns_name, half, "ConfigMaps from Git");
    apply_one_repository(client, &ns_name, &git, Directions::Both).await;

    let started = Instant::now();
    let controller = Controller::start(&env.binary, &ns_name, &[]);
    until(
        "everything synced",
        Duration::from_millis(100),
        LIMIT,
        || async {
            let applied = controller.created().await;
            let exported = controller
                .metric("gitcontroller_sync_operations_total", "direction=\"git\"")
                .await;
            applied >= half as f64 && exported >= (objects - half) as f64
        },
    )
    .await;
    let converged = started.elapsed();
    settle(&controller).await;

    // The quiet window: nothing changes, so ideally nothing happens.
    let before = controller.sample();
    let api_before = ApiRequests::read(client).await;
    let commits_before = git.commits().len();
    let window_started = Instant::now();
    tokio::time::sleep(env.steady_window).await;
    let window = window_started.elapsed();
    let after = controller.sample();
    let api = ApiRequests::read(client).await.since(&api_before);
    let commits = git.commits().len() - commits_before;
    let minutes = window.as_secs_f64() / 60.0;
    let idle_cpu_rate = secs(after.cpu - before.cpu) / window.as_secs_f64();

    // One change at a time, each after a quiet period, each of another exported object.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_name);
    let mut latencies = Vec::new();
    let cpu_before = controller.sample().cpu;
    let api_rounds_before = ApiRequests::read(client).await;
    let reconciles_before = controller.reconciles().await;
    let rounds_started = Instant::now();
    for round in 0..env.latency_rounds {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let object = name("live", round % (objects - half));
        let marker = format!("round-{round}");
        let path = format!("{ns_name}/configmaps/{object}.yaml");
        let head = git.try_head();
        let changed = Instant::now();
        configmaps
            .patch(
                &object,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": {"value": marker}})),
            )
            .await
            .unwrap();
        until(
            "the change in the remote",
            Duration::from_millis(20),
            Duration::from_secs(60),
            || async {
                git.try_head() != head && git.read_file(&path).is_some_and(|t| t.contains(&marker))
            },
        )
        .await;
        latencies.push(changed.elapsed());
    }
    let rounds_took = rounds_started.elapsed();
    let cpu_rounds = secs(controller.sample().cpu - cpu_before) - idle_cpu_rate * secs(rounds_took);
    // The API server's share: the controller's writes (the status after each commit carries
    // the inventory) and the watch events it serves back.
    let api_cpu_rounds = ApiRequests::read(client)
        .await
        .since(&api_rounds_before)
        .cpu_seconds
        .zip(api.cpu_seconds)
        .map(|(rounds, idle)| rounds - idle / window.as_secs_f64() * secs(rounds_took));
    // The last change's reconciles may still be finishing (the status write after the push).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reconciles = controller.reconciles().await - reconciles_before;
    drop(controller);
    clear(client, &ns_name).await;
    latencies.sort();
    Steady {
        objects,
        sample: after,
        cpu_per_minute: secs(after.cpu - before.cpu) / minutes,
        writes_per_minute: api.writes / minutes,
        commits_per_minute: commits as f64 / minutes,
        latencies,
        cpu_per_change: Duration::from_secs_f64((cpu_rounds / env.latency_rounds as f64).max(0.0)),
        reconciles_per_change: reconciles / env.latency_rounds as f64,
        api_cpu_per_change: api_cpu_rounds
            .map(|cpu| Duration::from_secs_f64((cpu / env.latency_rounds as f64).max(0.0))),
        converged,
    }
}

/// Waits until no reconcile has finished for 5 s (the start-up syncs and their status
/// writes are over), at most 2 minutes.
async fn settle(controller: &Controller) {
    let started = Instant::now();
    let mut last = controller.reconciles().await;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(5)
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = controller.reconciles().await;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
}

/// The rows of the steady-state runs: the big one against the targets, the small one for the
/// growth per 1,000 objects and the CPU per change.
pub fn rows(table: &mut Table, big: &Steady, small: Option<&Steady>) {
    let n = big.objects;
    let work = format!("steady state, {n} objects synced both ways");
    table.push(Row::against_target(
        format!("{work}: RSS"),
        big.sample.rss_mib(),
        150.0,
        Unit::Mib,
    ));
    table.push(Row::against_target(
        format!("{work}: CPU"),
        big.cpu_per_minute,
        0.3,
        Unit::CpuPerMinute,
    ));
    table.push(Row::figure(
        format!("{work}: writes"),
        format!(
            "{:.1} API writes/min, {:.1} commits/min",
            big.writes_per_minute, big.commits_per_minute
        ),
        "goal 0",
    ));
    table.push(Row::figure(
        format!("{work}: start-up"),
        format!(
            "{:.2} s from process start to all synced, peak RSS {:.0} MiB",
            secs(big.converged),
            big.sample.peak_mib()
        ),
        "",
    ));
    table.push(Row::against_target(
        format!("one live change → pushed commit, {n} objects, default settings: p50"),
        secs(big.percentile(0.5)),
        1.0,
        Unit::Seconds,
    ));
    table.push(Row::figure(
        format!("one live change → pushed commit, {n} objects: p90, max"),
        format!(
            "p90 {:.2} s, max {:.2} s over {} changes",
            secs(big.percentile(0.9)),
            secs(*big.latencies.last().unwrap()),
            big.latencies.len()
        ),
        format!("{:.1} reconciles per change", big.reconciles_per_change),
    ));
    let api_cpu = |run: &Steady| {
        run.api_cpu_per_change
            .map_or("not exposed".to_string(), |cpu| {
                format!("{:.0} CPU-ms", secs(cpu) * 1000.0)
            })
    };
    table.push(Row::figure(
        format!("the API server's CPU per one-object change, {n} objects"),
        api_cpu(big),
        match small {
            Some(small) => format!(
                "{} at {}; the controller's own: {:.0} CPU-ms",
                api_cpu(small),
                small.objects,
                secs(big.cpu_per_change) * 1000.0
            ),
            None => format!(
                "the controller's own: {:.0} CPU-ms",
                secs(big.cpu_per_change) * 1000.0
            ),
        },
    ));
    let Some(small) = small else {
        return;
    };
    table.push(Row::compare(
        format!(
            "CPU per one-object change, {n} vs {} objects",
            small.objects
        ),
        secs(big.cpu_per_change) * 1000.0,
        secs(small.cpu_per_change) * 1000.0,
        Unit::CpuMillis,
        &format!("at {}:", small.objects),
        format!(
            "goal ≤ 2×; reconciles per change {:.1} vs {:.1}",
            big.reconciles_per_change, small.reconciles_per_change
        ),
    ));
    let per_thousand = (big.sample.rss_mib() - small.sample.rss_mib())
        / ((big.objects - small.objects) as f64 / 1000.0);
    table.push(Row::figure(
        "memory growth per 1,000 synced objects",
        format!("{per_thousand:.1} MiB"),
        format!(
            "RSS {:.0} MiB at {}, {:.0} MiB at {}",
            small.sample.rss_mib(),
            small.objects,
            big.sample.rss_mib(),
            big.objects
        ),
    ));
}
