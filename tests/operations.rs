//! Production operations end to end: push webhooks, leader election (between two processes
//! here, between candidates on the Lease in `operations/lease.rs`), and the `diff` command.

mod common;
#[path = "operations/lease.rs"]
mod lease;

use std::time::{Duration, Instant};

use common::hooks::{configmap, github_signature, post, repository_and_rules, value_of};
use common::{
    ControllerProcess, apply_yaml, condition, run_diff, setup, wait_for, wait_for_sync_of,
};
use git_controller::api::{GitRepository, REQUESTED_AT_ANNOTATION};
use gitcontroller_testkit::git_server::{GitDaemon, free_port};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};

const WAIT: Duration = Duration::from_secs(60);

/// What the controller logs for a refused and for an accepted push hook.
const ACCEPTED: &str = "webhook: sync requested";

#[tokio::test]
async fn a_signed_push_event_syncs_at_once_and_a_bad_one_is_refused() {
    let (client, ns) = setup("hook").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("cm.yaml", &configmap(&ns, "app", "one"))], "init");
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hook\nstringData:\n  token: s3cret\n---\n{}",
        repository_and_rules(
            &git.url(),
            &ns,
            "1h",
            "  webhookSecretRef:\n    name: hook\n"
        )
    );
    apply_yaml(&client, &ns, &yaml).await;
    let port = free_port();
    let controller =
        ControllerProcess::start_with(&ns, &["--webhook-addr", &format!("127.0.0.1:{port}")]);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the first sync", WAIT, || async {
        value_of(&configmaps, "app").await.filter(|v| v == "one")
    })
    .await;
    wait_for_sync_of(&client, &ns, "repo", &git.head()).await;

    let body = br#"{"ref":"refs/heads/main"}"#;
    let path = format!("/hooks/{ns}/repo");
    let wrong = post(
        port,
        &path,
        &[("X-Hub-Signature-256", github_signature(b"wrong", body))],
        body,
    );
    let missing = post(port, &path, &[], body);
    let bad_token = post(port, &path, &[("X-Gitlab-Token", "nope".into())], body);
    assert_eq!((wrong, missing, bad_token), (401, 401, 401));
    // The handler counts its answer before sending it: once the 401s are back, the counter
    // holds each refusal, and the log would hold any sync request.
    let refused = controller
        .metric_sum("gitcontroller_webhook_responses_total{code=\"401\"")
        .await;
    assert_eq!(refused, 3.0, "three refusals counted");
    let log = controller.log();
    assert!(
        !log.contains(ACCEPTED),
        "a refused hook triggers nothing:\n{log}"
    );

    git.change(&[("cm.yaml", &configmap(&ns, "app", "two"))], &[], "bump");
    let took = announce_and_wait_for(
        port,
        &path,
        (
            &[("X-Hub-Signature-256", github_signature(b"s3cret", body))],
            body,
        ),
        &configmaps,
        "two",
        Duration::from_secs(20),
        "the signed push to be synced",
    )
    .await;
    println!("webhook → applied in {took:?} (interval is 1 h)");

    git.change(
        &[("cm.yaml", &configmap(&ns, "app", "three"))],
        &[],
        "bump again",
    );
    let sent = Instant::now();
    assert_eq!(
        post(port, &path, &[("X-Gitlab-Token", "s3cret".into())], body),
        202
    );
    wait_for(
        "the GitLab-style hook to be synced",
        Duration::from_secs(20),
        || async { value_of(&configmaps, "app").await.filter(|v| v == "three") },
    )
    .await;
    println!("gitlab webhook → applied in {:?}", sent.elapsed());
    assert_eq!(controller.log().matches(ACCEPTED).count(), 2);
    let big = vec![b'x'; 2 * 1024 * 1024];
    assert_eq!(
        post(port, &path, &[("X-Gitlab-Token", "s3cret".into())], &big),
        413
    );
}

type LeaderAndStandby = (
    kube::Client,
    gitcontroller_testkit::cluster::TestNamespace,
    GitDaemon,
    ControllerProcess,
    ControllerProcess,
);

/// Announces a push (`body`, signed in `headers`) to the webhook receiver on `port` (202 expected) and waits
/// at most `limit` for ConfigMap `app` to hold `value`; returns the time from the request.
async fn announce_and_wait_for(
    port: u16,
    path: &str,
    (headers, body): (&[(&str, String)], &[u8]),
    configmaps: &Api<ConfigMap>,
    value: &str,
    limit: Duration,
    what: &str,
) -> Duration {
    let sent = Instant::now();
    assert_eq!(post(port, path, headers, body), 202);
    wait_for(what, limit, || async {
        value_of(configmaps, "app").await.filter(|v| v == value)
    })
    .await;
    sent.elapsed()
}

/// Two replicas with `--leader-elect`; returns them once the first leads and the second
/// stands by (both say so in their logs), with the client, namespace and Git server.
async fn leader_and_standby(prefix: &str) -> LeaderAndStandby {
    leader_and_standby_with(prefix, &[("README.md", "x\n")], "2s", "", "", [&[], &[]]).await
}

/// [`leader_and_standby`] with the Git server seeded with `files`, the GitRepository's
/// `interval` and spec lines `spec_extra`, `yaml` applied before it, and more arguments for
/// each replica.
async fn leader_and_standby_with(
    prefix: &str,
    files: &[(&str, &str)],
    interval: &str,
    spec_extra: &str,
    yaml: &str,
    extra_args: [&[&str]; 2],
) -> LeaderAndStandby {
    let (client, ns) = setup(prefix).await;
    let name = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(files, "init");
    apply_yaml(
        &client,
        &name,
        &format!(
            "{yaml}{}",
            repository_and_rules(&git.url(), &name, interval, spec_extra)
        ),
    )
    .await;
    let first = ControllerProcess::start_with_env(
        &name,
        &replica_args(&name, extra_args[0]),
        &[("POD_NAME", "replica-a")],
    );
    wait_for("replica a to lead", WAIT, || async {
        first.log().contains(BECAME_LEADER).then_some(())
    })
    .await;
    let second = ControllerProcess::start_with_env(
        &name,
        &replica_args(&name, extra_args[1]),
        &[("POD_NAME", "replica-b")],
    );
    wait_for("replica b to stand by", WAIT, || async {
        second.log().contains(STANDING_BY).then_some(())
    })
    .await;
    (client, ns, git, first, second)
}

/// The arguments of a replica with leader election (its Lease in `ns`), then `extra`.
fn replica_args<'a>(ns: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--leader-elect", "--lease-namespace", ns];
    args.extend_from_slice(extra);
    args
}

/// What a replica logs when it wins the Lease, and when it sees another holder.
const BECAME_LEADER: &str = "became the leader";
const STANDING_BY: &str = "standing by: another candidate holds the Lease";

fn labelled_configmap(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"origin": "cluster"}}, "data": {"value": name}
    }))
    .unwrap()
}

/// How many commits of `git` mention `what`.
fn commits_about(git: &GitDaemon, what: &str) -> usize {
    git.commit_messages()
        .iter()
        .filter(|m| m.contains(what))
        .count()
}

#[tokio::test]
async fn with_leader_election_exactly_one_replica_writes_and_a_standby_takes_over() {
    let (client, ns, git, mut first, mut second) = leader_and_standby("leader").await;
    let ns = ns.name().to_string();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    configmaps
        .create(&PostParams::default(), &labelled_configmap("first"))
        .await
        .unwrap();
    wait_for("the leader's commit", WAIT, || async {
        git.read_file(&format!("{ns}/configmaps/first.yaml"))
    })
    .await;
    let standby_log = second.log();
    assert!(
        !standby_log.contains(BECAME_LEADER),
        "the standby never led while the leader ran:\n{standby_log}"
    );

    // A crash: no release, so the standby waits out the 15 s term from the last renewal.
    first.kill();
    let killed = Instant::now();
    configmaps
        .create(&PostParams::default(), &labelled_configmap("second"))
        .await
        .unwrap();
    wait_for(
        "the standby to take over and sync the change",
        Duration::from_secs(60),
        || async { git.read_file(&format!("{ns}/configmaps/second.yaml")) },
    )
    .await;
    println!(
        "after a crash of the leader, the standby took over and synced in {:?} (lease 15 s)",
        killed.elapsed()
    );
    assert!(second.log().contains(BECAME_LEADER));
    assert!(second.is_running());
    // Both changes committed once each, by whichever replica led: no duplicate, no force-push.
    assert_eq!(
        commits_about(&git, "first"),
        1,
        "{:?}",
        git.commit_messages()
    );
    assert_eq!(
        commits_about(&git, "second"),
        1,
        "{:?}",
        git.commit_messages()
    );
    assert!(git.non_fast_forward_updates().is_empty());
}

#[tokio::test]
async fn after_sigterm_of_the_leader_the_standby_syncs_a_change_within_3_s() {
    let (client, ns, git, mut first, mut second) = leader_and_standby("failover").await;
    let ns = ns.name().to_string();
    // The leader has synced and is at rest.
    wait_for_sync_of(&client, &ns, "repo", &git.head()).await;

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let sent = Instant::now();
    let exited_cleanly = first.terminate();
    let stopped = sent.elapsed();
    configmaps
        .create(
            &PostParams::default(),
            &labelled_configmap("after-failover"),
        )
        .await
        .unwrap();
    wait_for(
        "the standby to take over and sync the change",
        Duration::from_secs(30),
        || async { git.read_file(&format!("{ns}/configmaps/after-failover.yaml")) },
    )
    .await;
    let failover = sent.elapsed();
    println!(
        "SIGTERM of the leader → the standby synced a change in {failover:?} (the leader exited after {stopped:?})"
    );
    assert!(exited_cleanly, "{}", first.log());
    assert!(
        first.log().contains("released the leader Lease"),
        "{}",
        first.log()
    );
    assert!(second.log().contains(BECAME_LEADER));
    assert!(second.is_running());
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}; leader log:\n{}\nstandby log:\n{}",
        first.log(),
        second.log()
    );
    assert_eq!(commits_about(&git, "after-failover"), 1);
    assert!(git.non_fast_forward_updates().is_empty());
}

/// What the leader logs when a GitRepository's requested-at annotation asks it to fetch, and
/// what a standby logs when it hands a webhook to the leader that way.
const REQUESTED_BY_ANNOTATION: &str = "gitcontroller.io/requested-at changed: fetch requested";
const FORWARDED: &str = "not the leader, fetch requested from the leader by annotation";

/// A Secret `hook` with webhook token `s3cret`, and the spec line that names it.
const HOOK_SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: hook\nstringData:\n  token: s3cret\n---\n";
const HOOK_REF: &str = "  webhookSecretRef:\n    name: hook\n";

/// Sync triggers of the GitRepository `repo` from `source`, as a replica counts them.
async fn triggers(controller: &ControllerProcess, ns: &str, source: &str) -> f64 {
    controller
        .metric_sum(&format!(
            r#"gitcontroller_sync_triggers_total{{name="repo",namespace="{ns}",source="{source}""#
        ))
        .await
}

#[tokio::test]
async fn a_push_webhook_received_by_the_standby_makes_the_leader_sync_within_2_s() {
    let ports = [free_port(), free_port()];
    let addrs = ports.map(|port| format!("127.0.0.1:{port}"));
    let (leader_port, standby_port) = (ports[0], ports[1]);
    let (client, ns, git, leader, standby) = leader_and_standby_with(
        "standby-hook",
        &[("README.md", "x\n")],
        "1h",
        HOOK_REF,
        HOOK_SECRET,
        [
            &["--webhook-addr", addrs[0].as_str()],
            &["--webhook-addr", addrs[1].as_str()],
        ],
    )
    .await;
    let ns = ns.name().to_string();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for_sync_of(&client, &ns, "repo", &git.head()).await;
    let path = format!("/hooks/{ns}/repo");
    let body = br#"{"ref":"refs/heads/main"}"#;
    // Both receivers ready: a request without a signature gets 401 (503 before the first list).
    for port in [leader_port, standby_port] {
        wait_for("the webhook receiver to be ready", WAIT, || async {
            (post(port, &path, &[], body) == 401).then_some(())
        })
        .await;
    }

    // A commit the leader has no reason to fetch for an hour, announced to the standby.
    git.change(&[("cm.yaml", &configmap(&ns, "app", "one"))], &[], "bump");
    let took = announce_and_wait_for(
        standby_port,
        &path,
        (
            &[("X-Hub-Signature-256", github_signature(b"s3cret", body))],
            body,
        ),
        &configmaps,
        "one",
        Duration::from_secs(2),
        "the leader to sync the push the standby received",
    )
    .await;
    println!("webhook to the standby → applied by the leader in {took:?} (interval is 1 h)");
    assert!(standby.log().contains(FORWARDED), "{}", standby.log());
    assert!(
        leader.log().contains(REQUESTED_BY_ANNOTATION),
        "{}",
        leader.log()
    );
    assert_eq!(triggers(&leader, &ns, "webhook").await, 1.0);
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let annotations = repos.get("repo").await.unwrap().metadata.annotations;
    assert!(
        annotations
            .as_ref()
            .and_then(|a| a.get(REQUESTED_AT_ANNOTATION))
            .is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok()),
        "an RFC 3339 timestamp: {annotations:?}"
    );

    // The leader keeps its direct path: no annotation written, the fetch asked for at once.
    let before = annotations.and_then(|mut a| a.remove(REQUESTED_AT_ANNOTATION));
    git.change(
        &[("cm.yaml", &configmap(&ns, "app", "two"))],
        &[],
        "bump again",
    );
    announce_and_wait_for(
        leader_port,
        &path,
        (&[("X-Gitlab-Token", "s3cret".into())], body),
        &configmaps,
        "two",
        Duration::from_secs(2),
        "the leader to sync the push it received",
    )
    .await;
    let after = repos
        .get("repo")
        .await
        .unwrap()
        .metadata
        .annotations
        .and_then(|mut a| a.remove(REQUESTED_AT_ANNOTATION));
    assert_eq!(before, after, "the leader does not annotate");
    assert_eq!(leader.log().matches(FORWARDED).count(), 0);
    assert_eq!(leader.log().matches(REQUESTED_BY_ANNOTATION).count(), 1);
    assert_eq!(triggers(&leader, &ns, "webhook").await, 2.0);
}

#[tokio::test]
async fn the_requested_at_annotation_fetches_at_once_and_other_metadata_does_not_reconcile() {
    let (client, ns) = setup("requested-at").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("cm.yaml", &configmap(&ns, "app", "one"))], "init");
    apply_yaml(
        &client,
        &ns,
        &repository_and_rules(&git.url(), &ns, "1h", ""),
    )
    .await;
    let controller = ControllerProcess::start(&ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the first sync", WAIT, || async {
        value_of(&configmaps, "app").await.filter(|v| v == "one")
    })
    .await;
    wait_for_sync_of(&client, &ns, "repo", &git.head()).await;
    let repository_triggers = triggers(&controller, &ns, "repository").await;

    git.change(&[("cm.yaml", &configmap(&ns, "app", "two"))], &[], "bump");
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), &ns);
    let annotate = |key: &str, value: String| {
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        let repos = repos.clone();
        async move {
            repos
                .patch("repo", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    // Another annotation first: the watch delivers it before the next one.
    annotate("example.com/note", "hello".into()).await;
    // What `kubectl annotate gitrepository/repo gitcontroller.io/requested-at=… --overwrite`
    // does.
    let sent = Instant::now();
    annotate(REQUESTED_AT_ANNOTATION, jiff::Timestamp::now().to_string()).await;
    wait_for(
        "the annotated repository to fetch and sync",
        Duration::from_secs(2),
        || async { value_of(&configmaps, "app").await.filter(|v| v == "two") },
    )
    .await;
    println!(
        "annotation → applied in {:?} (interval is 1 h)",
        sent.elapsed()
    );
    assert_eq!(triggers(&controller, &ns, "webhook").await, 1.0);
    assert_eq!(
        triggers(&controller, &ns, "repository").await,
        repository_triggers,
        "neither annotation reconciled as a repository change"
    );
    assert!(controller.log().contains(REQUESTED_BY_ANNOTATION));
}

async fn resource_versions(api: &Api<ConfigMap>) -> Vec<String> {
    let list = api.list(&Default::default()).await.unwrap();
    list.items
        .iter()
        .filter_map(|c| c.metadata.resource_version.clone())
        .collect()
}

#[tokio::test]
async fn diff_prints_nothing_in_sync_and_both_sections_after_drift_without_writing() {
    let (client, ns) = setup("diff").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("cm.yaml", &configmap(&ns, "from-git", "one"))], "init");
    apply_yaml(
        &client,
        &ns,
        &repository_and_rules(&git.url(), &ns, "2s", ""),
    )
    .await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "from-cluster", "labels": {"origin": "cluster"}}, "data": {"value": "alpha"}
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    {
        let _controller = ControllerProcess::start(&ns);
        wait_for("both directions synced", WAIT, || async {
            let exported = git
                .read_file(&format!("{ns}/configmaps/from-cluster.yaml"))
                .is_some();
            let created = value_of(&configmaps, "from-git").await.is_some();
            (exported && created).then_some(())
        })
        .await;
        // At rest: a sync of the current head found nothing left to do.
        let status = wait_for_sync_of(&client, &ns, "repo", &git.head()).await;
        assert_eq!(
            condition(&status, "Ready").unwrap()["reason"],
            "Synced",
            "{status}"
        );
    }

    let (code, out) = run_diff(&ns);
    assert_eq!((code, out.trim()), (0, ""), "in sync: no output, exit 0");

    let live_change = serde_json::json!({"data": {"value": "beta"}});
    configmaps
        .patch(
            "from-cluster",
            &PatchParams::default(),
            &Patch::Merge(&live_change),
        )
        .await
        .unwrap();
    git.change(
        &[("cm.yaml", &configmap(&ns, "from-git", "two"))],
        &[],
        "change from git",
    );
    let head = git.head();
    let versions_before = resource_versions(&configmaps).await;

    let (code, out) = run_diff(&ns);
    assert_eq!(code, 1, "{out}");
    let cluster = out.find("# Cluster").expect("a cluster section");
    let gits = out.find("# Git").expect("a Git section");
    assert!(cluster < gits);
    let (cluster_part, git_part) = out.split_at(gits);
    assert!(
        cluster_part.contains("-  value: one") && cluster_part.contains("+  value: two"),
        "{out}"
    );
    assert!(
        git_part.contains("-  value: alpha") && git_part.contains("+  value: beta"),
        "{out}"
    );

    assert_eq!(git.head(), head, "diff pushed nothing");
    let versions_after = resource_versions(&configmaps).await;
    assert_eq!(
        versions_before, versions_after,
        "diff wrote nothing to the cluster"
    );

    // The Git section is the change the controller then commits, line for line.
    let path = format!("{ns}/configmaps/from-cluster.yaml");
    assert!(
        git_part.contains(&format!("--- a/{path}\n+++ b/{path}\n")),
        "{git_part}"
    );
    let controller =
        ControllerProcess::start_with_env(&ns, &[], &[("GIT_CONTROLLER_LOG_FORMAT", "json")]);
    wait_for("the live change committed", WAIT, || async {
        git.read_file(&path)
            .filter(|text| text.contains("value: beta"))
    })
    .await;
    let committed = git
        .git()
        .args([
            "diff",
            "--no-color",
            "--no-ext-diff",
            "-U3",
            &head,
            "main",
            "--",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let committed = String::from_utf8(committed.stdout).unwrap();
    assert!(!hunks(&committed).is_empty(), "{committed}");
    assert_eq!(
        hunks(git_part),
        hunks(&committed),
        "diff:\n{git_part}\ngit:\n{committed}"
    );

    // The Git layer's log of the push, on a blocking thread, names the repository and commit.
    let log = controller.log();
    let pushed = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["fields"]["message"] == "pushed")
        .unwrap_or_else(|| panic!("no push logged:\n{log}"));
    let reconcile = pushed["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|span| span["name"] == "reconcile")
        .unwrap_or_else(|| panic!("not in a reconcile span: {pushed}"));
    assert_eq!(reconcile["namespace"], ns.as_str(), "{pushed}");
    assert_eq!(reconcile["repository"], "repo", "{pushed}");
    assert_eq!(reconcile["commit"], &head[..8], "{pushed}");
}

/// The hunks of a unified diff, without the file headers and without the context text Git
/// appends to `@@` lines.
fn hunks(diff: &str) -> Vec<String> {
    diff.lines()
        .skip_while(|line| !line.starts_with("@@"))
        .map(
            |line| match line.strip_prefix("@@").and_then(|rest| rest.find("@@")) {
                Some(end) => line[..end + 4].to_string(),
                None => line.to_string(),
            },
        )
        .collect()
}

#[tokio::test]
async fn live_changes_replan_against_the_cached_snapshot_and_a_spec_change_fetches() {
    let (client, ns) = setup("fetch-due").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("cm.yaml", &configmap(&ns, "from-git", "one"))], "init");
    // An interval of an hour: only a spec change (or a webhook) makes a fetch due here.
    apply_yaml(
        &client,
        &ns,
        &repository_and_rules(&git.url(), &ns, "1h", ""),
    )
    .await;
    let controller = ControllerProcess::start(&ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the first sync", WAIT, || async {
        value_of(&configmaps, "from-git")
            .await
            .filter(|v| v == "one")
    })
    .await;
    const FETCHES: &str = r#"gitcontroller_git_operation_duration_seconds_count{operation="fetch""#;
    const RECONCILES: &str = "gitcontroller_reconcile_duration_seconds_count";
    let fetches = controller.metric_sum(FETCHES).await;
    assert!(fetches >= 1.0);

    // A new commit the controller has no reason to fetch yet, then live changes of an object
    // a rule selects (one Git has no manifest for): each one is a reconcile, planned against
    // the cached snapshot.
    git.change(
        &[("cm.yaml", &configmap(&ns, "from-git", "two"))],
        &[],
        "not fetched yet",
    );
    let reconciles = controller.metric_sum(RECONCILES).await;
    for i in 0..4 {
        apply_yaml(
            &client,
            &ns,
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unmanaged\n  labels:\n    origin: git\ndata:\n  n: \"{i}\"\n"
            ),
        )
        .await;
        let seen = reconciles + 1.0 + f64::from(i);
        wait_for("a reconcile of the live change", WAIT, || async {
            (controller.metric_sum(RECONCILES).await >= seen).then_some(())
        })
        .await;
    }
    assert_eq!(
        controller.metric_sum(FETCHES).await,
        fetches,
        "watch events cost no fetch"
    );
    assert_eq!(
        value_of(&configmaps, "from-git").await.as_deref(),
        Some("one"),
        "the unfetched commit is not applied"
    );

    // A spec change makes the fetch due: the new commit is applied.
    apply_yaml(
        &client,
        &ns,
        &repository_and_rules(&git.url(), &ns, "1h", "  commitMessage: \"[sync]\"\n"),
    )
    .await;
    wait_for("the commit fetched after the spec change", WAIT, || async {
        value_of(&configmaps, "from-git")
            .await
            .filter(|v| v == "two")
    })
    .await;
    assert!(controller.metric_sum(FETCHES).await > fetches);
}
