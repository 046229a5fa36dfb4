//! The access module against the real API server (RBAC enforced): impersonating clients,
//! SubjectAccessReviews and their invalidation on RBAC changes, watch scopes of a lockdown
//! account, and watchers shared by key.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{apply_yaml, setup, wait_for};
use git_controller::access::reviews::Question;
use git_controller::access::scope::{ReadCheck, Selection, watch_keys};
use git_controller::access::{
    AccessReviews, Clients, Identity, Reader, RepositoryRef, ServiceAccountRef, WatchKey,
    WatchScope,
};
use git_controller::cluster::ResourceCatalog;
use git_controller::cluster::Watchers;
use git_controller::cluster::discovery::TypeKey;
use gitcontroller_testkit::cluster::TestNamespace;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Resource;
use kube::api::{Api, ListParams};

const WAIT: Duration = Duration::from_secs(30);

/// A Role that may read ConfigMaps, bound in `namespace` to `account`.
fn read_configmaps(namespace: &str, account: &ServiceAccountRef) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: read-configmaps\n  namespace: {namespace}\nrules:\n  - apiGroups: [\"\"]\n    resources: [configmaps]\n    verbs: [get, list, watch]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: read-configmaps\n  namespace: {namespace}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: read-configmaps\nsubjects:\n  - kind: ServiceAccount\n    name: {}\n    namespace: {}\n",
        account.name, account.namespace
    )
}

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n")
}

fn configmaps_key() -> TypeKey {
    TypeKey {
        group: String::new(),
        kind: "ConfigMap".into(),
    }
}

/// Two namespaces, each with a ConfigMap (`mine` in team-a, `theirs` in team-b), and a
/// ServiceAccount of team-a that may read ConfigMaps in team-a only.
async fn two_teams(
    prefix: &str,
) -> (
    kube::Client,
    TestNamespace,
    TestNamespace,
    ServiceAccountRef,
) {
    let (client, team_a) = setup(&format!("{prefix}-a")).await;
    let team_b = TestNamespace::new(&client, &format!("{prefix}-b")).await;
    let account = ServiceAccountRef {
        namespace: team_a.name().into(),
        name: "deployer".into(),
    };
    apply_yaml(
        &client,
        team_a.name(),
        &read_configmaps(team_a.name(), &account),
    )
    .await;
    apply_yaml(&client, team_a.name(), &configmap("mine")).await;
    apply_yaml(&client, team_b.name(), &configmap("theirs")).await;
    (client, team_a, team_b, account)
}

async fn clients() -> Arc<Clients> {
    let config = common::admin_config().await;
    let client = kube::Client::try_from(config.clone()).unwrap();
    Arc::new(Clients::new(config, client))
}

#[tokio::test]
async fn an_impersonated_account_reads_only_where_its_rbac_allows() {
    let (_client, team_a, team_b, account) = two_teams("acc").await;

    let clients = clients().await;
    let as_account = clients.for_account(&account).unwrap();
    let own: Api<ConfigMap> = Api::namespaced(as_account.clone(), team_a.name());
    let names: Vec<String> = own
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["mine"]);
    let other: Api<ConfigMap> = Api::namespaced(as_account, team_b.name());
    match other.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("listing team-b as the account must be forbidden: {other:?}"),
    }
}

#[tokio::test]
async fn access_reviews_follow_rbac_changes_at_once_and_the_api_server_decides() {
    let (client, team_a) = setup("sar-a").await;
    let team_b = TestNamespace::new(&client, "sar-b").await;
    let account = ServiceAccountRef {
        namespace: team_a.name().into(),
        name: "deployer".into(),
    };
    apply_yaml(
        &client,
        team_a.name(),
        &read_configmaps(team_a.name(), &account),
    )
    .await;
    // An hour-long TTL: only the invalidation on RBAC changes can make a new answer count.
    let reviews = Arc::new(AccessReviews::new(
        client.clone(),
        Duration::from_secs(3600),
    ));
    assert!(
        reviews.invalidate_on_rbac_changes().await,
        "the admin may watch RBAC objects"
    );
    let question = |namespace: &str| Question {
        account: account.clone(),
        verb: "list",
        group: String::new(),
        resource: "configmaps".into(),
        namespace: Some(namespace.into()),
    };
    assert!(reviews.allows(&question(team_a.name())).await.unwrap());
    assert!(!reviews.allows(&question(team_b.name())).await.unwrap());

    apply_yaml(
        &client,
        team_b.name(),
        &read_configmaps(team_b.name(), &account),
    )
    .await;
    wait_for(
        "the cached denial to be dropped when the RoleBinding appears",
        WAIT,
        || async {
            reviews
                .allows(&question(team_b.name()))
                .await
                .unwrap()
                .then_some(())
        },
    )
    .await;

    // The read check for objects: by namespace, from the same answers.
    let catalog = ResourceCatalog::discover(&client).await.unwrap();
    let entry = catalog.get(&configmaps_key()).unwrap();
    let identity = Identity::ServiceAccount(account.clone());
    let mut check = ReadCheck::new(identity.clone(), reviews.clone());
    let object = |namespace: &str| gitcontroller_sync::ObjectId {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: Some(namespace.into()),
        name: "x".into(),
    };
    assert!(
        check
            .check(&object(team_b.name()), entry)
            .await
            .unwrap()
            .is_ok()
    );
    let refusal = check
        .check(&object("kube-system"), entry)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        refusal
            .to_string()
            .contains("may not list configmaps in namespace kube-system"),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_lockdown_account_watches_only_the_namespaces_it_may_list_and_sees_only_them() {
    let (client, team_a, team_b, account) = two_teams("lock").await;
    let catalog = ResourceCatalog::discover(&client).await.unwrap();
    let entry = catalog.get(&configmaps_key()).unwrap().clone();
    let reviews = AccessReviews::new(client.clone(), Duration::from_secs(30));
    let identity = Identity::ServiceAccount(account.clone());

    // Everywhere: it may not list cluster-wide, so only its own namespace.
    let keys = watch_keys(
        &identity,
        true,
        team_a.name(),
        &configmaps_key(),
        &entry,
        &Selection::Everywhere,
        &reviews,
    )
    .await
    .unwrap();
    let own = WatchKey {
        reader: Reader::Account(account.clone()),
        type_key: configmaps_key(),
        scope: WatchScope::Namespace(team_a.name().into()),
    };
    assert_eq!(keys, std::slice::from_ref(&own));
    // Rules naming team-b and kube-system: neither may be listed, so nothing is watched.
    let named = Selection::Namespaces(
        [team_b.name().to_string(), "kube-system".to_string()]
            .into_iter()
            .collect(),
    );
    let keys = watch_keys(
        &identity,
        true,
        team_a.name(),
        &configmaps_key(),
        &entry,
        &named,
        &reviews,
    )
    .await
    .unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    // The watcher runs as the account and sees its namespace's objects.
    let (changes, _rx) = tokio::sync::mpsc::unbounded_channel();
    let watchers = Watchers::new(clients().await, changes);
    let repo = RepositoryRef::new(team_a.name(), "apps");
    let sources = watchers.need(&repo, BTreeMap::from([(own.clone(), entry.clone())]));
    assert_eq!(sources.len(), 1);
    let listed = tokio::time::timeout(WAIT, sources[0].wait_listed())
        .await
        .expect("the account's watcher lists its namespace");
    assert!(listed, "the watcher runs");
    let names: Vec<String> = sources[0]
        .objects()
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    assert_eq!(names, ["mine"]);
    watchers.release(&repo);
    assert!(watchers.is_empty());
}

#[tokio::test]
async fn repositories_with_the_same_key_share_one_watcher_and_a_cluster_watcher_serves_namespaces()
{
    let (client, team_a) = setup("share-a").await;
    let team_b = TestNamespace::new(&client, "share-b").await;
    apply_yaml(&client, team_a.name(), &configmap("in-a")).await;
    apply_yaml(&client, team_b.name(), &configmap("in-b")).await;
    let catalog = ResourceCatalog::discover(&client).await.unwrap();
    let entry = catalog.get(&configmaps_key()).unwrap().clone();
    let (changes, _rx) = tokio::sync::mpsc::unbounded_channel();
    let watchers = Watchers::new(clients().await, changes);
    let key = |scope| WatchKey {
        reader: Reader::Controller,
        type_key: configmaps_key(),
        scope,
    };
    let in_a = key(WatchScope::Namespace(team_a.name().into()));
    let first = RepositoryRef::new(team_a.name(), "one");
    let second = RepositoryRef::new(team_a.name(), "two");
    watchers.need(&first, BTreeMap::from([(in_a.clone(), entry.clone())]));
    watchers.need(&second, BTreeMap::from([(in_a.clone(), entry.clone())]));
    assert_eq!(
        watchers.keys(),
        std::slice::from_ref(&in_a),
        "one watcher for one key"
    );

    let platform = RepositoryRef::new("platform", "all");
    watchers.need(
        &platform,
        BTreeMap::from([(key(WatchScope::Cluster), entry.clone())]),
    );
    assert_eq!(
        watchers.keys(),
        [key(WatchScope::Cluster)],
        "the cluster watcher serves all"
    );
    let sources = watchers.need(&first, BTreeMap::from([(in_a.clone(), entry.clone())]));
    let source = &sources[0];
    assert_eq!(source.served_by, key(WatchScope::Cluster));
    let listed = tokio::time::timeout(WAIT, source.wait_listed())
        .await
        .expect("the cluster watcher lists");
    assert!(listed, "the watcher runs");
    let names: Vec<String> = source
        .objects()
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    assert!(names.contains(&"in-a".to_string()), "{names:?}");
    assert!(
        !names.contains(&"in-b".to_string()),
        "a namespace source holds only its namespace: {names:?}"
    );

    watchers.release(&platform);
    assert_eq!(
        watchers.keys(),
        std::slice::from_ref(&in_a),
        "back to the namespace watcher"
    );
    watchers.release(&first);
    assert_eq!(
        watchers.keys(),
        [in_a],
        "still needed by the second repository"
    );
    watchers.release(&second);
    assert!(watchers.is_empty());
}
