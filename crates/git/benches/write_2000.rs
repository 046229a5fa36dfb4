//! Benchmark (not a timed test): write 2,000 new ConfigMap manifests as one commit and push it
//! to a git daemon on loopback, with this crate (blobs → trees → commit from the object
//! database, libgit2 push) versus the `git` CLI doing the same (`git add` + `git commit` +
//! `git push` in a clone). Prints both times and the ratio.
//!
//! Run: `cargo bench -p gitcontroller-git --bench write_2000` (optionally `-- <files> <runs>`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use gitcontroller_git::{Author, Error, FileChange, RepoSpec, Repository, yamledit};
use gitcontroller_testkit::git_server::{GitDaemon, git_command};
use serde_json::{Value, json};

fn manifests(n: usize) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| {
            (
                format!("configmaps/cm-{i:04}.yaml"),
                json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": format!("cm-{i:04}"),
                        "namespace": "bench",
                        "labels": {"app.kubernetes.io/name": "bench", "shard": (i % 16).to_string()},
                    },
                    "data": {
                        "index": i.to_string(),
                        "greeting": format!("hello from config map number {i}"),
                        "settings.json": format!("{{\"replicas\": {}, \"enabled\": true}}", i % 5),
                    },
                }),
            )
        })
        .collect()
}

/// Ours: fetch + derive + render + blobs/trees/commit + push, all inside commit_and_push.
fn ours(data: &[(String, Value)]) -> (Duration, Duration) {
    let d = GitDaemon::start();
    d.seed(&[("README.md", "bench\n")], "seed");
    let cache = tempfile::tempdir().unwrap();
    let mut repo = Repository::open(RepoSpec::new(d.url(), "main", cache.path())).unwrap();
    let author = Author {
        name: "bench".into(),
        email: "bench@example.invalid".into(),
    };
    // First fetch (the initial clone) timed separately, like `git clone` for the CLI.
    let t = Instant::now();
    repo.fetch().unwrap();
    let clone = t.elapsed();
    let t = Instant::now();
    let out = repo
        .commit_and_push(&author, None, &mut |_snap| {
            Ok::<_, Error>(
                data.iter()
                    .map(|(path, obj)| FileChange::Put {
                        path: path.clone(),
                        doc_index: None,
                        object: obj.clone(),
                        subject: format!(
                            "v1/ConfigMap bench/{}",
                            obj["metadata"]["name"].as_str().unwrap()
                        ),
                    })
                    .collect(),
            )
        })
        .unwrap();
    let elapsed = t.elapsed();
    assert!(out.commit.is_some());
    assert_eq!(d.list_files().len(), data.len() + 1);
    (clone, elapsed)
}

/// The git CLI: clone (timed separately), write the same rendered files, add, commit, push.
fn cli(data: &[(String, Value)]) -> (Duration, Duration, Duration) {
    let d = GitDaemon::start();
    d.seed(&[("README.md", "bench\n")], "seed");
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let t = Instant::now();
    common::run(
        git_command()
            .args(["clone", "--quiet", &d.url()])
            .arg(&work),
    );
    let clone = t.elapsed();
    // Rendering is not part of the CLI's work; do it before the clock starts.
    let rendered: Vec<(String, String)> = data
        .iter()
        .map(|(p, v)| (p.clone(), yamledit::render_new(v)))
        .collect();
    let t = Instant::now();
    std::fs::create_dir_all(work.join("configmaps")).unwrap();
    for (p, text) in &rendered {
        std::fs::write(work.join(p), text).unwrap();
    }
    let write = t.elapsed();
    let g = || {
        let mut c = git_command();
        c.arg("-C").arg(&work);
        c
    };
    common::run(g().args(["add", "--all"]));
    common::run(g().args(["commit", "--quiet", "-m", "Add 2000 ConfigMaps"]));
    common::run(g().args(["push", "--quiet", "origin", "HEAD:main"]));
    let total = t.elapsed();
    assert_eq!(d.list_files().len(), data.len() + 1);
    (clone, write, total)
}

fn main() {
    let n: usize = common::arg(0, 2000);
    let runs: usize = common::arg(1, 3);
    let data = manifests(n);
    let (mut o, mut oc, mut c, mut cc, mut cw) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let (clone, t) = ours(&data);
        oc.push(clone);
        o.push(t);
        let (clone, write, t) = cli(&data);
        cc.push(clone);
        cw.push(write);
        c.push(t);
    }
    let (o, c) = (common::median(o), common::median(c));
    println!(
        "write_{n}: {n} new manifests as one commit, pushed to git daemon on loopback (median of {runs} runs)"
    );
    println!(
        "  gitcontroller-git commit_and_push (fetch + render + blobs/trees/commit + push): {o:?}"
    );
    println!(
        "  git CLI (write files + add + commit + push):                                 {c:?}"
    );
    println!(
        "    of which writing the files to the working tree:                            {:?}",
        common::median(cw)
    );
    println!(
        "  initial fetch/clone (not included): ours {:?}, git clone {:?}",
        common::median(oc),
        common::median(cc)
    );
    println!(
        "  ratio git CLI / ours: {:.2}x",
        c.as_secs_f64() / o.as_secs_f64()
    );
    let _ = Command::new("true").status();
}
