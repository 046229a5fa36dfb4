//! Hostile Git input end to end (issue 12): someone with push rights to one tenant's
//! repository pushes a git bomb, an 800 MB blob or 100,000 files. One `git-controller run`
//! serves that repository and a healthy one in the same namespace. Each scenario checks that
//! the controller stays up with a peak resident set (`VmHWM` of `/proc/<pid>/status`, over its
//! whole life) under 256 MiB, that the hostile repository says why in its Ready condition and
//! acts on nothing it could not read (no prune, no export), and that the healthy repository
//! syncs a commit pushed after the hostile one.
//!
//! The crate tests of the Git layer (`crates/git/tests/hostile_*.rs`) hold the reading itself to
//! the same budget; these hold everything after it too: parsing, planning, status, Events.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hooks::value_of;
use common::{
    ControllerProcess, apply_yaml, condition, named_repository, rule_of, setup, status_of,
    wait_for, wait_for_sync_of,
};
use gitcontroller_testkit::cluster::TestNamespace;
use gitcontroller_testkit::git_server::GitDaemon;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::Api;

/// The limit issue 12 holds the controller to, whatever is pushed.
const MAX_RSS_MIB: f64 = 256.0;

/// Reading an 800 MB blob's header, or walking 20,000 paths, on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(90);

/// One scenario at a time: each controller's peak is its own, and three hostile reads at once
/// would only slow each other down on a shared machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn configmap(ns: &str, name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  value: {value}\n"
    )
}

/// `VmHWM` (peak resident set since the process started) and `VmRSS` of `pid`, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let field = |name: &str| -> f64 {
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /proc/{pid}/status"));
        kib / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Fetches of GitRepository `name` so far (the count of its fetch duration histogram).
fn fetches(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("gitcontroller_git_operation_duration_seconds_count{"))
        .filter(|l| l.contains(&format!("name=\"{name}\"")) && l.contains("operation=\"fetch\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `git` (a command on the served bare repository) with `args`, `input` on its standard
/// input written by `feed` (streamed: an 800 MB blob is never held here); returns its output.
fn git_with_input(
    mut git: Command,
    args: &[&str],
    feed: impl FnOnce(&mut dyn std::io::Write),
) -> String {
    let mut child = git
        .args(args)
        // commit-tree needs a committer; the attacker's identity, fixed.
        .env("GIT_COMMITTER_NAME", "attacker")
        .env("GIT_COMMITTER_EMAIL", "attacker@example.invalid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running git");
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
        feed(&mut stdin);
        stdin.flush().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Makes `commit` the served `main`, as a push would.
fn move_main(git: &GitDaemon, commit: &str) {
    let out = git
        .git()
        .args(["update-ref", "refs/heads/main", commit])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git bomb on top of `main`: a tree of 10 manifests, and 10 levels of directories each
/// holding 10 references to the level below: a few kilobytes that expand to 10^10 paths.
/// Every file is the same ConfigMap, which no rule selects. Returns the commit.
fn push_git_bomb(git: &GitDaemon, ns: &str) -> String {
    let text = configmap(ns, "lol", "lol");
    let blob = git_with_input(git.git(), &["hash-object", "-w", "--stdin"], |w| {
        w.write_all(text.as_bytes()).unwrap()
    });
    let mktree = |entries: String| {
        git_with_input(git.git(), &["mktree"], |w| {
            w.write_all(entries.as_bytes()).unwrap()
        })
    };
    let mut tree = mktree(
        (0..10)
            .map(|i| format!("100644 blob {blob}\tf{i}.yaml\n"))
            .collect(),
    );
    for _ in 0..10 {
        tree = mktree(
            (0..10)
                .map(|i| format!("040000 tree {tree}\td{i}\n"))
                .collect(),
        );
    }
    let commit = git_with_input(
        git.git(),
        &["commit-tree", &tree, "-p", "refs/heads/main", "-F", "-"],
        |w| w.write_all(b"lol\n").unwrap(),
    );
    move_main(git, &commit);
    commit
}

/// The size of the blob of [`push_large_blob`]: the 800 MB.
const BLOB_BYTES: usize = 800 * 1024 * 1024;

/// An 800 MB blob of zeros (under 1 MB packed) as `zeros.yaml`, next to one small manifest no
/// rule selects, replacing everything on top of `main` (`git fast-import`, which streams a
/// blob this large into its pack). Returns the commit.
fn push_large_blob(git: &GitDaemon, ns: &str) -> String {
    let small = configmap(ns, "neighbour", "small");
    let message = "800 MB of zeros";
    git_with_input(git.git(), &["fast-import", "--quiet"], |w| {
        write!(w, "blob\nmark :1\ndata {BLOB_BYTES}\n").unwrap();
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..BLOB_BYTES / chunk.len() {
            w.write_all(&chunk).unwrap();
        }
        write!(
            w,
            "\nblob\nmark :2\ndata {}\n{small}\n\
             commit refs/heads/main\ncommitter attacker <attacker@example.invalid> 1700000000 +0000\n\
             data {}\n{message}\nfrom refs/heads/main^0\ndeleteall\n\
             M 100644 :1 zeros.yaml\nM 100644 :2 app.yaml\n\n",
            small.len(),
            message.len()
        )
        .unwrap();
    });
    git.head()
}

/// 100,000 manifests (100 directories of 1,000 ConfigMaps no rule selects, ~500 bytes each)
/// replacing everything on top of `main`, written with `git fast-import`. Returns the commit.
fn push_many_files(git: &GitDaemon, ns: &str) -> String {
    const DIRS: usize = 100;
    const PER_DIR: usize = 1000;
    let message = "100,000 files";
    git_with_input(git.git(), &["fast-import", "--quiet"], |w| {
        let padding = "x".repeat(400);
        for n in 0..DIRS * PER_DIR {
            let text = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{n}\n  namespace: {ns}\ndata:\n  padding: \"{padding}\"\n"
            );
            write!(w, "blob\nmark :{}\ndata {}\n{text}\n", n + 1, text.len()).unwrap();
        }
        write!(
            w,
            "commit refs/heads/main\ncommitter attacker <attacker@example.invalid> 1700000000 +0000\n\
             data {}\n{message}\nfrom refs/heads/main^0\ndeleteall\n",
            message.len()
        )
        .unwrap();
        for n in 0..DIRS * PER_DIR {
            let (dir, i) = (n / PER_DIR, n % PER_DIR);
            writeln!(w, "M 100644 :{} d{dir:03}/cm-{i:04}.yaml", n + 1).unwrap();
        }
        w.write_all(b"\n").unwrap();
    });
    git.head()
}

/// Two repositories synced by one controller in a fresh namespace:
/// - `hostile` (prune on): `hostile-keep` from Git, and the live ConfigMap `export-me`
///   exported to Git by a `syncTo: git` rule — so a source read whole without them would
///   prune the one and export the other again;
/// - `healthy`: `healthy-a` and `healthy-b` from Git.
struct Fixture {
    client: Client,
    ns: String,
    // Before the namespace: fields drop in order, and the controller stops before its
    // namespace goes.
    controller: ControllerProcess,
    _namespace: TestNamespace,
    hostile: GitDaemon,
    healthy: GitDaemon,
    configmaps: Api<ConfigMap>,
}

async fn fixture(prefix: &str) -> Fixture {
    let (client, namespace) = setup(prefix).await;
    let ns = namespace.name().to_string();
    let hostile = GitDaemon::start();
    hostile.seed(
        &[("keep.yaml", &configmap(&ns, "hostile-keep", "one"))],
        "keep",
    );
    let healthy = GitDaemon::start();
    let healthy_head = healthy.seed(
        &[
            ("a.yaml", &configmap(&ns, "healthy-a", "one")),
            ("b.yaml", &configmap(&ns, "healthy-b", "one")),
        ],
        "a and b",
    );
    let yaml = [
        configmap(&ns, "export-me", "live"),
        format!(
            "---\n{}",
            named_repository("hostile", &hostile.url(), "  prune: true\n")
        ),
        rule_of(
            "hostile",
            "hostile-from-git",
            &ns,
            "  kinds: [ConfigMap]\n  names: [hostile-*]\n  syncTo: kubernetes\n",
        ),
        rule_of(
            "hostile",
            "hostile-to-git",
            &ns,
            "  kinds: [ConfigMap]\n  names: [export-*]\n  syncTo: git\n",
        ),
        format!(
            "---\n{}",
            named_repository("healthy", &healthy.url(), "  prune: true\n")
        ),
        rule_of(
            "healthy",
            "healthy-from-git",
            &ns,
            "  kinds: [ConfigMap]\n  names: [healthy-*]\n  syncTo: kubernetes\n",
        ),
    ]
    .concat();
    apply_yaml(&client, &ns, &yaml).await;
    let controller = ControllerProcess::start(&ns);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    wait_for_sync_of(&client, &ns, "healthy", &healthy_head).await;
    // The hostile repository's first sync applies hostile-keep and commits export-me.
    wait_for(
        "the hostile repository in sync, export-me in Git",
        WAIT,
        || async {
            let status = status_of(&client, &ns, "hostile").await?;
            let exported = hostile.list_files().iter().any(|f| f.contains("export-me"));
            (exported
                && status["lastSyncedCommit"] == hostile.head()
                && condition(&status, "Ready")?["status"] == "True")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        value_of(&configmaps, "hostile-keep").await.as_deref(),
        Some("one")
    );
    Fixture {
        client,
        ns,
        controller,
        _namespace: namespace,
        hostile,
        healthy,
        configmaps,
    }
}

/// Pushes the hostile commit `push` makes (which also drops `keep.yaml` and `export-me`'s
/// file) and right after it a change to the healthy repository; then checks the controller
/// is up and under [`MAX_RSS_MIB`], the hostile repository is not Ready with `reason` and a
/// message holding every one of `words`, has pruned and exported nothing, and was fetched
/// twice more without the peak growing, and the healthy change is applied.
async fn hostile_push_is_contained(
    prefix: &str,
    what: &str,
    push: fn(&GitDaemon, &str) -> String,
    reason: &str,
    words: &[&str],
) {
    let _serial = SERIAL.lock().await;
    let mut f = fixture(prefix).await;
    let pid = f.controller.pid();
    let (peak_before, _) = memory_mib(pid);

    let started = Instant::now();
    let hostile_commit = push(&f.hostile, &f.ns);
    let built = started.elapsed();
    let healthy_commit = f.healthy.change(
        &[("a.yaml", &configmap(&f.ns, "healthy-a", "two"))],
        &[],
        "a: two",
    );

    // The healthy repository keeps syncing while the hostile one is read.
    let started = Instant::now();
    wait_for_sync_of(&f.client, &f.ns, "healthy", &healthy_commit).await;
    let healthy_after = started.elapsed();
    assert_eq!(
        value_of(&f.configmaps, "healthy-a").await.as_deref(),
        Some("two")
    );

    let status = wait_for(
        &format!("Ready=False ({reason}) naming {words:?} on the hostile repository"),
        WAIT,
        || async {
            let status = status_of(&f.client, &f.ns, "hostile").await?;
            let ready = condition(&status, "Ready")?;
            let message = ready["message"].as_str()?;
            (ready["status"] == "False"
                && ready["reason"] == reason
                && words.iter().all(|w| message.contains(w)))
            .then_some(status)
        },
    )
    .await;
    let diagnosed = started.elapsed();
    let message = condition(&status, "Ready").unwrap()["message"].clone();

    // Read again (every 2 s): a standing hostile source costs the same each time, no more.
    let metrics = f.controller.metrics().await;
    let seen = fetches(&metrics, "hostile");
    wait_for(
        "two more fetches of the hostile repository",
        WAIT,
        || async {
            let now = fetches(&f.controller.try_metrics().await?, "hostile");
            (now >= seen + 2.0).then_some(())
        },
    )
    .await;

    assert!(f.controller.is_running(), "the controller exited");
    let (peak, rss) = memory_mib(pid);
    eprintln!(
        "{what}: pushed in {built:?}; healthy commit applied after {healthy_after:?}, \
         diagnostic after {diagnosed:?}; controller peak RSS {peak:.1} MiB \
         ({peak_before:.1} MiB before the push), {rss:.1} MiB now; Ready: {message}"
    );
    assert!(
        peak < MAX_RSS_MIB,
        "{what}: peak RSS {peak:.1} MiB, over {MAX_RSS_MIB} MiB"
    );
    // Nothing acted on an unread source: hostile-keep, gone from Git, is not pruned, and the
    // live export-me, gone from Git too, is not written back (no commit on top of the push).
    assert_eq!(
        value_of(&f.configmaps, "hostile-keep").await.as_deref(),
        Some("one"),
        "pruned although the source was not read whole"
    );
    assert_eq!(
        f.hostile.head(),
        hostile_commit,
        "a commit on top of a source that was not read whole"
    );
    let inventory: Vec<&str> = status["inventory"]
        .as_array()
        .map(|all| all.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(inventory.contains(&"hostile-keep"), "{status}");
    assert!(f.controller.is_running(), "the controller exited");
}

#[tokio::test]
async fn a_git_bomb_leaves_the_controller_up_and_says_why() {
    hostile_push_is_contained(
        "bomb",
        "git bomb (10^10 paths)",
        push_git_bomb,
        "SourceIncomplete",
        &["input budget (paths: more than 20000 paths"],
    )
    .await;
}

#[tokio::test]
async fn an_800mb_blob_leaves_the_controller_up_and_says_why() {
    hostile_push_is_contained(
        "bigblob",
        "800 MB blob",
        push_large_blob,
        "SourceIncomplete",
        &["zeros.yaml", "larger than"],
    )
    .await;
}

#[tokio::test]
async fn a_hundred_thousand_files_leave_the_controller_up_and_say_why() {
    hostile_push_is_contained(
        "manyfiles",
        "100,000 files",
        push_many_files,
        "SourceIncomplete",
        &["input budget (paths: more than 20000 paths"],
    )
    .await;
}
