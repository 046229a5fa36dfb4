//! When a repository syncs, end to end (the controller binary, the real API server, git
//! daemons): a stream of changes cannot starve a repository, changes no rule selects and our
//! own writes wake nobody, failing repositories back off, and a status recording progress alone
//! is written once per `--status-interval`. Figures and their commands are
//! in `docs/reliability.md`.

mod common;

use std::time::{Duration, Instant};

use common::hooks::{github_signature, post, value_of};
use common::{ControllerProcess, apply_yaml, setup, wait_for};
use git_controller::api::GitRepository;
use gitcontroller_testkit::git_server::{GitDaemon, free_port};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
/// The product defaults, passed explicitly (the harness batches for 300 ms otherwise).
const DEFAULT_WINDOW: &[&str] = &["--batch-window-ms", "1000"];
const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);
const RECONCILES: &str = "gitcontroller_reconcile_duration_seconds_count";
/// Every status written at once, for the tests that count reconciles exactly: a status held
/// back for `--status-interval` is written by a reconcile of its own when due
/// (`a_status_of_progress_alone_is_written_once_per_status_interval`).
const NO_HELD_STATUS: [&str; 2] = ["--status-interval", "0s"];

fn configmap(ns: &str, name: &str, origin: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    origin: {origin}\ndata:\n  value: \"{value}\"\n"
    )
}

/// `repo` (with a webhook Secret): ConfigMaps labelled `origin=git` come from Git, those
/// labelled `origin=cluster` go to Git.
fn repository_and_rules(url: &str, ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hook\nstringData:\n  token: s3cret\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: repo\nspec:\n  url: {url}\n  interval: 1h\n  webhookSecretRef:\n    name: hook\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: from-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=git\n  syncTo: kubernetes\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: to-git\nspec:\n  repositoryRef: {{name: repo}}\n  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n"
    )
}

async fn set_value(api: &Api<ConfigMap>, name: &str, value: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "value": value } })),
    )
    .await
    .unwrap_or_else(|e| panic!("patching {name}: {e}"));
}

/// Sends a correctly signed push webhook for `repo`.
fn push_hook(port: u16, ns: &str) {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let status = post(
        port,
        &format!("/hooks/{ns}/repo"),
        &[("X-Hub-Signature-256", github_signature(b"s3cret", body))],
        body,
    );
    assert_eq!(status, 202);
}

/// Sync triggers of one repository by source, as `gitcontroller_sync_triggers_total` counts.
async fn triggers(controller: &ControllerProcess, ns: &str, name: &str, source: &str) -> f64 {
    controller
        .metric_sum(&format!(
            r#"gitcontroller_sync_triggers_total{{name="{name}",namespace="{ns}",source="{source}""#
        ))
        .await
}

async fn reconciles(controller: &ControllerProcess, ns: &str, name: &str) -> f64 {
    controller
        .metric_sum(&format!(r#"{RECONCILES}{{name="{name}",namespace="{ns}""#))
        .await
}

/// Every trigger source's count for `repo`, in `TRIGGER_SOURCES` order.
async fn all_triggers(controller: &ControllerProcess, ns: &str) -> Vec<f64> {
    let mut counts = Vec::new();
    for source in git_controller::metrics::TRIGGER_SOURCES {
        counts.push(triggers(controller, ns, "repo", source).await);
    }
    counts
}

#[tokio::test]
async fn a_change_every_100ms_still_lands_a_commit_at_least_every_max_delay() {
    let (client, ns) = setup("sched-stream").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "x\n")], "init");
    apply_yaml(&client, &ns, &configmap(&ns, "busy", "cluster", "start")).await;
    apply_yaml(&client, &ns, &repository_and_rules(&git.url(), &ns)).await;
    let _controller = ControllerProcess::start_with(&ns, DEFAULT_WINDOW);
    let path = format!("{ns}/configmaps/busy.yaml");
    wait_for("busy exported", WAIT, || async {
        git.read_file(&path).filter(|t| t.contains("start"))
    })
    .await;

    // 300 changes, one every 100 ms, while the remote's commits are watched.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let writer = {
        let configmaps = configmaps.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for i in 0..300 {
                tick.tick().await;
                set_value(&configmaps, "busy", &format!("v{i}")).await;
            }
        })
    };
    let started = Instant::now();
    let before = git.commits().len();
    let mut landed = Vec::new();
    let mut seen = before;
    while !writer.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = git.commits().len();
        if now > seen {
            landed.push(started.elapsed());
            seen = now;
        }
    }
    let churn = started.elapsed();
    writer.await.unwrap();
    wait_for("the last value exported", WAIT, || async {
        git.read_file(&path).filter(|t| t.contains("v299"))
    })
    .await;

    println!(
        "{} commits in {churn:.1?} of a change every 100 ms, landing at {landed:.1?}",
        seen - before
    );
    // At least one commit per maximum delay, plus a reconcile and a push on a busy machine.
    let bound = DEFAULT_MAX_DELAY + Duration::from_secs(3);
    let mut last = Duration::ZERO;
    for at in landed.iter().copied().chain([churn]) {
        assert!(
            at - last <= bound,
            "no commit for {:.1?} (after {last:.1?}); commits at {landed:.1?}",
            at - last
        );
        last = at;
    }
    // And still batched: far fewer commits than changes.
    assert!(
        landed.len() <= 12,
        "{} commits for 300 changes: {landed:.1?}",
        landed.len()
    );
}

#[tokio::test]
async fn unrelated_churn_neither_wakes_nor_delays_a_repository() {
    let (client, ns) = setup("sched-noise").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(
        &[("app.yaml", &configmap(&ns, "app", "git", "one"))],
        "init",
    );
    let other_git = GitDaemon::start();
    other_git.seed(&[("README.md", "x\n")], "init");
    apply_yaml(&client, &ns, &configmap(&ns, "noise", "elsewhere", "0")).await;
    apply_yaml(&client, &ns, &repository_and_rules(&git.url(), &ns)).await;
    // Another repository whose rule selects ConfigMaps of another namespace only.
    apply_yaml(
        &client,
        &ns,
        &format!(
            "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: other\nspec:\n  url: {}\n  interval: 1h\n---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: other-namespace\nspec:\n  repositoryRef: {{name: other}}\n  namespaces: [{ns}-elsewhere]\n  kinds: [ConfigMap]\n  syncTo: git\n",
            other_git.url()
        ),
    )
    .await;
    let port = free_port();
    let hook_addr = format!("127.0.0.1:{port}");
    let mut args = DEFAULT_WINDOW.to_vec();
    args.extend(["--webhook-addr", &hook_addr]);
    args.extend(NO_HELD_STATUS);
    let controller = ControllerProcess::start_with(&ns, &args);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    wait_for("both repositories synced once", WAIT, || async {
        let synced = value_of(&configmaps, "app").await.as_deref() == Some("one")
            && reconciles(&controller, &ns, "repo").await >= 1.0
            && reconciles(&controller, &ns, "other").await >= 1.0;
        synced.then_some(())
    })
    .await;
    let repo_before = reconciles(&controller, &ns, "repo").await;
    let other_before = reconciles(&controller, &ns, "other").await;
    let watch_before = triggers(&controller, &ns, "repo", "watch").await;
    let other_watch_before = triggers(&controller, &ns, "other", "watch").await;

    // 100 writes, one every 200 ms, to a ConfigMap neither repository selects.
    let noise = {
        let configmaps = configmaps.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            for i in 1..=100 {
                tick.tick().await;
                set_value(&configmaps, "noise", &i.to_string()).await;
            }
        })
    };
    // Meanwhile a push and its webhook: applied well within the window plus the maximum delay.
    tokio::time::sleep(Duration::from_secs(5)).await;
    git.change(
        &[("app.yaml", &configmap(&ns, "app", "git", "two"))],
        &[],
        "bump",
    );
    let sent = Instant::now();
    push_hook(port, &ns);
    wait_for(
        "the pushed manifest applied",
        Duration::from_secs(1) + DEFAULT_MAX_DELAY,
        || async { value_of(&configmaps, "app").await.filter(|v| v == "two") },
    )
    .await;
    println!(
        "webhook → applied in {:?} during unrelated churn",
        sent.elapsed()
    );
    noise.await.unwrap();

    // A positive signal after the noise: a change `repo` does select (a ConfigMap from Git's
    // side with no manifest). Its watch event comes after every noise event.
    let head = git.head();
    wait_for("the webhook's sync recorded", WAIT, || async {
        let status = repos.get("repo").await.ok()?.status?;
        (status.last_synced_commit.as_deref() == Some(head.as_str())).then_some(())
    })
    .await;
    apply_yaml(&client, &ns, &configmap(&ns, "marker", "git", "x")).await;
    wait_for("the marker's reconcile", WAIT, || async {
        (reconciles(&controller, &ns, "repo").await >= repo_before + 2.0).then_some(())
    })
    .await;
    assert_eq!(
        triggers(&controller, &ns, "repo", "watch").await,
        watch_before + 1.0,
        "only the marker woke repo: not the 100 noise writes, not the echo of its apply"
    );
    assert_eq!(
        reconciles(&controller, &ns, "repo").await,
        repo_before + 2.0,
        "the webhook's sync and the marker's"
    );
    assert_eq!(
        triggers(&controller, &ns, "other", "watch").await,
        other_watch_before,
        "a rule for another namespace is not woken"
    );
    assert_eq!(
        reconciles(&controller, &ns, "other").await,
        other_before,
        "100 writes outside its rule's namespace: no reconcile of the other repository"
    );
}

#[tokio::test]
async fn one_change_costs_one_reconcile_and_our_own_writes_wake_nobody() {
    let (client, ns) = setup("sched-own").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(
        &[("app.yaml", &configmap(&ns, "app", "git", "one"))],
        "init",
    );
    apply_yaml(&client, &ns, &configmap(&ns, "live", "cluster", "one")).await;
    apply_yaml(&client, &ns, &repository_and_rules(&git.url(), &ns)).await;
    let port = free_port();
    let hook_addr = format!("127.0.0.1:{port}");
    let mut args = vec!["--webhook-addr", &hook_addr];
    args.extend(NO_HELD_STATUS);
    let controller = ControllerProcess::start_with(&ns, &args);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let live_path = format!("{ns}/configmaps/live.yaml");
    wait_for("the first sync, both ways", WAIT, || async {
        let done = value_of(&configmaps, "app").await.as_deref() == Some("one")
            && git.read_file(&live_path).is_some()
            && reconciles(&controller, &ns, "repo").await >= 1.0;
        done.then_some(())
    })
    .await;
    // Start-up is one reconcile: the repository's own first event, nothing restarting it.
    // (Order: watch, rule, discovery, webhook, repository.)
    assert_eq!(
        all_triggers(&controller, &ns).await,
        [0.0, 0.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(reconciles(&controller, &ns, "repo").await, 1.0);

    // A push (webhook): one reconcile that fetches and applies; the apply's echo, the status
    // write and the Events wake nothing.
    git.change(
        &[("app.yaml", &configmap(&ns, "app", "git", "two"))],
        &[],
        "bump",
    );
    push_hook(port, &ns);
    wait_for("the push applied", WAIT, || async {
        value_of(&configmaps, "app").await.filter(|v| v == "two")
    })
    .await;
    // A live change (one watch event): one reconcile that commits it; the push and the
    // status write wake nothing. Its event comes after the apply's echo on the same watch.
    let commits = git.commits().len();
    set_value(&configmaps, "live", "two").await;
    wait_for("the live change committed", WAIT, || async {
        git.read_file(&live_path).filter(|t| t.contains("two"))
    })
    .await;
    assert_eq!(git.commits().len(), commits + 1);
    wait_for("both reconciles counted", WAIT, || async {
        (reconciles(&controller, &ns, "repo").await >= 3.0).then_some(())
    })
    .await;
    assert_eq!(
        all_triggers(&controller, &ns).await,
        [1.0, 0.0, 0.0, 1.0, 1.0],
        "one webhook, one watch event (the live change): no echo of our own writes"
    );
    assert_eq!(reconciles(&controller, &ns, "repo").await, 3.0);

    // Our push told us the new head's snapshot: the next live change is planned against it
    // and committed without a fetch (the interval is an hour, no webhook came), and the
    // status names each pushed commit.
    const FETCHES: &str = r#"gitcontroller_git_operation_duration_seconds_count{operation="fetch""#;
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let synced = || async { repos.get("repo").await.ok()?.status?.last_synced_commit };
    let pushed = git.head();
    wait_for("the pushed commit in the status", WAIT, || async {
        (synced().await? == pushed).then_some(())
    })
    .await;
    let fetches = controller.metric_sum(FETCHES).await;
    set_value(&configmaps, "live", "three").await;
    wait_for("the second live change committed", WAIT, || async {
        git.read_file(&live_path).filter(|t| t.contains("three"))
    })
    .await;
    assert_eq!(git.commits().len(), commits + 2);
    let pushed = git.head();
    wait_for("the second pushed commit in the status", WAIT, || async {
        (synced().await? == pushed).then_some(())
    })
    .await;
    assert_eq!(
        controller.metric_sum(FETCHES).await,
        fetches,
        "no fetch after our own push"
    );
}

/// The controller's JSON log lines for failed reconciles: (time, failures, retry delay).
fn failures(log: &str) -> Vec<(jiff::Timestamp, u64, Duration)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "reconcile failed")
        .map(|line| {
            (
                line["timestamp"].as_str().unwrap().parse().unwrap(),
                line["fields"]["failures"].as_u64().unwrap(),
                Duration::from_millis(line["fields"]["retry_in_ms"].as_u64().unwrap()),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_failing_repository_backs_off_and_starts_over_after_a_success() {
    let (client, ns) = setup("sched-backoff").await;
    let ns = ns.name().to_string();
    let mut git = GitDaemon::start();
    git.seed(
        &[("app.yaml", &configmap(&ns, "app", "git", "one"))],
        "init",
    );
    git.stop();
    apply_yaml(&client, &ns, &repository_and_rules(&git.url(), &ns)).await;
    let controller =
        ControllerProcess::start_with_env(&ns, &[], &[("GIT_CONTROLLER_LOG_FORMAT", "json")]);

    // Unreachable: retries 1 s, 2 s, 4 s, ... apart, each jittered down by up to half.
    let first = wait_for("four failures in a row", WAIT, || async {
        let seen = failures(&controller.log());
        (seen.len() >= 4).then_some(seen)
    })
    .await;
    println!("failures: {first:?}");
    for (n, (at, count, retry_in)) in first.iter().enumerate().take(4) {
        let n = n as u32;
        assert_eq!(*count, u64::from(n) + 1);
        let full = Duration::from_secs(1) * 2u32.pow(n);
        assert!(
            *retry_in > full / 2 && *retry_in <= full,
            "failure {count}: retry in {retry_in:?}, expected ({:?}, {full:?}]",
            full / 2
        );
        if let Some((next, _, _)) = first.get(n as usize + 1) {
            let waited = Duration::try_from(next.duration_since(*at)).unwrap();
            assert!(
                waited + Duration::from_millis(50) >= *retry_in,
                "failure {count} waited {waited:?}, less than its {retry_in:?}"
            );
        }
    }

    // Reachable again: the next retry succeeds.
    git.restart();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the sync after the outage", WAIT, || async {
        value_of(&configmaps, "app").await.filter(|v| v == "one")
    })
    .await;
    let before = failures(&controller.log()).len();

    // Unreachable again, and a spec change asks for a fetch: the backoff starts over.
    git.stop();
    apply_yaml(
        &client,
        &ns,
        &repository_and_rules(&git.url(), &ns).replace("interval: 1h", "interval: 2h"),
    )
    .await;
    let again = wait_for("two failures after the success", WAIT, || async {
        let seen = failures(&controller.log());
        (seen.len() >= before + 2).then_some(seen)
    })
    .await;
    let (_, count, retry_in) = again[before];
    assert_eq!(count, 1, "counted from one again: {:?}", &again[before..]);
    assert!(retry_in <= Duration::from_secs(1), "{retry_in:?}");
    assert_eq!(again[before + 1].1, 2);
}

#[tokio::test]
async fn a_status_of_progress_alone_is_written_once_per_status_interval() {
    use futures::StreamExt as _;
    use kube::runtime::watcher;

    let (client, ns) = setup("sched-status").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "x\n")], "init");
    apply_yaml(
        &client,
        &ns,
        &configmap(&ns, "edited", "cluster", "exported"),
    )
    .await;
    // Every status write of the repository, as the watch sees it: its synced commit.
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watching = {
        let written = written.clone();
        let stream = watcher(
            repos.clone(),
            watcher::Config::default().fields("metadata.name=repo"),
        );
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(repo) | watcher::Event::InitApply(repo)) = event
                    && let Some(commit) = repo.status.and_then(|s| s.last_synced_commit)
                {
                    let mut written = written.lock().unwrap();
                    if written.last() != Some(&commit) {
                        written.push(commit);
                    }
                }
            }
        })
    };
    apply_yaml(&client, &ns, &repository_and_rules(&git.url(), &ns)).await;
    let interval = Duration::from_secs(30);
    let _controller = ControllerProcess::start_with(
        &ns,
        &["--batch-window-ms", "1000", "--status-interval", "30s"],
    );
    let path = format!("{ns}/configmaps/edited.yaml");
    let synced = |commit: String| {
        let repos = repos.clone();
        async move {
            let status = repos.get("repo").await.ok()?.status?;
            (status.last_synced_commit? == commit).then_some(Instant::now())
        }
    };
    wait_for("edited exported", WAIT, || async {
        git.read_file(&path)
            .filter(|t| t.contains("value: exported"))
    })
    .await;
    let exported = git.head();
    // The first status after start-up is written at once.
    let first_written = wait_for("the export's status", WAIT, || synced(exported.clone())).await;

    // Two changes, each committed: their statuses record progress alone, within the interval.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let mut commits = Vec::new();
    for value in ["first-change", "second-change"] {
        set_value(&configmaps, "edited", value).await;
        wait_for("the change committed", WAIT, || async {
            git.read_file(&path)
                .filter(|t| t.contains(&format!("value: {value}")))
        })
        .await;
        commits.push(git.head());
        let status = repos.get("repo").await.unwrap().status.unwrap();
        assert!(
            first_written.elapsed() < interval,
            "the test took longer than the interval; it proves nothing"
        );
        assert_eq!(
            status.last_synced_commit.as_deref(),
            Some(exported.as_str()),
            "held back while the interval runs"
        );
    }

    // Written when the interval is over, with the later commit only.
    let last_written = wait_for("the held status written", WAIT, || {
        synced(commits[1].clone())
    })
    .await;
    assert!(
        last_written.duration_since(first_written) >= interval - Duration::from_secs(2),
        "{:?} after the first",
        last_written.duration_since(first_written)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    watching.abort();
    let written = written.lock().unwrap().clone();
    assert!(
        written.ends_with(&[exported.clone(), commits[1].clone()])
            && !written.contains(&commits[0]),
        "the first change's commit is never written: {written:?}, export {exported}, changes {commits:?}"
    );
}
