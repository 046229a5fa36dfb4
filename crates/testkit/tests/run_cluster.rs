//! The harness's own cluster, end to end: test processes of one run share one kubelite, and
//! nothing of it is left once the run's owner has exited, whether it exits or is killed.
//!
//! Each case plays a test run: a shell is the run's owner (`GITCONTROLLER_TEST_RUN_OWNER`, as
//! `cargo` would be) and runs this binary's `probe_reports_its_cluster` as its test processes,
//! without `KUBECONFIG`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use gitcontroller_testkit::cluster::{client, kubeconfig};
use gitcontroller_testkit::run_cluster::{RUN_OWNER_ENV, STARTING};

const PROBE: &str = "probe:";

/// Run inside the simulated runs below (and as an ordinary test of this run): prints which
/// kubeconfig it got and proves the API server behind it answers.
#[tokio::test]
async fn probe_reports_its_cluster() {
    let version = client().await.apiserver_version().await.unwrap();
    println!(
        "{PROBE} {} {}",
        Path::new(kubeconfig()).display(),
        version.git_version
    );
}

/// A shell that owns a simulated test run: it runs `probes` probes at once, then waits for a
/// line on its stdin (so the test can look at the running cluster) and exits.
fn start_run(probes: usize) -> Child {
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "export {RUN_OWNER_ENV}=$$\n\
         for _ in $(seq {probes}); do\n\
           \"$0\" --exact probe_reports_its_cluster --nocapture & probes=\"$probes $!\"\n\
         done\n\
         failed=0; for probe in $probes; do wait $probe || failed=1; done\n\
         echo \"probes done failed=$failed\"\n\
         read _"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(exe)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The kubeconfigs the probes printed, once all have finished (and all passed).
fn probe_results(stdout: ChildStdout) -> Vec<PathBuf> {
    let mut kubeconfigs = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // Anywhere in the line: the probes share the pipe, and another probe's test harness may
        // have written the start of a line of its own (`test probe_reports_its_cluster ... `)
        // right before this one (each probe's line is one write, so it is never split).
        if let Some(at) = line.find(PROBE) {
            let rest = &line[at + PROBE.len()..];
            kubeconfigs.push(PathBuf::from(rest.split_whitespace().next().unwrap()));
        }
        if let Some(failed) = line.strip_prefix("probes done failed=") {
            assert_eq!(failed, "0", "every probe passed");
            return kubeconfigs;
        }
    }
    panic!("the run ended before its probes did");
}

fn pid_in(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Waits until the run's directory and both server processes are gone.
fn assert_cleaned_up(run_dir: &Path, servers: &[u32]) -> Duration {
    let started = Instant::now();
    while run_dir.exists() || servers.iter().any(|pid| running(*pid)) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "20 s after the run ended: directory {} exists: {}, servers running: {:?}",
            run_dir.display(),
            run_dir.exists(),
            servers
                .iter()
                .filter(|pid| running(**pid))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !run_dir.with_extension("lock").exists(),
        "the lock file is deleted too"
    );
    started.elapsed()
}

/// The cluster's state dir, its run dir, and the pids of the API server and etcd.
fn cluster_of(kubeconfig: &Path) -> (PathBuf, PathBuf, Vec<u32>) {
    let state = kubeconfig.parent().unwrap().to_path_buf();
    let run_dir = state.parent().unwrap().to_path_buf();
    let servers = vec![
        pid_in(&state.join("apiserver.pid")),
        pid_in(&state.join("etcd.pid")),
    ];
    assert!(servers.iter().all(|pid| running(*pid)), "servers run");
    (state, run_dir, servers)
}

#[test]
fn concurrent_test_processes_of_one_run_share_one_cluster_that_is_gone_after_the_run() {
    let mut run = start_run(3);
    let kubeconfigs = probe_results(run.stdout.take().unwrap());
    assert_eq!(kubeconfigs.len(), 3, "{kubeconfigs:?}");
    assert!(
        kubeconfigs.iter().all(|k| k == &kubeconfigs[0]),
        "one cluster for the whole run: {kubeconfigs:?}"
    );
    let (state, run_dir, servers) = cluster_of(&kubeconfigs[0]);
    assert!(
        run_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("{}-", run.id())),
        "keyed by the run's owner: {}",
        run_dir.display()
    );
    let log = std::fs::read_to_string(state.join("start.log")).unwrap();
    assert_eq!(log.matches(STARTING).count(), 1, "started once:\n{log}");
    let port = std::fs::read_to_string(&kubeconfigs[0]).unwrap();
    assert!(
        !port.contains("127.0.0.1:6443"),
        "never the default port of a developer's kubelite"
    );

    run.stdin.take().unwrap().write_all(b"end\n").unwrap();
    assert!(run.wait().unwrap().success());
    let took = assert_cleaned_up(&run_dir, &servers);
    println!("run ended → servers stopped and state deleted in {took:?}");
}

#[test]
fn a_killed_run_leaves_nothing_behind_either() {
    let mut run = start_run(1);
    let kubeconfigs = probe_results(run.stdout.take().unwrap());
    let (_state, run_dir, servers) = cluster_of(&kubeconfigs[0]);
    run.kill().unwrap();
    run.wait().unwrap();
    let took = assert_cleaned_up(&run_dir, &servers);
    println!("run killed → servers stopped and state deleted in {took:?}");
}
