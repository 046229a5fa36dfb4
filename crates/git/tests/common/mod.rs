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

/// Resident memory of this process, from `/proc/self/status`.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// `VmRSS`, MiB.
    pub rss_mib: f64,
    /// `VmHWM` (peak resident set since start or the last [`reset_peak`]), MiB.
    pub hwm_mib: f64,
    /// `RssAnon` (heap and other anonymous memory, without mapped files), MiB.
    pub anon_mib: f64,
}

pub fn mem() -> Mem {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> f64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from /proc/self/status"));
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024.0
    };
    Mem {
        rss_mib: field("VmRSS:"),
        hwm_mib: field("VmHWM:"),
        anon_mib: field("RssAnon:"),
    }
}

/// Resets `VmHWM` to the current RSS (`/proc/self/clear_refs`), so a peak measured after it
/// belongs to what follows, not to building the test repository.
pub fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let m = mem();
    assert!(
        m.hwm_mib <= m.rss_mib + 1.0,
        "peak not reset: {m:?} (needs Linux clear_refs)"
    );
}

/// Commits `tree` (built in `repo`, the served bare repository) on top of `main` and moves
/// `main` to it, as a push would.
pub fn commit_tree(repo: &git2::Repository, tree: git2::Oid, message: &str) -> String {
    let sig = git2::Signature::now("attacker", "attacker@example.invalid").unwrap();
    let tree = repo.find_tree(tree).unwrap();
    let parent = repo
        .refname_to_id("refs/heads/main")
        .ok()
        .map(|id| repo.find_commit(id).unwrap());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            message,
            &tree,
            &parents,
        )
        .unwrap();
    id.to_string()
}

/// A tree of `files` small manifest files (`name → content`) at the root.
pub fn small_tree(repo: &git2::Repository, files: &[(&str, &str)]) -> git2::Oid {
    let mut builder = repo.treebuilder(None).unwrap();
    for (name, content) in files {
        let blob = repo.blob(content.as_bytes()).unwrap();
        builder.insert(name, blob, 0o100644).unwrap();
    }
    builder.write().unwrap()
}

/// Packs the loose objects of the served repository (`git repack`, no delta search), so
/// fetches do not re-compress them every time.
pub fn repack(git: std::process::Command) {
    let mut git = git;
    let out = git
        .args(["repack", "-a", "-d", "-q", "-f", "--window=0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Feeds a `git fast-import` stream to the served repository (objects go straight into one
/// pack).
pub fn fast_import(git: std::process::Command, stream: &[u8]) {
    use std::io::Write as _;
    let mut git = git;
    let mut child = git
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stream).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The limit every hostile-input test holds the process to (issue 12).
pub const MAX_RSS_MIB: f64 = 256.0;

/// What reading a hostile repository cost.
pub struct HostileRead {
    pub repo: Repository,
    pub snapshot: gitcontroller_git::Snapshot,
    pub before: Mem,
    pub peak: Mem,
    pub elapsed: std::time::Duration,
}

/// Resets the peak, then fetches the served `main` (which must be at `expected_head`) into
/// the cache `c` and snapshots it with the default limits. The peak resident memory of that
/// stays under [`MAX_RSS_MIB`].
pub fn read_hostile(url: &str, c: &tempfile::TempDir, expected_head: &str) -> HostileRead {
    reset_peak();
    let before = mem();
    let mut repo = open(url, c);
    let started = std::time::Instant::now();
    let head = repo.fetch().unwrap().head.unwrap();
    assert_eq!(head, expected_head);
    let snapshot = repo.snapshot(&head).unwrap();
    let elapsed = started.elapsed();
    let peak = mem();
    assert!(!snapshot.is_complete(), "a budget diagnostic is expected");
    assert!(peak.hwm_mib < MAX_RSS_MIB, "peak {peak:?}");
    HostileRead {
        repo,
        snapshot,
        before,
        peak,
        elapsed,
    }
}

/// The served repository shrinks back to one small manifest (a new commit on top of the
/// hostile one): `repo` reads it completely, and the resident memory afterwards (returned)
/// is under [`MAX_RSS_MIB`].
pub fn shrink_back(served: &git2::Repository, repo: &mut Repository) -> Mem {
    let tree = small_tree(served, &[("app.yaml", "kind: A\n")]);
    let fixed = commit_tree(served, tree, "back to normal");
    let head = repo.fetch().unwrap().head.unwrap();
    assert_eq!(head, fixed);
    let snap = repo.snapshot(&head).unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.files.len(), 1);
    let after = mem();
    assert!(after.rss_mib < MAX_RSS_MIB, "{after:?}");
    after
}
