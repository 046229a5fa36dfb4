//! Never act on a source we could not read (issue 11), end to end: `git-controller run`
//! against the tests' cluster and a real Git server. Each scenario breaks the source the way
//! users do, checks that nothing is deleted, reverted or exported that should not be and that
//! the repository says why, then fixes the source and checks that the held-back work is done —
//! without restarting the controller.

mod common;

use std::time::Duration;

use common::hooks::value_of;
use common::{
    ControllerProcess, apply_yaml, condition, repo_status, repository, rule, run_diff, setup,
    wait_for, wait_for_sync_of,
};
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::Role;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn configmap(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  value: {value}\n"
    )
}

/// The ConfigMaps rule: everything of kind ConfigMap in `ns` comes from Git.
fn configmaps_from_git(ns: &str) -> String {
    rule(
        "configmaps",
        ns,
        "  kinds: [ConfigMap]\n  syncTo: kubernetes\n",
    )
}

/// Waits for the Ready condition to have `status` and `reason` with a message containing
/// every one of `words`; returns the status.
async fn wait_for_ready(
    client: &Client,
    ns: &str,
    status: &str,
    reason: &str,
    words: &[&str],
) -> Value {
    wait_for(
        &format!("Ready={status} ({reason}) naming {words:?}"),
        WAIT,
        || async {
            let repo = repo_status(client, ns).await?;
            let ready = condition(&repo, "Ready")?;
            let message = ready["message"].as_str()?;
            (ready["status"] == status
                && ready["reason"] == reason
                && words.iter().all(|w| message.contains(w)))
            .then_some(repo)
        },
    )
    .await
}

/// Waits for a Warning Event with `reason` whose note contains `word`.
async fn wait_for_warning(client: &Client, ns: &str, reason: &str, word: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    wait_for(
        &format!("a Warning Event {reason} naming {word:?}"),
        WAIT,
        || async {
            let list = events.list(&Default::default()).await.ok()?;
            list.items.into_iter().find_map(|e| {
                let note = e.note.unwrap_or_default();
                (e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some(reason)
                    && note.contains(word))
                .then_some(note)
            })
        },
    )
    .await
}

/// Waits until the repository is not Ready for `reason` with a message containing `words`,
/// then checks that it is Stalled, that a Warning Event with the same reason names
/// `words[0]`, and that `diff` exits 1 listing the problem; returns `diff`'s output.
async fn assert_not_ready_and_told(
    client: &Client,
    ns: &str,
    reason: &str,
    words: &[&str],
) -> String {
    let status = wait_for_ready(client, ns, "False", reason, words).await;
    assert_eq!(condition(&status, "Stalled").unwrap()["status"], "True");
    wait_for_warning(client, ns, reason, words[0]).await;
    let (code, out) = run_diff(ns);
    assert_eq!(code, 1, "not in sync while {reason}:\n{out}");
    assert!(out.contains("# Problems"), "{out}");
    assert!(out.contains(&format!("[{reason}] ")), "{out}");
    out
}

/// The not-Ready repository a skipped input leaves, with `file` and `why` named in the
/// condition, a Warning Event and `diff`; returns `diff`'s output.
async fn assert_skipped_and_reported(client: &Client, ns: &str, file: &str, why: &str) -> String {
    let out = assert_not_ready_and_told(client, ns, "SourceIncomplete", &[file, why]).await;
    assert!(out.contains(&format!("[SourceIncomplete] {file}")), "{out}");
    out
}

/// `a`, `b` and `c` from Git with prune on, synced; returns the controller and the Git server.
async fn three_configmaps_synced(
    client: &Client,
    ns: &str,
) -> (ControllerProcess, GitDaemon, Api<ConfigMap>) {
    let git = GitDaemon::start();
    let head = git.seed(
        &[
            ("a.yaml", &configmap(ns, "a", "one")),
            ("b.yaml", &configmap(ns, "b", "one")),
            ("c.yaml", &configmap(ns, "c", "one")),
        ],
        "three",
    );
    let yaml = repository(&git.url(), "  prune: true\n") + &configmaps_from_git(ns);
    apply_yaml(client, ns, &yaml).await;
    let controller = ControllerProcess::start(ns);
    let status = wait_for_sync_of(client, ns, "repo", &head).await;
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "True");
    assert_eq!(status["inventory"].as_array().unwrap().len(), 3);
    (controller, git, Api::namespaced(client.clone(), ns))
}

/// Whether all of `names` exist.
async fn all_exist(api: &Api<ConfigMap>, names: &[&str]) -> bool {
    for name in names {
        if api.get_opt(name).await.unwrap().is_none() {
            return false;
        }
    }
    true
}

/// `b.yaml` skipped for `why` and reported; `a`, `b` and `c` all still there; returns
/// `diff`'s output.
async fn b_skipped_and_nothing_pruned(
    client: &Client,
    ns: &str,
    configmaps: &Api<ConfigMap>,
    why: &str,
) -> String {
    let out = assert_skipped_and_reported(client, ns, "b.yaml", why).await;
    assert!(
        all_exist(configmaps, &["a", "b", "c"]).await,
        "nothing pruned while b.yaml is unread"
    );
    out
}

/// Fixes `b.yaml` (value `two`) and waits for Ready again, at that commit, with `b` updated
/// and — when `c.yaml` was removed while the source was incomplete — `c` pruned.
async fn fix_b_and_wait_for_the_held_back_work(
    client: &Client,
    ns: &str,
    git: &GitDaemon,
    configmaps: &Api<ConfigMap>,
    c_removed: bool,
) {
    let fixed = git.change(
        &[("b.yaml", &configmap(ns, "b", "two"))],
        &[],
        "b.yaml as a regular UTF-8 file",
    );
    let status = wait_for_ready(client, ns, "True", "Synced", &[&fixed[..8]]).await;
    assert_eq!(status["lastSyncedCommit"], fixed.as_str());
    assert_eq!(condition(&status, "Stalled").unwrap()["status"], "False");
    assert_eq!(value_of(configmaps, "b").await.as_deref(), Some("two"));
    assert_eq!(
        configmaps.get_opt("c").await.unwrap().is_none(),
        c_removed,
        "the prune held back while the source was incomplete is done, nothing else"
    );
    assert!(all_exist(configmaps, &["a", "b"]).await);
}

#[tokio::test]
async fn a_latin1_file_is_skipped_not_pruned_and_holds_back_prune_until_fixed() {
    let (client, ns) = setup("latin1").await;
    let ns = ns.name().to_string();
    let (mut controller, git, configmaps) = three_configmaps_synced(&client, &ns).await;

    // `# café` saved in Latin-1, and c.yaml removed, in one commit.
    let latin1 = [
        b"# caf\xe9\n".as_slice(),
        configmap(&ns, "b", "two").as_bytes(),
    ]
    .concat();
    git.change_bytes(&[("b.yaml", &latin1)], &["c.yaml"], "b in Latin-1, drop c");
    let out = b_skipped_and_nothing_pruned(&client, &ns, &configmaps, "not UTF-8").await;
    assert!(out.contains("# Held back"), "{out}");
    assert!(
        out.contains(&format!(
            "ConfigMap {ns}/c: would be deleted from the cluster (pruned)"
        )),
        "{out}"
    );

    fix_b_and_wait_for_the_held_back_work(&client, &ns, &git, &configmaps, true).await;
    assert!(controller.is_running());
}

#[tokio::test]
async fn an_oversize_file_is_skipped_not_pruned_until_fixed() {
    let (client, ns) = setup("oversize").await;
    let ns = ns.name().to_string();
    let (mut controller, git, configmaps) = three_configmaps_synced(&client, &ns).await;

    // 17 MiB: a manifest with a long comment, over the Git layer's 16 MiB.
    let big = format!(
        "# {}\n{}",
        "x".repeat(17 * 1024 * 1024),
        configmap(&ns, "b", "two")
    );
    git.change(&[("b.yaml", &big)], &["c.yaml"], "a huge b, drop c");
    b_skipped_and_nothing_pruned(&client, &ns, &configmaps, "larger than").await;

    fix_b_and_wait_for_the_held_back_work(&client, &ns, &git, &configmaps, true).await;
    assert!(controller.is_running());
}

#[tokio::test]
async fn a_symlink_is_skipped_not_followed_and_not_pruned_until_fixed() {
    let (client, ns) = setup("symlink").await;
    let ns = ns.name().to_string();
    let (mut controller, git, configmaps) = three_configmaps_synced(&client, &ns).await;

    // The regular file becomes a link out of the repository, in one commit.
    git.seed_symlink(
        "b.yaml",
        "/etc/passwd",
        "b.yaml links out of the repository",
    );
    b_skipped_and_nothing_pruned(&client, &ns, &configmaps, "symlink").await;

    fix_b_and_wait_for_the_held_back_work(&client, &ns, &git, &configmaps, false).await;
    assert!(controller.is_running());
}

#[tokio::test]
async fn list_documents_are_applied_item_by_item_and_generate_name_is_reported() {
    let (client, ns) = setup("lists").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    // As kube-prometheus ships them: a typed list (items may leave out apiVersion and kind),
    // a RoleList, and a generateName document, which cannot be applied by name.
    let lists = format!(
        "apiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata:\n    name: dashboard-1\n    namespace: {ns}\n  data:\n    value: one\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: dashboard-2\n    namespace: {ns}\n  data:\n    value: two\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleList\nitems:\n- apiVersion: rbac.authorization.k8s.io/v1\n  kind: Role\n  metadata:\n    name: reader\n    namespace: {ns}\n  rules:\n  - apiGroups: [\"\"]\n    resources: [configmaps]\n    verbs: [get]\n"
    );
    let generated = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: job-\n  namespace: {ns}\ndata:\n  value: x\n"
    );
    git.seed(
        &[("lists.yaml", &lists), ("generated.yaml", &generated)],
        "lists and a generateName document",
    );
    let yaml = repository(&git.url(), "  prune: true\n")
        + &configmaps_from_git(&ns)
        + &rule(
            "roles",
            &ns,
            "  apiGroups: [rbac.authorization.k8s.io]\n  kinds: [Role]\n  syncTo: kubernetes\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    let mut controller = ControllerProcess::start_with_chart(
        &ns,
        &[],
        &[],
        "sync:\n  resources:\n    - apiGroups: [\"\"]\n      resources: [configmaps]\n      write: true\n    - apiGroups: [rbac.authorization.k8s.io]\n      resources: [roles]\n      write: true\n",
    );

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
    assert_skipped_and_reported(&client, &ns, "generated.yaml", "generateName").await;
    assert_eq!(
        value_of(&configmaps, "dashboard-1").await.as_deref(),
        Some("one"),
        "a list item without apiVersion and kind is applied as the list's kind"
    );
    assert_eq!(
        value_of(&configmaps, "dashboard-2").await.as_deref(),
        Some("two")
    );
    assert!(roles.get_opt("reader").await.unwrap().is_some());

    // Named, the document is applied and the repository is Ready.
    let named = git.change(
        &[("generated.yaml", &configmap(&ns, "job-1", "x"))],
        &[],
        "name the generated ConfigMap",
    );
    let status = wait_for_ready(&client, &ns, "True", "Synced", &[&named[..8]]).await;
    assert_eq!(status["inventory"].as_array().unwrap().len(), 4);
    assert_eq!(value_of(&configmaps, "job-1").await.as_deref(), Some("x"));
    assert!(controller.is_running());
}

#[tokio::test]
async fn an_invalid_protective_rule_keeps_protecting_what_it_could_select() {
    let (client, ns) = setup("protect").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(
        &[
            ("hotfixed.yaml", &configmap(&ns, "hotfixed", "v1")),
            ("other.yaml", &configmap(&ns, "other", "v1")),
        ],
        "two",
    );
    let protect = |selector: &str| {
        rule(
            "protect-hotfixes",
            &ns,
            &format!(
                "  kinds: [ConfigMap]\n  labelSelector: \"{selector}\"\n  syncTo: ignore\n  priority: 100\n"
            ),
        )
    };
    let yaml = repository(&git.url(), "") + &configmaps_from_git(&ns) + &protect("hotfix=true");
    apply_yaml(&client, &ns, &yaml).await;
    let mut controller = ControllerProcess::start(&ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for_sync_of(&client, &ns, "repo", &git.head()).await;

    // A hotfix in the cluster, labelled so that the ignore rule protects it from Git.
    let hotfix = serde_json::json!({
        "metadata": {"labels": {"hotfix": "true"}},
        "data": {"value": "hotfix"}
    });
    let kubectl = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    configmaps
        .patch("hotfixed", &kubectl, &Patch::Merge(&hotfix))
        .await
        .unwrap();
    // The protective rule's selector breaks, and Git changes both ConfigMaps meanwhile.
    apply_yaml(&client, &ns, &protect("hotfix in (true")).await;
    git.change(
        &[
            ("hotfixed.yaml", &configmap(&ns, "hotfixed", "v2")),
            ("other.yaml", &configmap(&ns, "other", "v2")),
        ],
        &[],
        "v2",
    );
    // Held back: the broken selector is left out, so the rule could select every ConfigMap
    // of the namespace; the status names the rule, the error and the objects.
    let out = assert_not_ready_and_told(
        &client,
        &ns,
        "InvalidRule",
        &[
            "SyncRule protect-hotfixes",
            "hotfix in (true",
            &format!("ConfigMap {ns}/hotfixed"),
            &format!("ConfigMap {ns}/other"),
        ],
    )
    .await;
    assert_eq!(
        value_of(&configmaps, "hotfixed").await.as_deref(),
        Some("hotfix"),
        "the hotfix is not reverted while its protection is broken"
    );
    assert_eq!(
        value_of(&configmaps, "other").await.as_deref(),
        Some("v1"),
        "nothing the broken rule could select moves"
    );
    assert!(
        out.contains(&format!(
            "ConfigMap {ns}/other: would be applied to the cluster"
        )),
        "{out}"
    );

    // Fixed: the rule protects the hotfix again, and the held-back change of `other` is made.
    apply_yaml(&client, &ns, &protect("hotfix=true")).await;
    wait_for_ready(&client, &ns, "True", "Synced", &[]).await;
    wait_for("the held-back change to be applied", WAIT, || async {
        (value_of(&configmaps, "other").await.as_deref() == Some("v2")).then_some(())
    })
    .await;
    assert_eq!(
        value_of(&configmaps, "hotfixed").await.as_deref(),
        Some("hotfix")
    );
    assert!(controller.is_running());
}

#[tokio::test]
async fn a_poison_name_is_skipped_with_a_warning_and_everything_else_is_pushed() {
    let (client, ns) = setup("poison").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "roles backed up here\n")], "init");
    let yaml = repository(&git.url(), "")
        + &rule(
            "roles-to-git",
            &ns,
            "  apiGroups: [rbac.authorization.k8s.io]\n  kinds: [Role]\n  syncTo: git\n",
        );
    apply_yaml(&client, &ns, &yaml).await;
    // Role names are path segments: anything but `/`, `%`, `.` and `..` — here "a", backspace,
    // "b" (JSON "a\b").
    let role = |name: &str| -> Role {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
        }))
        .unwrap()
    };
    let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
    roles
        .create(&Default::default(), &role("a\u{8}b"))
        .await
        .unwrap();
    roles
        .create(&Default::default(), &role("good"))
        .await
        .unwrap();
    let mut controller = ControllerProcess::start(&ns);

    let good = format!("{ns}/roles.rbac.authorization.k8s.io/good.yaml");
    wait_for("the good Role in Git", WAIT, || async {
        git.read_file(&good)
    })
    .await;
    assert_not_ready_and_told(&client, &ns, "UnsafePath", &["a\u{8}b"]).await;
    assert!(
        git.list_files()
            .iter()
            .all(|f| f == "README.md" || f == &good),
        "{:?}",
        git.list_files()
    );

    // Deleting the poison object leaves the repository Ready; later objects are pushed too.
    // The name goes into the URL path: percent-encoded, as kubectl sends it.
    roles
        .delete("a%08b", &DeleteParams::default())
        .await
        .unwrap();
    roles
        .create(&Default::default(), &role("later"))
        .await
        .unwrap();
    wait_for("the later Role in Git", WAIT, || async {
        git.read_file(&format!("{ns}/roles.rbac.authorization.k8s.io/later.yaml"))
    })
    .await;
    wait_for_ready(&client, &ns, "True", "Synced", &[]).await;
    assert!(controller.is_running());
}

#[tokio::test]
async fn a_sync_over_the_prune_limit_deletes_nothing_until_the_limit_allows_it() {
    let (client, ns) = setup("prune-limit").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let names = ["a", "b", "c", "d"];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("{n}.yaml"), configmap(&ns, n, "one")))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let head = git.seed(&files, "four");
    let yaml = repository(&git.url(), "  prune: true\n") + &configmaps_from_git(&ns);
    apply_yaml(&client, &ns, &yaml).await;
    let mut controller = ControllerProcess::start(&ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for_sync_of(&client, &ns, "repo", &head).await;

    // Three of four removed (and one changed): more than the default 50% (2 of 4).
    git.change(
        &[("a.yaml", &configmap(&ns, "a", "two"))],
        &["b.yaml", "c.yaml", "d.yaml"],
        "remove three",
    );
    let out = assert_not_ready_and_told(
        &client,
        &ns,
        "PruneLimitExceeded",
        &["would delete 3 of 4 objects, limit 2"],
    )
    .await;
    assert!(
        all_exist(&configmaps, &names).await,
        "a refused sync deletes nothing"
    );
    assert_eq!(
        value_of(&configmaps, "a").await.as_deref(),
        Some("two"),
        "everything else still syncs"
    );
    assert!(
        out.contains(&format!(
            "ConfigMap {ns}/b: would be deleted from the cluster (pruned)"
        )),
        "{out}"
    );

    // Raising the limit lets the same commit prune.
    apply_yaml(
        &client,
        &ns,
        &repository(&git.url(), "  prune: true\n  pruneLimit: 3\n"),
    )
    .await;
    let status = wait_for_ready(&client, &ns, "True", "Synced", &[]).await;
    assert_eq!(status["inventory"].as_array().unwrap().len(), 1);
    assert!(all_exist(&configmaps, &["a"]).await);
    for gone in ["b", "c", "d"] {
        assert!(configmaps.get_opt(gone).await.unwrap().is_none(), "{gone}");
    }

    // The path emptied on purpose, in a new commit: the last object is pruned.
    let emptied = git.remove_files(&["a.yaml"], "empty the path");
    wait_for_ready(&client, &ns, "True", "Synced", &[&emptied[..8]]).await;
    assert!(configmaps.get_opt("a").await.unwrap().is_none());
    assert!(controller.is_running());
}

#[tokio::test]
async fn drift_inside_an_atomic_map_is_shown_by_diff_and_corrected() {
    let (client, ns) = setup("atomic").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n"
    );
    let head = git.seed(&[("web.yaml", &service)], "web");
    let rules = rule(
        "services",
        &ns,
        "  kinds: [Service]\n  syncTo: kubernetes\n",
    );
    apply_yaml(&client, &ns, &(repository(&git.url(), "") + &rules)).await;
    let mut controller = ControllerProcess::start_with_chart(
        &ns,
        &[],
        &[],
        "sync:\n  resources:\n    - apiGroups: [\"\"]\n      resources: [services]\n      write: true\n",
    );
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let selector = || async { services.get_opt("web").await.ok()??.spec?.selector };
    let status = wait_for_sync_of(&client, &ns, "repo", &head).await;
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "True");

    // Paused, so that `diff` sees the drift before the controller corrects it.
    apply_yaml(&client, &ns, &repository(&git.url(), "  suspend: true\n")).await;
    wait_for_ready(&client, &ns, "Unknown", "Suspended", &[]).await;
    // `kubectl patch`: the selector is an atomic map; a key added to it is drift.
    let patch = serde_json::json!({"spec": {"selector": {"tier": "x"}}});
    let kubectl = PatchParams {
        field_manager: Some("kubectl-patch".into()),
        ..Default::default()
    };
    services
        .patch("web", &kubectl, &Patch::Merge(&patch))
        .await
        .unwrap();
    let (code, out) = run_diff(&ns);
    assert_eq!(code, 1, "drift inside an atomic map is drift:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with('-') && l.contains("tier: x")),
        "diff shows the key the apply removes:\n{out}"
    );

    apply_yaml(&client, &ns, &repository(&git.url(), "  suspend: false\n")).await;
    let corrected = wait_for("the selector as Git has it", WAIT, || async {
        selector().await.filter(|s| !s.contains_key("tier"))
    })
    .await;
    assert_eq!(
        corrected,
        std::collections::BTreeMap::from([("app".to_string(), "web".to_string())])
    );
    wait_for_ready(&client, &ns, "True", "Synced", &[]).await;
    let (code, out) = run_diff(&ns);
    assert_eq!(code, 0, "in sync again:\n{out}");
    assert!(controller.is_running());
}

#[tokio::test]
async fn a_member_removed_from_an_atomic_struct_is_confirmed_by_a_dry_run_and_applied() {
    let (client, ns) = setup("confirm").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    // `configMapKeyRef` is an atomic struct: without the server, the planner cannot tell a
    // member Git dropped from a default the server added, and asks the server (a dry-run).
    let deployment = |optional: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        env:\n        - name: LEVEL\n          valueFrom:\n            configMapKeyRef:\n              name: settings\n              key: level\n{optional}"
        )
    };
    let head = git.seed(
        &[("web.yaml", &deployment("              optional: true\n"))],
        "web",
    );
    let rules = rule(
        "deployments",
        &ns,
        "  apiGroups: [apps]\n  kinds: [Deployment]\n  syncTo: kubernetes\n",
    );
    apply_yaml(&client, &ns, &(repository(&git.url(), "") + &rules)).await;
    let mut controller = ControllerProcess::start(&ns);
    let status = wait_for_sync_of(&client, &ns, "repo", &head).await;
    assert_eq!(condition(&status, "Ready").unwrap()["status"], "True");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &ns);
    let key_ref = || async {
        let live = deployments.get("web").await.unwrap();
        let container = live.spec?.template.spec?.containers.into_iter().next()?;
        container
            .env?
            .into_iter()
            .next()?
            .value_from?
            .config_map_key_ref
    };
    assert_eq!(key_ref().await.unwrap().optional, Some(true));

    let dropped = git.change(&[("web.yaml", &deployment(""))], &[], "not optional");
    wait_for_ready(&client, &ns, "True", "Synced", &[&dropped[..8]]).await;
    let now = key_ref().await.unwrap();
    assert_eq!((now.name.as_str(), now.key.as_str()), ("settings", "level"));
    assert_eq!(
        now.optional, None,
        "the dropped member is gone from the cluster"
    );
    assert!(
        controller
            .metric_sum(r#"gitcontroller_apply_confirmations_total{verdict="changed""#)
            .await
            >= 1.0,
        "the planner was unsure and asked the server, which found a change"
    );
    assert!(controller.is_running());
}

/// The branches of the remote, sorted.
fn branches(git: &GitDaemon) -> Vec<String> {
    let out = git
        .git()
        .args(["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
        .output()
        .expect("git for-each-ref");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// Runs `git` with `args` on the remote, as its owner would.
fn on_remote(git: &GitDaemon, args: &[&str]) {
    let status = git.git().args(args).status().expect("git");
    assert!(status.success(), "git {args:?}");
}

/// Waits until the repository stops for `reason` naming `word`: not Ready, Stalled, a Warning
/// Event, and `diff` failing (exit 2) with the same words.
async fn assert_stopped(client: &Client, ns: &str, reason: &str, word: &str) {
    let status = wait_for_ready(client, ns, "False", reason, &[word]).await;
    assert_eq!(condition(&status, "Stalled").unwrap()["status"], "True");
    wait_for_warning(client, ns, reason, word).await;
    let (code, out) = run_diff(ns);
    assert_eq!(code, 2, "diff cannot plan without the source:\n{out}");
    assert!(out.contains(word), "{out}");
}

#[tokio::test]
async fn a_branch_or_path_typo_stops_the_repository_and_prunes_nothing_until_fixed() {
    let (client, ns) = setup("typo").await;
    let ns = ns.name().to_string();
    let (mut controller, git, configmaps) = three_configmaps_synced(&client, &ns).await;
    let rules = configmaps_from_git(&ns);

    apply_yaml(
        &client,
        &ns,
        &(repository(&git.url(), "  prune: true\n  branch: mian\n") + &rules),
    )
    .await;
    assert_stopped(&client, &ns, "BranchNotFound", "mian").await;
    assert!(
        all_exist(&configmaps, &["a", "b", "c"]).await,
        "nothing pruned"
    );
    assert_eq!(branches(&git), ["main"], "no branch created");

    apply_yaml(
        &client,
        &ns,
        &(repository(&git.url(), "  prune: true\n  path: kustomise\n") + &rules),
    )
    .await;
    assert_stopped(&client, &ns, "PathNotFound", "kustomise").await;
    assert!(
        all_exist(&configmaps, &["a", "b", "c"]).await,
        "nothing pruned"
    );

    // Fixed: Ready again, at the head, with nothing lost; the held-back prune of a file removed
    // meanwhile is done.
    let head = git.remove_files(&["c.yaml"], "c leaves Git");
    apply_yaml(
        &client,
        &ns,
        &(repository(&git.url(), "  prune: true\n") + &rules),
    )
    .await;
    let status = wait_for_ready(&client, &ns, "True", "Synced", &[&head[..8]]).await;
    assert_eq!(condition(&status, "Stalled").unwrap()["status"], "False");
    assert!(all_exist(&configmaps, &["a", "b"]).await);
    wait_for("c pruned", WAIT, || async {
        configmaps
            .get_opt("c")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(controller.is_running());
}

#[tokio::test]
async fn a_deleted_branch_is_recreated_by_the_export_only_when_the_repository_asks() {
    let (client, ns) = setup("nobranch").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "docs\n")], "init");
    // The branch the repository names is deleted; another one is left, so the remote is not
    // a new, empty repository.
    on_remote(&git, &["branch", "release", "main"]);
    on_remote(&git, &["update-ref", "-d", "refs/heads/main"]);
    apply_yaml(&client, &ns, &configmap(&ns, "settings", "live")).await;
    let export = rule("export", &ns, "  kinds: [ConfigMap]\n  syncTo: git\n");
    apply_yaml(&client, &ns, &(repository(&git.url(), "") + &export)).await;
    let mut controller = ControllerProcess::start(&ns);

    assert_stopped(&client, &ns, "BranchNotFound", "main").await;
    assert_eq!(branches(&git), ["release"], "not re-created as an orphan");

    apply_yaml(
        &client,
        &ns,
        &(repository(&git.url(), "  createBranch: true\n") + &export),
    )
    .await;
    wait_for_ready(&client, &ns, "True", "Synced", &[]).await;
    assert_eq!(branches(&git), ["main", "release"]);
    let files = git.list_files();
    assert!(
        files.iter().any(|f| f.contains("settings")),
        "the export is on the new branch: {files:?}"
    );
    assert!(controller.is_running());
}
