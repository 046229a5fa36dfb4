//! Never act on a source that was not read whole (issue 11): skipped files and documents
//! hold back prune and new files, `List` documents are read item by item, invalid rules hold
//! back everything they could select, and an object whose name cannot become a path is
//! skipped alone.

mod common;

use std::collections::BTreeSet;

use common::*;
use gitcontroller_sync::*;
use serde_json::{Value, json};

fn gadget(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "example.org/v1",
        "kind": "Gadget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"size": 1}
    })
}

fn deployment(ns: &str, name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas}
    })
}

fn kinds(mut r: Rule, kinds: &[&str]) -> Rule {
    r.kinds = kinds.iter().map(|k| (*k).to_owned()).collect();
    r
}

fn held(plan: &Plan, cause: HoldCause) -> Vec<&Diagnostic> {
    plan.diagnostics
        .iter()
        .filter(|d| d.reason == DiagnosticReason::HeldBack(cause))
        .collect()
}

/// ConfigMaps come from Git (with prune), Gadgets are exported to Git. `a` was applied
/// before and its manifest is in `a.yaml`; `b.yaml` is read; Gadget `w` is new in the
/// cluster.
fn prune_and_export_case() -> Case {
    let mut case = Case::new(vec![
        kinds(rule("configmaps", SyncTo::Kubernetes, &[]), &["ConfigMap"]),
        kinds(rule("gadgets", SyncTo::Git, &[]), &["Gadget"]),
    ])
    .git("b.yaml", configmap("b", json!({"k": "v"})))
    .live(configmap("a", json!({"k": "v"})))
    .live(gadget("default", "w"));
    case.inventory = BTreeSet::from([cm_id("a")]);
    case.options.prune = true;
    case
}

#[test]
fn files_the_git_layer_skipped_hold_back_prune_and_new_files() {
    // The premise of the Latin-1 case: such a file is no `String`, so the Git layer skips it.
    let latin1 = b"# caf\xe9\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n".to_vec();
    assert!(String::from_utf8(latin1).is_err());

    // Read whole, `a` is pruned and `w` exported: what must not happen below.
    let complete = prune_and_export_case().plan();
    assert!(matches!(
        &complete.to_cluster[..],
        [
            ClusterAction::Delete { .. },
            ClusterAction::Apply { create: true, .. }
        ]
    ));
    assert!(matches!(
        &complete.to_git[..],
        [GitAction::Write {
            doc_index: None,
            ..
        }]
    ));

    for reason in [
        SkipReason::NotUtf8,
        SkipReason::TooLarge,
        SkipReason::Symlink,
        SkipReason::BudgetExceeded,
    ] {
        let mut case = prune_and_export_case();
        let skipped = SkippedInput::new("a.yaml", reason);
        // As the controller does: the Git layer's skipped files become diagnostics too.
        let diagnostics = vec![skipped.diagnostic()];
        assert_eq!(skipped_inputs(&diagnostics), std::slice::from_ref(&skipped));
        case.skipped = skipped_inputs(&diagnostics);
        let plan = case.plan();

        // `b` is still created; nothing is deleted, no new file written.
        let (_, create, _) = single_apply(&plan);
        assert!(create, "{reason:?}");
        assert!(plan.to_git.is_empty(), "{reason:?}: {:#?}", plan.to_git);
        let held = held(&plan, HoldCause::IncompleteSource);
        let shown: Vec<(String, &str)> = held
            .iter()
            .map(|d| (d.object.as_ref().unwrap().to_string(), d.message.as_str()))
            .collect();
        assert_eq!(held.len(), 2, "{reason:?}: {shown:#?}");
        assert_eq!(shown[0].0, "ConfigMap default/a");
        assert!(shown[0].1.starts_with("would be deleted from the cluster"));
        assert_eq!(shown[1].0, "example.org/Gadget default/w");
        assert!(
            shown[1].1.starts_with(
                "would be exported to the new file default/gadgets.example.org/w.yaml"
            )
        );
        let named = format!("a.yaml ({})", reason.describe());
        assert!(
            held.iter().all(|d| d.message.contains(&named)),
            "{shown:#?}"
        );
        assert!(plan.noops.is_empty());
        assert_eq!(
            diagnostics[0].reason,
            DiagnosticReason::SkippedInput(reason)
        );
        assert_eq!(diagnostics[0].file.as_deref(), Some("a.yaml"));
    }
}

#[test]
fn generate_name_documents_are_reported_and_hold_back_prune() {
    let files = [
        SourceFile::new(
            "jobs.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: run-\n",
        ),
        SourceFile::new(
            "b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: v}\n",
        ),
    ];
    let (manifests, diagnostics) = parse_manifests(&files, &types());
    assert_eq!(manifests.len(), 1);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    assert_eq!(
        diagnostics[0].reason,
        DiagnosticReason::SkippedInput(SkipReason::GenerateName)
    );
    assert_eq!(diagnostics[0].severity, Severity::Warning);
    assert_eq!(diagnostics[0].file.as_deref(), Some("jobs.yaml"));

    let mut case = prune_and_export_case();
    case.manifests = manifests;
    case.skipped = skipped_inputs(&diagnostics);
    let plan = case.plan();
    assert!(
        plan.to_cluster
            .iter()
            .all(|a| !matches!(a, ClusterAction::Delete { .. }))
    );
    assert!(plan.to_git.is_empty());
    assert_eq!(held(&plan, HoldCause::IncompleteSource).len(), 2);
    assert!(
        held(&plan, HoldCause::IncompleteSource)[0]
            .message
            .contains("jobs.yaml (uses generateName)")
    );
}

const KUBE_PROMETHEUS: [&str; 3] = [
    "grafana-dashboardDefinitions.yaml",
    "prometheus-roleSpecificNamespaces.yaml",
    "prometheus-roleBindingSpecificNamespaces.yaml",
];

fn kube_prometheus() -> (Vec<Manifest>, Vec<Diagnostic>) {
    let files: Vec<SourceFile> = KUBE_PROMETHEUS
        .iter()
        .map(|name| SourceFile::new(*name, fixture_text(&format!("kube-prometheus/{name}"))))
        .collect();
    parse_manifests(&files, &types())
}

#[test]
fn kube_prometheus_lists_are_applied_item_by_item() {
    let (manifests, diagnostics) = kube_prometheus();
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    let found: Vec<(String, &str, usize, Option<usize>)> = manifests
        .iter()
        .map(|m| (m.id.to_string(), m.file.as_str(), m.doc_index, m.item_index))
        .collect();
    let [dashboards, roles, bindings] = KUBE_PROMETHEUS;
    let mut expected = Vec::new();
    for (i, name) in ["alertmanager-overview", "apiserver", "cluster-total"]
        .into_iter()
        .enumerate()
    {
        let id = format!("ConfigMap monitoring/grafana-dashboard-{name}");
        expected.push((id, dashboards, 0, Some(i)));
    }
    for (kind, file) in [("Role", roles), ("RoleBinding", bindings)] {
        for (i, ns) in ["default", "kube-system", "monitoring"]
            .into_iter()
            .enumerate()
        {
            let id = format!("rbac.authorization.k8s.io/{kind} {ns}/prometheus-k8s");
            expected.push((id, file, 0, Some(i)));
        }
    }
    assert_eq!(found, expected);

    // Applied like kubectl applies them: each item on its own.
    let mut case = Case::new(vec![rule("all", SyncTo::Kubernetes, &[])]);
    case.manifests = manifests;
    let plan = case.plan();
    assert_eq!(plan.to_cluster.len(), 9);
    assert!(plan.diagnostics.is_empty(), "{:#?}", plan.diagnostics);
    let role = plan
        .to_cluster
        .iter()
        .find_map(|a| match a {
            ClusterAction::Apply {
                id, object, create, ..
            } if id.kind == "Role" && id.namespace.as_deref() == Some("kube-system") => {
                assert!(create);
                Some(object)
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(role["apiVersion"], "rbac.authorization.k8s.io/v1");
    assert_eq!(role["rules"][0]["resources"], json!(["endpointslices"]));
    assert!(role.get("items").is_none());
}

#[test]
fn list_items_are_never_written_back_to_git() {
    let (manifests, _) = kube_prometheus();
    let dashboards: Vec<&Manifest> = manifests
        .iter()
        .filter(|m| m.id.kind == "ConfigMap")
        .collect();
    // Dashboard 0 was edited in Grafana's ConfigMap, dashboard 1 deleted, dashboard 2 is as
    // in Git; a ConfigMap in a document of its own was edited as well.
    let mut edited = Value::clone(&dashboards[0].object);
    edited["data"]["alertmanager-overview.json"] = json!("{}");
    let mut case = Case::new(vec![kinds(
        rule("to-git", SyncTo::Git, &[]),
        &["ConfigMap"],
    )])
    .git("own.yaml", configmap("own", json!({"k": "v"})))
    .live(edited)
    .live(Value::clone(&dashboards[2].object))
    .live(configmap("own", json!({"k": "changed"})));
    case.manifests
        .extend(dashboards.iter().map(|m| (*m).clone()));
    let plan = case.plan();

    // Only the standalone document is written back.
    let (file, doc_index, _, paths) = single_write(&plan);
    assert_eq!(
        (file, doc_index, paths),
        ("own.yaml", Some(0), vec!["/data".to_owned()])
    );
    let held = held(&plan, HoldCause::ListItem);
    let shown: Vec<(String, Option<&str>, &str)> = held
        .iter()
        .map(|d| {
            (
                d.object.as_ref().unwrap().name.clone(),
                d.file.as_deref(),
                d.message.as_str(),
            )
        })
        .collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert_eq!(shown[0].0, "grafana-dashboard-alertmanager-overview");
    assert!(
        shown[0]
            .2
            .starts_with("would be written back to Git (/data)")
    );
    assert!(
        shown[0]
            .2
            .contains("item 0 of the List in document 0 of grafana-dashboardDefinitions.yaml")
    );
    assert_eq!(shown[1].0, "grafana-dashboard-apiserver");
    assert!(shown[1].2.starts_with("would be removed from Git"));
    assert!(
        shown
            .iter()
            .all(|(_, file, _)| *file == Some("grafana-dashboardDefinitions.yaml"))
    );
    assert_eq!(
        plan.noops,
        [ObjectId::new(
            "",
            "ConfigMap",
            Some("monitoring"),
            "grafana-dashboard-cluster-total"
        )]
    );
}

/// A hotfix in `prod` is protected by a high-priority `ignore` rule, below which everything
/// comes from Git (pruned) and ConfigMaps go to Git.
fn hotfix_case() -> (Case, InvalidRule) {
    let mut protect = rule("protect-prod", SyncTo::Ignore, &[]);
    protect.priority = 100;
    protect.namespaces = vec!["prod".into()];
    // Its labelSelector `hotfix in (yes` did not parse: the rest of its scope is kept.
    let invalid = InvalidRule::new(protect, "labelSelector: unclosed parenthesis");
    let mut case = Case::new(vec![
        rule("from-git", SyncTo::Kubernetes, &[]),
        {
            let mut r = kinds(rule("configmaps-to-git", SyncTo::Git, &[]), &["ConfigMap"]);
            r.priority = 1;
            r
        },
    ])
    .git("prod/web.yaml", deployment("prod", "web", 2))
    .git("default/web.yaml", deployment("default", "web", 2))
    .live(deployment("prod", "web", 5))
    .live(deployment("prod", "old", 1))
    .live(deployment("default", "web", 3))
    .live(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "prod"}}));
    case.inventory = BTreeSet::from([ObjectId::new("apps", "Deployment", Some("prod"), "old")]);
    case.options.prune = true;
    (case, invalid)
}

#[test]
fn an_invalid_protective_rule_keeps_protecting() {
    // Dropping the broken rule (the old behaviour) reverts the hotfix, prunes and exports.
    let (mut case, invalid) = hotfix_case();
    let dropped = case.plan();
    let touched: Vec<String> = dropped
        .to_cluster
        .iter()
        .map(|a| a.id().to_string())
        .chain(dropped.to_git.iter().map(|a| a.id().to_string()))
        .collect();
    assert_eq!(
        touched,
        [
            "apps/Deployment default/web",
            "apps/Deployment prod/old",
            "apps/Deployment prod/web",
            "ConfigMap prod/settings"
        ]
    );

    // Failing closed: nothing in prod moves in either direction; default still syncs.
    case.invalid_rules = vec![invalid];
    let plan = case.plan();
    let (body, create, paths) = single_apply(&plan);
    assert!(!create);
    assert_eq!(body["metadata"]["namespace"], "default");
    assert_eq!(paths, ["/spec"]);
    assert!(plan.to_git.is_empty());

    let held = held(&plan, HoldCause::InvalidRule);
    let shown: Vec<(Option<String>, Option<&str>, &str)> = held
        .iter()
        .map(|d| {
            (
                d.object.as_ref().map(ToString::to_string),
                d.rule.as_deref(),
                d.message.as_str(),
            )
        })
        .collect();
    assert_eq!(shown.len(), 4, "{shown:#?}");
    assert!(
        shown
            .iter()
            .all(|(_, rule, _)| *rule == Some("protect-prod"))
    );
    // The summary, which has no object, sorts first.
    assert_eq!(shown[0].0, None);
    assert!(
        shown[0].2.contains("unclosed parenthesis")
            && shown[0].2.contains("the 3 objects it could select")
            && shown[0].2.contains("3 actions held back"),
        "{}",
        shown[0].2
    );
    let per_object: Vec<(&str, &str)> = shown[1..]
        .iter()
        .map(|(id, _, message)| (id.as_deref().unwrap(), message.split(';').next().unwrap()))
        .collect();
    assert_eq!(
        per_object,
        // Diagnostics sort by file first; a delete has none.
        [
            (
                "apps/Deployment prod/old",
                "would be deleted from the cluster (pruned)"
            ),
            (
                "ConfigMap prod/settings",
                "would be exported to the new file prod/configmaps/settings.yaml"
            ),
            (
                "apps/Deployment prod/web",
                "would be applied to the cluster (/spec)"
            ),
        ]
    );
    assert!(
        !plan
            .noops
            .iter()
            .any(|id| id.namespace.as_deref() == Some("prod")),
        "held objects are not reported as in sync"
    );
}

#[test]
fn an_object_whose_name_cannot_become_a_path_is_skipped_alone() {
    let case = Case::new(vec![rule("export", SyncTo::Git, &[])])
        // `{"name": "a\b"}` in JSON: a backspace, which no Git path may hold.
        .live(gadget("prod", "a\u{8}b"))
        // A backslash is percent-encoded, so that one is written.
        .live(gadget("prod", "a\\b"))
        .live(configmap("fine", json!({})));
    let plan = case.plan();
    let written: Vec<(&str, &str)> = plan
        .to_git
        .iter()
        .map(|a| match a {
            GitAction::Write {
                id,
                file,
                doc_index: None,
                ..
            } => (id.name.as_str(), file.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        written,
        [
            ("fine", "default/configmaps/fine.yaml"),
            ("a\\b", "prod/gadgets.example.org/a%5Cb.yaml"),
        ]
    );
    let [d] = &plan.diagnostics[..] else {
        panic!("{:#?}", plan.diagnostics)
    };
    assert_eq!(
        (d.severity, d.reason),
        (Severity::Warning, DiagnosticReason::UnsafePath)
    );
    assert_eq!(d.object.as_ref().unwrap().name, "a\u{8}b");
    assert!(d.message.contains("control characters"), "{}", d.message);
}
