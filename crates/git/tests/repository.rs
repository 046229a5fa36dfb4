//! Repository behaviour against a git daemon: cache reuse, change detection, snapshots from
//! the object database (symlinks never followed, non-UTF-8 skipped), path confinement, no
//! empty commits, removals, an empty remote, commit metadata.

mod common;

use common::*;
use gitcontroller_git::{Category, Error, FileChange, RepoSpec, Repository, SkipReason};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

#[test]
fn cache_is_reused_and_fetch_reports_changes() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "one");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let f1 = repo.fetch().unwrap();
    assert!(f1.changed);
    assert_eq!(f1.head.as_deref(), Some(d.head().as_str()));
    let f2 = repo.fetch().unwrap();
    assert!(!f2.changed);
    let path = repo.cache_path().to_path_buf();
    drop(repo);

    // A new Repository on the same cache dir starts where the last one stopped.
    let mut again = open(&d.url(), &c);
    assert_eq!(again.cache_path(), path);
    assert_eq!(again.cached_head(), f1.head);
    assert!(!again.fetch().unwrap().changed);
    d.seed(&[("b.yaml", "b: 1\n")], "two");
    let f3 = again.fetch().unwrap();
    assert!(f3.changed);
    assert_eq!(f3.head.as_deref(), Some(d.head().as_str()));
    // Only the store of this remote (and its lock file) exists in cache_dir, and it is bare.
    let mut entries: Vec<String> = std::fs::read_dir(c.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    let stem = path.file_stem().unwrap().to_str().unwrap();
    assert_eq!(entries, [format!("{stem}.git"), format!("{stem}.lock")]);
    assert!(path.join("HEAD").exists() && !path.join(".git").exists());
}

#[test]
fn snapshot_reads_manifests_from_the_object_database() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("clusters/prod/apps/web.yaml", "kind: A\n"),
            ("clusters/prod/apps/db.YML", "kind: B\n"),
            ("clusters/prod/ns.json", "{\"kind\": \"C\"}\n"),
            ("clusters/prod/README.md", "# not a manifest\n"),
            ("clusters/staging/x.yaml", "kind: D\n"),
        ],
        "seed",
    );
    d.seed_bytes(
        &[("clusters/prod/latin1.yaml", b"name: caf\xe9\n")],
        "latin1",
    );
    d.seed_symlink("clusters/prod/passwd.yaml", "/etc/passwd", "evil symlink");
    d.seed_symlink("clusters/prod/outside", "../staging", "dir symlink");
    let c = cache();
    let mut repo =
        Repository::open(RepoSpec::new(d.url(), "main", c.path()).with_path("clusters/prod/"))
            .unwrap();
    let head = repo.fetch().unwrap().head.unwrap();
    let snap = repo.snapshot(&head).unwrap();
    let paths: Vec<&str> = snap.files.iter().map(|f| &*f.path).collect();
    assert_eq!(paths, ["apps/db.YML", "apps/web.yaml", "ns.json"]);
    assert_eq!(snap.get("apps/web.yaml").unwrap().text(), Some("kind: A\n"));
    assert_eq!(snap.get("apps/web.yaml").unwrap().size, 8);
    let skipped: Vec<(&str, SkipReason)> = snap
        .skipped
        .iter()
        .map(|s| (s.path.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("latin1.yaml", SkipReason::NotUtf8),
            ("passwd.yaml", SkipReason::Symlink)
        ]
    );
    assert!(snap.path_exists && !snap.is_complete() && snap.truncated.is_none());
    // Blob ids are git's.
    let blob = d
        .git()
        .args(["rev-parse", "main:clusters/prod/apps/web.yaml"])
        .output()
        .unwrap();
    assert_eq!(
        &*snap.get("apps/web.yaml").unwrap().blob,
        String::from_utf8_lossy(&blob.stdout).trim()
    );
    // The cache has no working tree: nothing was checked out anywhere.
    assert!(!repo.cache_path().join("clusters").exists());

    // A spec.path through a symlink is refused; a missing one is PathNotFound.
    let c2 = cache();
    let mut via_link = Repository::open(
        RepoSpec::new(d.url(), "main", c2.path()).with_path("clusters/prod/outside"),
    )
    .unwrap();
    let head = via_link.fetch().unwrap().head.unwrap();
    assert_eq!(
        via_link.snapshot(&head).unwrap_err().category(),
        "invalid-path"
    );
    let c3 = cache();
    let mut missing =
        Repository::open(RepoSpec::new(d.url(), "main", c3.path()).with_path("nope")).unwrap();
    let head = missing.fetch().unwrap().head.unwrap();
    let err = missing.snapshot(&head).unwrap_err();
    assert_eq!(err.category(), Category::PathNotFound, "{err}");
    assert!(!err.retry_can_help());
}

#[test]
fn writes_are_confined_to_spec_path() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("managed/a.yaml", "a: 1\n"),
            ("other/secret.yaml", "s: 1\n"),
        ],
        "seed",
    );
    d.seed_symlink("managed/escape", "../other", "symlinked dir");
    d.seed_symlink(
        "managed/link.yaml",
        "../other/secret.yaml",
        "symlinked file",
    );
    let c = cache();
    let mut repo = Repository::open(
        RepoSpec::new(d.url(), "main", c.path())
            .with_path("managed")
            .with_retry(fast_retry()),
    )
    .unwrap();
    let before = d.head();
    for bad in [
        "../other/secret.yaml",
        "/etc/x.yaml",
        "escape/secret.yaml",
        "link.yaml",
        "a/./b.yaml",
        ".git/config.yaml",
    ] {
        let err = repo
            .commit_and_push(&author(), None, &mut |_| {
                Ok::<_, Error>(vec![put_new(bad, configmap("x", json!({})))])
            })
            .unwrap_err();
        assert_eq!(err.category(), "invalid-path", "{bad}: {err}");
    }
    // Removing through a symlink is refused as well.
    let err = repo
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![FileChange::Remove {
                path: "link.yaml".into(),
                doc_index: 0,
                subject: "x".into(),
            }])
        })
        .unwrap_err();
    assert_eq!(err.category(), "invalid-path", "{err}");
    assert_eq!(d.head(), before, "nothing was pushed");
    assert_eq!(d.read_file("other/secret.yaml").as_deref(), Some("s: 1\n"));

    // A good write lands under spec.path.
    repo.commit_and_push(&author(), None, &mut |_| {
        Ok::<_, Error>(vec![put_new("sub/new.yaml", configmap("new", json!({})))])
    })
    .unwrap();
    assert!(d.read_file("managed/sub/new.yaml").is_some());
}

#[test]
fn no_changes_no_commit_and_removals() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("apps/pair.yaml", "# two objects\na: 1\n---\nb: 2\n"),
            ("apps/single.yaml", "c: 3\n"),
            ("apps/only/one.json", "{\"d\": 4}\n"),
        ],
        "seed",
    );
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let head = d.head();
    // Nothing derived: no commit.
    let out = repo
        .commit_and_push(&author(), None, &mut |_| Ok::<_, Error>(vec![]))
        .unwrap();
    assert_eq!(out.commit, None);
    // Changes that change nothing: no commit either.
    let out = repo
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![FileChange::Put {
                path: "apps/single.yaml".into(),
                doc_index: Some(0),
                object: json!({"c": 3}),
                subject: "c".into(),
            }])
        })
        .unwrap();
    assert_eq!(out.commit, None);
    assert_eq!(d.head(), head);

    // Remove one document of two, the only document of a file, and a JSON file (its now
    // empty directory disappears from the tree).
    let out = repo
        .commit_and_push(&author(), Some("[sync]"), &mut |_| {
            Ok::<_, Error>(vec![
                FileChange::Remove {
                    path: "apps/pair.yaml".into(),
                    doc_index: 0,
                    subject: "v1/ConfigMap default/a".into(),
                },
                FileChange::Remove {
                    path: "apps/single.yaml".into(),
                    doc_index: 0,
                    subject: "v1/ConfigMap default/c".into(),
                },
                FileChange::Remove {
                    path: "apps/only/one.json".into(),
                    doc_index: 0,
                    subject: "v1/ConfigMap default/d".into(),
                },
            ])
        })
        .unwrap();
    assert!(out.commit.is_some());
    assert_eq!(d.read_file("apps/pair.yaml").as_deref(), Some("b: 2\n"));
    assert_eq!(d.list_files(), ["apps/pair.yaml"]);
    // No empty tree is left behind for apps/only.
    let trees = d
        .git()
        .args(["ls-tree", "-r", "-t", "--name-only", "main"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&trees.stdout),
        "apps\napps/pair.yaml\n"
    );
    let msg = &d.commit_messages()[0];
    assert_eq!(
        msg,
        "[sync] Remove 3 objects: v1/ConfigMap default/a, v1/ConfigMap default/c and 1 more\n\n\
         - remove v1/ConfigMap default/a (apps/pair.yaml)\n\
         - remove v1/ConfigMap default/c (apps/single.yaml)\n\
         - remove v1/ConfigMap default/d (apps/only/one.json)"
    );
    // Author and committer are ours.
    let who = d
        .git()
        .args(["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&who.stdout).trim(),
        "git-controller <git-controller@example.invalid>|git-controller <git-controller@example.invalid>"
    );
}

#[test]
fn empty_remote_gets_its_first_commit() {
    let d = GitDaemon::start();
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let fetched = repo.fetch().unwrap();
    assert_eq!(fetched.head, None);
    let out = repo
        .commit_and_push(&author(), None, &mut |snap| {
            assert!(snap.files.is_empty() && snap.commit.is_empty());
            Ok::<_, Error>(vec![
                put_new("apps/a.yaml", configmap("a", json!({"k": "v"}))),
                put_new("apps/b.json", configmap("b", json!({}))),
            ])
        })
        .unwrap();
    assert_eq!(out.commit.as_deref(), Some(d.head().as_str()));
    assert_eq!(
        d.read_file("apps/a.yaml").unwrap(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: default\ndata:\n  k: v\n"
    );
    assert!(
        d.read_file("apps/b.json")
            .unwrap()
            .starts_with("{\n  \"apiVersion\": \"v1\",")
    );
    assert_eq!(d.commits().len(), 1);
}

#[test]
fn invalid_specs() {
    let c = cache();
    let e = Repository::open(RepoSpec::new(
        "git://127.0.0.1:1/r.git",
        "bad..branch",
        c.path(),
    ))
    .unwrap_err();
    assert_eq!(e.category(), "internal");
    let e = Repository::open(
        RepoSpec::new("git://127.0.0.1:1/r.git", "main", c.path()).with_path("../x"),
    )
    .unwrap_err();
    assert_eq!(e.category(), "invalid-path");
    let e = Repository::open(RepoSpec::new("ftp://x/r.git", "main", c.path())).unwrap_err();
    assert_eq!(e.category(), "internal");
}

#[test]
fn derive_errors_pass_through() {
    #[derive(Debug, PartialEq)]
    enum Mine {
        Planner(String),
        Git(String),
    }
    impl From<Error> for Mine {
        fn from(e: Error) -> Self {
            Mine::Git(e.category().as_str().to_string())
        }
    }
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let err = repo
        .commit_and_push(&author(), None, &mut |_| Err(Mine::Planner("boom".into())))
        .unwrap_err();
    assert_eq!(err, Mine::Planner("boom".into()));
    let err = repo
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Mine>(vec![FileChange::Put {
                path: "a.yaml".into(),
                doc_index: Some(3),
                object: json!({}),
                subject: "x".into(),
            }])
        })
        .unwrap_err();
    assert_eq!(err, Mine::Git("conflict".into()));
}

#[test]
fn our_commits_are_stored_as_one_pack_and_failed_attempts_leave_nothing() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    // One lost race, then success.
    let mut calls = 0;
    let out = repo
        .commit_and_push(&author(), None, &mut |_| {
            calls += 1;
            if calls == 1 {
                d.seed(&[("their.yaml", "t: 1\n")], "theirs");
            }
            Ok::<_, Error>(
                (0..50)
                    .map(|i| {
                        put_new(
                            &format!("cm/{i}.yaml"),
                            configmap(&format!("cm-{i}"), json!({})),
                        )
                    })
                    .collect(),
            )
        })
        .unwrap();
    let commit = out.commit.unwrap();
    assert_eq!(out.retries, 1);
    // The pushed commit is readable from the cache without fetching again.
    assert_eq!(repo.cached_head().as_deref(), Some(commit.as_str()));
    assert_eq!(repo.snapshot(&commit).unwrap().files.len(), 52);
    // No loose objects: neither from the rejected attempt nor from the pushed one.
    let objects = repo.cache_path().join("objects");
    let loose: Vec<_> = std::fs::read_dir(&objects)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().len() == 2)
        .filter(|e| {
            std::fs::read_dir(e.path())
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        })
        .collect();
    assert!(loose.is_empty(), "loose objects left: {loose:?}");
    assert!(
        !repo
            .cache_path()
            .join("refs/gitcontroller/outgoing")
            .exists()
    );
}
