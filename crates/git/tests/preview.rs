//! `edit_files` previews exactly what `commit_and_push` commits: the same changes, applied to
//! the same snapshot, give the text each file has in the pushed commit.

mod common;

use common::*;
use gitcontroller_git::{Error, FileChange, RepoSpec, Repository, edit_files};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

#[test]
fn the_preview_of_changes_is_the_text_the_commit_holds() {
    let d = GitDaemon::start();
    d.seed(
        &[
            (
                "clusters/prod/web.yaml",
                "# the web tier\nkind: ConfigMap # keep me\nmetadata:\n  name: web\ndata:\n  size: 'small'\n",
            ),
            ("clusters/prod/pair.yaml", "a: 1\n---\nb: 2\n"),
            ("clusters/prod/gone.json", "{\"c\": 3}\n"),
            ("clusters/prod/same.yaml", "d: 4\n"),
        ],
        "seed",
    );
    let c = cache();
    let mut repo = Repository::open(
        RepoSpec::new(d.url(), "main", c.path())
            .with_path("clusters/prod")
            .with_retry(fast_retry()),
    )
    .unwrap();
    let head = repo.fetch().unwrap().head.unwrap();
    let snapshot = repo.snapshot(&head).unwrap();
    let changes = vec![
        FileChange::Put {
            path: "web.yaml".into(),
            doc_index: Some(0),
            object: json!({"kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"size": "large"}}),
            subject: "web".into(),
        },
        FileChange::Remove {
            path: "pair.yaml".into(),
            doc_index: 0,
            subject: "a".into(),
        },
        FileChange::Remove {
            path: "gone.json".into(),
            doc_index: 0,
            subject: "c".into(),
        },
        put_new("new/cm.yaml", configmap("cm", json!({"k": "v"}))),
        // Changes nothing: not in the preview, not in the commit.
        FileChange::Put {
            path: "same.yaml".into(),
            doc_index: Some(0),
            object: json!({"d": 4}),
            subject: "d".into(),
        },
    ];

    let edits = edit_files(&snapshot, &changes).unwrap();
    let paths: Vec<&str> = edits.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["web.yaml", "pair.yaml", "gone.json", "new/cm.yaml"]);
    assert_eq!(
        edits[0].new.as_deref(),
        Some(
            "# the web tier\nkind: ConfigMap # keep me\nmetadata:\n  name: web\ndata:\n  size: 'large'\n"
        ),
        "only the changed value's line differs"
    );
    assert_eq!(edits[2].new, None, "a deleted file has no new text");
    assert_eq!(edits[3].old, None, "a new file has no old text");

    let pushed = repo
        .commit_and_push(&author(), None, &mut |_| Ok::<_, Error>(changes.clone()))
        .unwrap();
    assert!(pushed.commit.is_some());
    for edit in &edits {
        assert_eq!(
            d.read_file(&format!("clusters/prod/{}", edit.path)),
            edit.new,
            "{}",
            edit.path
        );
        let before = snapshot.get(&edit.path).and_then(|f| f.content.clone());
        assert_eq!(before, edit.old, "{}", edit.path);
    }
    assert_eq!(
        d.read_file("clusters/prod/same.yaml").as_deref(),
        Some("d: 4\n")
    );
}

#[test]
fn the_preview_refuses_what_the_commit_refuses() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let head = repo.fetch().unwrap().head.unwrap();
    let snapshot = repo.snapshot(&head).unwrap();
    for bad in [
        put_new("../escape.yaml", json!({"a": 2})),
        put_new("notes.txt", json!({"a": 2})),
        FileChange::Remove {
            path: "missing.yaml".into(),
            doc_index: 0,
            subject: "m".into(),
        },
    ] {
        let previewed = edit_files(&snapshot, std::slice::from_ref(&bad)).unwrap_err();
        let committed = repo
            .commit_and_push(&author(), None, &mut |_| Ok::<_, Error>(vec![bad.clone()]))
            .unwrap_err();
        assert_eq!(previewed.category(), committed.category(), "{bad:?}");
    }
}
