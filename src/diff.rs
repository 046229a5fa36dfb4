//! `git-controller diff`: what a reconcile would do now, in each direction, as unified diffs,
//! without writing anything. Reads the cluster with LIST (no watchers) and Git with a fetch into
//! the cache.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use gitcontroller_git::{Repository, Snapshot};
use gitcontroller_sync::{ClusterAction, GitAction, Plan, export};
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use similar::TextDiff;

use crate::api::{GitRepository, SyncRule};
use crate::cluster::ResourceCatalog;
use crate::controller::convert;
use crate::controller::reconcile::{self, ClusterSide};
use crate::error::Result;

/// What `diff` found.
pub struct DiffReport {
    /// Unified diffs: a "Cluster" section, then a "Git" section; empty when in sync.
    pub text: String,
    /// Whether nothing would change.
    pub in_sync: bool,
}

/// Plans one GitRepository against the live cluster and renders the plan.
pub async fn diff(
    client: &Client,
    namespace: &str,
    name: &str,
    cache_root: &Path,
) -> Result<DiffReport> {
    let repo = Api::<GitRepository>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    let catalog = ResourceCatalog::discover(client).await?;
    let mut crd_rules: Vec<SyncRule> = Api::<SyncRule>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| r.spec.repository_ref.name == name)
        .collect();
    crd_rules.sort_by_key(|r| r.name_any());

    let mut rules = Vec::new();
    let mut wanted = BTreeMap::new();
    for crd_rule in &crd_rules {
        match convert::rule(crd_rule) {
            Ok(rule) => {
                rules.push(rule);
                let spec = &crd_rule.spec;
                wanted.extend(
                    catalog
                        .matching(&spec.api_groups, &spec.resources, &spec.kinds)
                        .map(|(k, e)| (k.clone(), e.clone())),
                );
            }
            Err(reason) => eprintln!(
                "warning: SyncRule {} is skipped: {reason}",
                crd_rule.name_any()
            ),
        }
    }
    let mut live = Vec::new();
    for entry in wanted.values() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &entry.resource);
        for object in api.list(&ListParams::default()).await?.items {
            live.push(convert::live_object(&object, entry));
        }
    }

    let credentials = reconcile::credentials(&repo, client).await?;
    let spec = reconcile::repo_spec(&repo, cache_root, credentials);
    let snapshot = reconcile::blocking(move || -> Result<Snapshot> {
        let mut git = Repository::open(spec)?;
        reconcile::fetch_snapshot(&mut git)
    })
    .await?;
    let side = ClusterSide {
        rules,
        types: catalog.resource_types(),
        live,
        inventory: convert::inventory(
            &repo
                .status
                .as_ref()
                .map(|s| s.inventory.clone())
                .unwrap_or_default(),
        ),
        options: reconcile::plan_options(&repo),
        parsed: Default::default(),
    };
    let plan = side.plan(&snapshot);
    Ok(render(&plan, &side.live, &snapshot))
}

fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

/// Keeps only the parts of `live` at the paths `body` sets: what an apply of `body` replaces.
fn restrict(live: &Value, body: &Value) -> Value {
    match (live, body) {
        (Value::Object(live), Value::Object(body)) => Value::Object(
            body.iter()
                .filter_map(|(k, b)| live.get(k).map(|l| (k.clone(), restrict(l, b))))
                .collect(),
        ),
        (live, _) => live.clone(),
    }
}

fn find_live<'a>(live: &'a [Value], id: &gitcontroller_sync::ObjectId) -> Option<&'a Value> {
    live.iter().find(|o| {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        gitcontroller_sync::group_of(api_version) == id.group
            && o["kind"].as_str() == Some(id.kind.as_str())
            && o["metadata"]["name"].as_str() == Some(id.name.as_str())
            && o["metadata"]["namespace"].as_str() == id.namespace.as_deref()
    })
}

fn document(snapshot: &Snapshot, file: &str, doc_index: usize) -> Value {
    snapshot
        .files
        .iter()
        .find(|f| f.path == file)
        .and_then(|f| serde_saphyr::from_multiple::<Value>(&f.content).ok())
        .and_then(|docs| docs.into_iter().filter(|d| !d.is_null()).nth(doc_index))
        .unwrap_or(Value::Null)
}

/// Renders a plan as unified diffs, cluster changes first, then Git changes.
pub fn render(plan: &Plan, live: &[Value], snapshot: &Snapshot) -> DiffReport {
    let mut text = String::new();
    if !plan.to_cluster.is_empty() {
        text.push_str("# Cluster (from Git)\n");
        for action in &plan.to_cluster {
            let id = action.id();
            let (old, new) = match action {
                ClusterAction::Apply {
                    object,
                    create: true,
                    ..
                } => (String::new(), yaml(object)),
                ClusterAction::Apply { object, .. } => {
                    let current = find_live(live, id).map(|l| restrict(&export::clean(l), object));
                    (current.as_ref().map(yaml).unwrap_or_default(), yaml(object))
                }
                ClusterAction::Delete { .. } => (
                    find_live(live, id)
                        .map(|l| yaml(&export::clean(l)))
                        .unwrap_or_default(),
                    String::new(),
                ),
            };
            let _ = write!(
                text,
                "{}",
                unified(&old, &new, &format!("live/{id}"), &format!("planned/{id}"))
            );
        }
    }
    if !plan.to_git.is_empty() {
        text.push_str("# Git (from the cluster)\n");
        for action in &plan.to_git {
            let (file, old, new) = match action {
                GitAction::Write {
                    file,
                    doc_index,
                    object,
                    ..
                } => {
                    let old = doc_index
                        .map(|i| yaml(&document(snapshot, file, i)))
                        .unwrap_or_default();
                    (file, old, yaml(object))
                }
                GitAction::Remove {
                    file, doc_index, ..
                } => (
                    file,
                    yaml(&document(snapshot, file, *doc_index)),
                    String::new(),
                ),
            };
            let _ = write!(
                text,
                "{}",
                unified(&old, &new, &format!("a/{file}"), &format!("b/{file}"))
            );
        }
    }
    DiffReport {
        in_sync: plan.is_noop(),
        text,
    }
}
