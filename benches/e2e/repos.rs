//! Many repositories: R GitRepositories × K objects on one shared remote (one directory and
//! one rule each) against the same R×K objects in one repository, Git → cluster, process
//! start included: wall time, CPU, memory, API writes, then idle CPU.

use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;

use crate::common::apply_yaml;
use crate::fixtures::{
    Directions, apply_one_repository, apply_repositories, clear, configmap_yaml, repository, rules,
    until,
};
use crate::measure::{ApiRequests, ProcSample};
use crate::subject::Controller;
use crate::table::{Row, Table, Unit, secs};
use crate::{Env, LIMIT};

/// How many ConfigMaps the namespace holds, from a list of one (its remaining item count).
async fn configmaps_in(api: &Api<ConfigMap>) -> usize {
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(page) => {
            let remaining = page.metadata.remaining_item_count.unwrap_or(0);
            page.items.len() + usize::try_from(remaining).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

struct Figures {
    converged: Duration,
    converge_cpu: Duration,
    sample: ProcSample,
    writes: f64,
    reconciles: f64,
    idle_cpu_per_minute: f64,
}

/// `repositories` × `per_repository` objects, spread over that many repositories (`split`)
/// or in one.
async fn run(env: &Env, repositories: usize, per_repository: usize, split: bool) -> Figures {
    let client = &env.client;
    let ns = TestNamespace::new(client, if split { "bench-many" } else { "bench-one" }).await;
    let ns_name = ns.name().to_string();
    let git = GitDaemon::start();
    let shard = |r: usize| format!("r-{r:03}");
    let files: Vec<(String, String)> = (0..repositories)
        .flat_map(|r| (0..per_repository).map(move |k| (r, k)))
        .map(|(r, k)| {
            let name = format!("{}-cm-{k:03}", shard(r));
            (
                format!("{}/{name}.yaml", shard(r)),
                configmap_yaml(&ns_name, &name, "git", Some(&shard(r))),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    git.seed(&refs, "ConfigMaps of every repository");
    if split {
        let mut all_rules = String::new();
        let mut all_repositories = String::new();
        for r in 0..repositories {
            let name = shard(r);
            all_rules.push_str(&rules(
                &name,
                &ns_name,
                Directions::FromGit,
                &format!(",shard={name}"),
            ));
            all_repositories.push_str(&repository(&name, &git.url(), &name));
        }
        apply_yaml(client, &ns_name, &all_rules).await;
        apply_repositories(client, &ns_name, &all_repositories).await;
    } else {
        apply_one_repository(client, &ns_name, &git, Directions::FromGit).await;
    }
    let total = repositories * per_repository;
    let api_before = ApiRequests::read(client).await;
    let started = Instant::now();
    let controller = Controller::start(&env.binary, &ns_name, &[]);
    // Counted at the API server, one cheap list page each time: reading the controller's
    // `/metrics` this often would load it in proportion to its series, that is to the
    // number of repositories, and slow down the very run it measures.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_name);
    until(
        "every ConfigMap applied",
        Duration::from_millis(25),
        LIMIT,
        || async { configmaps_in(&configmaps).await >= total },
    )
    .await;
    let converged = started.elapsed();
    let converge_cpu = controller.sample().cpu;
    let until_converged = ApiRequests::read(client).await.since(&api_before);
    // The status writes and Events that follow belong to the convergence too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let api = ApiRequests::read(client).await.since(&api_before);
    let writes = api.writes;
    let reconciles = controller.reconciles().await;
    println!(
        "{} repositories × {per_repository}: converged in {:.2} s, {reconciles} reconciles; \
         API writes until converged {} ({}), 3 s later {} ({})",
        if split { repositories } else { 1 },
        secs(converged),
        until_converged.writes,
        until_converged.writes_summary(),
        api.writes,
        api.writes_summary(),
    );
    let before = controller.sample();
    let idle_started = Instant::now();
    tokio::time::sleep(env.idle_window).await;
    let after = controller.sample();
    let idle_cpu_per_minute =
        secs(after.cpu - before.cpu) / (idle_started.elapsed().as_secs_f64() / 60.0);
    drop(controller);
    clear(client, &ns_name).await;
    Figures {
        converged,
        converge_cpu,
        sample: after,
        writes,
        reconciles,
        idle_cpu_per_minute,
    }
}

/// The many-repositories rows.
pub async fn many_repositories(env: &Env, table: &mut Table, repositories: usize, per: usize) {
    let one = run(env, repositories, per, false).await;
    let many = run(env, repositories, per, true).await;
    let total = repositories * per;
    let work = format!("{repositories} GitRepositories × {per} objects vs {total} in one");
    table.push(Row::compare(
        format!("{work}: converge (process start included)"),
        secs(many.converged),
        secs(one.converged),
        Unit::Seconds,
        "one repository",
        "goal ≤ 1.5×",
    ));
    table.push(Row::compare(
        format!("{work}: CPU to converge"),
        secs(many.converge_cpu),
        secs(one.converge_cpu),
        Unit::Seconds,
        "one repository",
        format!(
            "reconciles {} vs {}; API writes {} vs {}",
            many.reconciles, one.reconciles, many.writes, one.writes
        ),
    ));
    table.push(Row::compare(
        format!("{work}: RSS"),
        many.sample.rss_mib(),
        one.sample.rss_mib(),
        Unit::Mib,
        "one repository",
        format!(
            "peak {:.0} vs {:.0} MiB",
            many.sample.peak_mib(),
            one.sample.peak_mib()
        ),
    ));
    table.push(Row::compare(
        format!("{work}: idle CPU"),
        many.idle_cpu_per_minute,
        one.idle_cpu_per_minute,
        Unit::CpuPerMinute,
        "one repository",
        "goal: grows with objects, not repositories",
    ));
}
