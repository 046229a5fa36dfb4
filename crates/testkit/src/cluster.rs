//! A cluster for tests, as envtest gives Go controllers: whatever `KUBECONFIG` names (kind, a
//! dev cluster, a kubelite you started), or, when it is not set, a kubelite API server that the
//! harness starts once for the whole test run and stops when the run ends (see
//! [`crate::run_cluster`]). A test that cannot reach its cluster fails; tests never skip.

use std::ffi::{OsStr, OsString};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Label put on every namespace a test creates, so leftovers are easy to find and delete.
pub const TEST_LABEL: &str = "gitcontroller.io/test";

/// Where the tests' cluster comes from.
enum Source {
    /// `KUBECONFIG` was set: that cluster (the value may list several files).
    Environment(OsString),
    /// The API server this test run started, with the path of its kubeconfig.
    RunCluster(OsString),
}

fn source() -> &'static Result<Source, String> {
    static SOURCE: OnceLock<Result<Source, String>> = OnceLock::new();
    SOURCE.get_or_init(|| match std::env::var_os("KUBECONFIG") {
        Some(value) if !value.is_empty() => Ok(Source::Environment(value)),
        _ => crate::run_cluster::kubeconfig().map(|path| Source::RunCluster(path.into())),
    })
}

/// The value of `KUBECONFIG` that reaches the tests' cluster: the caller's `KUBECONFIG`, or
/// the kubeconfig of the API server started for this test run (started on first use; this
/// blocks for the few seconds that takes). Panics (fails the test) when no cluster can be had.
pub fn kubeconfig() -> &'static OsStr {
    match source() {
        Ok(Source::Environment(value) | Source::RunCluster(value)) => value,
        Err(e) => panic!("no Kubernetes API server for the tests: {e}"),
    }
}

/// Points a child process (the controller, `kubectl`, `helm`) at the tests' cluster by
/// setting its `KUBECONFIG`.
pub fn use_test_cluster(cmd: &mut Command) -> &mut Command {
    cmd.env("KUBECONFIG", kubeconfig())
}

async fn try_client() -> Result<Client, String> {
    let config = match source() {
        Ok(Source::Environment(_)) => kube::Config::infer()
            .await
            .map_err(|e| format!("cannot build a client from KUBECONFIG: {e}"))?,
        Ok(Source::RunCluster(path)) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading the test cluster's kubeconfig: {e}"))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("the test cluster's kubeconfig: {e}"))?
        }
        Err(e) => return Err(e.clone()),
    };
    Client::try_from(config).map_err(|e| format!("cannot build a client: {e}"))
}

/// A client for the tests' cluster ([`kubeconfig`]); panics (fails the test) when there is
/// none or it does not answer within 10 s. Tests never skip.
pub async fn client() -> Client {
    let hint = match source() {
        Ok(Source::Environment(_)) => {
            "KUBECONFIG names the cluster; unset it to have the tests start their own"
        }
        _ => "the API server the tests started",
    };
    let client = try_client()
        .await
        .unwrap_or_else(|e| panic!("no Kubernetes API server for the tests: {e}"));
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => panic!("the API server does not answer: {e} ({hint})"),
        Err(_) => panic!("the API server did not answer within 10 s ({hint})"),
    }
}

/// Server-side applies CRDs and waits until the API server serves them.
pub async fn apply_crds(client: &Client, crds: &[CustomResourceDefinition]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("gitcontroller-tests").force();
    for crd in crds {
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        wait_established(&api, client, &name).await;
    }
}

/// Waits until the CRD `name` is Established and discovery serves its resource in every served
/// version: the API server publishes a new group to discovery a moment after it reports the
/// CRD Established, and a test that runs discovery in between would not find the kind.
async fn wait_established(api: &Api<CustomResourceDefinition>, client: &Client, name: &str) {
    for _ in 0..100 {
        let crd = api.get(name).await.expect("reading back a CRD");
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established && served(client, &crd).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("CRD {name} was not established and served within 10 s");
}

/// Whether aggregated discovery (what the tests and the controller run) lists `crd`'s resource
/// in each version it serves.
async fn served(client: &Client, crd: &CustomResourceDefinition) -> bool {
    let group = crd.spec.group.as_str();
    let Ok(discovery) = kube::Discovery::new(client.clone())
        .filter(&[group])
        .run_aggregated()
        .await
    else {
        return false;
    };
    let Some(served) = discovery.get(group) else {
        return false;
    };
    crd.spec
        .versions
        .iter()
        .filter(|v| v.served)
        .all(|version| {
            served
                .versioned_resources(&version.name)
                .iter()
                .any(|(resource, _)| resource.plural == crd.spec.names.plural)
        })
}

/// A namespace of its own for one test, labelled [`TEST_LABEL`], deleted when dropped.
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates `gct-<prefix>-<unique>`.
    pub async fn new(client: &Client, prefix: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "{:x}{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let name = format!("gct-{prefix}-{unique}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": { TEST_LABEL: "true" } }
        }))
        .expect("a valid Namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating test namespace {name}: {e}"));
        Self { name }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await; delete from a thread with its own runtime and its own client (the
        // test's client is served by the test's runtime, which is blocked here), and wait for it
        // so the test process does not exit first.
        let name = self.name.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    let Ok(client) = try_client().await else {
                        return;
                    };
                    let _ = Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await;
                });
            }
        });
        let _ = deleted.join();
    }
}
