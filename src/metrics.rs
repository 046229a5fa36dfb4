//! Prometheus metrics of the controller, served on `--metrics-addr` at `/metrics`.
//!
//! The family names and label names below are a public contract (dashboards, alerts and the
//! Helm chart's Grafana dashboard query them); do not rename them.
//!
//! | family | type | labels |
//! |---|---|---|
//! | `gitcontroller_reconcile_duration_seconds` | histogram | `namespace`, `name` |
//! | `gitcontroller_reconcile_errors_total` | counter | `namespace`, `name`, `category` |
//! | `gitcontroller_objects` | gauge | `namespace`, `name`, `direction` (`kubernetes`, `git`, `ignored`) |
//! | `gitcontroller_sync_operations_total` | counter | `namespace`, `name`, `direction`, `operation` |
//! | `gitcontroller_git_operation_duration_seconds` | histogram | `namespace`, `name`, `operation` (`fetch`, `push`) |
//! | `gitcontroller_git_push_retries_total` | counter | `namespace`, `name` |
//! | `gitcontroller_watched_resources` | gauge | — |
//! | `gitcontroller_ready` | gauge (1/0) | `namespace`, `name` |
//! | `gitcontroller_sync_triggers_total` | counter | `namespace`, `name`, `source` (`watch`, `rule`, `discovery`, `webhook`, `repository`) |
//! | `gitcontroller_apply_confirmations_total` | counter | `namespace`, `name`, `verdict` (`unchanged`, `changed`, `failed`: a server-side dry run; `remembered`: known without one) |
//!
//! `namespace` and `name` are those of a GitRepository: bounded by the number of repositories,
//! and [`Metrics::forget`] drops them when one is deleted. Every other label value is a
//! `&'static str` chosen by the controller from a fixed set, never an object name or an error
//! message, so no label takes unbounded values.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Name of the reconcile duration histogram.
pub const RECONCILE_DURATION: &str = "gitcontroller_reconcile_duration_seconds";
/// Name of the reconcile error counter.
pub const RECONCILE_ERRORS: &str = "gitcontroller_reconcile_errors_total";
/// Name of the per-direction object gauge.
pub const OBJECTS: &str = "gitcontroller_objects";
/// Name of the sync operation counter.
pub const SYNC_OPERATIONS: &str = "gitcontroller_sync_operations_total";
/// Name of the Git operation duration histogram.
pub const GIT_OPERATION_DURATION: &str = "gitcontroller_git_operation_duration_seconds";
/// Name of the push retry counter.
pub const GIT_PUSH_RETRIES: &str = "gitcontroller_git_push_retries_total";
/// Name of the watched resource types gauge.
pub const WATCHED_RESOURCES: &str = "gitcontroller_watched_resources";
/// Name of the per-repository readiness gauge.
pub const READY: &str = "gitcontroller_ready";
/// Name of the sync trigger counter.
pub const SYNC_TRIGGERS: &str = "gitcontroller_sync_triggers_total";
/// Name of the counter of planned applies confirmed (or not) before they are made.
pub const APPLY_CONFIRMATIONS: &str = "gitcontroller_apply_confirmations_total";

/// Every family this module exposes, in the order they are registered.
pub const FAMILIES: &[&str] = &[
    RECONCILE_DURATION,
    RECONCILE_ERRORS,
    OBJECTS,
    SYNC_OPERATIONS,
    GIT_OPERATION_DURATION,
    GIT_PUSH_RETRIES,
    WATCHED_RESOURCES,
    READY,
    SYNC_TRIGGERS,
    APPLY_CONFIRMATIONS,
];

/// Buckets for a whole reconcile: fetch + plan + apply + commit/push of one repository.
const RECONCILE_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Buckets for one Git network or object-database operation.
const GIT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The `direction` values of `gitcontroller_objects`.
const OBJECT_DIRECTIONS: [&str; 3] = ["kubernetes", "git", "ignored"];

/// The `source` values of `gitcontroller_sync_triggers_total`: what asked a repository to
/// sync (`repository`: its own spec changed, it was created or it is being deleted).
pub const TRIGGER_SOURCES: [&str; 5] = ["watch", "rule", "discovery", "webhook", "repository"];

/// Label values of the per-repository families with a third or fourth label, remembered so
/// that [`Metrics::forget`] can delete every series of a repository (the `prometheus` crate
/// only deletes by complete label sets).
#[derive(Default)]
struct Seen {
    error_categories: BTreeSet<&'static str>,
    sync_operations: BTreeSet<(&'static str, &'static str)>,
    git_operations: BTreeSet<&'static str>,
    confirmations: BTreeSet<&'static str>,
}

/// The controller's metrics: one registry, the families of the module documentation.
///
/// Share it as `Arc<Metrics>`; every method takes `&self`.
pub struct Metrics {
    registry: Registry,
    reconcile_duration: HistogramVec,
    reconcile_errors: IntCounterVec,
    objects: IntGaugeVec,
    sync_operations: IntCounterVec,
    git_operation_duration: HistogramVec,
    git_push_retries: IntCounterVec,
    watched_resources: IntGauge,
    ready: IntGaugeVec,
    sync_triggers: IntCounterVec,
    apply_confirmations: IntCounterVec,
    /// namespace → name → label values used.
    seen: Mutex<HashMap<String, HashMap<String, Seen>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric families have distinct, valid names");
    c
}

impl Metrics {
    /// A fresh registry holding every family (no series yet, except
    /// `gitcontroller_watched_resources`, which has no labels and starts at 0).
    pub fn new() -> Self {
        let registry = Registry::new();
        let repo = ["namespace", "name"];
        let reconcile_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    RECONCILE_DURATION,
                    "Duration of one reconcile of a GitRepository, in seconds.",
                )
                .buckets(RECONCILE_BUCKETS.to_vec()),
                &repo,
            )
            .expect("valid histogram"),
        );
        let reconcile_errors = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    RECONCILE_ERRORS,
                    "Failed reconciles of a GitRepository, by error category.",
                ),
                &["namespace", "name", "category"],
            )
            .expect("valid counter"),
        );
        let objects = register(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    OBJECTS,
                    "Objects of a GitRepository by winning side at the last reconcile \
                     (kubernetes: Git is applied to the cluster; git: the cluster is written \
                     to Git; ignored).",
                ),
                &["namespace", "name", "direction"],
            )
            .expect("valid gauge"),
        );
        let sync_operations = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    SYNC_OPERATIONS,
                    "Changes made by the controller, by target side and operation.",
                ),
                &["namespace", "name", "direction", "operation"],
            )
            .expect("valid counter"),
        );
        let git_operation_duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    GIT_OPERATION_DURATION,
                    "Duration of Git operations (fetch; push, which builds the commit and pushes it), in seconds.",
                )
                .buckets(GIT_BUCKETS.to_vec()),
                &["namespace", "name", "operation"],
            )
            .expect("valid histogram"),
        );
        let git_push_retries = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    GIT_PUSH_RETRIES,
                    "Pushes rejected by the remote (it moved) and retried after re-deriving \
                     the commit.",
                ),
                &repo,
            )
            .expect("valid counter"),
        );
        let watched_resources = register(
            &registry,
            IntGauge::new(
                WATCHED_RESOURCES,
                "Resource types the controller currently watches.",
            )
            .expect("valid gauge"),
        );
        let ready = register(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    READY,
                    "1 when the GitRepository's Ready condition is True, 0 otherwise.",
                ),
                &repo,
            )
            .expect("valid gauge"),
        );
        let sync_triggers = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    SYNC_TRIGGERS,
                    "Requests to sync a GitRepository, by what asked (batched: several \
                     requests may share one reconcile).",
                ),
                &["namespace", "name", "source"],
            )
            .expect("valid counter"),
        );
        let apply_confirmations = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    APPLY_CONFIRMATIONS,
                    "Planned applies to existing objects, by what confirmed them: a server-side \
                     dry run that found the apply changes nothing (unchanged: not applied), \
                     that it changes something (changed: applied), that failed (failed: \
                     applied), or a dry run of the same apply at the same resourceVersion \
                     before (remembered: not applied, no request).",
                ),
                &["namespace", "name", "verdict"],
            )
            .expect("valid counter"),
        );
        Self {
            registry,
            reconcile_duration,
            reconcile_errors,
            objects,
            sync_operations,
            git_operation_duration,
            git_push_retries,
            watched_resources,
            ready,
            sync_triggers,
            apply_confirmations,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The registry, for callers that want to add their own collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn remember(&self, ns: &str, name: &str, f: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let by_name = match seen.get_mut(ns) {
            Some(by_name) => by_name,
            None => seen.entry(ns.to_owned()).or_default(),
        };
        match by_name.get_mut(name) {
            Some(s) => f(s),
            None => f(by_name.entry(name.to_owned()).or_default()),
        }
    }

    /// Starts timing one reconcile; the duration is recorded when the guard is dropped (or
    /// by [`ReconcileTimer::observe`], which also returns it).
    pub fn reconcile_timer(&self, ns: &str, name: &str) -> ReconcileTimer {
        ReconcileTimer {
            histogram: Some(self.reconcile_duration.with_label_values(&[ns, name])),
            start: Instant::now(),
        }
    }

    /// Records a reconcile that took `seconds`.
    pub fn observe_reconcile(&self, ns: &str, name: &str, seconds: f64) {
        self.reconcile_duration
            .with_label_values(&[ns, name])
            .observe(seconds);
    }

    /// Counts a failed reconcile. `category` comes from a fixed set chosen by the controller
    /// (e.g. `git`, `credentials`, `spec`, `apply`, `conflict`), never an error message.
    pub fn reconcile_failed(&self, ns: &str, name: &str, category: &'static str) {
        self.remember(ns, name, |s| {
            s.error_categories.insert(category);
        });
        self.reconcile_errors
            .with_label_values(&[ns, name, category])
            .inc();
    }

    /// Sets how many objects of the repository each side wins: `to_kubernetes` (Git is applied
    /// to the cluster), `to_git` (the cluster is written to Git) and `ignored`.
    pub fn set_objects(&self, ns: &str, name: &str, to_kubernetes: i64, to_git: i64, ignored: i64) {
        for (direction, n) in OBJECT_DIRECTIONS
            .iter()
            .zip([to_kubernetes, to_git, ignored])
        {
            self.objects
                .with_label_values(&[ns, name, direction])
                .set(n);
        }
    }

    /// Counts one change made by the controller: `direction` is the side written
    /// (`kubernetes` or `git`), `operation` what was done (`apply`, `delete` on the cluster;
    /// `write`, `remove` in Git).
    pub fn sync_operation(
        &self,
        ns: &str,
        name: &str,
        direction: &'static str,
        operation: &'static str,
    ) {
        self.remember(ns, name, |s| {
            s.sync_operations.insert((direction, operation));
        });
        self.sync_operations
            .with_label_values(&[ns, name, direction, operation])
            .inc();
    }

    /// Records one Git operation (`fetch`, `push` or `commit`) that took `seconds`.
    pub fn git_operation(&self, ns: &str, name: &str, operation: &'static str, seconds: f64) {
        self.remember(ns, name, |s| {
            s.git_operations.insert(operation);
        });
        self.git_operation_duration
            .with_label_values(&[ns, name, operation])
            .observe(seconds);
    }

    /// Adds `n` rejected-and-retried pushes (`n` may be 0: the series then exists at 0).
    pub fn push_retries(&self, ns: &str, name: &str, n: u64) {
        self.git_push_retries
            .with_label_values(&[ns, name])
            .inc_by(n);
    }

    /// Counts `n` planned applies confirmed with `verdict` (`unchanged`, `changed`, `failed`,
    /// `remembered`); `n` may be 0.
    pub fn apply_confirmations(&self, ns: &str, name: &str, verdict: &'static str, n: u64) {
        self.remember(ns, name, |s| {
            s.confirmations.insert(verdict);
        });
        self.apply_confirmations
            .with_label_values(&[ns, name, verdict])
            .inc_by(n);
    }

    /// Sets the number of resource types being watched.
    pub fn set_watched_resources(&self, n: i64) {
        self.watched_resources.set(n);
    }

    /// Sets `gitcontroller_ready` of a repository to 1 or 0.
    pub fn set_ready(&self, ns: &str, name: &str, ready: bool) {
        self.ready
            .with_label_values(&[ns, name])
            .set(i64::from(ready));
    }

    /// Counts one request to sync a repository; `source` is one of [`TRIGGER_SOURCES`].
    pub fn sync_triggered(&self, ns: &str, name: &str, source: &'static str) {
        debug_assert!(TRIGGER_SOURCES.contains(&source), "{source}");
        self.sync_triggers
            .with_label_values(&[ns, name, source])
            .inc();
    }

    /// Drops every series of a GitRepository (call it when the repository is deleted, after
    /// its last reconcile), so deleted repositories do not linger in `/metrics`.
    pub fn forget(&self, ns: &str, name: &str) {
        let seen = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            let removed = seen.get_mut(ns).and_then(|by_name| by_name.remove(name));
            if seen.get(ns).is_some_and(HashMap::is_empty) {
                seen.remove(ns);
            }
            removed.unwrap_or_default()
        };
        // Deleting a series that does not exist is an error we do not care about.
        let _ = self.reconcile_duration.remove_label_values(&[ns, name]);
        let _ = self.git_push_retries.remove_label_values(&[ns, name]);
        let _ = self.ready.remove_label_values(&[ns, name]);
        for direction in OBJECT_DIRECTIONS {
            let _ = self.objects.remove_label_values(&[ns, name, direction]);
        }
        for source in TRIGGER_SOURCES {
            let _ = self.sync_triggers.remove_label_values(&[ns, name, source]);
        }
        for category in seen.error_categories {
            let _ = self
                .reconcile_errors
                .remove_label_values(&[ns, name, category]);
        }
        for (direction, operation) in seen.sync_operations {
            let _ = self
                .sync_operations
                .remove_label_values(&[ns, name, direction, operation]);
        }
        for operation in seen.git_operations {
            let _ = self
                .git_operation_duration
                .remove_label_values(&[ns, name, operation]);
        }
        for verdict in seen.confirmations {
            let _ = self
                .apply_confirmations
                .remove_label_values(&[ns, name, verdict]);
        }
    }

    /// The Prometheus text exposition format (version 0.0.4) of every family.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory does not fail");
        String::from_utf8(out).expect("the text encoder writes UTF-8")
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Times one reconcile; records the elapsed time into
/// `gitcontroller_reconcile_duration_seconds` when dropped.
#[must_use = "the reconcile is timed until the guard is dropped"]
pub struct ReconcileTimer {
    histogram: Option<Histogram>,
    start: Instant,
}

impl ReconcileTimer {
    /// Records now and returns the elapsed seconds (for logs).
    pub fn observe(mut self) -> f64 {
        self.record()
    }

    /// Drops the timer without recording anything.
    pub fn discard(mut self) {
        self.histogram = None;
    }

    fn record(&mut self) -> f64 {
        let seconds = self.start.elapsed().as_secs_f64();
        if let Some(h) = self.histogram.take() {
            h.observe(seconds);
        }
        seconds
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(text: &str, prefix: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_family_is_exposed_after_one_use() {
        let m = Metrics::new();
        drop(m.reconcile_timer("ns", "repo"));
        m.reconcile_failed("ns", "repo", "git");
        m.set_objects("ns", "repo", 3, 2, 1);
        m.sync_operation("ns", "repo", "kubernetes", "apply");
        m.git_operation("ns", "repo", "fetch", 0.2);
        m.push_retries("ns", "repo", 2);
        m.set_watched_resources(4);
        m.set_ready("ns", "repo", true);
        m.sync_triggered("ns", "repo", "watch");
        m.apply_confirmations("ns", "repo", "unchanged", 5);
        let text = m.render();
        for family in FAMILIES {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing:\n{text}"
            );
        }
        assert!(
            text.contains(r#"gitcontroller_objects{direction="git",name="repo",namespace="ns"} 2"#)
        );
        assert!(text.contains(r#"gitcontroller_ready{name="repo",namespace="ns"} 1"#));
        assert!(text.contains(
            r#"gitcontroller_reconcile_duration_seconds_count{name="repo",namespace="ns"} 1"#
        ));
        assert!(
            text.contains(r#"gitcontroller_git_push_retries_total{name="repo",namespace="ns"} 2"#)
        );
        assert!(text.contains("gitcontroller_watched_resources 4"));
        assert!(text.contains(
            r#"gitcontroller_sync_triggers_total{name="repo",namespace="ns",source="watch"} 1"#
        ));
        assert!(text.contains(
            r#"gitcontroller_apply_confirmations_total{name="repo",namespace="ns",verdict="unchanged"} 5"#
        ));
    }

    #[test]
    fn forget_drops_every_series_of_one_repository_only() {
        let m = Metrics::new();
        for name in ["a", "b"] {
            m.observe_reconcile("ns", name, 0.5);
            m.reconcile_failed("ns", name, "git");
            m.reconcile_failed("ns", name, "apply");
            m.set_objects("ns", name, 1, 1, 1);
            m.sync_operation("ns", name, "git", "write");
            m.sync_operation("ns", name, "kubernetes", "delete");
            m.git_operation("ns", name, "push", 0.1);
            m.git_operation("ns", name, "commit", 0.1);
            m.push_retries("ns", name, 1);
            m.set_ready("ns", name, false);
            for source in TRIGGER_SOURCES {
                m.sync_triggered("ns", name, source);
            }
            m.apply_confirmations("ns", name, "remembered", 1);
        }
        m.forget("ns", "a");
        let text = m.render();
        let a: Vec<_> = text.lines().filter(|l| l.contains(r#"name="a""#)).collect();
        assert!(a.is_empty(), "left over after forget: {a:#?}");
        let b = series(&text, "gitcontroller_").len();
        assert!(b > 20, "the other repository keeps its series:\n{text}");
        // Forgetting twice, or an unknown repository, is harmless.
        m.forget("ns", "a");
        m.forget("other", "x");
        assert_eq!(m.render(), text);
    }

    #[test]
    fn reconcile_timer_records_once() {
        let m = Metrics::new();
        let t = m.reconcile_timer("ns", "r");
        let s = t.observe();
        assert!(s >= 0.0);
        m.reconcile_timer("ns", "r").discard();
        let text = m.render();
        assert!(text.contains(
            r#"gitcontroller_reconcile_duration_seconds_count{name="r",namespace="ns"} 1"#
        ));
    }
}
