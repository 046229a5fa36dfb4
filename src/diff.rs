//! `git-controller diff`: what a reconcile would do now, in each direction, as unified diffs,
//! without writing anything. It runs the reconcile's own steps with writes off
//! ([`Mode::DryRun`]): the same rule resolution, fetch (under the same Git lock and timeout),
//! live objects, plan, and confirmation of applies by server-side dry runs (so it says in sync
//! when the API server would store nothing new); its Git section shows the exact text the
//! write-back step would commit.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use gitcontroller_git::FileEdit;
use gitcontroller_git::paths::{join, normalize_relative};
use gitcontroller_sync::{ClusterAction, DiagnosticReason, LiveInput, ObjectId, Plan, export};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::Value;
use similar::TextDiff;
use tokio::sync::mpsc;

use crate::access::reviews::ANSWER_TTL;
use crate::access::secrets::mask_secret_pair;
use crate::access::{AccessReviews, Clients, Tenancy};
use crate::api::{GitRepository, SyncRule};
use crate::cluster::events::Reporter;
use crate::cluster::{EventRecorder, ResourceCatalog, Watchers};
use crate::controller::{
    Batching, Config, Context, ContextParts, Mode, OwnWrites, Problem, SyncState, Trigger,
    WriteGate, steps,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// What `diff` found.
pub struct DiffReport {
    /// Unified diffs: a "Cluster" section, then a "Git" section, then what keeps the
    /// repository from being Ready ("Problems": skipped inputs, invalid rules, the prune
    /// guard, ...) and every action left out because of it ("Held back"); empty when in
    /// sync.
    pub text: String,
    /// Whether nothing would change, nothing is held back and nothing is wrong: what exit
    /// code 0 says.
    pub in_sync: bool,
}

/// The SyncRules of a namespace, as a store (what the controller's reflector keeps).
async fn rule_store(client: &Client, namespace: &str) -> Result<Store<SyncRule>> {
    let list = Api::<SyncRule>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    let mut writer = reflector::store::Writer::<SyncRule>::default();
    writer.apply_watcher_event(&watcher::Event::Init);
    for rule in list.items {
        writer.apply_watcher_event(&watcher::Event::InitApply(rule));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    Ok(writer.as_reader())
}

/// Plans one GitRepository against the live cluster and renders the plan.
pub async fn diff(
    config: kube::Config,
    tenancy: Tenancy,
    namespace: &str,
    name: &str,
    cache_root: &Path,
) -> Result<DiffReport> {
    let client = &Client::try_from(config.clone())?;
    let clients = Arc::new(Clients::new(config, client.clone()));
    let repo = Api::<GitRepository>::namespaced(client.clone(), namespace)
        .get(name)
        .await?;
    // Kept open until the end: the watchers stop when nobody listens to their changes.
    let (changes, _changes) = mpsc::unbounded_channel();
    let (trigger, _triggers) = Trigger::channel();
    let reporter = Reporter {
        controller: "git-controller".into(),
        instance: None,
    };
    let ctx = Context::new(ContextParts {
        client: client.clone(),
        config: Config {
            namespace: Some(namespace.to_string()),
            cache_dir: cache_root.to_path_buf(),
            concurrency: 1,
            batching: Batching::IMMEDIATE,
            // `diff` writes no status.
            status_interval: std::time::Duration::ZERO,
            instance: "diff".into(),
            tenancy,
        },
        catalog: ResourceCatalog::discover(client).await?,
        watchers: Watchers::new(clients.clone(), changes),
        reviews: Arc::new(AccessReviews::new(client.clone(), ANSWER_TTL)),
        clients,
        rules: rule_store(client, namespace).await?,
        metrics: Arc::new(Metrics::new()),
        recorder: EventRecorder::new(client.clone(), reporter),
        gate: WriteGate::closed(),
        trigger,
        own_writes: OwnWrites::default(),
    });
    let state = steps::sync(&ctx, Arc::new(repo), Mode::DryRun).await?;
    render(&state)
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

fn find_live<'a, L: LiveInput>(
    live: &'a [L],
    id: &gitcontroller_sync::ObjectId,
) -> Option<&'a Value> {
    live.iter()
        .map(LiveInput::object)
        .find(|o| crate::controller::convert::object_id(o).as_ref() == Some(id))
}

/// Renders what a dry-run sync found as unified diffs: cluster changes first, then the Git
/// files exactly as the write-back step would commit them.
pub fn render(state: &SyncState) -> Result<DiffReport> {
    let planned = state
        .planned
        .as_ref()
        .ok_or_else(|| Error::Internal("diff: the plan step did not run".into()))?;
    let live = state
        .live
        .as_ref()
        .map(|l| l.objects().as_slice())
        .unwrap_or_default();
    let preview = state
        .written
        .as_ref()
        .map(|w| w.preview.as_slice())
        .unwrap_or_default();
    let root = normalize_relative(&state.repo.spec.path, true)
        .unwrap_or_else(|_| state.repo.spec.path.clone());
    let mut report = render_plan(&planned.plan, live, &planned.stored, &root, preview);
    render_findings(&mut report, &state.report()?.problems(), &planned.plan);
    Ok(report)
}

/// Appends what keeps the repository from being Ready and every action held back because
/// of it; either makes the report not in sync.
pub fn render_findings(report: &mut DiffReport, problems: &[Problem], plan: &Plan) {
    let held: Vec<_> = plan
        .diagnostics
        .iter()
        .filter(|d| matches!(d.reason, DiagnosticReason::HeldBack(_)))
        .collect();
    if !problems.is_empty() {
        report.text.push_str("# Problems (not Ready)\n");
        for problem in problems {
            let _ = writeln!(report.text, "[{}] {}", problem.reason, problem.message);
        }
    }
    if !held.is_empty() {
        report
            .text
            .push_str("# Held back (not done until the problems are fixed)\n");
        for d in &held {
            let _ = writeln!(report.text, "{d}");
        }
    }
    report.in_sync &= problems.is_empty() && held.is_empty();
}

/// Renders a plan's cluster actions against the live objects — an apply the API server
/// confirmed by a dry run as the live object against what the server would store
/// (`stored`), every other one as the parts of the live object it sets against its body —,
/// and the file edits of its Git actions (paths relative to `root`, the repository's
/// `spec.path`).
pub fn render_plan<L: LiveInput>(
    plan: &Plan,
    live: &[L],
    stored: &BTreeMap<ObjectId, Value>,
    root: &str,
    edits: &[FileEdit],
) -> DiffReport {
    let mut text = String::new();
    if !plan.to_cluster.is_empty() {
        text.push_str("# Cluster (from Git)\n");
        for action in &plan.to_cluster {
            let id = action.id();
            let (mut old, mut new) = match action {
                ClusterAction::Apply {
                    object,
                    create: true,
                    ..
                } => (None, Some(object.clone())),
                ClusterAction::Apply { .. }
                    if let (Some(stored), Some(current)) =
                        (stored.get(id), find_live(live, id)) =>
                {
                    (Some(export::clean(current)), Some(export::clean(stored)))
                }
                ClusterAction::Apply { object, .. } => (
                    find_live(live, id)
                        .map(|l| restrict(&export::clean_against(l, object), object)),
                    Some(object.clone()),
                ),
                ClusterAction::Delete { .. } => (find_live(live, id).map(export::clean), None),
            };
            // Secret values never leave the cluster: a change shows, its content does not.
            mask_secret_pair(old.as_mut(), new.as_mut());
            let (old, new) = (
                old.as_ref().map(yaml).unwrap_or_default(),
                new.as_ref().map(yaml).unwrap_or_default(),
            );
            let _ = write!(
                text,
                "{}",
                unified(&old, &new, &format!("live/{id}"), &format!("planned/{id}"))
            );
        }
    }
    if !edits.is_empty() {
        text.push_str("# Git (from the cluster)\n");
        for edit in edits {
            let path = join(root, &edit.path);
            let _ = write!(
                text,
                "{}",
                unified(
                    edit.old.as_deref().unwrap_or_default(),
                    edit.new.as_deref().unwrap_or_default(),
                    &format!("a/{path}"),
                    &format!("b/{path}")
                )
            );
        }
    }
    DiffReport {
        in_sync: plan.is_noop(),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitcontroller_sync::ObjectId;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_and_a_changed_key_still_shows() {
        let id = ObjectId::new("", "Secret", Some("team-a"), "db");
        let live = [Arc::new(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "team-a"},
            // "aHVudGVyMg==" is "hunter2", "YWxpY2U=" is "alice".
            "data": {"password": "aHVudGVyMg==", "user": "YWxpY2U="}
        }))];
        let plan = Plan {
            to_cluster: vec![ClusterAction::Apply {
                id: id.clone(),
                object: json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "db", "namespace": "team-a"},
                    "data": {"password": "czNjcjN0", "user": "YWxpY2U="}
                }),
                create: false,
                paths: vec![],
            }],
            ..Plan::default()
        };
        let report = render_plan(&plan, &live, &Default::default(), "", &[]);
        let text = report.text;
        for value in ["aHVudGVyMg", "czNjcjN0", "YWxpY2U", "hunter2", "alice"] {
            assert!(!text.contains(value), "{value} leaked:\n{text}");
        }
        assert!(text.contains("-  password: \"*** (before)\""), "{text}");
        assert!(text.contains("+  password: \"*** (after)\""), "{text}");
        assert!(!report.in_sync);
    }
}
