//! The CRDs on a real API server: generated YAML is committed, the schema refuses bad input,
//! valid examples round-trip.

use std::collections::BTreeSet;
use std::process::Command;

use git_controller::api::{GitRepository, SyncDirection, SyncRule, crds, crds_yaml};
use gitcontroller_testkit::cluster::{TestNamespace, apply_crds, client};
use kube::api::{Api, PostParams};

fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_crds_match_the_rust_types() {
    let committed = std::fs::read_to_string(repo_root().join("crds/gitcontroller.io.yaml"))
        .expect("crds/gitcontroller.io.yaml exists");
    assert_eq!(
        committed,
        crds_yaml(),
        "crds/ is stale: run `cargo run -- crds > crds/gitcontroller.io.yaml`"
    );
    let printed = Command::new(env!("CARGO_BIN_EXE_git-controller"))
        .arg("crds")
        .output()
        .expect("running git-controller crds");
    assert!(printed.status.success());
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), committed);
}

async fn create_err(ns: &str, object: serde_json::Value) -> String {
    let client = client().await;
    let kind = object["kind"].as_str().unwrap().to_string();
    let result = if kind == "SyncRule" {
        let rule: SyncRule = serde_json::from_value(object).unwrap();
        Api::<SyncRule>::namespaced(client, ns)
            .create(&PostParams::default(), &rule)
            .await
            .map(|_| ())
    } else {
        let repo: GitRepository = serde_json::from_value(object).unwrap();
        Api::<GitRepository>::namespaced(client, ns)
            .create(&PostParams::default(), &repo)
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) => panic!("the API server accepted an invalid {kind}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn schema_refuses_bad_input_with_clear_messages() {
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let ns = TestNamespace::new(&client, "crds").await;

    // An enum value that does not exist: SyncDirection cannot hold it, so send raw JSON.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns.name(),
        &kube::api::ApiResource::erase::<SyncRule>(&()),
    );
    let sideways: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "gitcontroller.io/v1alpha1", "kind": "SyncRule",
        "metadata": {"name": "sideways"},
        "spec": {"repositoryRef": {"name": "r"}, "syncTo": "sideways"}
    }))
    .unwrap();
    let err = raw
        .create(&PostParams::default(), &sideways)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("syncTo") && err.contains("sideways"), "{err}");

    let err = create_err(
        ns.name(),
        serde_json::json!({
            "apiVersion": "gitcontroller.io/v1alpha1", "kind": "SyncRule",
            "metadata": {"name": "no-slash"},
            "spec": {"repositoryRef": {"name": "r"}, "syncTo": "git", "filters": ["metadata/x"]}
        }),
    )
    .await;
    assert!(err.contains("spec.filters[0]"), "{err}");

    let err = create_err(
        ns.name(),
        serde_json::json!({
            "apiVersion": "gitcontroller.io/v1alpha1", "kind": "GitRepository",
            "metadata": {"name": "escape"},
            "spec": {"url": "https://example.com/r.git", "path": "../etc"}
        }),
    )
    .await;
    assert!(err.contains("must not contain '..'"), "{err}");

    let err = create_err(
        ns.name(),
        serde_json::json!({
            "apiVersion": "gitcontroller.io/v1alpha1", "kind": "GitRepository",
            "metadata": {"name": "ftp"},
            "spec": {"url": "ftp://example.com/r.git", "interval": "5 minutes"}
        }),
    )
    .await;
    assert!(err.contains("url must use one of the schemes"), "{err}");
    assert!(err.contains("interval must be a duration"), "{err}");

    // pruneLimit: a count or a percentage, like a Deployment's maxUnavailable.
    for (name, limit) in [
        ("negative", serde_json::json!(-1)),
        ("word", serde_json::json!("ten")),
        ("over", serde_json::json!("150%")),
    ] {
        let err = create_err(
            ns.name(),
            serde_json::json!({
                "apiVersion": "gitcontroller.io/v1alpha1", "kind": "GitRepository",
                "metadata": {"name": name},
                "spec": {"url": "https://example.com/r.git", "pruneLimit": limit}
            }),
        )
        .await;
        assert!(err.contains("pruneLimit must be a count"), "{name}: {err}");
    }
    let repos = Api::<GitRepository>::namespaced(client.clone(), ns.name());
    for (name, limit) in [
        ("count", serde_json::json!(10)),
        ("percent", serde_json::json!("25%")),
    ] {
        let repo: GitRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "gitcontroller.io/v1alpha1", "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": "https://example.com/r.git", "pruneLimit": limit}
        }))
        .unwrap();
        let created = repos.create(&PostParams::default(), &repo).await.unwrap();
        assert_eq!(
            serde_json::to_value(&created.spec.prune_limit).unwrap(),
            limit
        );
    }
}

#[tokio::test]
async fn examples_apply_and_defaults_are_filled_in() {
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let ns = TestNamespace::new(&client, "examples").await;

    let text = std::fs::read_to_string(repo_root().join("examples/gitrepository.yaml")).unwrap();
    let mut repo: GitRepository = serde_saphyr::from_str(&text).unwrap();
    repo.metadata.namespace = None;
    let repos = Api::<GitRepository>::namespaced(client.clone(), ns.name());
    repos.create(&PostParams::default(), &repo).await.unwrap();
    let back = repos.get("platform").await.unwrap();
    assert_eq!(back.spec, repo.spec);

    let text = std::fs::read_to_string(repo_root().join("examples/syncrules.yaml")).unwrap();
    let rules: Vec<SyncRule> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(rules.len(), 3);
    let api = Api::<SyncRule>::namespaced(client.clone(), ns.name());
    for mut rule in rules {
        rule.metadata.namespace = None;
        api.create(&PostParams::default(), &rule).await.unwrap();
    }
    let images = api.get("deployment-images-to-git").await.unwrap();
    assert_eq!(images.spec.sync_to, SyncDirection::Git);
    assert_eq!(images.spec.filters, vec!["/spec/template/spec/containers"]);
    assert_eq!(images.spec.priority, 10);

    // Defaults come from the schema, not from the Rust types: send a minimal object as JSON.
    let minimal: GitRepository = serde_json::from_value(serde_json::json!({
        "apiVersion": "gitcontroller.io/v1alpha1", "kind": "GitRepository",
        "metadata": {"name": "minimal"},
        "spec": {"url": "git://127.0.0.1/repo.git"}
    }))
    .unwrap();
    repos
        .create(&PostParams::default(), &minimal)
        .await
        .unwrap();
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns.name(),
        &kube::api::ApiResource::erase::<GitRepository>(&()),
    );
    let raw = raw.get("minimal").await.unwrap().data;
    assert_eq!(raw["spec"]["branch"], "main");
    assert_eq!(raw["spec"]["interval"], "1m");
    assert_eq!(raw["spec"]["prune"], false);
    assert_eq!(raw["spec"]["pruneLimit"], "50%");
    assert_eq!(raw["spec"]["author"]["name"], "git-controller");
}

/// The words in backticks of the README bullet that starts with `- **<kind>**`.
fn readme_bullet_words(readme: &str, kind: &str) -> BTreeSet<String> {
    let start = readme
        .find(&format!("- **{kind}**"))
        .unwrap_or_else(|| panic!("README has a bullet for {kind}"));
    let bullet = &readme[start + 2..];
    let end = ["\n- ", "\n\n"]
        .iter()
        .filter_map(|stop| bullet.find(stop))
        .min()
        .unwrap();
    backticked(&bullet[..end])
}

fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The CRD's `spec` schema for `kind`.
fn spec_schema(kind: &str) -> serde_json::Value {
    let crd = crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap();
    let schema = crd.spec.versions[0].schema.clone().unwrap();
    serde_json::to_value(schema.open_api_v3_schema.unwrap()).unwrap()["properties"]["spec"].clone()
}

fn keys(object: &serde_json::Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn the_readme_names_every_spec_field_and_run_flag() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();

    let repository = spec_schema("GitRepository");
    assert_eq!(
        readme_bullet_words(&readme, "GitRepository"),
        keys(&repository["properties"]),
        "README's GitRepository fields are the CRD's spec fields"
    );

    let rule = spec_schema("SyncRule");
    let mut fields_and_directions = keys(&rule["properties"]);
    let directions = rule["properties"]["syncTo"]["enum"].as_array().unwrap();
    fields_and_directions.extend(directions.iter().map(|d| d.as_str().unwrap().to_string()));
    assert_eq!(
        readme_bullet_words(&readme, "SyncRule"),
        fields_and_directions,
        "README's SyncRule fields (and syncTo values) are the CRD's"
    );

    let intro = "`git-controller run --help` lists the flags:";
    let start = readme.find(intro).expect("README lists the flags of run") + intro.len();
    let end = start + readme[start..].find("`git-controller diff").unwrap();
    let documented: BTreeSet<String> = backticked(&readme[start..end])
        .into_iter()
        .filter(|word| word.starts_with("--"))
        .map(|word| word.split_whitespace().next().unwrap().to_string())
        .collect();
    let help = Command::new(env!("CARGO_BIN_EXE_git-controller"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: BTreeSet<String> = help
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with("--")))
        .map(|flag| flag.trim_end_matches(',').to_string())
        .filter(|flag| flag != "--help")
        .collect();
    assert_eq!(documented, flags, "README's run flags are `run --help`'s");
}

#[tokio::test]
async fn the_root_pointer_is_a_valid_filter() {
    let client = client().await;
    apply_crds(&client, &crds()).await;
    let ns = TestNamespace::new(&client, "root-pointer").await;
    let api = Api::<SyncRule>::namespaced(client.clone(), ns.name());
    // RFC 6901: the empty string points at the whole document, as docs/sync-semantics.md says.
    let rule: SyncRule = serde_json::from_value(serde_json::json!({
        "apiVersion": "gitcontroller.io/v1alpha1", "kind": "SyncRule",
        "metadata": {"name": "whole-object"},
        "spec": {"repositoryRef": {"name": "r"}, "syncTo": "kubernetes", "filters": ["", "/spec"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &rule).await.unwrap();
    let back = api.get("whole-object").await.unwrap();
    assert_eq!(back.spec.filters, ["", "/spec"]);

    // Still not a pointer: a key without its leading slash, and an escape that is not ~0 or ~1.
    for (name, filter) in [("no-slash", "spec"), ("bad-escape", "/metadata/a~2b")] {
        let err = create_err(
            ns.name(),
            serde_json::json!({
                "apiVersion": "gitcontroller.io/v1alpha1", "kind": "SyncRule",
                "metadata": {"name": name},
                "spec": {"repositoryRef": {"name": "r"}, "syncTo": "git", "filters": [filter]}
            }),
        )
        .await;
        assert!(err.contains("spec.filters[0]"), "{err}");
    }
}
