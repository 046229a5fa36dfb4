//! A store holds the branch's head and what it holds, not the branch's history: a first fetch
//! (a first sync, or a store started afresh) costs the repository's size, not its age. Pushes
//! from such a store, fetches of other clients' commits on top of ours and of a rewritten
//! branch all work, and the remote's history stays whole.

mod common;

use common::*;
use gitcontroller_git::{Error, FileChange, RepoSpec, Repository};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

/// `len` bytes of text that do not compress much (hex of a pseudo-random sequence), different
/// for each `seed`.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.push_str(&format!("{:016x}", x));
    }
    out.truncate(len);
    out
}

/// A big manifest, version `v`.
fn big(v: u64) -> String {
    format!("# version {v}\nkind: Note\ntext: {}\n", noise(v, 100_000))
}

/// The bytes of every pack in the store.
fn pack_bytes(repo: &Repository) -> u64 {
    std::fs::read_dir(repo.cache_path().join("objects/pack"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn update(name: &str, value: &str) -> FileChange {
    FileChange::Put {
        path: format!("{name}.yaml"),
        doc_index: Some(0),
        object: configmap(name, json!({ "v": value })),
        subject: format!("v1/ConfigMap default/{name}"),
    }
}

fn push(repo: &mut Repository, change: FileChange) -> String {
    let mut change = Some(change);
    repo.commit_and_push(&author(), None, &mut |_| {
        Ok::<_, Error>(change.take().into_iter().collect())
    })
    .unwrap()
    .commit
    .expect("a commit")
}

#[test]
fn a_store_holds_the_head_not_the_history_and_pushes_and_fetches_from_it() {
    let d = GitDaemon::start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: default\ndata:\n  v: \"0\"\n";
    // Twenty versions of a 100 kB file: 2 MB of history, about 100 kB at the head.
    let mut first = String::new();
    for v in 0..20 {
        let commit = d.seed(&[("big.yaml", &big(v)), ("cm.yaml", cm)], &format!("v{v}"));
        if v == 0 {
            first = commit;
        }
    }

    let c = cache();
    let mut repo = open(&d.url(), &c);
    let head = repo.fetch().unwrap().head.unwrap();
    assert_eq!(head, d.head());
    let store = git2::Repository::open_bare(repo.cache_path()).unwrap();
    assert!(store.is_shallow(), "the store is shallow");
    let oid = |s: &str| git2::Oid::from_str(s).unwrap();
    assert!(
        store.find_commit(oid(&first)).is_err(),
        "the first commit was not fetched"
    );
    let first_big = git2::Oid::hash_object(git2::ObjectType::Blob, big(0).as_bytes()).unwrap();
    assert!(!store.odb().unwrap().exists(first_big), "nor its files");
    let fetched = pack_bytes(&repo);
    assert!(
        fetched < 3 * 100_000,
        "{fetched} bytes fetched for a head of about 100 kB and a history of 2 MB"
    );
    let snapshot = repo.snapshot(&head).unwrap();
    assert_eq!(snapshot.files.len(), 2);
    assert_eq!(
        snapshot.get("big.yaml").unwrap().text(),
        Some(big(19).as_str())
    );

    // A push from the shallow store, then another client's commit on top of ours, then ours
    // on top of theirs.
    let ours = push(&mut repo, update("cm", "1"));
    assert_eq!(d.head(), ours);
    let theirs = d.seed(&[("big.yaml", &big(20))], "v20");
    assert_eq!(repo.fetch().unwrap().head.as_deref(), Some(theirs.as_str()));
    let snapshot = repo.snapshot(&theirs).unwrap();
    assert_eq!(
        snapshot.get("big.yaml").unwrap().text(),
        Some(big(20).as_str())
    );
    assert!(
        snapshot
            .get("cm.yaml")
            .unwrap()
            .text()
            .unwrap()
            .contains("\"1\"")
    );
    let again = push(&mut repo, update("cm", "2"));
    assert_eq!(d.head(), again);
    assert!(d.read_file("cm.yaml").unwrap().contains("v: \"2\""));
    assert!(
        pack_bytes(&repo) < fetched + 3 * 100_000,
        "a later fetch brings what is new, not the history"
    );

    // The remote's history is whole: every commit, each the parent of the next.
    assert_eq!(d.commits().len(), 23);
    assert!(d.is_ancestor(&first, &again));
    let fsck = d.git().args(["fsck", "--strict"]).output().unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stderr)
    );

    // A branch rewritten to an older commit (a force-push elsewhere) is fetched and read.
    let rewound = d
        .git()
        .args(["update-ref", "refs/heads/main", &first])
        .status()
        .unwrap();
    assert!(rewound.success());
    assert_eq!(repo.fetch().unwrap().head.as_deref(), Some(first.as_str()));
    let snapshot = repo.snapshot(&first).unwrap();
    assert_eq!(
        snapshot.get("big.yaml").unwrap().text(),
        Some(big(0).as_str())
    );
    let after_rewind = push(&mut repo, update("cm", "3"));
    assert_eq!(d.head(), after_rewind);
}

#[test]
fn a_local_repository_is_fetched_whole() {
    // libgit2 fetches with a depth over the network only: a local path is read as it is.
    let d = GitDaemon::start();
    let first = d.seed(&[("a.yaml", "a: 1\n")], "one");
    d.seed(&[("a.yaml", "a: 2\n")], "two");
    let c = cache();
    let url = format!("file://{}", d.path().display());
    let mut repo = Repository::open(
        RepoSpec::new(&url, "main", c.path())
            .with_allow_local(true)
            .with_retry(fast_retry()),
    )
    .unwrap();
    let head = repo.fetch().unwrap().head.unwrap();
    assert_eq!(head, d.head());
    let store = git2::Repository::open_bare(repo.cache_path()).unwrap();
    assert!(!store.is_shallow());
    assert!(
        store
            .find_commit(git2::Oid::from_str(&first).unwrap())
            .is_ok()
    );
    let pushed = push(
        &mut repo,
        put_new("cm.yaml", configmap("cm", json!({"v": "1"}))),
    );
    assert_eq!(d.head(), pushed);
}
