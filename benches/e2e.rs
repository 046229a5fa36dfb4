//! End-to-end figures against the tests' cluster (`KUBECONFIG`, or a kubelite started for the
//! run) and a real git daemon, side by side with the tools a person would use (`kubectl`, the
//! `git` CLI):
//!
//! 1. Git → cluster: N ConfigMaps in the repository until all exist, vs
//!    `kubectl apply --server-side -f dir/`.
//! 2. Cluster → Git: N live ConfigMaps until all are files in the remote, vs
//!    `kubectl get -o json` + splitting into files + `git add/commit/push`.
//! 3. Latency: one live change (after a quiet period) until its commit is in the remote,
//!    p50/p90 over 20 changes, and a burst of 20 changes (how many commits, how long until the
//!    last is in the remote), with the default batch settings. With `E2E_BASELINE_BIN` set to
//!    another build of git-controller (e.g. the previous release), both run side by side, their
//!    rounds interleaved, and the ratio is printed.
//!
//! `cargo bench --bench e2e` (N defaults to 500; `E2E_OBJECTS=2000` for the larger figure).
//! `E2E_ONLY=latency` (or `apply`, `export`, comma-separated) runs only those parts;
//! `E2E_BIN` replaces the controller under test (default: this build's).
//! Prints figures and ratios; asserts nothing about time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{ControllerProcess, apply_yaml, wait_for};
use git_controller::api::crds;
use gitcontroller_testkit::cluster::{TestNamespace, apply_crds, client, use_test_cluster};
use gitcontroller_testkit::git_server::{GitDaemon, git_command};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};

fn kubectl() -> String {
    for candidate in [
        "/opt/helm/bin/kubectl",
        "/usr/local/bin/kubectl",
        "/usr/bin/kubectl",
    ] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "kubectl".into()
}

fn configmap_yaml(ns: &str, name: &str, origin: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    origin: {origin}\ndata:\n  value: \"{name}\"\n"
    )
}

fn rules(url: &str, ns: &str) -> String {
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {url}\n  interval: 1h\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: from-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: to-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n"
    )
}

async fn count(api: &Api<ConfigMap>, label: &str) -> usize {
    api.list_metadata(&ListParams::default().labels(label))
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("E2E_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let only = std::env::var("E2E_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let ours = std::env::var("E2E_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_git-controller").to_string());
    let baseline = std::env::var("E2E_BASELINE_BIN").ok();
    if wants("apply") {
        git_to_cluster(&client, n, &ours).await;
    }
    if wants("export") {
        cluster_to_git(&client, n, &ours).await;
    }
    if wants("latency") {
        latency(&client, n, &ours, baseline.as_deref()).await;
    }
}

const LIMIT: Duration = Duration::from_secs(600);

/// Creates `live-00000` … ConfigMaps labelled `origin=cluster` with `kubectl apply`.
fn create_live_configmaps(ns: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let manifests: String = (0..n)
        .map(|i| {
            format!(
                "---\n{}",
                configmap_yaml(ns, &format!("live-{i:05}"), "cluster")
            )
        })
        .collect();
    let manifest_file = dir.path().join("live.yaml");
    std::fs::write(&manifest_file, manifests).unwrap();
    let status = use_test_cluster(&mut Command::new(kubectl()))
        .args(["apply", "--server-side", "-f"])
        .arg(&manifest_file)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Part 1, Git → cluster: N manifests in the repository until all exist, vs `kubectl apply`.
async fn git_to_cluster(client: &kube::Client, n: usize, binary: &str) {
    let client = client.clone();
    let limit = LIMIT;
    let baseline_ns = TestNamespace::new(&client, "bench-kubectl").await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let name = format!("cm-{i:05}");
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            configmap_yaml(baseline_ns.name(), &name, "git"),
        )
        .unwrap();
    }
    let started = Instant::now();
    let status = use_test_cluster(&mut Command::new(kubectl()))
        .args(["apply", "--server-side", "-f"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("kubectl");
    assert!(status.success());
    let kubectl_apply = started.elapsed();

    let ns = TestNamespace::new(&client, "bench-in").await;
    let ns_name = ns.name().to_string();
    let git = GitDaemon::start();
    let files: Vec<(String, String)> = (0..n)
        .map(|i| {
            let name = format!("cm-{i:05}");
            (
                format!("cms/{name}.yaml"),
                configmap_yaml(&ns_name, &name, "git"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    git.seed(&refs, "many ConfigMaps");
    apply_yaml(&client, &ns_name, &rules(&git.url(), &ns_name)).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns_name);
    let started = Instant::now();
    let controller = ControllerProcess::start_binary(binary, &ns_name, &[], &[]);
    wait_for("all ConfigMaps applied", limit, || async {
        (count(&configmaps, "origin=git").await >= n).then_some(())
    })
    .await;
    let ours_apply = started.elapsed();
    drop(controller);
    println!(
        "git → cluster, {n} ConfigMaps: git-controller {:.2} s, kubectl apply --server-side {:.2} s, ratio {:.2}x faster",
        ours_apply.as_secs_f64(),
        kubectl_apply.as_secs_f64(),
        kubectl_apply.as_secs_f64() / ours_apply.as_secs_f64()
    );
}

/// Part 2, cluster → Git, process start included. The same live objects for both: baseline
/// first, then ours.
async fn cluster_to_git(client: &kube::Client, n: usize, binary: &str) {
    let client = client.clone();
    let limit = LIMIT;
    let out_ns = TestNamespace::new(&client, "bench-out").await;
    let out_name = out_ns.name().to_string();
    create_live_configmaps(&out_name, n);

    let baseline_git = GitDaemon::start();
    baseline_git.seed(&[("README.md", "x\n")], "init");
    let clone = tempfile::tempdir().unwrap();
    assert!(
        git_command()
            .args(["clone", "-q", &baseline_git.url()])
            .arg(clone.path().join("c"))
            .status()
            .unwrap()
            .success()
    );
    let work = clone.path().join("c");
    let started = Instant::now();
    let output = use_test_cluster(&mut Command::new(kubectl()))
        .args([
            "get",
            "configmaps",
            "-n",
            &out_name,
            "-l",
            "origin=cluster",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
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
        assert!(
            git_command()
                .current_dir(&work)
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    }
    let cli_export = started.elapsed();

    let out_git = GitDaemon::start();
    out_git.seed(&[("README.md", "x\n")], "init");
    apply_yaml(&client, &out_name, &rules(&out_git.url(), &out_name)).await;
    let started = Instant::now();
    let controller = ControllerProcess::start_binary(binary, &out_name, &[], &[]);
    wait_exported(&out_git, n, limit).await;
    let ours_export = started.elapsed();
    println!(
        "cluster → git, {n} ConfigMaps: git-controller {:.2} s, kubectl get + split + git add/commit/push {:.2} s, ratio {:.2}x",
        ours_export.as_secs_f64(),
        cli_export.as_secs_f64(),
        cli_export.as_secs_f64() / ours_export.as_secs_f64()
    );

    drop(controller);
}

/// Waits until the `live-*` ConfigMaps are files in the remote.
async fn wait_exported(git: &GitDaemon, n: usize, limit: Duration) {
    wait_for("all ConfigMaps exported", limit, || async {
        let files = git
            .list_files()
            .iter()
            .filter(|f| f.contains("live-"))
            .count();
        (files >= n).then_some(())
    })
    .await;
}

/// A controller exporting N live ConfigMaps to its own remote, ready to measure.
struct Subject {
    name: &'static str,
    ns: TestNamespace,
    git: GitDaemon,
    configmaps: Api<ConfigMap>,
    _controller: ControllerProcess,
}

impl Subject {
    /// Creates N live ConfigMaps, starts `binary` with the default batch settings and waits
    /// until all of them are in the remote.
    async fn start(client: &kube::Client, n: usize, name: &'static str, binary: &str) -> Self {
        let ns = TestNamespace::new(client, &format!("bench-latency-{name}")).await;
        let ns_name = ns.name().to_string();
        create_live_configmaps(&ns_name, n);
        let git = GitDaemon::start();
        git.seed(&[("README.md", "x\n")], "init");
        apply_yaml(client, &ns_name, &rules(&git.url(), &ns_name)).await;
        // The product's defaults (the test harness would batch for 300 ms).
        let controller =
            ControllerProcess::start_binary(binary, &ns_name, &["--batch-window-ms", "1000"], &[]);
        wait_exported(&git, n, LIMIT).await;
        Subject {
            name,
            configmaps: Api::namespaced(client.clone(), &ns_name),
            ns,
            git,
            _controller: controller,
        }
    }

    /// Changes `live-{index}` to `value` and returns how long until the remote has it.
    async fn change(&self, index: usize, value: &str) -> Duration {
        let started = Instant::now();
        self.set(index, value).await;
        self.wait(index, value).await;
        started.elapsed()
    }

    async fn set(&self, index: usize, value: &str) {
        let patch = serde_json::json!({"data": {"value": value}});
        self.configmaps
            .patch(
                &format!("live-{index:05}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }

    async fn wait(&self, index: usize, value: &str) {
        let path = format!("{}/configmaps/live-{index:05}.yaml", self.ns.name());
        wait_for(
            "the change in the remote",
            Duration::from_secs(60),
            || async { self.git.read_file(&path).filter(|t| t.contains(value)) },
        )
        .await;
    }

    /// Changes `live-00000` every 100 ms for `duration`; returns when the remote's commits
    /// landed (after the start), and how long until the last value was in the remote.
    async fn stream(&self, duration: Duration) -> (Vec<Duration>, Duration) {
        let started = Instant::now();
        let before = self.git.commits().len();
        let mut landed = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut round = 0;
        while started.elapsed() < duration {
            tick.tick().await;
            self.set(0, &format!("stream-{round}")).await;
            round += 1;
            let commits = self.git.commits().len();
            if commits > before + landed.len() {
                landed.push(started.elapsed());
            }
        }
        self.wait(0, &format!("stream-{}", round - 1)).await;
        (landed, started.elapsed())
    }

    /// One change of `live-00001` while a ConfigMap no rule selects changes every 200 ms;
    /// returns how long until the change is in the remote.
    async fn change_during_noise(&self, tag: &str) -> Duration {
        let noise = {
            let configmaps = self.configmaps.clone();
            let ns = self.ns.name().to_string();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                for i in 0..50 {
                    tick.tick().await;
                    let patch = serde_json::json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "noise", "namespace": ns, "labels": {"origin": "elsewhere"}},
                        "data": {"n": i.to_string()}
                    });
                    configmaps
                        .patch(
                            "noise",
                            &PatchParams::apply("bench").force(),
                            &Patch::Apply(&patch),
                        )
                        .await
                        .unwrap();
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let latency = self.change(1, tag).await;
        noise.await.unwrap();
        latency
    }

    /// Changes `count` objects one right after the other; returns how long until the last is
    /// in the remote, and how many commits they took.
    async fn burst(&self, count: usize, tag: &str) -> (Duration, usize) {
        let commits = self.git.commits().len();
        let started = Instant::now();
        for i in 0..count {
            self.set(i, &format!("{tag}-{i}")).await;
        }
        for i in 0..count {
            self.wait(i, &format!("{tag}-{i}")).await;
        }
        let elapsed = started.elapsed();
        (elapsed, self.git.commits().len() - commits)
    }
}

/// p50, p90 and max of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), samples[samples.len() - 1])
}

/// Part 3, one live change → pushed commit, each after a quiet period, then a burst; ours
/// and, when given, a baseline build side by side, rounds interleaved.
async fn latency(client: &kube::Client, n: usize, ours: &str, baseline: Option<&str>) {
    const ROUNDS: usize = 20;
    const BURST: usize = 20;
    let mut subjects = vec![Subject::start(client, n, "ours", ours).await];
    if let Some(baseline) = baseline {
        subjects.push(Subject::start(client, n, "baseline", baseline).await);
    }
    let mut samples = vec![Vec::new(); subjects.len()];
    for round in 0..ROUNDS {
        for (subject, samples) in subjects.iter().zip(&mut samples) {
            // A quiet period first: one change, not a stream of them.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            samples.push(subject.change(round % n, &format!("round-{round}")).await);
        }
    }
    let mut p50s = Vec::new();
    for (subject, samples) in subjects.iter().zip(&mut samples) {
        let (p50, p90, max) = percentiles(samples);
        p50s.push(p50);
        println!(
            "latency one live change → remote commit, {n} objects, {ROUNDS} changes, default batch settings: {} p50 {:.2} s, p90 {:.2} s, max {:.2} s",
            subject.name,
            p50.as_secs_f64(),
            p90.as_secs_f64(),
            max.as_secs_f64()
        );
    }
    if let [ours, baseline] = p50s[..] {
        println!(
            "latency p50 ratio: baseline / ours {:.2}x (target: ours under 1 s)",
            baseline.as_secs_f64() / ours.as_secs_f64()
        );
    }
    for subject in &subjects {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let latency = subject.change_during_noise("noisy").await;
        println!(
            "one live change while an unselected ConfigMap changes every 200 ms for 10 s: {} in the remote after {:.2} s",
            subject.name,
            latency.as_secs_f64()
        );
    }
    for subject in &subjects {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (landed, until_last) = subject.stream(Duration::from_secs(20)).await;
        let landed_s: Vec<String> = landed
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .collect();
        println!(
            "one object changed every 100 ms for 20 s: {} {} commit(s) during it, at [{}] s; the last value in the remote after {:.2} s",
            subject.name,
            landed.len(),
            landed_s.join(", "),
            until_last.as_secs_f64()
        );
    }
    for subject in &subjects {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (elapsed, commits) = subject.burst(BURST.min(n), "burst").await;
        println!(
            "burst of {} changes back to back: {} {commits} commit(s), last in the remote after {:.2} s",
            BURST.min(n),
            subject.name,
            elapsed.as_secs_f64()
        );
    }
}
