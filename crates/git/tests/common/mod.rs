//! Helpers shared by the integration tests of the Git layer.
#![allow(dead_code)]

use std::time::Duration;

use gitcontroller_git::{Author, FileChange, RepoSpec, Repository, RetryPolicy};
use serde_json::{Value, json};

/// A fresh cache dir per test (kept alive by the returned guard).
pub fn cache() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gitctl-cache-")
        .tempdir()
        .unwrap()
}

pub fn author() -> Author {
    Author {
        name: "git-controller".into(),
        email: "git-controller@example.invalid".into(),
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

pub fn open(url: &str, cache: &tempfile::TempDir) -> Repository {
    Repository::open(RepoSpec::new(url, "main", cache.path()).with_retry(fast_retry())).unwrap()
}

pub fn configmap(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    })
}

pub fn put_new(path: &str, object: Value) -> FileChange {
    let subject = format!(
        "v1/ConfigMap default/{}",
        object["metadata"]["name"].as_str().unwrap_or("?")
    );
    FileChange::Put {
        path: path.into(),
        doc_index: None,
        object,
        subject,
    }
}
