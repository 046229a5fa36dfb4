//! The race: another client pushes between our fetch and our push, 100 times in a row.
//! Every rejected push must be followed by a fetch and a new derive on the new head; the final
//! history holds every one of their commits and every one of our changes, and no update of
//! the branch was ever anything but a fast-forward (checked on the bare repository's reflog).

mod common;

use common::*;
use gitcontroller_git::{Error, FileChange, yamledit};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::json;

const SHARED: &str = "# shared by both writers\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n  namespace: default\ndata:\n  seed: \"0\" # first key\n";

#[test]
fn hundred_races_lose_nothing_and_never_force_push() {
    let d = GitDaemon::start();
    d.seed(&[("apps/shared.yaml", SHARED)], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let rounds = 100;
    let mut total_retries = 0;
    for i in 0..rounds {
        // Their pushes happen inside derive, i.e. after our fetch and before our push. Every
        // tenth round they push twice in a row (two rejections for us).
        let their_pushes = if i % 10 == 0 { 2 } else { 1 };
        let mut calls = 0;
        let mut seen_heads = Vec::new();
        let out = repo
            .commit_and_push(&author(), Some("[race]"), &mut |snap| {
                calls += 1;
                seen_heads.push(snap.commit.clone());
                if calls <= their_pushes {
                    // The other client edits the shared file textually and adds its own file.
                    let mut shared = d.read_file("apps/shared.yaml").unwrap();
                    shared.push_str(&format!("  their-{i}-{calls}: \"x\"\n"));
                    d.seed(
                        &[
                            ("apps/shared.yaml", shared.as_str()),
                            (&format!("theirs/{i}-{calls}.yaml"), "kind: Note\n"),
                        ],
                        &format!("their commit {i}-{calls}"),
                    );
                }
                // Our change, derived from the snapshot we were given: one new file and one
                // key added to the shared ConfigMap (format-preserving edit of what is there).
                let file = snap.get("apps/shared.yaml").expect("shared file");
                let mut obj = yamledit::parse_values(file.text().unwrap())
                    .unwrap()
                    .remove(0);
                obj["data"][format!("ours-{i}")] = json!("ok");
                Ok::<_, Error>(vec![
                    put_new(
                        &format!("apps/ours-{i}.yaml"),
                        configmap(&format!("ours-{i}"), json!({"i": i.to_string()})),
                    ),
                    FileChange::Put {
                        path: "apps/shared.yaml".into(),
                        doc_index: Some(0),
                        object: obj,
                        subject: "v1/ConfigMap default/shared".into(),
                    },
                ])
            })
            .unwrap();
        assert!(out.commit.is_some());
        assert_eq!(out.retries, their_pushes as u32, "round {i}");
        assert_eq!(calls, their_pushes + 1, "derive is called once per attempt");
        // Each attempt saw a newer head than the one before.
        for w in seen_heads.windows(2) {
            assert_ne!(w[0], w[1], "round {i}: re-derived on the same head");
        }
        total_retries += out.retries;
    }

    // Every one of their commits and every one of ours is in the history.
    let log = d.commits();
    for i in 0..rounds {
        let their_pushes = if i % 10 == 0 { 2 } else { 1 };
        for k in 1..=their_pushes {
            assert!(
                log.iter()
                    .any(|l| l.ends_with(&format!(" their commit {i}-{k}"))),
                "their {i}-{k} missing"
            );
            assert!(d.read_file(&format!("theirs/{i}-{k}.yaml")).is_some());
        }
        assert!(
            d.read_file(&format!("apps/ours-{i}.yaml")).is_some(),
            "ours {i} missing"
        );
    }
    let shared = d.read_file("apps/shared.yaml").unwrap();
    for i in 0..rounds {
        assert!(
            shared.contains(&format!("  ours-{i}: ok\n")),
            "ours-{i} lost from the shared file"
        );
        assert!(
            shared.contains(&format!("  their-{i}-1: \"x\"\n")),
            "their-{i} lost from the shared file"
        );
    }
    // The human-written parts of the shared file are intact.
    assert!(shared.starts_with("# shared by both writers\napiVersion: v1\n"));
    assert!(shared.contains("  seed: \"0\" # first key\n"));
    let ours = log.iter().filter(|l| l.contains(" [race] ")).count();
    assert_eq!(ours, rounds, "one commit of ours per round");

    // Zero force pushes: every update of main kept the previous tip in its history.
    let updates = d.ref_updates();
    let theirs_total: usize = (0..rounds).map(|i| if i % 10 == 0 { 2 } else { 1 }).sum();
    assert_eq!(updates.len(), 1 + theirs_total + rounds, "{updates:?}");
    assert!(
        d.non_fast_forward_updates().is_empty(),
        "non-fast-forward updates: {:?}",
        d.non_fast_forward_updates()
    );
    eprintln!(
        "race: {rounds} rounds, {theirs_total} concurrent pushes, {total_retries} rejected pushes re-derived, {} ref updates, all fast-forward",
        updates.len()
    );
}

#[test]
fn gives_up_with_conflict_after_max_attempts() {
    let d = GitDaemon::start();
    d.seed(&[("a.yaml", "a: 1\n")], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let mut calls = 0;
    let err = repo
        .commit_and_push(&author(), None, &mut |_| {
            calls += 1;
            d.seed(&[("their.yaml", &format!("n: {calls}\n"))], "always first");
            Ok::<_, Error>(vec![put_new("ours.yaml", configmap("ours", json!({})))])
        })
        .unwrap_err();
    assert_eq!(err.category(), "conflict", "{err}");
    assert_eq!(calls, 10);
    assert!(d.read_file("ours.yaml").is_none());
    assert_eq!(
        d.ref_updates().len(),
        1 + 10,
        "the seed and their 10 pushes"
    );
    assert!(d.non_fast_forward_updates().is_empty());
}
