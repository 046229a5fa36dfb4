//! Cluster → Git, process start included: N live ConfigMaps until all are files in the
//! remote, side by side with `kubectl get -o json` + splitting into files + `git push`.

use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::{GitDaemon, git_command};

use crate::fixtures::{
    Directions, apply_one_repository, clear, configmap_json, flood, kubectl, name, until,
};
use crate::subject::Controller;
use crate::table::{Row, Table, Unit, secs};
use crate::{Env, LIMIT};

/// One size of the cluster → Git row.
pub async fn cluster_to_git(env: &Env, table: &mut Table, n: usize) {
    let client = &env.client;
    let ns = TestNamespace::new(client, "bench-out").await;
    let ns_name = ns.name().to_string();
    let bodies = (0..n)
        .map(|i| configmap_json(&ns_name, &name("live", i), "cluster"))
        .collect();
    flood(client, &ns_name, bodies, 32).await;

    let baseline = cli_export(&ns_name);

    let git = GitDaemon::start();
    git.seed(&[("README.md", "x\n")], "init");
    apply_one_repository(client, &ns_name, &git, Directions::ToGit).await;
    let started = Instant::now();
    let controller = Controller::start(&env.binary, &ns_name, &[]);
    until(
        "every ConfigMap exported",
        Duration::from_millis(25),
        LIMIT,
        || async {
            controller
                .metric("gitcontroller_sync_operations_total", "direction=\"git\"")
                .await
                >= n as f64
        },
    )
    .await;
    let ours = started.elapsed();
    let sample = controller.sample();
    drop(controller);
    let exported = git
        .list_files()
        .iter()
        .filter(|f| f.contains("/live-"))
        .count();
    assert_eq!(exported, n, "files in the remote");
    clear(client, &ns_name).await;

    table.push(Row::compare(
        format!("cluster→Git {n} ConfigMaps, process start included"),
        secs(ours),
        secs(baseline),
        Unit::Seconds,
        "kubectl get -o json + split + git push",
        format!(
            "goal ≤ 1.0× at 500; {:.2} CPU-s, peak RSS {:.0} MiB",
            secs(sample.cpu),
            sample.peak_mib()
        ),
    ));
}

/// What a person would script: list the objects as JSON, one file each, commit, push.
fn cli_export(ns: &str) -> Duration {
    let remote = GitDaemon::start();
    remote.seed(&[("README.md", "x\n")], "init");
    let clone = tempfile::tempdir().unwrap();
    let work = clone.path().join("c");
    let cloned = git_command()
        .args(["clone", "-q", &remote.url()])
        .arg(&work)
        .status()
        .unwrap();
    assert!(cloned.success());
    let started = Instant::now();
    let output = kubectl()
        .args([
            "get",
            "configmaps",
            "-n",
            ns,
            "-l",
            "origin=cluster",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "kubectl get");
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    std::fs::create_dir_all(work.join("configmaps")).unwrap();
    for item in list["items"].as_array().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap();
        std::fs::write(
            work.join(format!("configmaps/{name}.json")),
            serde_json::to_vec_pretty(item).unwrap(),
        )
        .unwrap();
    }
    for args in [
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-qm",
            "export",
        ],
        &["push", "-q", "origin", "main"],
    ] {
        let status = git_command()
            .current_dir(&work)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
    started.elapsed()
}
