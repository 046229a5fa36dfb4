//! Event series on a real API server: a repeat is counted only when it is the same Event, word
//! for word, about the same object — the count and the note always say what happened.

mod common;

use git_controller::cluster::EventRecorder;
use git_controller::cluster::events::{Event, EventType, Reporter};
use gitcontroller_testkit::cluster::{TestNamespace, client};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};

fn applied(note: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: "Applied".into(),
        note: Some(note.into()),
        action: "Apply".into(),
        secondary: None,
    }
}

async fn configmap(client: &kube::Client, ns: &str, name: &str) -> ObjectReference {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm)
        .await
        .unwrap()
        .object_ref(&())
}

/// (note, count) of every Event git-controller published about the ConfigMap `name`.
async fn series_of(client: &kube::Client, ns: &str, name: &str) -> Vec<(String, i32)> {
    common::events_in(client, ns)
        .await
        .into_iter()
        .filter(|(_, regarding, _, _)| regarding == &format!("ConfigMap/{name}"))
        .map(|(_, _, note, count)| (note, count))
        .collect()
}

#[tokio::test]
async fn repeats_count_in_a_series_only_with_the_same_note_about_the_same_object() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "event-series").await;
    let ns = ns.name().to_string();
    let recorder = EventRecorder::new(
        client.clone(),
        Reporter {
            controller: "git-controller".into(),
            instance: Some("test".into()),
        },
    );
    let deployment_like = configmap(&client, &ns, "web").await;
    let secret_like = configmap(&client, &ns, "alertmanager-main").await;

    for _ in 0..3 {
        recorder
            .publish(&applied("applied from Git at 1111aaaa"), &deployment_like)
            .await
            .unwrap();
    }
    recorder
        .publish(&applied("applied from Git at 2222bbbb"), &deployment_like)
        .await
        .unwrap();
    recorder
        .publish(&applied("applied from Git at 1111aaaa"), &secret_like)
        .await
        .unwrap();

    let events: Api<KubeEvent> = Api::namespaced(client.clone(), &ns);
    assert_eq!(
        series_of(&client, &ns, "web").await,
        [
            ("applied from Git at 1111aaaa".to_string(), 3),
            ("applied from Git at 2222bbbb".to_string(), 1)
        ]
    );
    assert_eq!(
        series_of(&client, &ns, "alertmanager-main").await,
        [("applied from Git at 1111aaaa".to_string(), 1)],
        "another object's Event is its own, whatever the reason"
    );
    let web = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.series.is_some())
        .unwrap();
    assert_eq!(
        web.regarding.as_ref().unwrap().uid,
        deployment_like.uid,
        "the Event regards the object itself"
    );
    assert_eq!(web.reporting_controller.as_deref(), Some("git-controller"));
    assert!(web.name_any().starts_with("web."));
}
