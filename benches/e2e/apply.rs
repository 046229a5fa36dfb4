//! Git → cluster: N ConfigMap manifests in a repository until all exist in the cluster, the
//! controller already running, side by side with `kubectl apply --server-side` and with the
//! API server's ceiling (raw concurrent server-side applies).

use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::GitDaemon;

use crate::common::apply_yaml;
use crate::fixtures::{
    Directions, apply_repositories, clear, configmap_json, configmap_yaml, count, flood,
    kubectl_apply, name, repository, rules, seed_configmaps, until,
};
use crate::measure::ApiRequests;
use crate::subject::Controller;
use crate::table::{Row, Table, Unit, secs};
use crate::{Env, LIMIT};

/// One size of the Git → cluster rows.
pub async fn git_to_cluster(env: &Env, table: &mut Table, n: usize) {
    let client = &env.client;

    let kubectl = if n <= env.kubectl_max {
        let ns = TestNamespace::new(client, "bench-kubectl").await;
        let dir = tempfile::tempdir().unwrap();
        for i in 0..n {
            let name = name("cm", i);
            std::fs::write(
                dir.path().join(format!("{name}.yaml")),
                configmap_yaml(ns.name(), &name, "git", None),
            )
            .unwrap();
        }
        let took = kubectl_apply(dir.path());
        clear(client, ns.name()).await;
        Some(took)
    } else {
        None
    };

    let mut ceiling: Option<(Duration, usize)> = None;
    for &in_flight in &env.flood_in_flight {
        let ns = TestNamespace::new(client, "bench-flood").await;
        let bodies = (0..n)
            .map(|i| configmap_json(ns.name(), &name("cm", i), "git"))
            .collect();
        let took = flood(client, ns.name(), bodies, in_flight).await;
        eprintln!("raw SSA of {n}, {in_flight} in flight: {:.2} s", secs(took));
        clear(client, ns.name()).await;
        if ceiling.is_none_or(|(best, _)| took < best) {
            ceiling = Some((took, in_flight));
        }
    }
    let (ceiling, in_flight) = ceiling.expect("at least one flood (E2E_FLOOD_IN_FLIGHT)");

    let ns = TestNamespace::new(client, "bench-in").await;
    let ns_name = ns.name().to_string();
    let git = GitDaemon::start();
    seed_configmaps(&git, &ns_name, n, "many ConfigMaps");
    let controller = Controller::start(&env.binary, &ns_name, &[]);
    controller.ready().await;
    // The rules first (they select nothing without their repository), then the repository:
    // the clock runs from the moment the controller learns of the repository.
    let rules = rules("repo", &ns_name, Directions::FromGit, "");
    apply_yaml(client, &ns_name, &rules).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = controller.sample();
    let api_before = ApiRequests::read(client).await;
    let started = Instant::now();
    apply_repositories(client, &ns_name, &repository("repo", &git.url(), "")).await;
    until(
        "every ConfigMap applied",
        Duration::from_millis(25),
        LIMIT,
        || async { controller.created().await >= n as f64 },
    )
    .await;
    let ours = started.elapsed();
    let after = controller.sample();
    let api = ApiRequests::read(client).await.since(&api_before);
    assert_eq!(count(client, &ns_name, "origin=git").await, n);
    drop(controller);
    clear(client, &ns_name).await;

    let work = format!("Git→cluster {n} ConfigMaps, controller running");
    table.push(Row::compare(
        format!("{work}, vs the API ceiling"),
        secs(ours),
        secs(ceiling),
        Unit::Seconds,
        &format!("raw SSA, {in_flight} in flight,"),
        "goal ≤ 1.2× at 2,000",
    ));
    match kubectl {
        Some(kubectl) => table.push(Row::compare(
            format!("{work}, vs kubectl"),
            secs(ours),
            secs(kubectl),
            Unit::Seconds,
            "kubectl apply --server-side",
            "",
        )),
        None => table.push(Row::figure(
            format!("{work}, vs kubectl"),
            format!("{:.2} s", secs(ours)),
            format!("kubectl not run above E2E_KUBECTL_MAX={}", env.kubectl_max),
        )),
    }
    table.push(Row::figure(
        format!("{work}: cost"),
        format!(
            "{:.2} CPU-s, {} API requests ({} writes), RSS {:.0} MiB (peak {:.0})",
            secs(after.cpu - before.cpu),
            api.total,
            api.writes,
            after.rss_mib(),
            after.peak_mib()
        ),
        "",
    ));
}
