//! Repositories on one remote share one object store (whatever their branch, path or the user
//! name in the URL); operations on one store run one at a time; `gc` and `remove` delete the
//! stores and branches nobody uses.

mod common;

use std::sync::Barrier;

use common::*;
use gitcontroller_git::{Error, RepoSpec, Repository, gc, remove};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

fn stores(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".git"))
        .collect();
    names.sort();
    names
}

fn branch_spec(url: &str, branch: &str, path: &str, c: &tempfile::TempDir) -> RepoSpec {
    RepoSpec::new(url, branch, c.path())
        .with_path(path)
        .with_create_branch(true)
        .with_retry(fast_retry())
}

/// A remote with `prod/` and `staging/`, and a repository on each path of its `main`, in one
/// cache.
fn prod_and_staging() -> (GitDaemon, tempfile::TempDir, Repository, Repository) {
    let d = GitDaemon::start();
    d.seed(
        &[("prod/a.yaml", "a: 1\n"), ("staging/b.yaml", "b: 1\n")],
        "seed",
    );
    let c = cache();
    let prod = Repository::open(branch_spec(&d.url(), "main", "prod", &c)).unwrap();
    let staging = Repository::open(branch_spec(&d.url(), "main", "staging", &c)).unwrap();
    (d, c, prod, staging)
}

#[test]
fn one_store_per_remote_shared_by_branches_and_paths() {
    let (d, c, mut prod, mut staging) = prod_and_staging();
    // Same repository, spelled with a user name and a trailing slash.
    let other_spelling = d.url().replacen("git://", "git://reader@", 1) + "/";
    let mut feature =
        Repository::open(branch_spec(&other_spelling, "feature", "prod", &c)).unwrap();
    assert_eq!(prod.cache_path(), staging.cache_path());
    assert_eq!(prod.cache_path(), feature.cache_path());

    let head = prod.fetch().unwrap().head.unwrap();
    assert_eq!(
        prod.snapshot(&head).unwrap().files[0].path.as_ref(),
        "a.yaml"
    );
    // Already in the store: the second repository's fetch has nothing to download.
    let fetched = staging.fetch().unwrap();
    assert_eq!(fetched.head.as_deref(), Some(head.as_str()));
    assert_eq!(
        staging.snapshot(&head).unwrap().files[0].path.as_ref(),
        "b.yaml"
    );
    // A second branch gets its own tracking ref in the same store.
    feature
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![put_new("f.yaml", configmap("f", json!({})))])
        })
        .unwrap();
    assert_eq!(prod.cached_head().as_deref(), Some(head.as_str()));
    assert_ne!(feature.cached_head(), prod.cached_head());
    assert_eq!(stores(c.path()).len(), 1);
}

#[test]
fn a_fetch_asked_for_earlier_takes_the_answer_of_a_later_fetch_of_the_same_remote() {
    let (d, _cache, mut prod, mut staging) = prod_and_staging();
    let staging_seen = std::time::Instant::now();
    let first = prod.fetch().unwrap().head.unwrap();
    let after_first = std::time::Instant::now();
    d.seed(&[("staging/c.yaml", "c: 1\n")], "later");

    // Seen before prod's fetch began: prod's answer is as fresh as asked; the remote is not
    // asked again, so the later commit is not seen yet.
    let shared = staging.fetch_since(staging_seen).unwrap();
    assert_eq!(shared.head.as_deref(), Some(first.as_str()));
    // Asked after it began: a fetch of its own, which sees the later commit.
    let own = staging.fetch_since(after_first).unwrap().head.unwrap();
    assert_ne!(own, first);
    assert_eq!(staging.snapshot(&own).unwrap().files.len(), 2);
}

#[test]
fn concurrent_writers_on_one_store_take_turns() {
    let d = GitDaemon::start();
    d.seed(&[("seed.yaml", "a: 1\n")], "seed");
    let c = cache();
    let writers = 4;
    let rounds = 5;
    let barrier = Barrier::new(writers);
    std::thread::scope(|s| {
        for w in 0..writers {
            let (d, c, barrier) = (&d, &c, &barrier);
            s.spawn(move || {
                // Half on main, half on their own branch: every one shares the store.
                let branch = if w % 2 == 0 {
                    "main".to_string()
                } else {
                    format!("w{w}")
                };
                let mut repo = Repository::open(branch_spec(&d.url(), &branch, "", c)).unwrap();
                barrier.wait();
                for r in 0..rounds {
                    let out = repo
                        .commit_and_push(&author(), None, &mut |_| {
                            Ok::<_, Error>(vec![put_new(
                                &format!("w{w}/{r}.yaml"),
                                configmap(&format!("w{w}-{r}"), json!({})),
                            )])
                        })
                        .unwrap();
                    // Our own commit is in the store right after the push (each call
                    // writes through a fresh handle with one in-memory object database).
                    repo.snapshot(out.commit.as_deref().unwrap()).unwrap();
                }
            });
        }
    });
    let files = d.list_files();
    for w in (0..writers).step_by(2) {
        for r in 0..rounds {
            assert!(files.contains(&format!("w{w}/{r}.yaml")), "{files:?}");
        }
    }
    assert_eq!(stores(c.path()).len(), 1);
    assert!(d.non_fast_forward_updates().is_empty());
}

#[test]
fn gc_removes_unused_stores_and_branches() {
    let a = GitDaemon::start();
    a.seed(&[("a.yaml", "a: 1\n")], "seed");
    let b = GitDaemon::start();
    b.seed(&[("b.yaml", "b: 1\n")], "seed");
    let c = cache();
    for (url, branch) in [(a.url(), "main"), (a.url(), "old"), (b.url(), "main")] {
        let mut repo = Repository::open(branch_spec(&url, branch, "", &c)).unwrap();
        repo.commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![put_new("x.yaml", configmap("x", json!({})))])
        })
        .unwrap();
    }
    assert_eq!(stores(c.path()).len(), 2);
    let a_store = Repository::open(branch_spec(&a.url(), "main", "", &c))
        .unwrap()
        .cache_path()
        .to_path_buf();

    // B is open in this process: left alone for now.
    let b_open = Repository::open(branch_spec(&b.url(), "main", "", &c)).unwrap();
    let report = gc(c.path(), [(a.url(), "main")]).unwrap();
    assert_eq!(report.busy, [b_open.cache_path().to_path_buf()]);
    assert!(report.removed_stores.is_empty());
    assert_eq!(
        report.removed_branches,
        [(a_store.clone(), "old".to_string())]
    );
    drop(b_open);

    let report = gc(c.path(), [(a.url(), "main")]).unwrap();
    assert_eq!(report.removed_stores.len(), 1);
    assert!(report.busy.is_empty() && report.removed_branches.is_empty());
    assert_eq!(
        stores(c.path()),
        [a_store.file_name().unwrap().to_str().unwrap()]
    );
    // What stays still works.
    let mut repo = Repository::open(branch_spec(&a.url(), "main", "", &c)).unwrap();
    assert_eq!(repo.fetch().unwrap().head, Some(a.head()));
    drop(repo);

    // remove: one remote's store, whatever the branches.
    assert!(remove(c.path(), &a.url()).unwrap());
    assert!(!remove(c.path(), &a.url()).unwrap());
    assert!(stores(c.path()).is_empty());
    // Nothing outside the stores is touched.
    std::fs::write(c.path().join("notes.txt"), "mine").unwrap();
    gc(c.path(), Vec::<(String, String)>::new()).unwrap();
    assert!(c.path().join("notes.txt").exists());
}
