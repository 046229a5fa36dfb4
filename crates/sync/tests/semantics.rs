//! One test (or a few) per rule of docs/sync-semantics.md.

mod common;

use std::collections::BTreeSet;

use common::*;
use gitcontroller_sync::*;
use serde_json::{Value, json};

fn k8s_all() -> Rule {
    rule("all-from-git", SyncTo::Kubernetes, &[])
}

fn git_all() -> Rule {
    rule("all-to-git", SyncTo::Git, &[])
}

fn cm_with(name: &str, data: Value, labels: Value) -> Value {
    let mut cm = configmap(name, data);
    cm["metadata"]["labels"] = labels;
    cm
}

// --- rule matching ---------------------------------------------------------------------------

#[test]
fn label_selector_is_evaluated_on_live_when_it_exists_else_on_the_manifest() {
    let mut r = k8s_all();
    r.label_selector = Some(LabelSelector::parse("sync=yes").unwrap());
    // Git says yes, live says no: live decides, nothing happens.
    let case = Case::new(vec![r.clone()])
        .git(
            "a.yaml",
            cm_with("a", json!({"k": "git"}), json!({"sync": "yes"})),
        )
        .live(cm_with("a", json!({"k": "live"}), json!({"sync": "no"})));
    let plan = case.plan();
    assert!(plan.is_noop() && plan.noops.is_empty());
    assert_eq!(plan.diagnostics[0].reason, DiagnosticReason::NoMatchingRule);
    // Live says yes: selected, Git's data applied (labels too, as the manifest sets them).
    let case = Case::new(vec![r.clone()])
        .git(
            "a.yaml",
            cm_with("a", json!({"k": "git"}), json!({"sync": "no"})),
        )
        .live(cm_with("a", json!({"k": "live"}), json!({"sync": "yes"})));
    let plan = case.plan();
    let (body, _, _) = single_apply(&plan);
    assert_eq!(body["data"], json!({"k": "git"}));
    // No live object: the manifest decides.
    let case = Case::new(vec![r]).git("a.yaml", cm_with("a", json!({}), json!({"sync": "yes"})));
    assert!(single_apply(&case.plan()).1, "created");
}

#[test]
fn resources_match_by_plural_from_discovery() {
    let mut r = k8s_all();
    r.resources = vec!["configmaps".into()];
    let case = Case::new(vec![r.clone()]).git("a.yaml", configmap("a", json!({})));
    assert_eq!(case.plan().to_cluster.len(), 1);
    r.resources = vec!["secrets".into()];
    let case = Case::new(vec![r]).git("a.yaml", configmap("a", json!({})));
    assert!(case.plan().is_noop());
}

// --- filters and precedence ------------------------------------------------------------------

fn drifted_everywhere() -> Case {
    Case::default()
        .git(
            "a.yaml",
            cm_with("a", json!({"x": "git", "y": "git"}), json!({"l": "git"})),
        )
        .live(cm_with(
            "a",
            json!({"x": "live", "y": "live"}),
            json!({"l": "live"}),
        ))
}

#[test]
fn the_longest_filter_wins() {
    let mut case = drifted_everywhere();
    case.rules = vec![k8s_all(), rule("x-to-git", SyncTo::Git, &["/data/x"])];
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/data/y", "/metadata/labels"]);
    assert_eq!(body["data"], json!({"x": "live", "y": "git"}));
    let (_, _, object, paths) = single_write(&plan);
    assert_eq!(paths, ["/data/x"]);
    assert_eq!(object["data"], json!({"x": "live", "y": "git"}));
    assert_eq!(object["metadata"]["labels"], json!({"l": "git"}));
}

#[test]
fn equal_filters_tie_break_on_priority_then_name() {
    let mut case = drifted_everywhere();
    let mut git = rule("b-git", SyncTo::Git, &["/data"]);
    git.priority = 1;
    case.rules = vec![rule("a-k8s", SyncTo::Kubernetes, &["/data"]), git.clone()];
    let plan = case.plan();
    assert!(plan.to_cluster.is_empty());
    assert_eq!(single_write(&plan).3, ["/data"]);

    git.priority = 0;
    case.rules = vec![rule("a-k8s", SyncTo::Kubernetes, &["/data"]), git];
    let plan = case.plan();
    assert!(plan.to_git.is_empty(), "same priority: a-k8s sorts first");
    assert_eq!(single_apply(&plan).2, ["/data"]);

    // Whatever the input order.
    case.rules.reverse();
    assert_eq!(case.plan().to_cluster.len(), 1);
}

#[test]
fn paths_no_rule_covers_are_left_alone() {
    let mut case = drifted_everywhere();
    case.rules = vec![rule("labels", SyncTo::Kubernetes, &["/metadata/labels"])];
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/metadata/labels"]);
    assert_eq!(
        body["data"],
        json!({"x": "live", "y": "live"}),
        "uncovered: live value kept"
    );
    assert!(plan.to_git.is_empty());
}

#[test]
fn ignore_governs_nothing_moves() {
    let mut case = drifted_everywhere();
    case.rules = vec![k8s_all(), rule("hands-off", SyncTo::Ignore, &["/data"])];
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/metadata/labels"]);
    assert_eq!(body["data"], json!({"x": "live", "y": "live"}));
    case.rules = vec![rule("hands-off", SyncTo::Ignore, &[])];
    let plan = case.plan();
    assert!(plan.is_noop());
    assert_eq!(plan.counts.ignored, 1);
}

fn with_list(list: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": list}}, "replicas": 1}
    })
}

#[test]
fn arrays_are_atomic_and_filters_inside_them_govern_the_whole_array() {
    let git = with_list(json!([{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]));
    let live = with_list(json!([{"name": "a", "image": "2"}, {"name": "b", "image": "1"}]));
    let rules = vec![
        k8s_all(),
        rule(
            "first-image",
            SyncTo::Git,
            &["/spec/template/spec/containers/0/image"],
        ),
    ];
    let case = Case::new(rules).git("d.yaml", git).live(live.clone());
    let plan = case.plan();
    assert!(plan.to_cluster.is_empty());
    let (_, _, object, paths) = single_write(&plan);
    assert_eq!(paths, ["/spec/template/spec/containers"]);
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"],
        live["spec"]["template"]["spec"]["containers"]
    );
}

#[test]
fn a_filter_inside_a_scalar_governs_nothing() {
    let mut case = drifted_everywhere();
    case.rules = vec![rule("odd", SyncTo::Kubernetes, &["/data/x/deeper"])];
    assert!(case.plan().is_noop());
}

// --- comparing -------------------------------------------------------------------------------

#[test]
fn git_to_cluster_compares_only_what_the_manifest_sets() {
    let manifest = with_list(json!([{"name": "a", "image": "1"}]));
    let mut live = with_list(json!([
        {"name": "a", "image": "1", "imagePullPolicy": "IfNotPresent", "resources": {}}
    ]));
    live["spec"]["strategy"] = json!({"type": "RollingUpdate"});
    live["status"] = json!({"replicas": 1});
    live["metadata"]["uid"] = json!("u");
    let case = Case::new(vec![k8s_all()])
        .git("d.yaml", manifest.clone())
        .live(live.clone());
    assert!(case.plan().is_noop(), "server defaults are not drift");

    // An element more or less is.
    let mut live2 = live.clone();
    live2["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "b"}));
    let case = Case::new(vec![k8s_all()])
        .git("d.yaml", manifest.clone())
        .live(live2);
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/spec"]);
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "1"}])
    );

    // Numbers and their string spelling are the same value.
    let case = Case::new(vec![k8s_all()])
        .git("a.yaml", configmap("a", json!({"n": 1})))
        .live(configmap("a", json!({"n": "1"})));
    assert!(case.plan().is_noop());
}

#[test]
fn cluster_to_git_compares_the_clean_export_exactly() {
    let mut live = configmap("a", json!({"k": "v"}));
    live["metadata"]["resourceVersion"] = json!("9");
    live["metadata"]["annotations"] = json!({(export::LAST_APPLIED_ANNOTATION): "{}"});
    let case = Case::new(vec![git_all()])
        .git("a.yaml", configmap("a", json!({"k": "v"})))
        .live(live.clone());
    assert!(
        case.plan().is_noop(),
        "server fields and last-applied are not exported"
    );

    // A key Git has and live lacks is removed from Git.
    let case = Case::new(vec![git_all()])
        .git("a.yaml", configmap("a", json!({"k": "v", "old": "x"})))
        .live(live);
    let plan = case.plan();
    let (_, _, object, _) = single_write(&plan);
    assert_eq!(object, &configmap("a", json!({"k": "v"})));
}

#[test]
fn a_field_removed_from_git_that_we_applied_is_removed_from_the_cluster() {
    // Live was applied by git-controller with data.a and data.b; Git now only has a.
    let mut live = configmap("a", json!({"a": "1", "b": "2"}));
    live["metadata"]["managedFields"] = json!([{
        "manager": "git-controller", "operation": "Apply", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}}
    }]);
    let case = Case::new(vec![k8s_all()])
        .git("a.yaml", configmap("a", json!({"a": "1"})))
        .live(live.clone());
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/data"]);
    assert_eq!(
        body["data"],
        json!({"a": "1"}),
        "b is left out, so the server removes it"
    );

    // Owned by someone else: not ours to remove.
    live["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
    let case = Case::new(vec![k8s_all()])
        .git("a.yaml", configmap("a", json!({"a": "1"})))
        .live(live);
    assert!(case.plan().is_noop());
}

#[test]
fn applying_an_empty_map_does_not_claim_what_others_put_in_it() {
    // We applied `data: {}`; someone else added data.x. Git still says `data: {}`.
    let mut live = configmap("a", json!({"x": "theirs"}));
    live["metadata"]["managedFields"] = json!([
        {"manager": "git-controller", "operation": "Apply", "apiVersion": "v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}},
        {"manager": "someone", "operation": "Update", "apiVersion": "v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}
    ]);
    let rules = vec![k8s_all(), rule("x", SyncTo::Kubernetes, &["/data/x"])];
    let case = Case::new(rules)
        .git("a.yaml", configmap("a", json!({})))
        .live(live);
    assert!(case.plan().is_noop());
}

#[test]
fn apply_body_keeps_what_we_own_under_other_rules() {
    // We applied label `team` before; labels are now git-directed and Git lost it. The apply
    // for the data drift must still carry `team`, or server-side apply would delete it.
    let mut live = cm_with(
        "a",
        json!({"k": "live"}),
        json!({"team": "a", "other": "x"}),
    );
    live["metadata"]["managedFields"] = json!([
        {"manager": "git-controller", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:team": {}}}}},
        {"manager": "someone", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:other": {}}}}}
    ]);
    let case = Case::new(vec![
        k8s_all(),
        rule("labels", SyncTo::Git, &["/metadata/labels"]),
    ])
    .git("a.yaml", cm_with("a", json!({"k": "git"}), json!({})))
    .live(live);
    let plan = case.plan();
    let (body, _, paths) = single_apply(&plan);
    assert_eq!(paths, ["/data"]);
    assert_eq!(
        body["metadata"]["labels"],
        json!({"team": "a"}),
        "ours kept at its live value, other managers' labels not claimed"
    );
    let (_, _, object, _) = single_write(&plan);
    assert_eq!(
        object["metadata"]["labels"],
        json!({"team": "a", "other": "x"})
    );
}

#[test]
fn apply_body_has_identity_and_no_server_fields() {
    let mut manifest = configmap("a", json!({"k": "git"}));
    manifest["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    manifest["metadata"]["resourceVersion"] = json!("1");
    manifest["metadata"]["uid"] = json!("stale");
    manifest["status"] = json!({"x": 1});
    let case = Case::new(vec![k8s_all()])
        .git("a.yaml", manifest.clone())
        .live(configmap("a", json!({"k": "live"})));
    let plan = case.plan();
    let (body, create, _) = single_apply(&plan);
    assert!(!create);
    assert_eq!(
        body,
        &json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default"},
            "data": {"k": "git"}
        })
    );
    // A stale resourceVersion in Git is not drift either.
    let case = Case::new(vec![k8s_all()])
        .git("a.yaml", manifest)
        .live(configmap("a", json!({"k": "git"})));
    assert!(case.plan().is_noop());
}

#[test]
fn the_manifest_api_version_is_kept_and_not_compared() {
    let mut manifest = with_list(json!([]));
    manifest["apiVersion"] = json!("apps/v1beta2");
    manifest["metadata"]["labels"] = json!({"a": "old"});
    let mut live = with_list(json!([]));
    live["metadata"]["labels"] = json!({"a": "new"});
    let case = Case::new(vec![git_all()])
        .git("d.yaml", manifest)
        .live(live);
    let plan = case.plan();
    let (_, _, object, paths) = single_write(&plan);
    assert_eq!(paths, ["/metadata/labels"]);
    assert_eq!(object["apiVersion"], json!("apps/v1beta2"));
    assert_eq!(object["metadata"]["labels"], json!({"a": "new"}));
}

// --- existence -------------------------------------------------------------------------------

#[test]
fn only_in_git_and_kubernetes_is_created_whole() {
    let rules = vec![
        k8s_all(),
        rule("images", SyncTo::Git, &["/spec/template/spec/containers"]),
    ];
    let mut manifest = with_list(json!([{"name": "a", "image": "1"}]));
    manifest["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let case = Case::new(rules).git("d.yaml", manifest.clone());
    let plan = case.plan();
    let (body, create, paths) = single_apply(&plan);
    assert!(create);
    assert_eq!(paths, [""]);
    manifest["metadata"]["namespace"] = json!("default");
    assert_eq!(
        body, &manifest,
        "the git-directed containers are created too"
    );
    assert_eq!(plan.counts.to_kubernetes, 1);
}

#[test]
fn only_live_and_git_is_exported_to_a_new_file() {
    let mut case = Case::new(vec![git_all()]).live(configmap("a", json!({"k": "v"})));
    case.options.layout_root = "clusters/prod".into();
    let plan = case.plan();
    let (file, doc_index, object, _) = single_write(&plan);
    assert_eq!(file, "clusters/prod/default/configmaps/a.yaml");
    assert_eq!(doc_index, None);
    assert_eq!(object, &configmap("a", json!({"k": "v"})));

    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"}, "rules": []});
    let case = Case::new(vec![git_all()]).live(role);
    assert_eq!(
        single_write(&case.plan()).0,
        "_cluster/clusterroles.rbac.authorization.k8s.io/view.yaml"
    );
}

#[test]
fn a_new_file_never_overwrites_an_existing_one() {
    // Someone keeps an unrelated object at the path the layout would pick.
    let case = Case::new(vec![git_all()])
        .git("default/configmaps/a.yaml", configmap("b", json!({})))
        .live(configmap("b", json!({})))
        .live(configmap("a", json!({})));
    let plan = case.plan();
    let (file, ..) = single_write(&plan);
    assert_eq!(file, "default/configmaps/a~2.yaml");
}

#[test]
fn deleted_live_and_git_is_removed_from_git() {
    let case = Case::new(vec![git_all()])
        .git("all.yaml", configmap("a", json!({})))
        .git("all.yaml", configmap("b", json!({})));
    let plan = case.plan();
    assert_eq!(
        plan.to_git,
        [
            GitAction::Remove {
                id: cm_id("a"),
                file: "all.yaml".into(),
                doc_index: 0
            },
            GitAction::Remove {
                id: cm_id("b"),
                file: "all.yaml".into(),
                doc_index: 1
            },
        ]
    );
    assert!(plan.to_cluster.is_empty());
}

#[test]
fn prune_deletes_only_what_the_inventory_lists() {
    let mut case = Case::new(vec![k8s_all()])
        .live(configmap("ours", json!({})))
        .live(configmap("theirs", json!({})));
    case.inventory = BTreeSet::from([cm_id("ours")]);
    let plan = case.plan();
    assert!(plan.is_noop(), "prune is off");
    assert_eq!(plan.noops, [cm_id("ours")], "theirs is not ours to report");
    assert_eq!(plan.counts.to_kubernetes, 1);

    case.options.prune = true;
    let plan = case.plan();
    assert_eq!(
        plan.to_cluster,
        [ClusterAction::Delete { id: cm_id("ours") }]
    );

    // While a file does not parse, the manifest might be in it: nothing is pruned.
    case.skipped = vec![SkippedInput::new("broken.yaml", SkipReason::ParseError)];
    let plan = case.plan();
    assert!(plan.is_noop());
    assert_eq!(plan.diagnostics.len(), 1);
    assert_eq!(
        plan.diagnostics[0].reason,
        DiagnosticReason::HeldBack(HoldCause::IncompleteSource)
    );
    assert!(plan.diagnostics[0].message.contains("broken.yaml"));
    assert!(plan.noops.is_empty());
}

#[test]
fn unparsed_files_hold_back_new_exports_too() {
    let mut case = Case::new(vec![git_all()]).live(configmap("a", json!({})));
    case.skipped = vec![SkippedInput::new("broken.yaml", SkipReason::ParseError)];
    let plan = case.plan();
    assert!(plan.is_noop());
    assert_eq!(
        plan.diagnostics[0].reason,
        DiagnosticReason::HeldBack(HoldCause::IncompleteSource)
    );
}

#[test]
fn existence_follows_the_root_rule_only() {
    // A filtered kubernetes rule does not create, a filtered git rule does not export.
    let rules = vec![
        rule("data", SyncTo::Kubernetes, &["/data"]),
        rule("labels", SyncTo::Git, &["/metadata/labels"]),
    ];
    let case = Case::new(rules.clone()).git("a.yaml", configmap("a", json!({})));
    assert!(case.plan().is_noop());
    let case = Case::new(rules).live(configmap("a", json!({})));
    assert!(case.plan().is_noop());
}

// --- secrets ---------------------------------------------------------------------------------

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"}, "data": data})
}

#[test]
fn secrets_are_not_written_to_git_unless_allowed() {
    let case = Case::new(vec![git_all()]).live(secret(json!({"pw": "aHVudGVyMg=="})));
    let plan = case.plan();
    assert!(plan.is_noop());
    assert!(plan.noops.is_empty(), "refused is not in sync");
    assert_eq!(plan.diagnostics.len(), 1);
    assert_eq!(
        plan.diagnostics[0].reason,
        DiagnosticReason::SecretExportRefused
    );
    assert_eq!(
        plan.diagnostics[0].object,
        Some(ObjectId::new("", "Secret", Some("default"), "s"))
    );

    let case = Case::new(vec![git_all()])
        .git("s.yaml", secret(json!({"pw": "b2xk"})))
        .live(secret(json!({"pw": "aHVudGVyMg=="})));
    let plan = case.plan();
    assert!(plan.to_git.is_empty());
    assert_eq!(
        plan.diagnostics[0].reason,
        DiagnosticReason::SecretExportRefused
    );

    let mut allowed = case.clone();
    allowed.options.allow_plaintext_secrets = true;
    assert_eq!(
        single_write(&allowed.plan()).2["data"],
        json!({"pw": "aHVudGVyMg=="})
    );

    // Applying secrets from Git and removing them from Git is fine.
    let case = Case::new(vec![k8s_all()]).git("s.yaml", secret(json!({})));
    assert!(single_apply(&case.plan()).1);
    let case = Case::new(vec![git_all()]).git("s.yaml", secret(json!({})));
    assert!(matches!(case.plan().to_git[..], [GitAction::Remove { .. }]));
}

// --- duplicates, diagnostics, counts, order --------------------------------------------------

#[test]
fn duplicate_manifests_are_reported_and_never_applied() {
    let case = Case::new(vec![k8s_all()])
        .git("b.yaml", configmap("a", json!({"v": "1"})))
        .git("a.yaml", configmap("a", json!({"v": "2"})))
        .live(configmap("a", json!({"v": "3"})));
    let plan = case.plan();
    assert!(plan.is_noop());
    assert!(plan.noops.is_empty());
    let d = &plan.diagnostics[0];
    assert_eq!(
        (d.reason, d.severity),
        (DiagnosticReason::Duplicate, Severity::Error)
    );
    assert!(
        d.message.contains("a.yaml (document 0)") && d.message.contains("b.yaml (document 0)"),
        "{}",
        d.message
    );
    assert_eq!(d.object, Some(cm_id("a")));
}

#[test]
fn a_live_object_listed_twice_is_skipped() {
    let case = Case::new(vec![git_all()])
        .live(configmap("a", json!({"v": "1"})))
        .live(configmap("a", json!({"v": "2"})));
    let plan = case.plan();
    assert!(plan.is_noop() && plan.noops.is_empty());
    assert_eq!(plan.diagnostics[0].reason, DiagnosticReason::Duplicate);
    assert_eq!(plan.diagnostics[0].severity, Severity::Warning);
}

#[test]
fn an_explicit_root_filter_decides_existence_too() {
    let case = Case::new(vec![rule("root", SyncTo::Kubernetes, &[""])])
        .git("a.yaml", configmap("a", json!({})));
    let plan = case.plan();
    assert!(single_apply(&plan).1);
}

#[test]
fn unknown_live_kinds_are_reported() {
    let case = Case::new(vec![git_all()])
        .live(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}))
        .live(json!({"metadata": {"name": "no-kind"}}));
    let plan = case.plan();
    assert!(plan.is_noop());
    let reasons: Vec<_> = plan.diagnostics.iter().map(|d| d.reason).collect();
    assert_eq!(
        reasons,
        [DiagnosticReason::NotAnObject, DiagnosticReason::UnknownKind]
    );
}

#[test]
fn counts_follow_the_root_rule_else_the_strongest_rule() {
    let mut ignore_cm = rule("ignore-b", SyncTo::Ignore, &[]);
    ignore_cm.label_selector = Some(LabelSelector::parse("skip").unwrap());
    let mut labels_git = rule("labels-to-git", SyncTo::Git, &["/metadata/labels"]);
    labels_git.kinds = vec!["Secret".into()];
    let mut k8s_cm = k8s_all();
    k8s_cm.kinds = vec!["ConfigMap".into()];
    k8s_cm.label_selector = Some(LabelSelector::parse("!skip").unwrap());
    let case = Case::new(vec![ignore_cm, labels_git, k8s_cm])
        .git("a.yaml", configmap("a", json!({})))
        .git("b.yaml", cm_with("b", json!({}), json!({"skip": "1"})))
        .git("s.yaml", secret(json!({})));
    let plan = case.plan();
    assert_eq!(
        plan.counts,
        Counts {
            to_kubernetes: 1,
            to_git: 1,
            ignored: 1
        }
    );
}

#[test]
fn actions_are_sorted_by_object_id() {
    let mut case = Case::new(vec![k8s_all()]);
    for name in ["c", "a", "b"] {
        case = case.git(&format!("{name}.yaml"), configmap(name, json!({})));
    }
    case = case.git("d.yaml", with_list(json!([])));
    let ids: Vec<String> = case
        .plan()
        .to_cluster
        .iter()
        .map(|a| a.id().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "ConfigMap default/a",
            "ConfigMap default/b",
            "ConfigMap default/c",
            "apps/Deployment default/d"
        ]
    );
}

#[test]
fn manifests_without_a_rule_are_reported_as_info() {
    let case = Case::new(vec![]).git("a.yaml", configmap("a", json!({})));
    let plan = case.plan();
    assert_eq!(plan.diagnostics.len(), 1);
    assert_eq!(plan.diagnostics[0].severity, Severity::Info);
    assert_eq!(plan.diagnostics[0].file.as_deref(), Some("a.yaml"));
    assert_eq!(plan.counts, Counts::default());
}
