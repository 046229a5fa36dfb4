//! Planning 1,000 and 10,000 objects: a mix of in-sync and drifted ConfigMaps and
//! Deployments, live objects as the API serves them (managedFields, status).
//!
//! Each size is planned twice: with the types as plain discovery information, and with their
//! schemas from Kubernetes 1.36's OpenAPI documents (`tests/fixtures/openapi`), which makes
//! the planner compare as the API server stores objects.
//!
//! Then, at 10,000 objects, [`plan_incremental`] after one live object changed: everything
//! else is skipped as settled by the plan before; and [`plan_changed`] told which object
//! changed: the others are not read at all.
//!
//! Run with `cargo bench -p gitcontroller-sync`. Besides criterion's report, prints the time
//! per object so that linear growth is visible, and the cost of the schema as a ratio.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gitcontroller_sync::*;
use serde_json::{Value, json};

struct Input {
    manifests: Vec<Manifest>,
    live: Vec<Value>,
    rules: Vec<Rule>,
    types: Vec<ResourceType>,
    inventory: BTreeSet<ObjectId>,
    options: PlanOptions,
}

impl Input {
    fn plan(&self) -> Plan {
        plan(&self.plan_input())
    }

    fn plan_incremental(&self, previous: Option<&Settled>) -> (Plan, Settled) {
        plan_incremental(&self.plan_input(), previous)
    }

    fn with_options<'a>(&'a self, options: &'a PlanOptions) -> PlanInput<'a> {
        PlanInput {
            options,
            ..self.plan_input()
        }
    }

    fn plan_input(&self) -> PlanInput<'_> {
        PlanInput {
            manifests: &self.manifests,
            live: &self.live,
            rules: &self.rules,
            types: &self.types,
            inventory: &self.inventory,
            skipped: &[],
            invalid_rules: &[],
            options: &self.options,
        }
    }
}

fn deployment(ns: &str, name: &str, replicas: u32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "team": "payments"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": image,
                    "ports": [{"containerPort": 8080}],
                    "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
                }]}
            }
        }
    })
}

fn live_deployment(manifest: &Value, replicas: u32, image: &str) -> Value {
    let mut live = manifest.clone();
    let name = manifest["metadata"]["name"].as_str().unwrap();
    live["spec"]["replicas"] = json!(replicas);
    live["spec"]["progressDeadlineSeconds"] = json!(600);
    live["spec"]["revisionHistoryLimit"] = json!(10);
    live["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    let spec = &mut live["spec"]["template"]["spec"];
    spec["dnsPolicy"] = json!("ClusterFirst");
    spec["restartPolicy"] = json!("Always");
    spec["schedulerName"] = json!("default-scheduler");
    spec["securityContext"] = json!({});
    spec["terminationGracePeriodSeconds"] = json!(30);
    let c = &mut spec["containers"][0];
    c["image"] = json!(image);
    c["imagePullPolicy"] = json!("IfNotPresent");
    c["terminationMessagePath"] = json!("/dev/termination-log");
    c["terminationMessagePolicy"] = json!("File");
    c["ports"][0]["protocol"] = json!("TCP");
    let meta = live["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!(format!("uid-{name}")));
    meta.insert("resourceVersion".into(), json!("12345"));
    meta.insert("generation".into(), json!(3));
    meta.insert("creationTimestamp".into(), json!("2025-03-01T10:00:00Z"));
    meta.insert(
        "annotations".into(),
        json!({"deployment.kubernetes.io/revision": "3"}),
    );
    meta.insert("managedFields".into(), json!([
        {"manager": "git-controller", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}, "f:team": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
                    ".": {}, "f:name": {}, "f:image": {},
                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}},
                    "f:env": {"k:{\"name\":\"MODE\"}": {".": {}, "f:name": {}, "f:value": {}},
                              "k:{\"name\":\"LOG\"}": {".": {}, "f:name": {}, "f:value": {}}},
                    "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}}
                }}}
            }}
         }},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "apiVersion": "apps/v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}, "f:readyReplicas": {}, "f:observedGeneration": {}}}}
    ]));
    live["status"] =
        json!({"replicas": replicas, "readyReplicas": replicas, "observedGeneration": 3});
    live
}

fn configmap(ns: &str, name: &str, level: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "annotations": {"owner": "team-a"}},
        "data": {"level": level, "timeout": "30s", "endpoint": "https://example.invalid/api", "retries": "3"}
    })
}

fn live_configmap(manifest: &Value, level: &str, owner: &str) -> Value {
    let mut live = manifest.clone();
    live["data"]["level"] = json!(level);
    live["metadata"]["annotations"]["owner"] = json!(owner);
    let meta = live["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!("uid"));
    meta.insert("resourceVersion".into(), json!("999"));
    meta.insert("creationTimestamp".into(), json!("2025-03-01T10:00:00Z"));
    meta.insert("managedFields".into(), json!([
        {"manager": "git-controller", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:level": {}, "f:timeout": {}, "f:endpoint": {}, "f:retries": {}},
                      "f:metadata": {"f:annotations": {"f:owner": {}}}}}
    ]));
    live
}

/// The schemas of Kubernetes 1.36's core and apps groups.
fn schemas() -> std::collections::BTreeMap<schema::GroupVersionKind, TypeSchema> {
    let mut all = std::collections::BTreeMap::new();
    for file in ["api__v1.json", "apis__apps__v1.json"] {
        let path = format!(
            "{}/tests/fixtures/openapi/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        all.extend(parse_openapi_v3(&doc).unwrap());
    }
    all
}

/// `n` objects, half Deployments, half ConfigMaps; 80 % in sync, 10 % drifted in the
/// cluster on a `kubernetes` field, 10 % drifted on a `git` field.
fn input(n: usize, with_schema: bool) -> Input {
    input_drifted(n, with_schema, true)
}

/// [`input`], with every object in sync unless `drifted`.
fn input_drifted(n: usize, with_schema: bool, drifted: bool) -> Input {
    let schemas = if with_schema {
        schemas()
    } else {
        Default::default()
    };
    let types = [
        ResourceType::new("", "v1", "ConfigMap", "configmaps", true),
        ResourceType::new("apps", "v1", "Deployment", "deployments", true),
    ]
    .map(|t| {
        let gvk = GroupVersionKind::new(&t.group, &t.version, &t.kind);
        let schema = schemas.get(&gvk).cloned();
        t.with_schema(schema)
    })
    .to_vec();
    let mut from_git = Rule::new("from-git", SyncTo::Kubernetes);
    from_git.label_selector = Some(LabelSelector::parse("!unmanaged").unwrap());
    let mut images = Rule::new("images-to-git", SyncTo::Git);
    images.api_groups = vec!["apps".into()];
    images.filters = vec![Pointer::parse("/spec/template/spec/containers").unwrap()];
    images.priority = 10;
    let mut annotations = Rule::new("annotations-to-git", SyncTo::Git);
    annotations.kinds = vec!["ConfigMap".into()];
    annotations.filters = vec![Pointer::parse("/metadata/annotations").unwrap()];
    let rules = vec![from_git, images, annotations];

    let mut manifests = Vec::with_capacity(n);
    let mut live = Vec::with_capacity(n);
    let mut inventory = BTreeSet::new();
    for i in 0..n {
        let ns = format!("payments-production-{}", i % 50);
        let name = format!("app-{i}");
        // 0: cluster-side drift on a kubernetes field, 1: on a git field
        let drift = if drifted { i % 10 } else { 9 };
        let (m, l, id) = if i % 2 == 0 {
            let m = deployment(&ns, &name, 2, "registry.invalid/app:1.0");
            let l = match drift {
                0 => live_deployment(&m, 5, "registry.invalid/app:1.0"),
                1 => live_deployment(&m, 2, "registry.invalid/app:1.1"),
                _ => live_deployment(&m, 2, "registry.invalid/app:1.0"),
            };
            (m, l, ObjectId::new("apps", "Deployment", Some(&ns), &name))
        } else {
            let m = configmap(&ns, &name, "info");
            let l = match drift {
                0 => live_configmap(&m, "debug", "team-a"),
                1 => live_configmap(&m, "info", "team-b"),
                _ => live_configmap(&m, "info", "team-a"),
            };
            (m, l, ObjectId::new("", "ConfigMap", Some(&ns), &name))
        };
        manifests.push(Manifest {
            id: id.clone(),
            file: format!("{ns}/{name}.yaml"),
            doc_index: 0,
            item_index: None,
            // As the controller's parse cache sets it: the file's blob.
            revision: Some(format!("blob-{i}").into()),
            object: m.into(),
        });
        live.push(l);
        inventory.insert(id);
    }
    Input {
        manifests,
        live,
        rules,
        types,
        inventory,
        options: PlanOptions {
            prune: true,
            ..PlanOptions::default()
        },
    }
}

fn bench_plan(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    let mut summary = Vec::new();
    for (n, with_schema) in [
        (1_000usize, false),
        (1_000, true),
        (10_000, false),
        (10_000, true),
    ] {
        let input = input(n, with_schema);
        let plan = input.plan();
        assert_eq!(
            plan.to_cluster.len(),
            n / 10,
            "one object in ten drifted on a kubernetes field"
        );
        assert_eq!(
            plan.to_git.len(),
            n / 10,
            "one object in ten drifted on a git field"
        );
        assert!(plan.to_confirm.is_empty(), "nothing is left undecided");
        let label = if with_schema {
            "with schema"
        } else {
            "without schema"
        };
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new(label, n), &input, |b, input| {
            b.iter(|| black_box(input.plan()));
        });
        if std::env::args().any(|a| a == "--profile-time") {
            continue;
        }
        summary.push((
            n,
            label,
            median_time(|| input.plan()),
            median_time(|| input.live.clone()),
        ));
    }
    group.finish();
    bench_incremental(c);
    if std::env::args().any(|a| a == "--profile-time") {
        return; // under a profiler, only the planning itself
    }
    println!();
    let mut without = None;
    for (n, label, (plan, plan_cpu), (clone, _)) in summary {
        let per_object = |t: Duration| t.as_secs_f64() * 1e6 / n as f64;
        let ratio = match without.take() {
            Some(base) if label == "with schema" => {
                format!(
                    "; {:.2}x the CPU time without",
                    cpu_or_wall(plan_cpu, plan) / base
                )
            }
            _ => {
                without = Some(cpu_or_wall(plan_cpu, plan));
                String::new()
            }
        };
        println!(
            "plan of {n:>6} objects {label:<14}: {:>6.1} ms wall ({:>5.2} µs/object), \
             {:>6.1} ms on CPU ({:>5.2} µs/object); \
             for scale, cloning the live objects: {:>5.2} µs/object{ratio}",
            plan.as_secs_f64() * 1e3,
            per_object(plan),
            plan_cpu.map_or(f64::NAN, |t| t.as_secs_f64() * 1e3),
            plan_cpu.map_or(f64::NAN, per_object),
            per_object(clone),
        );
    }
}

/// 10,000 objects in sync (the steady state, once the plans were carried out); one live
/// object changes (with a new `resourceVersion`) after a plan: the next plan looks at it
/// alone.
fn bench_incremental(c: &mut Criterion) {
    let n = 10_000;
    let mut input = input_drifted(n, true, false);
    let full = input.plan();
    assert_eq!(full.noops.len(), n, "every object is in sync");
    let (_, settled) = input.plan_incremental(None);
    assert_eq!(settled.len(), n, "every noop is remembered");
    // An object in sync drifts on a kubernetes field.
    let position = input
        .live
        .iter()
        .position(|l| l["kind"] == "ConfigMap" && l["data"]["level"] == "info")
        .expect("a ConfigMap in sync");
    let changed = &mut input.live[position];
    changed["data"]["level"] = json!("trace");
    changed["metadata"]["resourceVersion"] = json!("1000");
    let expected = input.plan();
    assert_eq!(expected.to_cluster.len(), 1);
    assert_eq!(input.plan_incremental(Some(&settled)).0, expected);

    // As the controller plans: the noops are counted, not listed (listing them reads every
    // object in sync for its id).
    let mut unlisted = input.options.clone();
    unlisted.list_noops = false;
    let (_, settled_unlisted) = plan_incremental(&input.with_options(&unlisted), None);
    let changes = InputChanges {
        manifests: &[],
        live: &[position],
        inventory_unchanged: true,
    };
    let incremental =
        |input: &Input| plan_incremental(&input.with_options(&unlisted), Some(&settled_unlisted));
    let told = |input: &Input| {
        plan_changed(
            &input.with_options(&unlisted),
            Some(&settled_unlisted),
            Some(&changes),
        )
    };
    assert_eq!(told(&input).0, incremental(&input).0);
    assert_eq!(told(&input).0.to_cluster, expected.to_cluster);

    let mut group = c.benchmark_group("plan incremental");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_with_input(
        BenchmarkId::new("one object changed, with schema", n),
        &input,
        |b, input| b.iter(|| black_box(input.plan_incremental(Some(&settled)))),
    );
    group.bench_with_input(
        BenchmarkId::new("one object changed, noops not listed, with schema", n),
        &input,
        |b, input| b.iter(|| black_box(incremental(input))),
    );
    group.bench_with_input(
        BenchmarkId::new(
            "one object changed and said so, noops not listed, with schema",
            n,
        ),
        &input,
        |b, input| b.iter(|| black_box(told(input))),
    );
    group.finish();
    if !std::env::args().any(|a| a == "--profile-time") {
        type Run<'a> = &'a dyn Fn() -> (Plan, Settled);
        let rows: [(&str, Run<'_>); 3] = [
            ("incremental plan of", &|| {
                input.plan_incremental(Some(&settled))
            }),
            ("the same, noops not listed:", &|| incremental(&input)),
            ("the same, told the one that changed:", &|| told(&input)),
        ];
        for (label, run) in rows {
            let (time, cpu) = median_time(run);
            println!(
                "{label} {n:>6} objects, one changed: {:>6.1} ms wall, {:>6.1} ms on CPU",
                time.as_secs_f64() * 1e3,
                cpu.map_or(f64::NAN, |t| t.as_secs_f64() * 1e3),
            );
        }
    }
}

/// CPU time when measured, else wall time, in seconds.
fn cpu_or_wall(cpu: Option<Duration>, wall: Duration) -> f64 {
    cpu.unwrap_or(wall).as_secs_f64()
}

/// The median wall time of 11 runs of `f`, and the median time the thread was on a CPU
/// (Linux only), which leaves out waiting for a CPU on a busy machine.
fn median_time<T>(f: impl Fn() -> T) -> (Duration, Option<Duration>) {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..11 {
        let (start, start_cpu) = (Instant::now(), on_cpu());
        black_box(f());
        wall.push(start.elapsed());
        if let (Some(a), Some(b)) = (start_cpu, on_cpu()) {
            cpu.push(b.saturating_sub(a));
        }
    }
    wall.sort();
    cpu.sort();
    (wall[wall.len() / 2], cpu.get(cpu.len() / 2).copied())
}

/// Time this thread has spent on a CPU, from `/proc/thread-self/schedstat`.
fn on_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
