//! 100,000 manifest files (issue 12): before, 0.7–1.0 GB, and 1.04 GB still held after the
//! files were removed. Now the walk stops at the path budget (20,000) with a diagnostic, the
//! process stays under 256 MiB (VmHWM of this test binary, which runs only this test), and
//! after the repository shrinks back the next snapshot is complete and RSS comes back down.

mod common;

use common::*;
use gitcontroller_git::Budget;
use gitcontroller_testkit::git_server::GitDaemon;

const DIRS: usize = 100;
const PER_DIR: usize = 1000;

#[test]
fn hundred_thousand_files_are_a_budget_diagnostic() {
    let d = GitDaemon::start();
    d.seed(&[("app.yaml", "kind: A\n")], "seed");
    // Written with `git fast-import` (one pack, in seconds), as a commit on top of main.
    let mut stream = String::new();
    let mut mark = 0;
    for dir in 0..DIRS {
        for i in 0..PER_DIR {
            mark += 1;
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{dir}-{i}\n  namespace: default\ndata:\n  index: \"{i}\"\n  padding: \"{}\"\n",
                "x".repeat(400)
            );
            stream.push_str(&format!(
                "blob\nmark :{mark}\ndata {}\n{text}\n",
                text.len()
            ));
        }
    }
    let message = "100,000 files";
    stream.push_str(&format!(
        "commit refs/heads/main\ncommitter attacker <a@example.invalid> 1700000000 +0000\ndata {}\n{message}\nfrom refs/heads/main^0\ndeleteall\n",
        message.len()
    ));
    let mut mark = 0;
    for dir in 0..DIRS {
        for i in 0..PER_DIR {
            mark += 1;
            stream.push_str(&format!("M 100644 :{mark} d{dir:03}/cm-{i:04}.yaml\n"));
        }
    }
    fast_import(d.git(), stream.as_bytes());
    drop(stream);
    let commit = d.head();
    let served = git2::Repository::open_bare(d.path()).unwrap();

    let c = cache();
    let mut read = read_hostile(&d.url(), &c, &commit);
    let snap = std::mem::take(&mut read.snapshot);
    let truncated = snap
        .truncated
        .clone()
        .expect("the path budget stops the walk");
    assert_eq!(truncated.budget, Budget::Paths);
    assert!(snap.files.len() < 20_000);
    eprintln!(
        "100,000 files: truncated after {} files in {:?} (fetch included); RSS {:.1} MiB before, peak {:.1} MiB",
        snap.files.len(),
        read.elapsed,
        read.before.rss_mib,
        read.peak.hwm_mib,
    );
    drop(snap);
    drop(read.repo);

    // Shrink back, read with a new Repository: the memory of the big one is returned.
    let mut repo = open(&d.url(), &c);
    let after = shrink_back(&served, &mut repo);
    drop(repo);
    let after_drop = mem();
    eprintln!(
        "after shrinking: RSS {:.1} MiB ({:.1} MiB once dropped), of which anonymous {:.1} MiB (peak was {:.1} MiB, anonymous before {:.1} MiB)",
        after.rss_mib,
        after_drop.rss_mib,
        after_drop.anon_mib,
        read.peak.hwm_mib,
        read.before.anon_mib
    );
    assert!(
        after_drop.rss_mib < read.peak.hwm_mib,
        "{after_drop:?} {:?}",
        read.peak
    );
}
