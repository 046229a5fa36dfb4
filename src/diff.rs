//! `git-controller diff`: what a reconcile would do now, in each direction, as unified diffs,
//! without writing anything. It runs the reconcile's own steps with writes off
//! ([`Mode::DryRun`]): the same rule resolution, fetch (under the same Git lock and timeout),
//! live objects, plan; its Git section shows the exact text the write-back step would commit.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gitcontroller_git::FileEdit;
use gitcontroller_git::paths::{join, normalize_relative};
use gitcontroller_sync::{ClusterAction, DiagnosticReason, Plan, export};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::Value;
use similar::TextDiff;
use tokio::sync::mpsc;

use crate::api::{GitRepository, SyncRule};
use crate::cluster::{ResourceCatalog, Watchers};
use crate::controller::{
    Config, Context, ContextParts, Mode, Problem, SyncState, Trigger, WriteGate, steps,
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
    client: &Client,
    namespace: &str,
    name: &str,
    cache_root: &Path,
) -> Result<DiffReport> {
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
            batch_window: Duration::ZERO,
            instance: "diff".into(),
        },
        catalog: ResourceCatalog::discover(client).await?,
        watchers: Watchers::new(client.clone(), None, changes),
        rules: rule_store(client, namespace).await?,
        metrics: Arc::new(Metrics::new()),
        recorder: Recorder::new(client.clone(), reporter),
        gate: WriteGate::closed(),
        trigger,
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

fn find_live<'a>(live: &'a [Value], id: &gitcontroller_sync::ObjectId) -> Option<&'a Value> {
    live.iter().find(|o| {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        gitcontroller_sync::group_of(api_version) == id.group
            && o["kind"].as_str() == Some(id.kind.as_str())
            && o["metadata"]["name"].as_str() == Some(id.name.as_str())
            && o["metadata"]["namespace"].as_str() == id.namespace.as_deref()
    })
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
        .map(|l| l.objects.as_slice())
        .unwrap_or_default();
    let preview = state
        .written
        .as_ref()
        .map(|w| w.preview.as_slice())
        .unwrap_or_default();
    let root = normalize_relative(&state.repo.spec.path, true)
        .unwrap_or_else(|_| state.repo.spec.path.clone());
    let mut report = render_plan(&planned.plan, live, &root, preview);
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

/// Renders a plan's cluster actions against the live objects, and the file edits of its Git
/// actions (paths relative to `root`, the repository's `spec.path`).
pub fn render_plan(plan: &Plan, live: &[Value], root: &str, edits: &[FileEdit]) -> DiffReport {
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
                    let current = find_live(live, id)
                        .map(|l| restrict(&export::clean_against(l, object), object));
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
