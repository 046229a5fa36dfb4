//! A cluster for tests: whatever `KUBECONFIG` names (kubelite here, kind or a dev cluster
//! elsewhere). A test that cannot reach it fails with a message saying how to start one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

/// Label put on every namespace a test creates, so leftovers are easy to find and delete.
pub const TEST_LABEL: &str = "gitcontroller.io/test";

/// A client for the cluster in `KUBECONFIG`; panics (fails the test) when there is none or it
/// does not answer. Tests never skip: a missing cluster is a failure, in CI and locally.
pub async fn client() -> Client {
    let hint = "tests need a Kubernetes API server: set KUBECONFIG (e.g. \
                `../shared/kubelite/kubelite.sh start && export KUBECONFIG=/tmp/kubelite/kubeconfig`)";
    if std::env::var_os("KUBECONFIG").is_none() {
        panic!("KUBECONFIG is not set; {hint}");
    }
    let client = Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("cannot build a client from KUBECONFIG: {e}; {hint}"));
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => panic!("the API server in KUBECONFIG does not answer: {e}; {hint}"),
        Err(_) => panic!("the API server in KUBECONFIG did not answer within 10 s; {hint}"),
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
        wait_established(&api, &name).await;
    }
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) {
    for _ in 0..100 {
        let crd = api.get(name).await.expect("reading back a CRD");
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("CRD {name} was not established within 10 s");
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
                    let Ok(client) = Client::try_default().await else {
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
