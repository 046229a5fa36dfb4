//! Write-back latency under the scheduler's cases, with the default batch settings and N
//! exported ConfigMaps (`E2E_LATENCY_OBJECTS`, default 500): one live change after a quiet
//! period until its commit is in the remote (p50/p90 over `E2E_LATENCY_ROUNDS` changes); one
//! change while a ConfigMap no rule selects changes every 200 ms; one object changed every
//! 100 ms for 20 s (when commits land during it); a burst of 20 changes back to back (how many
//! commits, how long until the last is in the remote).
//!
//! With `E2E_BASELINE_BIN` set to another build of git-controller (e.g. the previous
//! release), both run side by side, their rounds interleaved so that both see the same
//! machine load, and each row compares them; without it, the p50 is compared with the 1 s
//! goal of issue 15.

use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

use crate::fixtures::{
    Directions, apply_one_repository, clear, configmap_json, flood, name, until,
};
use crate::subject::Controller;
use crate::table::{Row, Table, Unit, secs};
use crate::{Env, LIMIT};

/// Changes in a burst.
const BURST: usize = 20;
/// How long one object changes every 100 ms.
const STREAM: Duration = Duration::from_secs(20);
/// The quiet period before each measured change: longer than the batch window, so each
/// change is the first after a quiet period, not part of a stream.
const QUIET: Duration = Duration::from_millis(1500);

/// A controller exporting N live ConfigMaps to its own remote, ready to measure.
struct Subject {
    name: &'static str,
    ns: TestNamespace,
    git: GitDaemon,
    configmaps: Api<ConfigMap>,
    controller: Controller,
}

impl Subject {
    /// Creates N live ConfigMaps, starts `binary` with the default settings and waits until
    /// all of them are in the remote.
    async fn start(env: &Env, n: usize, label: &'static str, binary: &str) -> Self {
        let client = &env.client;
        let ns = TestNamespace::new(client, &format!("bench-latency-{label}")).await;
        let ns_name = ns.name().to_string();
        let bodies = (0..n)
            .map(|i| configmap_json(&ns_name, &name("live", i), "cluster"))
            .collect();
        flood(client, &ns_name, bodies, 32).await;
        let git = GitDaemon::start();
        git.seed(&[("README.md", "x\n")], "init");
        apply_one_repository(client, &ns_name, &git, Directions::ToGit).await;
        let controller = Controller::start(binary, &ns_name, &[]);
        until(
            "all ConfigMaps exported",
            Duration::from_millis(100),
            LIMIT,
            || async {
                git.list_files()
                    .iter()
                    .filter(|f| f.contains("live-"))
                    .count()
                    >= n
            },
        )
        .await;
        Subject {
            name: label,
            configmaps: Api::namespaced(client.clone(), &ns_name),
            ns,
            git,
            controller,
        }
    }

    /// Changes `live-{index}` to `value`; how long until the remote has it.
    async fn change(&self, index: usize, value: &str) -> Duration {
        let started = Instant::now();
        self.set(index, value).await;
        self.wait(index, value).await;
        started.elapsed()
    }

    async fn set(&self, index: usize, value: &str) {
        self.configmaps
            .patch(
                &name("live", index),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"data": {"value": value}})),
            )
            .await
            .unwrap();
    }

    async fn wait(&self, index: usize, value: &str) {
        let path = format!("{}/configmaps/{}.yaml", self.ns.name(), name("live", index));
        until(
            &format!("{value} in {}'s remote", self.name),
            Duration::from_millis(20),
            Duration::from_secs(60),
            || async { self.git.read_file(&path).is_some_and(|t| t.contains(value)) },
        )
        .await;
    }

    /// One change of `live-00001` while a ConfigMap no rule selects changes every 200 ms
    /// (10 s in all); how long until the change is in the remote.
    async fn change_during_noise(&self, tag: &str) -> Duration {
        let noise = {
            let configmaps = self.configmaps.clone();
            let ns = self.ns.name().to_string();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                for i in 0..50 {
                    tick.tick().await;
                    let body = serde_json::json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "noise", "namespace": ns, "labels": {"origin": "elsewhere"}},
                        "data": {"n": i.to_string()}
                    });
                    configmaps
                        .patch(
                            "noise",
                            &PatchParams::apply("bench").force(),
                            &Patch::Apply(&body),
                        )
                        .await
                        .unwrap();
                }
            })
        };
        // The measured change lands in the middle of the noise, not before it starts.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let latency = self.change(1, tag).await;
        noise.await.unwrap();
        latency
    }

    /// Changes `live-00000` every 100 ms for `duration`; when the remote's commits landed
    /// (after the start), and how long until the last value was in the remote.
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

    /// Changes `count` objects one right after the other; how long until the last is in the
    /// remote, and how many commits they took.
    async fn burst(&self, count: usize, tag: &str) -> (Duration, usize) {
        let commits = self.git.commits().len();
        let started = Instant::now();
        for i in 0..count {
            self.set(i, &format!("{tag}-{i}")).await;
        }
        for i in 0..count {
            self.wait(i, &format!("{tag}-{i}")).await;
        }
        (started.elapsed(), self.git.commits().len() - commits)
    }
}

/// p50, p90 and max of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), samples[samples.len() - 1])
}

/// Runs every latency case with `n` objects, for ours and, when given, the baseline build.
pub async fn latency(env: &Env, table: &mut Table, n: usize, baseline: Option<&str>) {
    let mut subjects = vec![Subject::start(env, n, "ours", &env.binary).await];
    if let Some(baseline) = baseline {
        subjects.push(Subject::start(env, n, "baseline", baseline).await);
    }
    let rounds = env.latency_rounds;
    let mut samples = vec![Vec::new(); subjects.len()];
    for round in 0..rounds {
        for (subject, samples) in subjects.iter().zip(&mut samples) {
            tokio::time::sleep(QUIET).await;
            samples.push(subject.change(round % n, &format!("round-{round}")).await);
        }
    }
    let mut p50s = Vec::new();
    for (subject, samples) in subjects.iter().zip(&mut samples) {
        let (p50, p90, max) = percentiles(samples);
        p50s.push(p50);
        println!(
            "latency one live change → remote commit, {n} objects, {rounds} changes, default settings: {} p50 {:.2} s, p90 {:.2} s, max {:.2} s",
            subject.name,
            secs(p50),
            secs(p90),
            secs(max)
        );
    }
    let work = format!("one live change after quiet → pushed commit, {n} objects: p50");
    table.push(match p50s[..] {
        [ours, baseline] => Row::compare(
            work,
            secs(ours),
            secs(baseline),
            Unit::Seconds,
            "baseline build",
            "goal < 1 s",
        ),
        _ => Row::against_target(work, secs(p50s[0]), 1.0, Unit::Seconds),
    });

    let mut noisy = Vec::new();
    for subject in &subjects {
        tokio::time::sleep(QUIET).await;
        let took = subject.change_during_noise("noisy").await;
        println!(
            "one live change while an unselected ConfigMap changes every 200 ms: {} in the remote after {:.2} s",
            subject.name,
            secs(took)
        );
        noisy.push(took);
    }
    table.push(versus(
        format!("one live change during unrelated churn (every 200 ms), {n} objects"),
        &noisy,
        "unrelated changes must not delay it",
    ));

    let mut streams = Vec::new();
    for subject in &subjects {
        tokio::time::sleep(QUIET).await;
        let (landed, until_last) = subject.stream(STREAM).await;
        let at: Vec<String> = landed.iter().map(|d| format!("{:.1}", secs(*d))).collect();
        let figure = format!(
            "{} commit(s) during it, at [{}] s; last value in the remote after {:.2} s",
            landed.len(),
            at.join(", "),
            secs(until_last)
        );
        println!(
            "one object changed every 100 ms for {} s: {} {figure}",
            STREAM.as_secs(),
            subject.name
        );
        streams.push(figure);
    }
    table.push(Row {
        work: format!(
            "one object changed every 100 ms for {} s, {n} objects",
            STREAM.as_secs()
        ),
        ours: streams[0].clone(),
        baseline: streams.get(1).cloned().unwrap_or_else(|| "—".into()),
        ratio: None,
        note: "commits keep landing (one per max delay)".into(),
    });

    let count = BURST.min(n);
    let mut bursts = Vec::new();
    for subject in &subjects {
        tokio::time::sleep(QUIET).await;
        let (took, commits) = subject.burst(count, "burst").await;
        println!(
            "burst of {count} changes back to back: {} {commits} commit(s), last in the remote after {:.2} s",
            subject.name,
            secs(took)
        );
        bursts.push((took, commits));
    }
    let show =
        |(took, commits): (Duration, usize)| format!("{commits} commit(s), {:.2} s", secs(took));
    table.push(Row {
        work: format!(
            "burst of {count} changes back to back, {n} objects: commits, last in the remote"
        ),
        ours: show(bursts[0]),
        baseline: bursts.get(1).copied().map_or_else(|| "—".into(), show),
        ratio: bursts
            .get(1)
            .map(|(baseline, _)| secs(bursts[0].0) / secs(*baseline)),
        note: "a burst batches into few commits".into(),
    });

    for subject in subjects {
        let ns = subject.ns.name().to_string();
        drop(subject.controller);
        clear(&env.client, &ns).await;
    }
}

/// A row of ours against the baseline build's figure when there is one.
fn versus(work: String, figures: &[Duration], note: &str) -> Row {
    match figures {
        [ours, baseline] => Row::compare(
            work,
            secs(*ours),
            secs(*baseline),
            Unit::Seconds,
            "baseline build",
            note,
        ),
        _ => Row::figure(work, Unit::Seconds.show(secs(figures[0])), note),
    }
}
