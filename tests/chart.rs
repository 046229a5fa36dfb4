//! The Helm chart in `charts/git-controller`, checked with the real `helm` and `kubectl`
//! (from `../shared/kubelite/helm-fetch.sh`) and the tests' cluster (testkit's `cluster`):
//! lint and template are clean, the rendered objects are secure and least-privilege, the API
//! server accepts them (server-side dry run) and `helm install` creates them; the chart's CRDs
//! are the top-level ones; the Grafana dashboard only queries metrics that `/metrics` exposes.

use std::collections::BTreeSet;
use std::process::Output;

mod common;

use common::{Cluster, chart_dir, repo_root, run, run_ok, tools};
use git_controller::metrics::{FAMILIES, Metrics};
use gitcontroller_testkit::cluster::{TestNamespace, client};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::Value;

fn helm(args: &[&str]) -> Output {
    run(&tools().helm, args, None, Cluster::None)
}

fn helm_ok(args: &[&str]) -> String {
    run_ok(&tools().helm, args, None, Cluster::None)
}

/// `helm` against the tests' cluster (install, status, uninstall).
fn helm_in_cluster(args: &[&str]) -> Output {
    run(&tools().helm, args, None, Cluster::Test)
}

fn helm_ok_in_cluster(args: &[&str]) -> String {
    run_ok(&tools().helm, args, None, Cluster::Test)
}

/// A values file in a temporary directory (kept alive by the returned guard).
fn values_file(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, yaml).expect("writing values");
    let path = path.to_str().expect("UTF-8 temp path").to_owned();
    (dir, path)
}

/// `helm template` output as text.
fn template_text(release: &str, namespace: &str, values: &str, extra: &[&str]) -> String {
    let (_dir, file) = values_file(values);
    let chart = chart_dir();
    let mut args = vec![
        "template",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
        "--values",
        &file,
    ];
    args.extend_from_slice(extra);
    helm_ok(&args)
}

fn parse_documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("helm output is not YAML: {e}\n{yaml}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `helm template` output, parsed.
fn template(values: &str) -> Vec<Value> {
    parse_documents(&template_text("rel", "gc-system", values, &[]))
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    kinds
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(docs)))
}

fn all<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// The rule of `role` that grants `resource` in `group`.
fn rule_for<'a>(role: &'a Value, group: &str, resource: &str) -> &'a Value {
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| {
            strings(&r["apiGroups"]).contains(&group)
                && strings(&r["resources"]).contains(&resource)
        })
        .unwrap_or_else(|| panic!("no rule for {group}/{resource} in {role:#}"))
}

/// Nothing in any (Cluster)Role is a wildcard, and no binding grants a built-in broad role.
fn assert_least_privilege(docs: &[Value]) {
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        assert!(role["aggregationRule"].is_null(), "{role:#}");
        for rule in role["rules"].as_array().expect("rules") {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !strings(&rule[field]).iter().any(|s| s.contains('*')),
                    "wildcard in {field}: {role:#}"
                );
            }
            assert!(rule["nonResourceURLs"].is_null(), "{role:#}");
            let verbs = strings(&rule["verbs"]);
            assert!(
                !verbs.iter().any(|v| ["escalate", "bind"].contains(v)),
                "{role:#}"
            );
            if verbs.contains(&"impersonate") {
                assert_eq!(
                    (
                        strings(&rule["apiGroups"]),
                        strings(&rule["resources"]),
                        verbs.clone()
                    ),
                    (vec![""], vec!["serviceaccounts"], vec!["impersonate"]),
                    "ServiceAccounts only, never users or groups: {role:#}"
                );
            }
            if strings(&rule["resources"]).contains(&"secrets") {
                assert!(
                    verbs.iter().all(|v| READ.contains(v)),
                    "secrets are read-only: {role:#}"
                );
            }
        }
    }
    for binding in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
    {
        let role = binding["roleRef"]["name"].as_str().unwrap();
        assert!(
            !["cluster-admin", "admin", "edit", "view"].contains(&role),
            "{binding:#}"
        );
        assert!(
            docs.iter()
                .any(|d| d["metadata"]["name"] == role && d["kind"] == binding["roleRef"]["kind"]),
            "binding to a role the chart does not define: {binding:#}"
        );
    }
}

#[test]
fn chart_crds_are_the_top_level_crds() {
    let top = std::fs::read_dir(repo_root().join("crds")).expect("crds/");
    let mut names = BTreeSet::new();
    for entry in top {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let ours = std::fs::read(entry.path()).unwrap();
        let chart = std::fs::read(chart_dir().join("crds").join(&name)).unwrap_or_else(|e| {
            panic!("charts/git-controller/crds/{name}: {e}; copy it from crds/")
        });
        assert!(
            ours == chart,
            "charts/git-controller/crds/{name} differs from crds/{name}: \
             cp crds/{name} charts/git-controller/crds/"
        );
        names.insert(name);
    }
    let chart_files: BTreeSet<String> = std::fs::read_dir(chart_dir().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        chart_files, names,
        "the chart has CRD files that crds/ does not"
    );
}

const FULL_VALUES: &str = r#"
replicaCount: 2
watchNamespace: team-a
batching:
  windowMs: 250
  maxDelay: 2s
statusInterval: 1s
webhook:
  maxConnections: 200
  rateLimit: 2.5
  rateBurst: 5
  headerTimeout: 3s
  bodyTimeout: 4s
  secretTtl: 30s
sync:
  resources:
    - apiGroups: [apps]
      resources: [deployments]
      write: true
    - apiGroups: [""]
      resources: [configmaps]
    - apiGroups: [snapshot.storage.k8s.io]
      resources: [volumesnapshots]
serviceMonitor:
  enabled: true
  labels: {release: prometheus}
networkPolicy:
  enabled: true
  metricsFrom:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
extraArgs: ["--extra-flag=1"]
"#;

#[test]
fn helm_lint_is_clean() {
    let chart = chart_dir();
    let chart = chart.to_str().unwrap();
    let (_dir, full) = values_file(FULL_VALUES);
    for args in [
        vec!["lint", "--strict", chart],
        vec!["lint", "--strict", chart, "--values", &full],
    ] {
        let out = helm(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "helm {args:?}:\n{text}");
        assert!(
            text.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{text}"
        );
        assert!(
            !text.contains("[WARNING]") && !text.contains("[ERROR]"),
            "helm {args:?}:\n{text}"
        );
    }
}

/// Every (apiGroup, resource, verb) granted cluster-wide: by ClusterRoles that a
/// ClusterRoleBinding binds.
fn granted_cluster_wide(docs: &[Value]) -> BTreeSet<(String, String, String)> {
    let mut granted = BTreeSet::new();
    for binding in all(docs, "ClusterRoleBinding") {
        let role = find(
            docs,
            "ClusterRole",
            binding["roleRef"]["name"].as_str().unwrap(),
        );
        granted.extend(grants(role));
    }
    granted
}

/// Every (apiGroup, resource, verb) a role grants (resourceNames are checked separately).
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.to_owned(), resource.to_owned(), verb.to_owned()));
                }
            }
        }
    }
    granted
}

/// The arguments of the controller's container.
fn container_args(docs: &[Value]) -> Vec<String> {
    strings(
        &find(docs, "Deployment", "rel-git-controller")["spec"]["template"]["spec"]["containers"]
            [0]["args"],
    )
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Whether `docs` let the controller list or watch Secrets in every namespace.
fn lists_secrets_cluster_wide(docs: &[Value]) -> bool {
    granted_cluster_wide(docs)
        .iter()
        .any(|(g, r, v)| g.is_empty() && r == "secrets" && (v == "list" || v == "watch"))
}

#[test]
fn default_values_render_a_secure_deployment_with_least_privilege() {
    let docs = template("{}");
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Service",
            "ServiceAccount",
        ],
        "no ServiceMonitor, NetworkPolicy or leader election Role by default"
    );
    for doc in &docs {
        let cluster_scoped =
            ["ClusterRole", "ClusterRoleBinding"].contains(&doc["kind"].as_str().unwrap());
        assert_eq!(
            doc["metadata"]["namespace"].as_str().is_none(),
            cluster_scoped,
            "{doc:#}"
        );
        assert_eq!(
            doc["metadata"]["labels"]["app.kubernetes.io/instance"],
            "rel"
        );
    }

    let deployment = find(&docs, "Deployment", "rel-git-controller");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "rel-git-controller");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        strings(&c["args"]),
        [
            "run",
            "--metrics-addr=0.0.0.0:8080",
            "--webhook-addr=0.0.0.0:9292",
            "--cache-dir=/var/cache/git-controller",
            // The controller's own defaults, written out.
            "--batch-window-ms=1000",
            "--batch-max-delay=5s",
            "--status-interval=5s",
            "--webhook-max-connections=1024",
            "--webhook-rate-limit=10",
            "--webhook-rate-burst=20",
            "--webhook-header-timeout=5s",
            "--webhook-body-timeout=10s",
            "--webhook-secret-ttl=2m",
        ],
        "one replica, all namespaces: no --leader-elect, no --namespace"
    );
    assert!(
        c["command"].is_null(),
        "the image's ENTRYPOINT runs git-controller"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(c["resources"]["requests"]["cpu"].is_string(), "{c:#}");
    assert!(c["resources"]["requests"]["memory"].is_string(), "{c:#}");
    assert!(c["resources"]["limits"]["memory"].is_string(), "{c:#}");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");
    let env: Vec<(&str, &Value)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    let env_value = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| (*e).clone())
            .unwrap_or_else(|| panic!("no env {name} in {env:?}"))
    };
    assert_eq!(env_value("RUST_LOG")["value"], "info,kube=warn");
    assert_eq!(env_value("GIT_CONTROLLER_LOG_FORMAT")["value"], "json");
    assert_eq!(env_value("HOME")["value"], "/tmp");
    // POD_NAMESPACE: where the controller looks for its leader-election Lease.
    assert_eq!(
        env_value("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env_value("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let ports: Vec<(&str, i64)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, [("metrics", 8080), ("webhook", 9292)]);
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [("cache", "/var/cache/git-controller"), ("tmp", "/tmp")]
    );
    for volume in pod["volumes"].as_array().unwrap() {
        assert!(volume["emptyDir"].is_object(), "{volume:#}");
    }

    let service = find(&docs, "Service", "rel-git-controller");
    let ports: Vec<(&str, i64)> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_i64().unwrap()))
        .collect();
    assert_eq!(ports, [("metrics", 8080), ("webhook", 9292)]);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // RBAC: own API, events, Secrets by name, impersonating ServiceAccounts, access reviews,
    // CRD discovery; nothing to sync until values say so.
    assert_least_privilege(&docs);
    let role = find(&docs, "ClusterRole", "rel-git-controller");
    for resource in [
        "gitrepositories",
        "gitrepositories/status",
        "gitrepositories/finalizers",
        "syncrules",
        "syncrules/status",
        "syncrules/finalizers",
    ] {
        assert_eq!(
            strings(&rule_for(role, "gitcontroller.io", resource)["verbs"]),
            ["get", "list", "watch", "patch", "update"]
        );
    }
    assert_eq!(
        strings(&rule_for(role, "events.k8s.io", "events")["verbs"]),
        ["create", "patch"]
    );
    assert_eq!(strings(&rule_for(role, "", "secrets")["verbs"]), ["get"]);
    assert!(!lists_secrets_cluster_wide(&docs));
    let impersonate = rule_for(role, "", "serviceaccounts");
    assert_eq!(strings(&impersonate["verbs"]), ["impersonate"]);
    assert!(
        impersonate["resourceNames"].is_null(),
        "any name by default"
    );
    assert_eq!(role["rules"].as_array().unwrap().len(), 4, "{role:#}");
    let reviews = find(&docs, "ClusterRole", "rel-git-controller-access-reviews");
    assert_eq!(
        strings(&rule_for(reviews, "authorization.k8s.io", "subjectaccessreviews")["verbs"]),
        ["create"]
    );
    for rbac in [
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ] {
        assert_eq!(
            strings(&rule_for(reviews, "rbac.authorization.k8s.io", rbac)["verbs"]),
            ["list", "watch"],
            "RBAC changes invalidate cached access reviews"
        );
    }
    find(
        &docs,
        "ClusterRoleBinding",
        "rel-git-controller-access-reviews",
    );
    let discovery = find(&docs, "ClusterRole", "rel-git-controller-discovery");
    assert_eq!(
        strings(
            &rule_for(
                discovery,
                "apiextensions.k8s.io",
                "customresourcedefinitions"
            )["verbs"]
        ),
        READ
    );
    assert_eq!(discovery["rules"].as_array().unwrap().len(), 1);
    let binding = find(&docs, "ClusterRoleBinding", "rel-git-controller");
    assert_eq!(binding["roleRef"]["name"], "rel-git-controller");
    assert_eq!(binding["subjects"][0]["name"], "rel-git-controller");
    assert_eq!(binding["subjects"][0]["namespace"], "gc-system");

    let dashboard = find(&docs, "ConfigMap", "rel-git-controller-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let file = std::fs::read_to_string(chart_dir().join("dashboards/git-controller.json")).unwrap();
    assert_eq!(
        dashboard["data"]["git-controller.json"].as_str().unwrap(),
        file.trim_end()
    );
}

#[test]
fn values_turn_on_leader_election_namespaces_sync_rbac_servicemonitor_and_networkpolicy() {
    let docs = template(FULL_VALUES);
    assert_least_privilege(&docs);
    let deployment = find(&docs, "Deployment", "rel-git-controller");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        strings(&c["args"]),
        [
            "run",
            "--metrics-addr=0.0.0.0:8080",
            "--webhook-addr=0.0.0.0:9292",
            "--cache-dir=/var/cache/git-controller",
            "--batch-window-ms=250",
            "--batch-max-delay=2s",
            "--status-interval=1s",
            "--webhook-max-connections=200",
            "--webhook-rate-limit=2.5",
            "--webhook-rate-burst=5",
            "--webhook-header-timeout=3s",
            "--webhook-body-timeout=4s",
            "--webhook-secret-ttl=30s",
            "--leader-elect",
            "--lease-name=rel-git-controller",
            "--namespace=team-a",
            "--extra-flag=1",
        ]
    );

    // Sync RBAC: listed types only, write opt-in.
    let role = find(&docs, "ClusterRole", "rel-git-controller");
    assert_eq!(
        strings(&rule_for(role, "apps", "deployments")["verbs"]),
        WRITE
    );
    assert_eq!(strings(&rule_for(role, "", "configmaps")["verbs"]), READ);
    assert_eq!(
        strings(&rule_for(role, "snapshot.storage.k8s.io", "volumesnapshots")["verbs"]),
        READ
    );
    // One watched namespace: a RoleBinding there, no cluster-wide binding of the main role.
    assert!(
        !all(&docs, "ClusterRoleBinding")
            .iter()
            .any(|b| b["roleRef"]["name"] == "rel-git-controller"),
        "watchNamespace must not bind the main role cluster-wide"
    );
    let bound: BTreeSet<&str> = all(&docs, "RoleBinding")
        .iter()
        .filter(|b| b["roleRef"]["name"] == "rel-git-controller")
        .map(|b| {
            assert_eq!(b["roleRef"]["kind"], "ClusterRole");
            assert_eq!(b["subjects"][0]["namespace"], "gc-system");
            b["metadata"]["namespace"].as_str().unwrap()
        })
        .collect();
    assert_eq!(bound, BTreeSet::from(["team-a"]));

    // Leader election: leases in the release namespace only (watched, so a standby takes a
    // released Lease over at once).
    let lease_role = find(&docs, "Role", "rel-git-controller-leader-election");
    assert_eq!(lease_role["metadata"]["namespace"], "gc-system");
    assert_eq!(
        strings(&rule_for(lease_role, "coordination.k8s.io", "leases")["verbs"]),
        ["get", "list", "watch", "create", "update"]
    );
    let lease_binding = find(&docs, "RoleBinding", "rel-git-controller-leader-election");
    assert_eq!(lease_binding["roleRef"]["kind"], "Role");

    let monitors = all(&docs, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let monitor = monitors[0];
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        find(&docs, "Service", "rel-git-controller")["spec"]["selector"]
    );

    let policy = find(&docs, "NetworkPolicy", "rel-git-controller");
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 2);
    assert_eq!(ingress[0]["ports"][0]["port"], "metrics");
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(ingress[1]["ports"][0]["port"], "webhook");
    assert!(
        ingress[1]["from"].is_null(),
        "webhooks come from Git hosts anywhere"
    );

    // One replica with leaderElection.enabled also elects; rbac.create=false renders no RBAC.
    let docs = template("leaderElection: {enabled: true}\nrbac: {create: false}\n");
    let args = container_args(&docs);
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    assert!(
        !kinds(&docs).iter().any(|k| k.contains("Role")),
        "{:?}",
        kinds(&docs)
    );
}

#[test]
fn secrets_are_listed_cluster_wide_only_when_sync_resources_name_them() {
    assert!(!lists_secrets_cluster_wide(&template("{}")));
    assert!(!lists_secrets_cluster_wide(&template(FULL_VALUES)));
    let named = template(
        "sync:\n  resources:\n    - apiGroups: [\"\"]\n      resources: [secrets, configmaps]\n",
    );
    assert_least_privilege(&named);
    assert!(
        lists_secrets_cluster_wide(&named),
        "a rule that syncs Secrets needs to watch them"
    );
}

#[test]
fn lockdown_grants_exactly_crds_events_leases_impersonation_reviews_and_credentials() {
    let docs = template(
        "multitenancy:\n  lockdown: true\n  defaultServiceAccount: gitops\n  serviceAccountNames: [deployer]\nleaderElection: {enabled: true}\n",
    );
    assert_least_privilege(&docs);
    let args = container_args(&docs);
    assert!(
        args.contains(&"--default-service-account=gitops".to_owned()),
        "{args:?}"
    );

    // Everything bound to the controller's ServiceAccount, anywhere.
    let mut granted = BTreeSet::new();
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        granted.extend(grants(role));
    }
    let own_api = ["gitrepositories", "syncrules"]
        .iter()
        .flat_map(|r| {
            [
                r.to_string(),
                format!("{r}/status"),
                format!("{r}/finalizers"),
            ]
        })
        .map(|r| {
            (
                "gitcontroller.io".to_string(),
                r,
                &["get", "list", "watch", "patch", "update"][..],
            )
        });
    let rest = [
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            &["get", "list", "watch"][..],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
        (
            "coordination.k8s.io",
            "leases",
            &["get", "list", "watch", "create", "update"],
        ),
        ("", "serviceaccounts", &["impersonate"]),
        ("authorization.k8s.io", "subjectaccessreviews", &["create"]),
        ("", "secrets", &["get"]),
    ]
    .map(|(g, r, v)| (g.to_string(), r.to_string(), v));
    let expected: BTreeSet<(String, String, String)> = own_api
        .chain(rest)
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(move |verb| (group.clone(), resource.clone(), verb.to_string()))
        })
        .collect();
    assert_eq!(granted, expected);
    let role = find(&docs, "ClusterRole", "rel-git-controller");
    assert_eq!(
        strings(&rule_for(role, "", "serviceaccounts")["resourceNames"]),
        ["deployer", "gitops"],
        "only the named accounts and the default one"
    );
    let leases = find(&docs, "Role", "rel-git-controller-leader-election");
    assert_eq!(
        leases["metadata"]["namespace"], "gc-system",
        "leases in the release namespace only"
    );

    // sync.resources grants the controller's own rights, which lockdown does not use.
    let (_dir, file) = values_file(
        "multitenancy: {lockdown: true}\nsync:\n  resources:\n    - apiGroups: [\"\"]\n      resources: [configmaps]\n",
    );
    let out = helm(&[
        "template",
        "rel",
        chart_dir().to_str().unwrap(),
        "--values",
        &file,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sync.resources must be empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn multitenancy_values_become_flags() {
    let args = |values: &str| container_args(&template(values));
    let defaults = args("{}");
    assert!(
        !defaults
            .iter()
            .any(|a| a.starts_with("--cluster-scope-namespaces")
                || a.starts_with("--default-service-account")
                || a == "--allow-plaintext-secrets"),
        "defaults: the release namespace is trusted, no lockdown, no plain-text Secrets: {defaults:?}"
    );
    let set = args(
        "multitenancy:\n  clusterScopeNamespaces: [platform, flux-system]\n  allowPlaintextSecrets: true\n",
    );
    assert!(
        set.contains(&"--cluster-scope-namespaces=platform,flux-system".to_owned()),
        "{set:?}"
    );
    assert!(
        set.contains(&"--allow-plaintext-secrets".to_owned()),
        "{set:?}"
    );
    let none = args("multitenancy:\n  clusterScopeNamespaces: []\n");
    assert!(
        none.contains(&"--cluster-scope-namespaces=".to_owned()),
        "trust none: {none:?}"
    );
}

#[test]
fn values_schema_refuses_bad_values() {
    for (values, expect) in [
        ("replicaCount: two\n", "replicaCount"),
        ("replicas: 2\n", "replicas"),
        (
            "sync:\n  resources:\n    - apiGroups: [\"*\"]\n      resources: [deployments]\n",
            "apiGroups",
        ),
        (
            "sync:\n  resources:\n    - apiGroups: [apps]\n      resources: [\"*\"]\n",
            "resources",
        ),
        (
            "sync:\n  resources:\n    - apiGroups: [apps]\n      resources: [deployments]\n      verbs: [\"*\"]\n",
            "verbs",
        ),
        ("serviceMonitor: {enabled: yes-please}\n", "enabled"),
        ("watchNamespace: Not_A_Namespace\n", "watchNamespace"),
        ("logFormat: yaml\n", "logFormat"),
        ("multitenancy: {lockdown: sure}\n", "lockdown"),
        (
            "multitenancy: {defaultServiceAccount: Not_An_Account}\n",
            "defaultServiceAccount",
        ),
        (
            "multitenancy: {clusterScopeNamespaces: platform}\n",
            "clusterScopeNamespaces",
        ),
        ("multitenancy: {tenants: []}\n", "tenants"),
    ] {
        let (_dir, file) = values_file(values);
        let chart = chart_dir();
        let out = helm(&[
            "template",
            "rel",
            chart.to_str().unwrap(),
            "--values",
            &file,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "helm accepted {values:?}");
        assert!(
            stderr.contains("schema") && stderr.contains(expect),
            "{values:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn rendered_manifests_pass_server_side_dry_run() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "chart-dry").await;
    let kubectl = tools().kubectl.clone();
    // Defaults (the ServiceMonitor is off: a bare API server has no monitoring.coreos.com).
    // The full values again, without the ServiceMonitor, watching the test namespace.
    let full = FULL_VALUES
        .replace(
            "watchNamespace: team-a",
            &format!("watchNamespace: {}", ns.name()),
        )
        .replace(
            "serviceMonitor:\n  enabled: true",
            "serviceMonitor:\n  enabled: false",
        );
    for values in ["{}".to_owned(), full] {
        let manifests = template_text("dry", ns.name(), &values, &["--include-crds"]);
        let out = run_ok(
            &kubectl,
            &[
                "apply",
                "--dry-run=server",
                "--namespace",
                ns.name(),
                "-f",
                "-",
            ],
            Some(&manifests),
            Cluster::Test,
        );
        let applied = out
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(
            applied,
            parse_documents(&manifests).len(),
            "every object is accepted:\n{out}"
        );
        assert!(out.contains("deployment.apps/dry-git-controller"), "{out}");
    }
}

/// Uninstalls a release when dropped, so a failing test leaves no cluster-scoped objects.
struct Release<'a> {
    name: &'a str,
    namespace: &'a str,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = helm_in_cluster(&["uninstall", self.name, "--namespace", self.namespace]);
    }
}

#[tokio::test]
async fn helm_install_creates_the_objects() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "chart").await;
    let namespace = ns.name();
    let release = namespace; // unique per run; its cluster-scoped objects do not collide
    let values = FULL_VALUES
        .replace(
            "watchNamespace: team-a",
            &format!("watchNamespace: {namespace}"),
        )
        .replace(
            "serviceMonitor:\n  enabled: true",
            "serviceMonitor:\n  enabled: false",
        );
    let (_dir, file) = values_file(&values);
    let chart = chart_dir();
    let guard = Release {
        name: release,
        namespace,
    };
    let out = helm_ok_in_cluster(&[
        "install",
        release,
        chart.to_str().unwrap(),
        "--namespace",
        namespace,
        "--values",
        &file,
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("git-controller 0.1.0 is installed"),
        "NOTES: {out}"
    );

    let status = helm_ok_in_cluster(&["status", release, "--namespace", namespace, "-o", "json"]);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed");

    // The objects are there (pods never run on this API server; the objects are what we check).
    let full = format!("{release}-git-controller");
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(&full)
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    assert!(
        args.contains(&format!("--namespace={namespace}")),
        "{args:?}"
    );
    assert_eq!(
        container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true)
    );
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .get(&full)
        .await
        .unwrap();
    let service = Api::<Service>::namespaced(client.clone(), namespace)
        .get(&full)
        .await
        .unwrap();
    let ports: Vec<i32> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [8080, 9292]);
    let dashboard = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get(&format!("{full}-dashboard"))
        .await
        .unwrap();
    assert_eq!(dashboard.metadata.labels.unwrap()["grafana_dashboard"], "1");
    let json = &dashboard.data.unwrap()["git-controller.json"];
    serde_json::from_str::<Value>(json).expect("the installed dashboard is JSON");
    Api::<NetworkPolicy>::namespaced(client.clone(), namespace)
        .get(&full)
        .await
        .unwrap();
    let role = Api::<ClusterRole>::all(client.clone())
        .get(&full)
        .await
        .unwrap();
    let rules = role.rules.unwrap();
    assert!(
        rules.iter().any(
            |r| r.resources.as_deref() == Some(&["deployments".to_owned()][..])
                && r.verbs.contains(&"patch".to_owned())
        ),
        "{rules:?}"
    );
    Api::<ClusterRole>::all(client.clone())
        .get(&format!("{full}-discovery"))
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .get(&format!("{full}-discovery"))
        .await
        .unwrap();
    let binding = Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .get(&full)
        .await
        .unwrap();
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    Api::<Role>::namespaced(client.clone(), namespace)
        .get(&format!("{full}-leader-election"))
        .await
        .unwrap();
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in [
        "gitrepositories.gitcontroller.io",
        "syncrules.gitcontroller.io",
    ] {
        crds.get(crd)
            .await
            .unwrap_or_else(|e| panic!("CRD {crd}: {e}"));
    }

    // Uninstall removes the cluster-scoped objects too (CRDs stay, as Helm does for crds/).
    drop(guard);
    let gone = Api::<ClusterRole>::all(client.clone())
        .get_opt(&full)
        .await
        .unwrap();
    assert!(gone.is_none(), "helm uninstall left ClusterRole {full}");
    crds.get("gitrepositories.gitcontroller.io").await.unwrap();
}

/// Every `gitcontroller_*` sample name that `/metrics` exposes once each family was used.
fn exposed_metric_names() -> BTreeSet<String> {
    let m = Metrics::new();
    m.observe_reconcile("ns", "repo", 0.3);
    m.reconcile_failed("ns", "repo", "git");
    m.set_objects("ns", "repo", 1, 2, 3);
    m.sync_operation("ns", "repo", "kubernetes", "apply");
    m.git_operation("ns", "repo", "push", 0.1);
    m.push_retries("ns", "repo", 1);
    m.set_watched_resources(2);
    m.set_ready("ns", "repo", true);
    m.sync_triggered("ns", "repo", "watch");
    m.apply_confirmations("ns", "repo", "unchanged", 1);
    m.render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// The `gitcontroller_*` identifiers in a PromQL expression.
fn metric_names_in(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("gitcontroller_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every PromQL expression of the dashboard: panel targets and templating queries.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

#[test]
fn dashboard_queries_only_metrics_that_are_exposed() {
    let text = std::fs::read_to_string(chart_dir().join("dashboards/git-controller.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "git-controller");
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: Vec<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "panel ids are unique"
    );

    let exposed = exposed_metric_names();
    for family in FAMILIES {
        assert!(
            exposed.iter().any(|n| n.starts_with(family)),
            "{family} missing from /metrics: {exposed:?}"
        );
    }
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:#?}");
    let mut queried = BTreeSet::new();
    for q in &queries {
        let names = metric_names_in(q);
        assert!(
            !names.is_empty(),
            "query without a git-controller metric: {q}"
        );
        for name in names {
            assert!(
                exposed.contains(&name),
                "the dashboard queries {name}, which /metrics does not expose: {q}\nexposed: {exposed:#?}"
            );
            queried.insert(name);
        }
    }
    // The panels the issue asks for: reconcile rate and duration, errors, objects by
    // direction, push retries.
    for needed in [
        "gitcontroller_reconcile_duration_seconds_count",
        "gitcontroller_reconcile_duration_seconds_bucket",
        "gitcontroller_reconcile_errors_total",
        "gitcontroller_objects",
        "gitcontroller_git_push_retries_total",
        "gitcontroller_sync_operations_total",
        "gitcontroller_git_operation_duration_seconds_bucket",
        "gitcontroller_ready",
        "gitcontroller_watched_resources",
    ] {
        assert!(queried.contains(needed), "no panel queries {needed}");
    }
    let objects = panels
        .iter()
        .find(|p| p["title"] == "Objects by direction")
        .expect("an objects-by-direction panel");
    assert!(
        objects["targets"][0]["expr"]
            .as_str()
            .unwrap()
            .contains("by (direction)"),
        "{objects:#}"
    );
}
