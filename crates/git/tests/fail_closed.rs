//! Sources we could not read fail closed (issue 11): a branch typo or a deleted branch is
//! `BranchNotFound` for reads and writes (never re-created as an orphan root commit unless
//! `create_branch` asks for it), a path typo is `PathNotFound`, while an empty remote and a
//! path without manifests stay legitimate. Local URLs need `allow_local`; URL secrets
//! (passwords and query tokens) never show.

mod common;

use common::*;
use gitcontroller_git::{Category, Error, RepoSpec, Repository};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

fn spec(d: &GitDaemon, branch: &str, c: &tempfile::TempDir) -> RepoSpec {
    RepoSpec::new(d.url(), branch, c.path()).with_retry(fast_retry())
}

/// Runs `commit_and_push` with a derive that must not be called; returns the error.
fn push_without_derive(repo: &mut Repository) -> Error {
    repo.commit_and_push(&author(), None, &mut |_| -> Result<_, Error> {
        panic!("derive must not be called on a source that could not be read")
    })
    .unwrap_err()
}

#[test]
fn branch_typo_is_branch_not_found_for_reads_and_writes() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = Repository::open(spec(&d, "mian", &c)).unwrap();
    let err = repo.fetch().unwrap_err();
    assert_eq!(err.category(), Category::BranchNotFound, "{err}");
    assert!(err.to_string().contains("\"mian\""), "{err}");
    assert!(!err.retry_can_help() && !err.is_transient());
    let before = d.ref_updates().len();
    let err = push_without_derive(&mut repo);
    assert_eq!(err.category(), Category::BranchNotFound, "{err}");
    assert_eq!(d.ref_updates().len(), before, "nothing was pushed");
    let branches = d
        .git()
        .args(["for-each-ref", "--format=%(refname)"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&branches.stdout),
        "refs/heads/main\n"
    );
}

#[test]
fn deleted_branch_is_not_read_from_the_cache_nor_recreated() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    // Another branch, so the remote stays non-empty when main goes.
    let status = d.git().args(["branch", "keep", "main"]).status().unwrap();
    assert!(status.success());
    let c = cache();
    let mut repo = Repository::open(spec(&d, "main", &c)).unwrap();
    let head = repo.fetch().unwrap().head.unwrap();
    assert_eq!(repo.snapshot(&head).unwrap().files.len(), 1);

    let status = d.git().args(["branch", "-D", "main"]).status().unwrap();
    assert!(status.success());
    let err = repo.fetch().unwrap_err();
    assert_eq!(err.category(), Category::BranchNotFound, "{err}");
    assert_eq!(repo.cached_head(), None, "the stale head is forgotten");
    let err = push_without_derive(&mut repo);
    assert_eq!(err.category(), Category::BranchNotFound, "{err}");
    assert_eq!(d.try_head(), None, "main was not re-created");

    // Recovery: the branch comes back, the same Repository reads it.
    let status = d.git().args(["branch", "main", "keep"]).status().unwrap();
    assert!(status.success());
    assert_eq!(repo.fetch().unwrap().head.as_deref(), Some(head.as_str()));
}

#[test]
fn create_branch_allows_creating_a_missing_branch() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let main = d.head();
    let c = cache();
    let mut repo = Repository::open(spec(&d, "env/new", &c).with_create_branch(true)).unwrap();
    assert_eq!(repo.fetch().unwrap().head, None);
    let out = repo
        .commit_and_push(&author(), None, &mut |snap| {
            assert!(!snap.path_exists && snap.files.is_empty() && snap.commit.is_empty());
            Ok::<_, Error>(vec![put_new("b.yaml", configmap("b", json!({})))])
        })
        .unwrap();
    let commit = out.commit.unwrap();
    let tip = d
        .git()
        .args(["rev-parse", "refs/heads/env/new"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&tip.stdout).trim(), commit);
    assert_eq!(d.head(), main, "main untouched");
}

#[test]
fn empty_remote_is_a_legitimate_empty_source() {
    let d = GitDaemon::start();
    let c = cache();
    let mut repo = Repository::open(spec(&d, "main", &c)).unwrap();
    let fetched = repo.fetch().unwrap();
    assert_eq!(fetched.head, None);
    // Without create_branch too: the first push creates the branch.
    let out = repo
        .commit_and_push(&author(), None, &mut |snap| {
            assert!(!snap.path_exists);
            Ok::<_, Error>(vec![put_new("a.yaml", configmap("a", json!({})))])
        })
        .unwrap();
    assert_eq!(out.commit.as_deref(), Some(d.head().as_str()));
}

#[test]
fn path_typo_is_path_not_found_and_an_empty_path_is_empty() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("kustomize/app.yaml", "a: 1\n"),
            ("empty/README.md", "no manifests here yet\n"),
        ],
        "seed",
    );
    let c = cache();
    let mut typo = Repository::open(spec(&d, "main", &c).with_path("kustomise")).unwrap();
    let head = typo.fetch().unwrap().head.unwrap();
    let err = typo.snapshot(&head).unwrap_err();
    assert_eq!(err.category(), Category::PathNotFound, "{err}");
    assert!(err.to_string().contains("\"kustomise\""), "{err}");
    let before = d.ref_updates().len();
    let err = push_without_derive(&mut typo);
    assert_eq!(err.category(), Category::PathNotFound, "{err}");
    assert_eq!(d.ref_updates().len(), before, "nothing was pushed");

    // A directory without manifests: an existing, complete, empty source.
    let mut empty = Repository::open(spec(&d, "main", &c).with_path("empty")).unwrap();
    let head = empty.fetch().unwrap().head.unwrap();
    let snap = empty.snapshot(&head).unwrap();
    assert!(snap.path_exists && snap.files.is_empty() && snap.is_complete());
    // And writes go there.
    empty
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![put_new("x.yaml", configmap("x", json!({})))])
        })
        .unwrap();
    assert!(d.read_file("empty/x.yaml").is_some());
}

#[test]
fn local_urls_need_allow_local() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    for url in [
        format!("file://{}", d.path().display()),
        d.path().display().to_string(),
    ] {
        let err = Repository::open(RepoSpec::new(&url, "main", c.path())).unwrap_err();
        assert_eq!(err.category(), Category::Internal, "{err}");
        assert!(err.to_string().contains("allow_local"), "{err}");
        let mut repo =
            Repository::open(RepoSpec::new(&url, "main", c.path()).with_allow_local(true)).unwrap();
        assert_eq!(repo.fetch().unwrap().head, Some(d.head()));
    }
}

#[test]
fn url_secrets_never_show() {
    let c = cache();
    let url = "https://alice:pw-in-url-77@127.0.0.1:1/r.git?private_token=tok-in-query-88";
    let spec = RepoSpec::new(url, "main", c.path());
    let dbg = format!("{spec:?}");
    let mut repo = Repository::open(spec).unwrap();
    let err = repo.fetch().unwrap_err();
    assert_eq!(err.category(), Category::Network, "{err}");
    for shown in [
        dbg,
        format!("{repo:?}"),
        err.to_string(),
        format!("{err:?}"),
    ] {
        assert!(
            !shown.contains("pw-in-url-77") && !shown.contains("tok-in-query-88"),
            "{shown}"
        );
        assert!(shown.contains("private_token=<redacted>"), "{shown}");
    }
}
