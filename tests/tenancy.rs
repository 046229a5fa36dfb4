//! Tenant confinement end to end (`docs/security.md`): `git-controller run` as the chart's
//! ServiceAccount, the real API server enforcing RBAC, real Git servers.
//!
//! The controller is given cluster-wide rights on every type these tests sync (chart values
//! with no `watchNamespace` and ClusterRoleBinding writes), so a refusal here is the
//! controller's confinement, not a missing right of its own.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{ControllerProcess, apply_yaml, setup, wait_for};
use futures::StreamExt;
use git_controller::api::GitRepository;
use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Cluster-wide rights for the controller on everything these tests sync.
const WIDE_RBAC: &str = r#"
watchNamespace: ""
sync:
  resources:
    - apiGroups: [""]
      resources: [configmaps, secrets]
      write: true
    - apiGroups: [rbac.authorization.k8s.io]
      resources: [clusterrolebindings]
      write: true
"#;

fn repository(name: &str, url: &str, extra: &str) -> String {
    format!(
        "apiVersion: gitcontroller.io/v1alpha1\nkind: GitRepository\nmetadata:\n  name: {name}\nspec:\n  url: {url}\n  interval: 2s\n{extra}"
    )
}

fn rule(name: &str, repository: &str, body: &str) -> String {
    format!(
        "---\napiVersion: gitcontroller.io/v1alpha1\nkind: SyncRule\nmetadata:\n  name: {name}\nspec:\n  repositoryRef:\n    name: {repository}\n{body}"
    )
}

fn configmap(namespace: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  value: {value}\n"
    )
}

async fn repo_status(client: &Client, ns: &str, name: &str) -> Option<Value> {
    let api: Api<GitRepository> = Api::namespaced(client.clone(), ns);
    serde_json::to_value(api.get_opt(name).await.ok()??.status?).ok()
}

fn ready(status: &Value) -> Option<&Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

/// The notes of the Warning Events with `reason` on the GitRepository `name`.
async fn warnings(client: &Client, ns: &str, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let Ok(list) = events.list(&Default::default()).await else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .filter_map(|e| e.note)
        .collect()
}

/// Everything a tenant repository of `team_a` asks for: its own ConfigMap, a ConfigMap in
/// `team_b`, a Secret in kube-system and a ClusterRoleBinding; rules that apply them all, and
/// one that exports kube-system's ConfigMaps.
struct TenantRepository {
    git: GitDaemon,
    binding: String,
    system_secret: String,
}

impl TenantRepository {
    fn seed(team_a: &str, team_b: &str) -> Self {
        let git = GitDaemon::start();
        let binding = format!("{team_a}-escalate");
        let system_secret = format!("{team_a}-planted");
        git.seed(
            &[
                ("own.yaml", &configmap(team_a, "app", "team-a")),
                ("other-team.yaml", &configmap(team_b, "intruder", "from team-a")),
                (
                    "kube-system.yaml",
                    &format!(
                        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {system_secret}\n  namespace: kube-system\nstringData:\n  token: planted\n"
                    ),
                ),
                (
                    "binding.yaml",
                    &format!(
                        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {binding}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:basic-user\nsubjects:\n  - kind: ServiceAccount\n    name: default\n    namespace: {team_a}\n"
                    ),
                ),
            ],
            "a tenant reaching out",
        );
        Self {
            git,
            binding,
            system_secret,
        }
    }

    fn rules() -> String {
        rule(
            "apply",
            "repo",
            "  kinds: [ConfigMap, Secret, ClusterRoleBinding]\n  syncTo: kubernetes\n",
        ) + &rule(
            "export-kube-system",
            "repo",
            "  namespaces: [kube-system]\n  kinds: [ConfigMap]\n  syncTo: git\n  priority: 10\n",
        )
    }
}

/// The refusals (Forbidden per object, in status and Events), what synced, and that nothing of
/// kube-system reached Git or the status.
async fn assert_confined(
    client: &Client,
    team_a: &str,
    team_b: &str,
    repo: &TenantRepository,
    visible_in_kube_system: &str,
    why: &str,
) {
    let configmaps_a: Api<ConfigMap> = Api::namespaced(client.clone(), team_a);
    wait_for("team-a's own ConfigMap", WAIT, || async {
        configmaps_a.get_opt("app").await.unwrap().map(|_| ())
    })
    .await;

    let refused = [
        format!("ConfigMap {team_b}/intruder"),
        format!("Secret kube-system/{}", repo.system_secret),
        format!(
            "rbac.authorization.k8s.io/ClusterRoleBinding {}",
            repo.binding
        ),
    ];
    // The status of the sync that applied team-a's ConfigMap: an earlier sync (before the
    // tenant's Role was granted, say) may have been refused everything, and its status can
    // still be there when the ConfigMap already is.
    let app = format!("{team_a}/app");
    let status = wait_for(
        "Ready=False, Forbidden, naming every refused object, team-a's ConfigMap in the inventory",
        WAIT,
        || async {
            let status = repo_status(client, team_a, "repo").await?;
            let ready = ready(&status)?;
            let message = ready["message"].as_str()?;
            let applied = status["inventory"].as_array()?.iter().any(|e| {
                format!(
                    "{}/{}",
                    e["namespace"].as_str().unwrap_or("-"),
                    e["name"].as_str().unwrap_or("-")
                ) == app
            });
            (ready["status"] == "False"
                && ready["reason"] == "Forbidden"
                && applied
                && refused.iter().all(|r| message.contains(r.as_str())))
            .then_some(status)
        },
    )
    .await;
    let message = ready(&status).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains(why), "{message}");
    let notes = wait_for(
        "a Forbidden Warning Event per refused object",
        WAIT,
        || async {
            let notes = warnings(client, team_a, "repo", "Forbidden").await;
            refused
                .iter()
                .all(|r| notes.iter().any(|n| n.contains(r.as_str())))
                .then_some(notes)
        },
    )
    .await;

    // After that sync: nothing outside team-a was written.
    let configmaps_b: Api<ConfigMap> = Api::namespaced(client.clone(), team_b);
    assert!(configmaps_b.get_opt("intruder").await.unwrap().is_none());
    let system_secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    assert!(
        system_secrets
            .get_opt(&repo.system_secret)
            .await
            .unwrap()
            .is_none()
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    assert!(bindings.get_opt(&repo.binding).await.unwrap().is_none());

    // ...and nothing of kube-system was read: not exported, not named.
    let files = repo.git.list_files();
    assert!(
        files.iter().all(|f| !f.starts_with("kube-system/")),
        "kube-system exported: {files:?}"
    );
    let everything = format!("{status}{notes:?}");
    assert!(
        !everything.contains(visible_in_kube_system),
        "a kube-system object's name leaked: {everything}"
    );
    let inventory: Vec<String> = status["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["namespace"].as_str().unwrap_or("-"),
                e["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(inventory, [app]);
}

/// A ConfigMap in kube-system that an export rule of a tenant selects; deleted on drop.
struct SystemConfigMap {
    name: String,
}

impl SystemConfigMap {
    async fn create(client: &Client, name: String) -> Self {
        apply_yaml(
            client,
            "kube-system",
            &configmap("kube-system", &name, "secret-ish"),
        )
        .await;
        Self { name }
    }
}

impl Drop for SystemConfigMap {
    fn drop(&mut self) {
        // Drop cannot await: kubectl, synchronously.
        let _ = common::run(
            &common::tools().kubectl,
            &[
                "delete",
                "configmap",
                "--namespace=kube-system",
                "--ignore-not-found",
                "--wait=false",
                &self.name,
            ],
            None,
            common::Cluster::Test,
        );
    }
}

#[tokio::test]
async fn a_tenant_service_account_reaches_only_what_its_role_allows() {
    let (client, team_a) = setup("tenant-sa-a").await;
    let team_b = TestNamespace::new(&client, "tenant-sa-b").await;
    let (a, b) = (team_a.name().to_string(), team_b.name().to_string());
    let system = SystemConfigMap::create(&client, format!("{a}-visible")).await;
    // The tenant's ServiceAccount may do everything with ConfigMaps and Secrets in team-a,
    // nothing anywhere else.
    apply_yaml(
        &client,
        &a,
        &format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: deployer\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: deployer\nrules:\n  - apiGroups: [\"\"]\n    resources: [configmaps, secrets]\n    verbs: [get, list, watch, create, update, patch, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: deployer\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: deployer\nsubjects:\n  - kind: ServiceAccount\n    name: deployer\n    namespace: {a}\n"
        ),
    )
    .await;
    let repo = TenantRepository::seed(&a, &b);
    apply_yaml(
        &client,
        &a,
        &(repository("repo", &repo.git.url(), "  serviceAccountName: deployer\n")
            + &TenantRepository::rules()),
    )
    .await;
    let _controller = ControllerProcess::start_with_chart(&a, &[], &[], WIDE_RBAC);
    assert_confined(
        &client,
        &a,
        &b,
        &repo,
        &system.name,
        "system:serviceaccount:",
    )
    .await;
    let applied: Api<ConfigMap> = Api::namespaced(client.clone(), &a);
    let app = applied.get("app").await.unwrap();
    assert_eq!(
        app.annotations()
            .get("gitcontroller.io/owner")
            .map(String::as_str),
        Some(format!("{a}/repo").as_str())
    );
}

#[tokio::test]
async fn a_repository_without_a_service_account_is_confined_to_its_namespace() {
    let (client, team_a) = setup("tenant-ns-a").await;
    let team_b = TestNamespace::new(&client, "tenant-ns-b").await;
    let (a, b) = (team_a.name().to_string(), team_b.name().to_string());
    let system = SystemConfigMap::create(&client, format!("{a}-visible")).await;
    let repo = TenantRepository::seed(&a, &b);
    apply_yaml(
        &client,
        &a,
        &(repository("repo", &repo.git.url(), "") + &TenantRepository::rules()),
    )
    .await;
    // No RBAC object at all: the default (no --cluster-scope-namespaces naming team-a).
    let _controller = ControllerProcess::start_with_chart(&a, &[], &[], WIDE_RBAC);
    assert_confined(
        &client,
        &a,
        &b,
        &repo,
        &system.name,
        &format!("confined to namespace {a}"),
    )
    .await;
}

#[tokio::test]
async fn a_trusted_namespace_reaches_other_namespaces_with_the_controllers_rights() {
    let (client, platform) = setup("trusted").await;
    let team_b = TestNamespace::new(&client, "trusted-b").await;
    let (p, b) = (platform.name().to_string(), team_b.name().to_string());
    let git = GitDaemon::start();
    git.seed(
        &[("other-team.yaml", &configmap(&b, "from-platform", "x"))],
        "platform config for team-b",
    );
    apply_yaml(
        &client,
        &p,
        &(repository("repo", &git.url(), "")
            + &rule(
                "apply",
                "repo",
                "  kinds: [ConfigMap]\n  syncTo: kubernetes\n",
            )),
    )
    .await;
    let _controller = ControllerProcess::start_with_chart(
        &p,
        &["--cluster-scope-namespaces", &p],
        &[],
        WIDE_RBAC,
    );
    let configmaps_b: Api<ConfigMap> = Api::namespaced(client.clone(), &b);
    wait_for(
        "the trusted repository's ConfigMap in team-b",
        WAIT,
        || async {
            configmaps_b
                .get_opt("from-platform")
                .await
                .unwrap()
                .map(|_| ())
        },
    )
    .await;
}

#[tokio::test]
async fn plaintext_secret_export_needs_the_admins_flag_as_well_as_the_field() {
    let (client, ns) = setup("plaintext").await;
    let ns = ns.name().to_string();
    let git = GitDaemon::start();
    git.seed(&[("README.md", "backups\n")], "init");
    apply_yaml(
        &client,
        &ns,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: {ns}\nstringData:\n  password: hunter2\n"
        ),
    )
    .await;
    apply_yaml(
        &client,
        &ns,
        &(repository("repo", &git.url(), "  allowPlaintextSecrets: true\n")
            + &rule(
                "secrets",
                "repo",
                &format!("  namespaces: [{ns}]\n  kinds: [Secret]\n  syncTo: git\n"),
            )),
    )
    .await;
    let mut controller = ControllerProcess::start(&ns);
    let status = wait_for("Ready=False, PlaintextSecretsNotAllowed", WAIT, || async {
        let status = repo_status(&client, &ns, "repo").await?;
        (ready(&status)?["reason"] == "PlaintextSecretsNotAllowed").then_some(status)
    })
    .await;
    let message = ready(&status).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("--allow-plaintext-secrets"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        git.list_files().iter().all(|f| !f.contains("secrets")),
        "{:?}",
        git.list_files()
    );

    // The same repository with the admin's flag: the Secret is written (so the refusal above
    // was the flag's doing).
    controller.kill();
    let _controller = ControllerProcess::start_with(&ns, &["--allow-plaintext-secrets"]);
    let path = format!("{ns}/secrets/db.yaml");
    let text = wait_for("the Secret in Git", WAIT, || async { git.read_file(&path) }).await;
    assert!(
        text.contains("kind: Secret") && text.contains("name: db"),
        "{text}"
    );
}

/// How many times `gitcontroller_reconcile_duration_seconds` counted reconciles of a repository.
async fn reconciles(metrics_port: u16, ns: &str, name: &str) -> u64 {
    let body = http_get(metrics_port, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with("gitcontroller_reconcile_duration_seconds_count"))
        .filter(|l| {
            l.contains(&format!("namespace=\"{ns}\"")) && l.contains(&format!("name=\"{name}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// A plain HTTP GET on loopback.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body
}

#[tokio::test]
async fn two_repositories_claiming_one_object_do_not_flip_flop_and_the_second_reports_a_conflict() {
    let (client, ns) = setup("claim").await;
    let ns = ns.name().to_string();
    let first_git = GitDaemon::start();
    first_git.seed(
        &[("shared.yaml", &configmap(&ns, "shared", "first"))],
        "first",
    );
    let second_git = GitDaemon::start();
    second_git.seed(
        &[("shared.yaml", &configmap(&ns, "shared", "second"))],
        "second",
    );
    let rules_of = |repo: &str| {
        rule(
            &format!("{repo}-configmaps"),
            repo,
            &format!("  namespaces: [{ns}]\n  kinds: [ConfigMap]\n  syncTo: kubernetes\n"),
        )
    };
    apply_yaml(
        &client,
        &ns,
        &(repository("first", &first_git.url(), "") + &rules_of("first")),
    )
    .await;
    let controller = ControllerProcess::start(&ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for("the first repository's object", WAIT, || async {
        let cm = configmaps.get_opt("shared").await.unwrap()?;
        (cm.annotations().get("gitcontroller.io/owner") == Some(&format!("{ns}/first")))
            .then_some(())
    })
    .await;

    // Count every write to the object from the moment the second repository claims it.
    let mut changes = Box::pin(watcher(
        configmaps.clone(),
        watcher::Config::default().fields("metadata.name=shared"),
    ));
    let mut versions = BTreeSet::new();
    loop {
        match changes.next().await {
            Some(Ok(watcher::Event::InitDone)) => break,
            Some(Ok(watcher::Event::InitApply(cm))) => {
                versions.insert(cm.resource_version().unwrap());
            }
            Some(_) => {}
            None => panic!("the watch ended"),
        }
    }
    apply_yaml(
        &client,
        &ns,
        &(repository("second", &second_git.url(), "") + &rules_of("second")),
    )
    .await;
    let started = Instant::now();
    let before = (
        reconciles(controller.metrics_port, &ns, "first").await,
        reconciles(controller.metrics_port, &ns, "second").await,
    );

    let status = wait_for("the second repository's Conflict", WAIT, || async {
        let status = repo_status(&client, &ns, "second").await?;
        let ready = ready(&status)?;
        (ready["status"] == "False" && ready["reason"] == "Conflict").then_some(status)
    })
    .await;
    let message = ready(&status).unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&format!("ConfigMap {ns}/shared")),
        "{message}"
    );
    assert!(
        message.contains(&format!("GitRepository {ns}/first")),
        "the owner is named to a repository that may see it: {message}"
    );
    assert!(
        message.contains(&format!("gitcontroller.io/adopt={ns}/second")),
        "{message}"
    );
    wait_for("a Conflict Warning Event", WAIT, || async {
        let notes = warnings(&client, &ns, "second", "Conflict").await;
        (!notes.is_empty()).then_some(())
    })
    .await;

    // 30 s in which both repositories reconcile again and again (interval 2 s): the object is
    // written at most once.
    let mut writes = 0;
    let deadline = started + Duration::from_secs(30);
    while Instant::now() < deadline {
        let remaining = deadline - Instant::now();
        match tokio::time::timeout(remaining, changes.next()).await {
            Ok(Some(Ok(watcher::Event::Apply(cm)))) => {
                if versions.insert(cm.resource_version().unwrap()) {
                    writes += 1;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the watch ended"),
            Err(_) => break,
        }
    }
    let after = (
        reconciles(controller.metrics_port, &ns, "first").await,
        reconciles(controller.metrics_port, &ns, "second").await,
    );
    assert!(
        after.0 >= before.0 + 5 && after.1 >= before.1 + 5,
        "both repositories kept reconciling: {before:?} → {after:?}"
    );
    assert!(writes <= 1, "{writes} writes in 30 s");
    let cm = configmaps.get("shared").await.unwrap();
    assert_eq!(
        cm.data.unwrap()["value"],
        "first",
        "the first owner's content stays"
    );

    // Handing it over is an annotation on the object.
    configmaps
        .patch(
            "shared",
            &PatchParams::apply("e2e-admin"),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "shared", "annotations": {"gitcontroller.io/adopt": format!("{ns}/second")}}
            })),
        )
        .await
        .unwrap();
    wait_for("the second repository to take it over", WAIT, || async {
        let cm = configmaps.get_opt("shared").await.unwrap()?;
        (cm.annotations().get("gitcontroller.io/owner") == Some(&format!("{ns}/second"))
            && cm.data.as_ref()?.get("value")? == "second")
            .then_some(())
    })
    .await;
    wait_for(
        "the first repository to report the Conflict now",
        WAIT,
        || async {
            let status = repo_status(&client, &ns, "first").await?;
            (ready(&status)?["reason"] == "Conflict").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn in_lockdown_the_controller_acts_only_as_tenants_service_accounts() {
    let (client, team_a) = setup("lockdown-a").await;
    let team_b = TestNamespace::new(&client, "lockdown-b").await;
    let (a, b) = (team_a.name().to_string(), team_b.name().to_string());
    // The default ServiceAccount of the lockdown may manage ConfigMaps in team-a only.
    apply_yaml(
        &client,
        &a,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: gitops\nrules:\n  - apiGroups: [\"\"]\n    resources: [configmaps]\n    verbs: [get, list, watch, create, update, patch, delete]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: gitops\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: gitops\nsubjects:\n  - kind: ServiceAccount\n    name: gitops\n    namespace: {a}\n"
        ),
    )
    .await;
    apply_yaml(
        &client,
        &a,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: made-live\n  namespace: {a}\n  labels:\n    origin: cluster\ndata:\n  value: in the cluster\n"
        ),
    )
    .await;
    let git = GitDaemon::start();
    git.seed(
        &[
            ("own.yaml", &configmap(&a, "from-git", "x")),
            ("other-team.yaml", &configmap(&b, "intruder", "x")),
        ],
        "lockdown",
    );
    apply_yaml(
        &client,
        &a,
        &(repository("repo", &git.url(), "")
            + &rule(
                "apply",
                "repo",
                "  kinds: [ConfigMap]\n  labelSelector: \"!origin\"\n  syncTo: kubernetes\n",
            )
            + &rule(
                "export",
                "repo",
                "  kinds: [ConfigMap]\n  labelSelector: origin=cluster\n  syncTo: git\n",
            )),
    )
    .await;
    // The chart's lockdown RBAC: no right of the controller's own on ConfigMaps anywhere.
    let _controller = ControllerProcess::start_with_chart(
        &a,
        &["--default-service-account", "gitops"],
        &[],
        "watchNamespace: \"\"\nmultitenancy: {lockdown: true, defaultServiceAccount: gitops}\nsync: {resources: []}\n",
    );
    let configmaps_a: Api<ConfigMap> = Api::namespaced(client.clone(), &a);
    wait_for(
        "the ConfigMap applied as the tenant's account",
        WAIT,
        || async { configmaps_a.get_opt("from-git").await.unwrap().map(|_| ()) },
    )
    .await;
    let status = wait_for("Forbidden for team-b's object", WAIT, || async {
        let status = repo_status(&client, &a, "repo").await?;
        let message = ready(&status)?["message"].as_str()?.to_string();
        message
            .contains(&format!("ConfigMap {b}/intruder"))
            .then_some(status)
    })
    .await;
    assert_eq!(ready(&status).unwrap()["reason"], "Forbidden");
    let configmaps_b: Api<ConfigMap> = Api::namespaced(client.clone(), &b);
    assert!(configmaps_b.get_opt("intruder").await.unwrap().is_none());
    // Read as the account too: the live ConfigMap of team-a is exported.
    let path = format!("{a}/configmaps/made-live.yaml");
    let text = wait_for("the live ConfigMap in Git", WAIT, || async {
        git.read_file(&path)
    })
    .await;
    assert!(text.contains("in the cluster"), "{text}");
}
