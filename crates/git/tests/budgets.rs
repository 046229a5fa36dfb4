//! Snapshot budgets with small limits (each is a diagnostic, never an error), and snapshots
//! that leave out the content of blobs the caller already has.

mod common;

use common::*;
use gitcontroller_git::{Budget, Limits, RepoSpec, Repository, SkipReason, Snapshot};
use gitcontroller_testkit::git_server::GitDaemon;

fn snapshot_with_limits(d: &GitDaemon, limits: Limits) -> Snapshot {
    let c = cache();
    let mut repo =
        Repository::open(RepoSpec::new(d.url(), "main", c.path()).with_limits(limits)).unwrap();
    let head = repo.fetch().unwrap().head.unwrap();
    repo.snapshot(&head).unwrap()
}

fn skipped(snap: &Snapshot) -> Vec<(&str, SkipReason)> {
    snap.skipped
        .iter()
        .map(|s| (s.path.as_str(), s.reason))
        .collect()
}

#[test]
fn byte_budgets_list_what_they_leave_out() {
    let d = GitDaemon::start();
    let big = format!("b: {}\n", "2".repeat(1996)); // 2,000 bytes
    d.seed(
        &[
            ("a.yaml", "a: 1\n"), // 5 bytes
            ("b.yaml", big.as_str()),
            ("c/c.yaml", "c: 3\n"),
            ("d.yaml", "d: 4\n"),
        ],
        "seed",
    );
    let all = snapshot_with_limits(&d, Limits::default());
    assert!(all.is_complete() && all.files.len() == 4);

    // b.yaml is larger than a file may be (directory listings are far smaller); the rest fits.
    let snap = snapshot_with_limits(
        &d,
        Limits {
            max_file_bytes: 1000,
            ..Limits::default()
        },
    );
    assert_eq!(
        skipped(&snap),
        [("b.yaml", SkipReason::TooLarge)],
        "{snap:?}"
    );
    assert_eq!(snap.skipped[0].size, Some(2000));
    assert_eq!(snap.files.len(), 3);
    assert!(!snap.is_complete() && snap.truncated.is_none());

    // 12 bytes in total: a.yaml (5), then b.yaml (2,000) does not fit, and nothing after it is
    // read either (the result does not depend on which small files happen to follow).
    let snap = snapshot_with_limits(
        &d,
        Limits {
            max_total_bytes: 12,
            ..Limits::default()
        },
    );
    let files: Vec<&str> = snap.files.iter().map(|f| &*f.path).collect();
    assert_eq!(files, ["a.yaml"]);
    assert_eq!(
        skipped(&snap),
        [
            ("b.yaml", SkipReason::BudgetExceeded),
            ("c/c.yaml", SkipReason::BudgetExceeded),
            ("d.yaml", SkipReason::BudgetExceeded),
        ]
    );
}

#[test]
fn walk_budgets_truncate() {
    let d = GitDaemon::start();
    d.seed(
        &[
            ("a.yaml", "a: 1\n"),
            ("deep/er/x.yaml", "x: 1\n"),
            ("z.yaml", "z: 1\n"),
        ],
        "seed",
    );
    // Paths: a.yaml, deep (2); deep/er and the rest are not walked.
    let snap = snapshot_with_limits(
        &d,
        Limits {
            max_paths: 2,
            ..Limits::default()
        },
    );
    let truncated = snap.truncated.clone().unwrap();
    assert_eq!((truncated.budget, truncated.limit), (Budget::Paths, 2));
    assert_eq!(snap.files.len(), 1);
    assert!(!snap.is_complete());

    let snap = snapshot_with_limits(
        &d,
        Limits {
            max_depth: 1,
            ..Limits::default()
        },
    );
    let truncated = snap.truncated.clone().unwrap();
    assert_eq!(truncated.budget, Budget::Depth);
    assert_eq!(truncated.at, "deep/er");
    let files: Vec<&str> = snap.files.iter().map(|f| &*f.path).collect();
    assert_eq!(files, ["a.yaml", "z.yaml"]);
}

#[test]
fn known_blobs_are_not_loaded() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n"), ("b.yaml", "b: 2\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let head = repo.fetch().unwrap().head.unwrap();
    let full = repo.snapshot(&head).unwrap();
    let a_blob = full.get("a.yaml").unwrap().blob.clone();
    let lazy = repo
        .snapshot_with(&head, &|path, blob| {
            (path == "a.yaml" && blob == &*a_blob).then_some(5)
        })
        .unwrap();
    assert_eq!(lazy.get("a.yaml").unwrap().content, None);
    assert_eq!(lazy.get("a.yaml").unwrap().blob, a_blob);
    assert_eq!(lazy.get("a.yaml").unwrap().size, 5);
    assert_eq!(lazy.get("b.yaml").unwrap().text(), Some("b: 2\n"));
    assert!(lazy.is_complete());
    // The content is still there when needed.
    assert_eq!(
        repo.read_file(lazy.get("a.yaml").unwrap()).unwrap(),
        "a: 1\n"
    );

    // commit_and_push_with hands derive the same lazy snapshot and still edits the file.
    let out = repo
        .commit_and_push_with(&author(), None, &|_, _| Some(5), &mut |snap| {
            assert!(snap.files.iter().all(|f| f.content.is_none()));
            Ok::<_, gitcontroller_git::Error>(vec![gitcontroller_git::FileChange::Put {
                path: "a.yaml".into(),
                doc_index: Some(0),
                object: serde_json::json!({"a": 2}),
                subject: "a".into(),
            }])
        })
        .unwrap();
    assert!(out.commit.is_some());
    assert_eq!(d.read_file("a.yaml").as_deref(), Some("a: 2\n"));
}
