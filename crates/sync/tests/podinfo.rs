//! Write-back on podinfo's published manifest (github.com/stefanprodan/podinfo, Apache-2.0;
//! `tests/fixtures/podinfo`): a `git` rule on the containers must not rewrite `cpu: 2000m`
//! into the `"2"` the API server serves, and a `kubectl set image` must change one line.

mod common;

use common::*;
use gitcontroller_git::yamledit;
use gitcontroller_sync::*;
use serde_json::{Value, json};

const FILE: &str = "podinfo/deployment.yaml";

fn manifest_text() -> String {
    let path = format!("{}/tests/fixtures/{FILE}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// A live Deployment captured from the API server (applied server-side by git-controller),
/// completed with what a full kube-apiserver adds that kubelite does not: the defaults of
/// `SetDefaults_Deployment`, `SetDefaults_PodSpec`, `SetDefaults_Container` and
/// `SetDefaults_Probe` (owned by no manager, as for any object made by server-side apply),
/// the revision annotation and status of the deployment controller.
fn as_served(capture: &str) -> Value {
    let mut live = fixture(capture);
    // The manifest has no namespace; it lands in `default`.
    live["metadata"]["namespace"] = json!("default");
    live["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "1"});
    live["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .extend([
            json!({"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {
                    ".": {}, "f:deployment.kubernetes.io/revision": {}}}}}),
            json!({"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                "subresource": "status", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:replicas": {}, "f:observedGeneration": {}}}}),
        ]);
    let spec = &mut live["spec"];
    spec["strategy"]["rollingUpdate"]["maxSurge"] = json!("25%");
    let pod = &mut spec["template"]["spec"];
    pod["dnsPolicy"] = json!("ClusterFirst");
    pod["restartPolicy"] = json!("Always");
    pod["schedulerName"] = json!("default-scheduler");
    pod["securityContext"] = json!({});
    pod["terminationGracePeriodSeconds"] = json!(30);
    let container = &mut pod["containers"][0];
    container["terminationMessagePath"] = json!("/dev/termination-log");
    container["terminationMessagePolicy"] = json!("File");
    for probe in ["livenessProbe", "readinessProbe"] {
        container[probe]["failureThreshold"] = json!(3);
        container[probe]["periodSeconds"] = json!(10);
        container[probe]["successThreshold"] = json!(1);
    }
    live["status"] = json!({"observedGeneration": 1, "replicas": 1});
    live
}

/// The repository applies everything, except that the containers come from the cluster.
fn podinfo_case(live: Value, types: &[ResourceType]) -> Case {
    let (mut manifests, diagnostics) =
        parse_manifests(&[SourceFile::new(FILE, manifest_text())], types);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut case = Case::new(vec![
        rule("all-from-git", SyncTo::Kubernetes, &[]),
        rule(
            "containers-to-git",
            SyncTo::Git,
            &["/spec/template/spec/containers"],
        ),
    ]);
    case.manifests.append(&mut manifests);
    case.live(live)
}

#[test]
fn first_sync_writes_nothing_to_git() {
    let live = as_served("server/podinfo-deployment.json");
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["limits"]["cpu"], "2");
    let types = schema_types();
    let case = podinfo_case(live, &types);
    let plan = plan_with(&case, &types);
    assert!(plan.is_noop() && plan.to_confirm.is_empty(), "{plan:#?}");
    assert_eq!(plan.noops.len(), 1);

    // Without the schema, the commit nobody asked for: `cpu: 2000m` became "2".
    let without: Vec<ResourceType> = types.into_iter().map(|t| t.with_schema(None)).collect();
    let plan = plan_with(&case, &without);
    let (_, _, object, paths) = single_write(&plan);
    assert_eq!(paths, ["/spec/template/spec/containers"]);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "2"
    );
}

#[test]
fn set_image_writes_one_line() {
    // `kubectl set image` took the image over (its Update entry owns only `f:image`).
    let live = as_served("server/podinfo-deployment-set-image.json");
    let types = schema_types();
    let case = podinfo_case(live, &types);
    let plan = plan_with(&case, &types);
    assert!(
        plan.to_cluster.is_empty() && plan.to_confirm.is_empty(),
        "{plan:#?}"
    );
    let (file, doc_index, object, paths) = single_write(&plan);
    assert_eq!((file, doc_index), (FILE, Some(0)));
    assert_eq!(paths, ["/spec/template/spec/containers"]);

    let before = manifest_text();
    let after = yamledit::update_document(&before, 0, object).unwrap();
    let changed: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(
        changed,
        [(
            "        image: ghcr.io/stefanprodan/podinfo:6.14.1",
            "        image: ghcr.io/stefanprodan/podinfo:6.15.0"
        )]
    );

    // Git now has the new image: the next plan is quiet.
    let mut after_write = case.clone();
    after_write.manifests[0].object = object.clone().into();
    assert!(plan_with(&after_write, &types).is_noop());
}

#[test]
fn a_container_added_live_is_written_after_the_ones_git_has() {
    let mut live = as_served("server/podinfo-deployment.json");
    live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debug", "image": "busybox", "resources": {"limits": {"cpu": "1"}}}));
    live["metadata"]["managedFields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"debug\"}": {".": {}, "f:name": {}, "f:image": {}, "f:resources": {"f:limits": {"f:cpu": {}}}}
            }}}}}}));
    let types = schema_types();
    let plan = plan_with(&podinfo_case(live, &types), &types);
    let (_, _, object, _) = single_write(&plan);
    let containers = object["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["podinfod", "debug"]);
    // Git's container is as it was, spelling included.
    assert_eq!(containers[0]["resources"]["limits"]["cpu"], "2000m");
    let original: Value = serde_saphyr::from_str(&manifest_text()).unwrap();
    assert_eq!(
        containers[0],
        original["spec"]["template"]["spec"]["containers"][0]
    );
}
