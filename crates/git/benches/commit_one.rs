//! Benchmark (not a timed test): one changed object committed and pushed on a repository of
//! 10,000 manifests (one flat directory, as the controller lays them out), with this crate
//! versus the `git` CLI doing the same in a clone (edit the file, `git commit -a`,
//! `git push`). The cost should be proportional to the change, not to the repository.
//! Prints the medians of both, their ratio, and this crate's `snapshot` of the same head.
//!
//! Run: `cargo bench -p gitcontroller-git --bench commit_one` (optionally
//! `-- <files> <commits>`, default 10000 and 15; `COMMIT_ONE_ONLY_SNAPSHOT=1` runs only the
//! controller's mode, for a profiler).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use gitcontroller_git::{Author, Error, FileChange, RepoSpec, Repository};
use gitcontroller_testkit::git_server::{GitDaemon, git_command};
use serde_json::json;

fn manifest(i: usize, version: usize) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}\n  namespace: bench\n  labels:\n    app.kubernetes.io/name: bench\ndata:\n  index: \"{i}\"\n  version: \"{version}\"\n  greeting: hello from config map number {i}\n"
    )
}

fn path(i: usize) -> String {
    format!("configmaps/cm-{i:05}.yaml")
}

/// A daemon serving `files` manifests in one commit (written with `git fast-import`).
fn seeded(files: usize) -> GitDaemon {
    use std::io::Write as _;
    let d = GitDaemon::start();
    let mut stream = String::new();
    for i in 0..files {
        let text = manifest(i, 0);
        stream.push_str(&format!(
            "blob\nmark :{}\ndata {}\n{text}\n",
            i + 1,
            text.len()
        ));
    }
    stream.push_str("commit refs/heads/main\ncommitter bench <b@example.invalid> 1700000000 +0000\ndata 5\nseed\n");
    for i in 0..files {
        stream.push_str(&format!("M 100644 :{} {}\n", i + 1, path(i)));
    }
    let mut child = d
        .git()
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    d
}

/// How much of the head the caller already has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// Nothing: every attempt reads the head's snapshot whole.
    Nothing,
    /// Every blob and its size (as a controller with a parse cache would), so the snapshot
    /// inflates none (`commit_and_push_with`).
    KnownBlobs,
    /// That, and the head's snapshot itself: the one the previous push derived, handed in
    /// (`commit_and_push_on`), as the controller's write-back does.
    Snapshot,
}

/// Ours: `commit_and_push` of one updated document per commit (fetch, snapshot, derive,
/// format-preserving edit, blobs/trees/commit, push, store the commit in the cache), with
/// what `caller` already has.
fn ours(files: usize, commits: usize, caller: Caller) -> (Vec<Duration>, Duration) {
    let known_blobs = caller != Caller::Nothing;
    let d = seeded(files);
    let cache = tempfile::tempdir().unwrap();
    let mut repo = Repository::open(RepoSpec::new(d.url(), "main", cache.path())).unwrap();
    let head = repo.fetch().unwrap().head.unwrap();
    let t = Instant::now();
    assert_eq!(repo.snapshot(&head).unwrap().files.len(), files);
    let snapshot = t.elapsed();
    let author = Author {
        name: "bench".into(),
        email: "bench@example.invalid".into(),
    };
    let known = |_: &str, _: &str| known_blobs.then_some(240);
    let mut current =
        (caller == Caller::Snapshot).then(|| repo.snapshot_with(&head, &known).unwrap());
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for c in 0..commits {
        let i = (c * 7919) % files;
        let t = Instant::now();
        let on_cpu = thread_cpu();
        let out = repo
            .commit_and_push_on(&author, None, &known, current.as_ref(), &mut |_snap| {
                Ok::<_, Error>(vec![FileChange::Put {
                    path: path(i),
                    doc_index: Some(0),
                    object: serde_json::from_value(json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("cm-{i:05}"), "namespace": "bench",
                                     "labels": {"app.kubernetes.io/name": "bench"}},
                        "data": {"index": i.to_string(), "version": (c + 1).to_string(),
                                 "greeting": format!("hello from config map number {i}")},
                    }))
                    .unwrap(),
                    subject: format!("v1/ConfigMap bench/cm-{i:05}"),
                }])
            })
            .unwrap();
        times.push(t.elapsed());
        cpu.push(thread_cpu() - on_cpu);
        assert!(out.commit.is_some());
        if caller == Caller::Snapshot {
            current = Some(
                out.snapshot
                    .expect("the pushed commit's snapshot is derived"),
            );
        }
    }
    assert!(d.read_file(&path(0)).unwrap().contains("version: \"1\""));
    println!(
        "  (CPU of this thread per commit, the daemon's left out: {:?})",
        common::median(cpu)
    );
    (times, snapshot)
}

/// CPU time the calling thread has used (`/proc/thread-self/schedstat`): what this crate
/// costs, without the git daemon's share of the wall time.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns = stat.split_whitespace().next().unwrap().parse().unwrap();
    Duration::from_nanos(ns)
}

/// The git CLI in a clone: write the file, `git commit -a`, `git push`.
fn cli(files: usize, commits: usize) -> Vec<Duration> {
    let d = seeded(files);
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    common::run(
        git_command()
            .args(["clone", "--quiet", &d.url()])
            .arg(&work),
    );
    let g = || {
        let mut c = git_command();
        c.arg("-C").arg(&work);
        c
    };
    let mut times = Vec::new();
    for c in 0..commits {
        let i = (c * 7919) % files;
        let t = Instant::now();
        std::fs::write(work.join(path(i)), manifest(i, c + 1)).unwrap();
        common::run(g().args(["commit", "--quiet", "-a", "-m", "Update one ConfigMap"]));
        common::run(g().args(["push", "--quiet", "origin", "HEAD:main"]));
        times.push(t.elapsed());
    }
    assert!(d.read_file(&path(0)).unwrap().contains("version: \"1\""));
    times
}

fn main() {
    let files: usize = common::arg(0, 10000);
    let commits: usize = common::arg(1, 15);
    if std::env::var_os("COMMIT_ONE_ONLY_SNAPSHOT").is_some() {
        // For a profiler: only the controller's mode, nothing else in the process.
        let (h, _) = ours(files, commits, Caller::Snapshot);
        println!("  with the snapshot handed in: {:?}", common::median(h));
        return;
    }
    let (o, snapshot) = ours(files, commits, Caller::Nothing);
    let (k, _) = ours(files, commits, Caller::KnownBlobs);
    let (h, _) = ours(files, commits, Caller::Snapshot);
    let c = cli(files, commits);
    let (o, k, h, c) = (
        common::median(o),
        common::median(k),
        common::median(h),
        common::median(c),
    );
    println!(
        "commit_one: one changed object per commit on {files} manifests, pushed to git daemon on loopback (median of {commits} commits)"
    );
    println!(
        "  gitcontroller-git commit_and_push (fetch + snapshot + edit + commit + push): {o:?}"
    );
    println!(
        "  the same with every unchanged blob known to the caller (commit_and_push_with): {k:?}"
    );
    println!(
        "  the same with the head's snapshot handed in (commit_and_push_on):             {h:?}"
    );
    println!(
        "  git CLI (write file + commit -a + push):                                      {c:?}"
    );
    println!(
        "  ratio ours / git CLI: {:.2}x; with known blobs: {:.2}x; with the snapshot: {:.2}x",
        o.as_secs_f64() / c.as_secs_f64(),
        k.as_secs_f64() / c.as_secs_f64(),
        h.as_secs_f64() / c.as_secs_f64()
    );
    println!("  (snapshot of all {files} files, for reference: {snapshot:?})");
}
