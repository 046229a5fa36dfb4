//! An 800 MB blob of zeros (compressed to under 1 MB) next to a normal manifest (issue 12).
//! Before, the blob was inflated whole and only then skipped as over 16 MiB (955 MB peak).
//! Now its size is read from the object header: it is skipped as `TooLarge` without being
//! inflated, the process stays under 256 MiB (VmHWM of this test binary, which runs only this
//! test), and after the blob is removed the next snapshot is complete.

mod common;

use std::io::Write as _;

use common::*;
use gitcontroller_git::{SkipReason, SkippedFile};
use gitcontroller_testkit::git_server::GitDaemon;

const SIZE: usize = 800 * 1024 * 1024;

#[test]
fn large_blob_is_skipped_from_its_header() {
    let d = GitDaemon::start();
    d.seed(&[("app.yaml", "kind: A\n")], "seed");
    let served = git2::Repository::open_bare(d.path()).unwrap();
    // Streamed into the object database: this process never holds the 800 MB.
    let big = {
        let odb = served.odb().unwrap();
        let mut writer = odb.writer(SIZE, git2::ObjectType::Blob).unwrap();
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() {
            writer.write_all(&chunk).unwrap();
        }
        writer.finalize().unwrap()
    };
    let mut builder = served.treebuilder(None).unwrap();
    builder
        .insert("app.yaml", served.blob(b"kind: A\n").unwrap(), 0o100644)
        .unwrap();
    builder.insert("zeros.yaml", big, 0o100644).unwrap();
    let tree = builder.write().unwrap();
    let commit = commit_tree(&served, tree, "800 MB of zeros");
    repack(d.git());
    let pack_bytes: u64 = std::fs::read_dir(d.path().join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    let c = cache();
    let mut read = read_hostile(&d.url(), &c, &commit);
    let snap = std::mem::take(&mut read.snapshot);
    assert_eq!(
        snap.skipped,
        [SkippedFile {
            path: "zeros.yaml".into(),
            reason: SkipReason::TooLarge,
            size: Some(SIZE as u64),
        }]
    );
    assert_eq!(snap.files.len(), 1);
    eprintln!(
        "800 MB blob ({:.1} MiB of packs): skipped in {:?}; RSS {:.1} MiB before, peak {:.1} MiB",
        pack_bytes as f64 / 1048576.0,
        read.elapsed,
        read.before.rss_mib,
        read.peak.hwm_mib
    );
    drop(snap);
    let after = shrink_back(&served, &mut read.repo);
    eprintln!("after shrinking: RSS {:.1} MiB", after.rss_mib);
}
