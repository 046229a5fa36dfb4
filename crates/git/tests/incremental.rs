//! A one-object change costs work proportional to what changed: a push stores only the objects
//! it created, an attempt on the head the caller already read reuses the caller's snapshot, and
//! the pushed commit's snapshot is derived from it instead of being read again. Each shortcut
//! must give exactly what the long way gives.

mod common;

use std::collections::BTreeMap;

use common::*;
use gitcontroller_git::{
    Error, FileChange, Limits, PushOutcome, RepoSpec, Repository, SkipReason, Snapshot,
};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::{Value, json};

const MULTI: &str = "# three documents\na: 1\n---\nb: 2 # keep\n---\nc: 3\n";

fn open_with(d: &GitDaemon, c: &tempfile::TempDir, path: &str, limits: Limits) -> Repository {
    Repository::open(
        RepoSpec::new(d.url(), "main", c.path())
            .with_retry(fast_retry())
            .with_path(path)
            .with_limits(limits),
    )
    .unwrap()
}

fn put(path: &str, doc_index: Option<usize>, object: Value) -> FileChange {
    FileChange::Put {
        path: path.into(),
        doc_index,
        object,
        subject: format!("put {path}"),
    }
}

fn remove(path: &str, doc_index: usize) -> FileChange {
    FileChange::Remove {
        path: path.into(),
        doc_index,
        subject: format!("remove {path}"),
    }
}

/// Pushes `changes`, handing `current` in; asserts `derive` was given `current` itself.
fn push_on(repo: &mut Repository, current: &Snapshot, changes: Vec<FileChange>) -> PushOutcome {
    let mut changes = Some(changes);
    repo.commit_and_push_on(&author(), None, &|_, _| None, Some(current), &mut |snap| {
        assert!(
            std::ptr::eq(snap, current),
            "the head was {}, the caller's snapshot: it is not read again",
            snap.commit
        );
        Ok::<_, Error>(changes.take().expect("one attempt"))
    })
    .unwrap()
}

/// Every object of `commit` (the commit, every tree and blob below it), read from the store in
/// `dir` through a handle of its own: nothing in memory of the writer helps.
fn assert_whole_commit_stored(dir: &std::path::Path, commit: &str) {
    let store = git2::Repository::open_bare(dir).unwrap();
    let commit = store
        .find_commit(git2::Oid::from_str(commit).unwrap())
        .unwrap();
    let mut trees = vec![commit.tree().unwrap()];
    let mut blobs = 0;
    while let Some(tree) = trees.pop() {
        for entry in tree.iter() {
            match entry.kind() {
                Some(git2::ObjectType::Tree) => trees.push(store.find_tree(entry.id()).unwrap()),
                Some(git2::ObjectType::Blob) => {
                    store.find_blob(entry.id()).unwrap();
                    blobs += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(blobs > 0);
    // And `git` itself finds the store sound: every pack, tree and commit in it valid.
    let fsck = gitcontroller_testkit::git_server::git_command()
        .arg("--git-dir")
        .arg(dir)
        .args(["fsck", "--strict", "--no-dangling", "--no-progress"])
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "git fsck of the cache: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

#[test]
fn a_push_stores_the_commit_its_new_trees_and_blobs_in_the_cache() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("keep.yaml", "k: 1\n"),
            ("a/b/old.yaml", "o: 1\n"),
            ("a/other.yaml", "x: 1\n"),
            ("gone/only.yaml", "g: 1\n"),
        ],
        "seed",
    );
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let out = repo
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![
                // A new file in an existing nested directory: the trees a/b, a and the root
                // are new.
                put_new("a/b/c.yaml", configmap("c", json!({"v": "1"}))),
                // An edit of a file beside it.
                put("a/b/old.yaml", Some(0), json!({"o": 2})),
                // New directories.
                put_new("n/e/w.yaml", configmap("w", json!({}))),
                // A removal that empties its directory.
                remove("gone/only.yaml", 0),
            ])
        })
        .unwrap();
    let commit = out.commit.unwrap();
    assert_eq!(repo.cached_head().as_deref(), Some(commit.as_str()));
    let store = repo.cache_path().to_path_buf();
    drop(repo);

    // A new handle on the cache (the writer's in-memory database is gone) reads everything.
    assert_whole_commit_stored(&store, &commit);
    let repo = open(&d.url(), &c);
    assert_eq!(repo.cached_head().as_deref(), Some(commit.as_str()));
    let snap = repo.snapshot(&commit).unwrap();
    let paths: Vec<&str> = snap.files.iter().map(|f| &*f.path).collect();
    assert_eq!(
        paths,
        [
            "a/b/c.yaml",
            "a/b/old.yaml",
            "a/other.yaml",
            "keep.yaml",
            "n/e/w.yaml"
        ]
    );
    assert_eq!(snap.get("a/b/old.yaml").unwrap().text(), Some("o: 2\n"));
    // The derived snapshot is that one.
    assert_eq!(out.snapshot.as_ref(), Some(&snap));
}

#[test]
fn the_derived_snapshot_is_the_snapshot_of_the_pushed_commit() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("outside.yaml", "o: 1\n"),
            ("apps/web.yaml", "# web\nkind: Web\nreplicas: 1 # few\n"),
            ("apps/multi.yaml", MULTI),
            ("apps/lonely/one.yaml", "l: 1\n"),
            ("apps/README.md", "not a manifest\n"),
            ("apps/sub/keep.json", "{\"k\": 1}\n"),
        ],
        "seed",
    );
    let c = cache();
    let mut repo = open_with(&d, &c, "apps", Limits::default());
    let head = repo.fetch().unwrap().head.unwrap();
    let mut current = repo.snapshot(&head).unwrap();
    let steps: Vec<(&str, Vec<FileChange>)> = vec![
        (
            "a write in place",
            vec![put(
                "web.yaml",
                Some(0),
                json!({"kind": "Web", "replicas": 3}),
            )],
        ),
        (
            "new files in new subdirectories",
            vec![
                put_new("new/deep/er/cm.yaml", configmap("cm", json!({"a": "1"}))),
                put_new("new/side.json", configmap("side", json!({}))),
                put_new("top.yml", configmap("top", json!({}))),
            ],
        ),
        (
            "multi-document edits",
            vec![
                remove("multi.yaml", 0),
                put("multi.yaml", Some(1), json!({"b": 20})),
            ],
        ),
        (
            "removals, one emptying its directory",
            vec![
                remove("lonely/one.yaml", 0),
                remove("new/side.json", 0),
                remove("multi.yaml", 0),
            ],
        ),
        (
            "a new document in a file that had none left",
            vec![put_new("lonely/one.yaml", configmap("back", json!({})))],
        ),
    ];
    for (what, changes) in steps {
        let out = push_on(&mut repo, &current, changes);
        let commit = out.commit.expect(what);
        let read = repo.snapshot(&commit).unwrap();
        let derived = out
            .snapshot
            .unwrap_or_else(|| panic!("{what}: not derived"));
        assert_eq!(derived, read, "{what}");
        // The next push starts from the derived snapshot, as the controller's does.
        current = derived;
    }
    assert!(current.get("lonely/one.yaml").is_some());
    let multi = current.get("multi.yaml").unwrap().text().unwrap();
    assert!(multi.contains("c: 3") && !multi.contains("b:"), "{multi}");
}

#[test]
fn a_derived_snapshot_leaves_out_what_the_caller_knows_like_a_read() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("a.yaml", "a: 1\n"),
            ("b.yaml", "b: 1\n"),
            ("m.yaml", MULTI),
        ],
        "seed",
    );
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let head = repo.fetch().unwrap().head.unwrap();
    let full = repo.snapshot(&head).unwrap();
    // The caller has parsed every file of the seed.
    let sizes: BTreeMap<(String, String), u64> = full
        .files
        .iter()
        .map(|f| ((f.path.to_string(), f.blob.to_string()), f.size))
        .collect();
    let known = move |path: &str, blob: &str| sizes.get(&(path.into(), blob.into())).copied();
    let current = repo.snapshot_with(&head, &known).unwrap();
    assert!(current.files.iter().all(|f| f.content.is_none()));
    let out = repo
        .commit_and_push_on(&author(), None, &known, Some(&current), &mut |snap| {
            assert!(std::ptr::eq(snap, &current));
            Ok::<_, Error>(vec![
                put("m.yaml", Some(2), json!({"c": 4})),
                put_new("c.yaml", configmap("c", json!({}))),
            ])
        })
        .unwrap();
    let commit = out.commit.unwrap();
    let derived = out.snapshot.unwrap();
    assert_eq!(derived, repo.snapshot_with(&commit, &known).unwrap());
    assert_eq!(
        derived.get("m.yaml").unwrap().text(),
        Some("# three documents\na: 1\n---\nb: 2 # keep\n---\nc: 4\n")
    );
}

#[test]
fn a_lost_race_reads_the_new_head_instead_of_the_callers_snapshot() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let head = repo.fetch().unwrap().head.unwrap();
    let current = repo.snapshot(&head).unwrap();
    let mut seen: Vec<(String, bool)> = Vec::new();
    let mut theirs = String::new();
    let out = repo
        .commit_and_push_on(&author(), None, &|_, _| None, Some(&current), &mut |snap| {
            seen.push((snap.commit.clone(), std::ptr::eq(snap, &current)));
            if seen.len() == 1 {
                // Someone pushes between our fetch and our push.
                theirs = d.seed(&[("their.yaml", "t: 1\n")], "theirs");
            }
            let a = snap.get("a.yaml").unwrap().text().unwrap();
            Ok::<_, Error>(vec![put(
                "a.yaml",
                Some(0),
                json!({"a": a.len(), "seen": snap.files.len()}),
            )])
        })
        .unwrap();
    assert_eq!(out.retries, 1);
    assert_eq!(seen, [(head.clone(), true), (theirs.clone(), false)]);
    // Re-derived on their commit, which is kept.
    let commit = out.commit.unwrap();
    assert!(d.is_ancestor(&theirs, &commit));
    assert_eq!(d.read_file("a.yaml").as_deref(), Some("a: 5\nseen: 2\n"));
    assert_eq!(out.snapshot.unwrap(), repo.snapshot(&commit).unwrap());

    // A snapshot of a head that has moved since is not used either.
    let mut calls = 0;
    let out = repo
        .commit_and_push_on(&author(), None, &|_, _| None, Some(&current), &mut |snap| {
            calls += 1;
            assert_eq!(snap.commit, commit);
            assert!(!std::ptr::eq(snap, &current));
            Ok::<_, Error>(vec![put_new("b.yaml", configmap("b", json!({})))])
        })
        .unwrap();
    assert_eq!(calls, 1);
    assert!(out.snapshot.is_some());
}

/// Seeds `files`, reads them with `limits` at the path root, pushes `changes` on that snapshot
/// and returns the outcome with the snapshot read of the pushed commit.
fn push_with_limits(
    files: &[(&str, &str)],
    limits: Limits,
    changes: Vec<FileChange>,
) -> (PushOutcome, Snapshot, Snapshot) {
    let d = GitDaemon::start();
    d.seed(files, "seed");
    let c = cache();
    let mut repo = open_with(&d, &c, "", limits);
    let head = repo.fetch().unwrap().head.unwrap();
    let current = repo.snapshot(&head).unwrap();
    let out = push_on(&mut repo, &current, changes);
    let read = repo.snapshot(out.commit.as_ref().unwrap()).unwrap();
    (out, current, read)
}

#[test]
fn no_snapshot_is_derived_where_a_read_would_skip_or_stop() {
    let small = [("a.yaml", "a: 1\n"), ("b.yaml", "b: 1\n")];
    let big = json!({"big": "x".repeat(200)});

    // A new file over max_file_bytes.
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let (out, _, read) =
        push_with_limits(&small, limits, vec![put("a.yaml", Some(0), big.clone())]);
    assert_eq!(read.skipped[0].reason, SkipReason::TooLarge);
    assert_eq!(out.snapshot, None);

    // Over max_total_bytes.
    let limits = Limits {
        max_total_bytes: 100,
        ..Limits::default()
    };
    let (out, _, read) = push_with_limits(&small, limits, vec![put("c.yaml", None, big.clone())]);
    assert_eq!(read.skipped[0].reason, SkipReason::BudgetExceeded);
    assert_eq!(out.snapshot, None);

    // Over max_paths: two entries at the root, a third is one too many.
    let limits = Limits {
        max_paths: 2,
        ..Limits::default()
    };
    let (out, base, read) = push_with_limits(&small, limits, vec![put_new("c.yaml", json!({}))]);
    assert_eq!(base.entries, 2);
    assert!(base.is_complete() && read.truncated.is_some());
    assert_eq!(out.snapshot, None);
    // ... while replacing one file by another stays within it.
    let (out, _, read) = push_with_limits(
        &small,
        limits,
        vec![remove("a.yaml", 0), put_new("c.yaml", json!({"c": 1}))],
    );
    assert!(read.is_complete());
    assert_eq!(out.snapshot, Some(read));

    // Deeper than max_depth.
    let limits = Limits {
        max_depth: 1,
        ..Limits::default()
    };
    let (out, _, read) = push_with_limits(&small, limits, vec![put_new("x/y/z.yaml", json!({}))]);
    assert!(read.truncated.is_some());
    assert_eq!(out.snapshot, None);
    let (out, _, read) = push_with_limits(&small, limits, vec![put_new("x/z.yaml", json!({}))]);
    assert_eq!(out.snapshot, Some(read));

    // A base that was incomplete: even a small write is not derived.
    let limits = Limits {
        max_total_bytes: 10,
        ..Limits::default()
    };
    let with_large = [("a.yaml", "a: 1\n"), ("large.yaml", "l: 0123456789\n")];
    let (out, base, read) = push_with_limits(
        &with_large,
        limits,
        vec![put("a.yaml", Some(0), json!({"a": 2}))],
    );
    assert!(!base.is_complete() && !read.is_complete());
    assert_eq!(out.snapshot, None);
}

#[test]
fn no_snapshot_is_derived_when_the_last_file_leaves_spec_path() {
    let d = GitDaemon::start();
    d.seed(
        &[("apps/only.yaml", "a: 1\n"), ("x.yaml", "x: 1\n")],
        "seed",
    );
    let c = cache();
    let mut repo = open_with(&d, &c, "apps", Limits::default());
    let head = repo.fetch().unwrap().head.unwrap();
    let current = repo.snapshot(&head).unwrap();
    let out = push_on(&mut repo, &current, vec![remove("only.yaml", 0)]);
    let commit = out.commit.unwrap();
    // Git keeps no empty directory: reading the commit fails, so nothing is derived.
    let err = repo.snapshot(&commit).unwrap_err();
    assert!(matches!(err, Error::PathNotFound { .. }), "{err}");
    assert_eq!(out.snapshot, None);
}
