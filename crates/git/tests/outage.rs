//! The remote goes down for a while: pushes fail with a `network` error and the change stays
//! pending in the caller's hands; once the daemon is back on the same port the next call
//! pushes it. Nothing is lost, nothing is pushed twice.

mod common;

use std::cell::RefCell;

use common::*;
use gitcontroller_git::{Error, FileChange};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

#[test]
fn change_survives_an_outage() {
    let d = RefCell::new(GitDaemon::start());
    d.borrow().seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.borrow().url(), &c);
    assert!(repo.fetch().unwrap().head.is_some());

    // The caller's pending changes (its desired state); they stay until a push succeeds.
    let mut pending: Vec<FileChange> = vec![put_new("b.yaml", configmap("b", json!({"x": "1"})))];
    let derive = |pending: &Vec<FileChange>| {
        let p = pending.clone();
        move |_: &gitcontroller_git::Snapshot| Ok::<_, Error>(p.clone())
    };

    // Down before we start: the fetch fails.
    d.borrow_mut().stop();
    for _ in 0..3 {
        let err = repo
            .commit_and_push(&author(), None, &mut derive(&pending))
            .unwrap_err();
        assert_eq!(err.category(), "network", "{err}");
        assert!(err.is_transient());
    }

    // Down between our fetch and our push (it dies while we derive).
    d.borrow_mut().restart();
    let err = repo
        .commit_and_push(&author(), None, &mut |_snap| {
            d.borrow_mut().stop();
            Ok::<_, Error>(pending.clone())
        })
        .unwrap_err();
    assert_eq!(err.category(), "network", "{err}");
    assert!(d.borrow().read_file("b.yaml").is_none());

    // Meanwhile someone else pushes directly to the repository.
    d.borrow()
        .seed(&[("c.yaml", "c: 1\n")], "their commit during the outage");

    // Back on the same port: the next call pushes the pending change on top of theirs.
    d.borrow_mut().restart();
    let out = repo
        .commit_and_push(&author(), None, &mut derive(&pending))
        .unwrap();
    assert!(out.commit.is_some());
    pending.clear();
    let d = d.borrow();
    assert!(d.read_file("b.yaml").unwrap().contains("name: b"));
    assert_eq!(d.read_file("c.yaml").as_deref(), Some("c: 1\n"));
    let log = d.commits();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[1].ends_with("their commit during the outage"));
    assert_eq!(d.ref_updates().len(), 3, "one ref update per commit");
    assert!(d.non_fast_forward_updates().is_empty());

    // And calling again with the same (already applied) change makes no commit.
    let again = repo
        .commit_and_push(&author(), None, &mut |_| {
            Ok::<_, Error>(vec![put_new("b.yaml", configmap("b", json!({"x": "1"})))])
        })
        .unwrap();
    assert_eq!(again.commit, None);
    assert_eq!(d.commits().len(), 3);
}
