//! Publishing Kubernetes Events (`events.k8s.io/v1`) in series whose count and note are true.
//!
//! An Event repeated within a few minutes is not written again: the first one gets a `series`
//! with the number of times it happened. kube-runtime's `Recorder` groups repeats by type,
//! reason, action, reporter, regarding and related object — not by note — and patches the
//! count of the first Event, whose note stays: "Secret a applied from Git" then counted every
//! apply of every object of a repository. [`EventRecorder`] groups like client-go's
//! `tools/events` does, the note included: a series is one Event, word for word, about one
//! object, and its count is how often exactly that happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
pub use kube::runtime::events::{Event, EventType, Reporter};

/// How long a repeat joins the series of an earlier Event (client-go and kube-runtime: 6 min).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// At most this many series are remembered; the oldest are forgotten first (a repeat of a
/// forgotten one starts a new Event, which is still true).
const MAX_SERIES: usize = 4096;

/// The identity of an object an Event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectKey {
    api_version: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    uid: Option<String>,
}

impl From<&ObjectReference> for ObjectKey {
    fn from(r: &ObjectReference) -> Self {
        Self {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        }
    }
}

/// What makes two Events the same Event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    type_: EventType,
    reason: String,
    action: String,
    note: Option<String>,
    regarding: ObjectKey,
    related: Option<ObjectKey>,
}

/// An Event written, and how often it happened since.
#[derive(Clone, Debug)]
struct Series {
    namespace: String,
    name: String,
    count: i32,
    last_observed: Timestamp,
}

/// Publishes Events as one reporter; repeats of the same Event become a series. Cheap to clone
/// (clones share the series).
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    series: Arc<Mutex<HashMap<SeriesKey, Series>>>,
}

impl EventRecorder {
    /// Publishes with `client` as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            series: Arc::default(),
        }
    }

    /// Publishes `event` about `regarding`, in its namespace (`default` for cluster-scoped
    /// objects, as upstream does). A repeat within [`SERIES_WINDOW`] of the last one — same
    /// type, reason, action, note, regarding and related object — counts in the series of
    /// the first instead of writing a new Event.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = SeriesKey {
            type_: event.type_,
            reason: event.reason.clone(),
            action: event.action.clone(),
            note: event.note.clone(),
            regarding: regarding.into(),
            related: event.secondary.as_ref().map(ObjectKey::from),
        };
        let repeat = self.repeat_of(&key, now);
        if let Some(series) = &repeat {
            let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), &series.namespace);
            let patch = serde_json::json!({
                "series": {"count": series.count, "lastObservedTime": MicroTime(now)}
            });
            match events
                .patch(&series.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, series.clone());
                    return Ok(());
                }
                // Expired (the API server deletes Events after an hour) or deleted: start anew.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        let written = self.write_new(event, regarding, now).await?;
        self.remember(key, written);
        Ok(())
    }

    /// The series `key` continues at `now`, with its count already raised; None when there is
    /// none within the window. Forgets series that ended.
    fn repeat_of(&self, key: &SeriesKey, now: Timestamp) -> Option<Series> {
        let mut all = self.series.lock().expect("event series lock");
        all.retain(|_, s| s.last_observed + SERIES_WINDOW > now);
        all.get(key).map(|s| Series {
            count: s.count + 1,
            last_observed: now,
            ..s.clone()
        })
    }

    fn remember(&self, key: SeriesKey, series: Series) {
        let mut all = self.series.lock().expect("event series lock");
        if all.len() >= MAX_SERIES && !all.contains_key(&key) {
            let oldest = all
                .iter()
                .min_by_key(|(_, s)| s.last_observed)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                all.remove(&oldest);
            }
        }
        all.insert(key, series);
    }

    async fn write_new(
        &self,
        event: &Event,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<Series, kube::Error> {
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = format!(
            "{}.{:x}",
            regarding
                .name
                .as_deref()
                .unwrap_or(&self.reporter.controller),
            now.as_nanosecond()
        );
        let object = KubeEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            note: event.note.clone(),
            regarding: Some(regarding.clone()),
            related: event.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_string(),
            ),
            ..KubeEvent::default()
        };
        Api::<KubeEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &object)
            .await?;
        Ok(Series {
            namespace,
            name,
            count: 1,
            last_observed: now,
        })
    }
}
