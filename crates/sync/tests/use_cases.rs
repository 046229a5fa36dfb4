//! The three use cases the planner was built for.

mod common;

use common::*;
use gitcontroller_sync::*;
use serde_json::{Value, json};

/// Carries out a plan the simple way: applies merge into live, writes replace manifests.
fn carry_out(case: &mut Case, plan: &Plan) {
    for action in &plan.to_git {
        match action {
            GitAction::Write {
                id,
                file,
                doc_index,
                object,
                ..
            } => match doc_index {
                Some(_) => {
                    let m = case.manifests.iter_mut().find(|m| &m.id == id).unwrap();
                    m.object = object.clone().into();
                }
                None => case.manifests.push(Manifest {
                    id: id.clone(),
                    file: file.clone(),
                    doc_index: 0,
                    item_index: None,
                    revision: None,
                    object: object.clone().into(),
                }),
            },
            GitAction::Remove { id, .. } => case.manifests.retain(|m| &m.id != id),
        }
    }
    for action in &plan.to_cluster {
        match action {
            ClusterAction::Apply { id, object, .. } => {
                let live = case.live.iter_mut().find(|l| {
                    l["metadata"]["name"] == id.name.as_str() && l["kind"] == id.kind.as_str()
                });
                match live {
                    Some(l) => merge(l, object),
                    None => case.live.push(object.clone()),
                }
            }
            ClusterAction::Delete { id } => case.live.retain(|l| {
                !(l["metadata"]["name"] == id.name.as_str() && l["kind"] == id.kind.as_str())
            }),
        }
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. VolumeSnapshots backed up to Git.

fn snapshot_rule() -> Rule {
    let mut r = Rule::new("snapshot-backup", SyncTo::Git);
    r.api_groups = vec!["snapshot.storage.k8s.io".into()];
    r.kinds = vec!["VolumeSnapshot".into()];
    r
}

fn snapshot_export() -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": "db-2025-03-03",
            "namespace": "db",
            "labels": {"backup": "nightly"},
            "finalizers": [
                "snapshot.storage.kubernetes.io/volumesnapshot-as-source-protection",
                "snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"
            ]
        },
        "spec": {
            "source": {"persistentVolumeClaimName": "data-db-0"},
            "volumeSnapshotClassName": "csi-hostpath-snapclass"
        }
    })
}

#[test]
fn volume_snapshots_are_backed_up_to_git() {
    let mut case = Case::new(vec![snapshot_rule()])
        .live(fixture("volumesnapshot.json"))
        // Not selected by the rule: never exported, not counted.
        .live(configmap("unrelated", json!({"a": "b"})));
    let plan = case.plan();
    let (file, doc_index, object, paths) = single_write(&plan);
    assert_eq!(
        file,
        "db/volumesnapshots.snapshot.storage.k8s.io/db-2025-03-03.yaml"
    );
    assert_eq!(doc_index, None, "a new file");
    assert_eq!(
        object,
        &snapshot_export(),
        "clean export: no status, uid, managedFields"
    );
    assert_eq!(paths, [""]);
    assert!(plan.to_cluster.is_empty());
    assert_eq!(
        plan.counts,
        Counts {
            to_kubernetes: 0,
            to_git: 1,
            ignored: 0
        }
    );
    assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);

    carry_out(&mut case, &plan);
    let again = case.plan();
    assert!(again.is_noop(), "{again:#?}");
    let snap = ObjectId::new(
        "snapshot.storage.k8s.io",
        "VolumeSnapshot",
        Some("db"),
        "db-2025-03-03",
    );
    assert_eq!(again.noops, std::slice::from_ref(&snap));

    // Status moves on: nothing to back up.
    case.live[0]["status"]["readyToUse"] = json!(false);
    assert!(case.plan().is_noop());

    // A label added in the cluster is written to the existing document.
    case.live[0]["metadata"]["labels"]["retain"] = json!("30d");
    let labeled_by = json!({
        "manager": "kubectl-label", "operation": "Update", "apiVersion": "snapshot.storage.k8s.io/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:retain": {}}}}
    });
    case.live[0]["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(labeled_by);
    let plan = case.plan();
    let (file, doc_index, object, paths) = single_write(&plan);
    assert_eq!(
        (file, doc_index),
        (
            "db/volumesnapshots.snapshot.storage.k8s.io/db-2025-03-03.yaml",
            Some(0)
        )
    );
    assert_eq!(
        object["metadata"]["labels"],
        json!({"backup": "nightly", "retain": "30d"})
    );
    assert_eq!(paths, ["/metadata/labels"]);

    // The snapshot is deleted in the cluster: its manifest goes too.
    case.live.remove(0);
    let plan = case.plan();
    assert_eq!(
        plan.to_git,
        [GitAction::Remove {
            id: snap,
            file: "db/volumesnapshots.snapshot.storage.k8s.io/db-2025-03-03.yaml".into(),
            doc_index: 0
        }]
    );
    assert!(
        plan.to_cluster.is_empty(),
        "a git rule never creates in the cluster"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A Deployment from Git whose containers are written back from the cluster.

fn deployment_rules() -> Vec<Rule> {
    let mut from_git = Rule::new("deployments-from-git", SyncTo::Kubernetes);
    from_git.api_groups = vec!["apps".into()];
    from_git.resources = vec!["deployments".into()];
    let mut images = rule(
        "deployment-images-to-git",
        SyncTo::Git,
        &["/spec/template/spec/containers"],
    );
    images.api_groups = vec!["apps".into()];
    images.kinds = vec!["Deployment".into()];
    images.priority = 10;
    vec![from_git, images]
}

fn deployment_manifest() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
                ]}
            }
        }
    })
}

#[test]
fn deployment_image_bump_is_written_back_and_replicas_restored() {
    // Live: applied by git-controller from the manifest, then `kubectl set image` to 1.28.
    let mut case = Case::new(deployment_rules())
        .git("apps/web.yaml", deployment_manifest())
        .live(fixture("deployment-server-side-apply.json"));
    let plan = case.plan();
    assert!(
        plan.to_cluster.is_empty(),
        "the rest is in sync: {:#?}",
        plan.to_cluster
    );
    let (file, doc_index, object, paths) = single_write(&plan);
    assert_eq!((file, doc_index), ("apps/web.yaml", Some(0)));
    assert_eq!(paths, ["/spec/template/spec/containers"]);
    let mut expected = deployment_manifest();
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    assert_eq!(
        object, &expected,
        "only the containers array changes; no server defaults"
    );
    assert_eq!(
        plan.counts,
        Counts {
            to_kubernetes: 1,
            to_git: 0,
            ignored: 0
        }
    );

    carry_out(&mut case, &plan);
    assert!(case.plan().is_noop());

    // Someone scales the Deployment in the cluster: Git's replicas are restored.
    case.live[0]["spec"]["replicas"] = json!(5);
    let plan = case.plan();
    assert!(plan.to_git.is_empty());
    let (body, create, paths) = single_apply(&plan);
    assert!(!create);
    assert_eq!(paths, ["/spec/replicas"]);
    assert_eq!(body["spec"]["replicas"], json!(2));
    // The git-directed containers go back as they are live, so the apply changes nothing there.
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"],
        case.live[0]["spec"]["template"]["spec"]["containers"]
    );
    assert_eq!(
        body["metadata"],
        json!({"name": "web", "namespace": "default", "labels": {"app": "web"}})
    );
    assert_eq!(body["apiVersion"], json!("apps/v1"));
    assert!(body.get("status").is_none());

    carry_out(&mut case, &plan);
    assert!(case.plan().is_noop());

    // Both at once: one apply and one write.
    case.live[0]["spec"]["replicas"] = json!(3);
    case.live[0]["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.29");
    let plan = case.plan();
    let (body, _, _) = single_apply(&plan);
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:1.29")
    );
    let (_, _, object, _) = single_write(&plan);
    assert_eq!(object["spec"]["replicas"], json!(2));
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:1.29")
    );
    carry_out(&mut case, &plan);
    assert!(case.plan().is_noop());
}

#[test]
fn deployment_container_change_in_git_is_not_applied() {
    // The containers are git-directed: a change in Git is overwritten by the live value.
    let mut manifest = deployment_manifest();
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:9");
    let mut live = fixture("deployment-server-side-apply.json");
    live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let case = Case::new(deployment_rules())
        .git("apps/web.yaml", manifest)
        .live(live);
    let plan = case.plan();
    assert!(plan.to_cluster.is_empty());
    let (_, _, object, _) = single_write(&plan);
    assert_eq!(object, &deployment_manifest());
}

// ---------------------------------------------------------------------------------------------
// 3. Annotations written back, nothing else.

fn annotated(data: Value, annotations: Value) -> Value {
    let mut cm = configmap("settings", data);
    cm["metadata"]["annotations"] = annotations;
    cm
}

#[test]
fn annotations_only_write_back() {
    let rules = vec![rule(
        "annotations-to-git",
        SyncTo::Git,
        &["/metadata/annotations"],
    )];
    let mut live = annotated(
        json!({"level": "debug"}),
        json!({"owner": "team-a", "reviewed": "yes", LAST_APPLIED: "{}"}),
    );
    live["metadata"]["uid"] = json!("u-1");
    let mut case = Case::new(rules)
        .git(
            "cm.yaml",
            annotated(json!({"level": "info"}), json!({"owner": "team-a"})),
        )
        .live(live);
    let plan = case.plan();
    assert!(
        plan.to_cluster.is_empty(),
        "data is not governed by any rule"
    );
    let (file, doc_index, object, paths) = single_write(&plan);
    assert_eq!((file, doc_index), ("cm.yaml", Some(0)));
    assert_eq!(paths, ["/metadata/annotations"]);
    assert_eq!(
        object,
        &annotated(
            json!({"level": "info"}),
            json!({"owner": "team-a", "reviewed": "yes"})
        ),
        "only annotations change; last-applied is not exported; data stays as in Git"
    );
    carry_out(&mut case, &plan);
    assert!(case.plan().is_noop());

    // Annotations removed live are removed in Git.
    case.live[0]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let plan = case.plan();
    let (_, _, object, _) = single_write(&plan);
    assert!(object["metadata"].get("annotations").is_none());
    assert_eq!(object["data"], json!({"level": "info"}));

    // Without a root rule, existence is nobody's business.
    let only_git = Case::new(case.rules.clone()).git("x.yaml", configmap("x", json!({})));
    assert!(only_git.plan().is_noop());
    let only_live = Case::new(case.rules.clone()).live(configmap("y", json!({})));
    let plan = only_live.plan();
    assert!(plan.is_noop() && plan.noops.is_empty(), "{plan:#?}");
}

#[test]
fn annotations_to_git_with_the_rest_from_git() {
    let rules = vec![
        rule(
            "annotations-to-git",
            SyncTo::Git,
            &["/metadata/annotations"],
        ),
        rule("rest-from-git", SyncTo::Kubernetes, &[]),
    ];
    let mut case = Case::new(rules)
        .git(
            "cm.yaml",
            annotated(json!({"level": "info"}), json!({"owner": "team-a"})),
        )
        .live(annotated(
            json!({"level": "debug"}),
            json!({"owner": "team-b"}),
        ));
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(
        paths,
        ["/data"],
        "the rest-from-git rule governs /data as a whole"
    );
    assert_eq!(body["data"], json!({"level": "info"}));
    assert_eq!(
        body["metadata"]["annotations"],
        json!({"owner": "team-b"}),
        "live value kept"
    );
    let (_, _, object, _) = single_write(&plan);
    assert_eq!(
        object["metadata"]["annotations"],
        json!({"owner": "team-b"})
    );
    assert_eq!(object["data"], json!({"level": "info"}));
    carry_out(&mut case, &plan);
    assert!(case.plan().is_noop());
}

const LAST_APPLIED: &str = gitcontroller_sync::export::LAST_APPLIED_ANNOTATION;
