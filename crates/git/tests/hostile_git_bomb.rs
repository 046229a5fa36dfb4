//! A "git bomb" (issue 12): a few kilobytes of trees that expand to 10^10 paths, because every
//! directory holds ten references to the same subtree. Before the budgets this took the
//! process past 5 GB and aborted. Now the walk stops at the path budget with a diagnostic,
//! the process stays under 256 MiB (VmHWM of this test binary, which runs only this test), and
//! once the repository shrinks back the next snapshot is complete and memory is back down.

mod common;

use common::*;
use gitcontroller_git::{Budget, Limits};
use gitcontroller_testkit::git_server::GitDaemon;

const LEVELS: usize = 10;
const FANOUT: usize = 10;

#[test]
fn git_bomb_is_a_budget_diagnostic() {
    let d = GitDaemon::start();
    d.seed(&[("app.yaml", "kind: A\n")], "seed");
    let served = git2::Repository::open_bare(d.path()).unwrap();
    let blob = served
        .blob(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n")
        .unwrap();
    let mut builder = served.treebuilder(None).unwrap();
    for i in 0..FANOUT {
        builder
            .insert(format!("f{i}.yaml"), blob, 0o100644)
            .unwrap();
    }
    let mut tree = builder.write().unwrap();
    for _ in 0..LEVELS {
        let mut builder = served.treebuilder(None).unwrap();
        for i in 0..FANOUT {
            builder.insert(format!("d{i}"), tree, 0o040000).unwrap();
        }
        tree = builder.write().unwrap();
    }
    let bomb = commit_tree(&served, tree, "lol");
    repack(d.git());

    let c = cache();
    let mut read = read_hostile(&d.url(), &c, &bomb);
    let snap = std::mem::take(&mut read.snapshot);
    let truncated = snap
        .truncated
        .clone()
        .expect("the path budget stops the walk");
    assert_eq!(truncated.budget, Budget::Paths);
    assert_eq!(truncated.limit, Limits::default().max_paths as u64);
    // Every walked path counts: directories and files up to the budget, nothing past it.
    assert!(!snap.files.is_empty() && snap.files.len() < Limits::default().max_paths);
    eprintln!(
        "git bomb ({FANOUT}^{LEVELS} paths): truncated after {} files in {:?}; RSS {:.1} MiB before, peak {:.1} MiB",
        snap.files.len(),
        read.elapsed,
        read.before.rss_mib,
        read.peak.hwm_mib
    );
    drop(snap);
    let after = shrink_back(&served, &mut read.repo);
    eprintln!("after shrinking: RSS {:.1} MiB", after.rss_mib);
}
