//! The API server a test run starts for itself when `KUBECONFIG` is not set, the way envtest
//! does for Go controllers: one kubelite (`../shared/kubelite`) per run of `cargo test` or
//! `cargo nextest run`, stopped and wiped when the run ends.
//!
//! `cargo test` runs each test binary as a child of one `cargo` process, one after another;
//! nextest runs each test as a child of one `cargo-nextest` process, several at once. That
//! process is the run's *owner*, and its pid and start time name the run's directory,
//! `$TMPDIR/gitcontroller-test-clusters/<pid>-<start time>/`. The first test process that
//! needs a cluster, holding an exclusive lock on `<pid>-<start time>.lock` beside it:
//!
//! 1. starts a supervisor (`sh`, in its own process group so a Ctrl-C in the terminal does not
//!    reach it, and not a child of the test process's lifetime) that waits until the owner has
//!    exited, then stops the API server and etcd and deletes the directory and the lock file;
//! 2. runs `kubelite.sh start` on free loopback ports with its state in `<dir>/kubelite`,
//!    never the default ports or `/tmp/kubelite`, so a developer's own kubelite is untouched;
//! 3. writes `<dir>/ready`.
//!
//! Later test processes of the same run take the lock, find `ready` with both servers alive
//! and reuse them. A test binary started by hand (its parent is neither `cargo` nor
//! `cargo-nextest`) owns its cluster itself; `GITCONTROLLER_TEST_RUN_OWNER=<pid>` names
//! another owner. A run whose supervisor was killed too is cleaned up by the next run that
//! starts a cluster.

use std::fs::File;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::git_server::free_port;

/// First words of the line `kubelite/start.log` gets for each start.
pub const STARTING: &str = "starting kubelite:";

/// Environment variable naming the process whose exit ends the test run's cluster.
pub const RUN_OWNER_ENV: &str = "GITCONTROLLER_TEST_RUN_OWNER";

/// The started (or reused) API server of this test run: the path of its admin kubeconfig.
pub(crate) fn kubeconfig() -> Result<PathBuf, String> {
    let kubelite = kubelite_script()?;
    let base = base_dir();
    std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
    sweep_abandoned_runs(&base, &kubelite);
    let owner = run_owner();
    let key = owner.key();
    let lock_path = base.join(format!("{key}.lock"));
    let lock =
        File::create(&lock_path).map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
    // Held until this function returns: concurrent test processes of one run (nextest) wait
    // here and then reuse what the first one started.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    let run = base.join(&key);
    let state = run.join("kubelite");
    let kubeconfig = state.join("kubeconfig");
    if run.join("ready").exists() && servers_alive(&state) {
        return Ok(kubeconfig);
    }
    std::fs::create_dir_all(&run).map_err(|e| format!("creating {}: {e}", run.display()))?;
    if !supervisor_alive(&run) {
        spawn_supervisor(&owner, &run, &lock_path)?;
    }
    let _ = std::fs::remove_file(run.join("ready"));
    let mut last_error = String::new();
    // Ports are probed free and then handed to kubelite: another process may take one in
    // between, so a failed start is retried on new ports.
    for _attempt in 0..3 {
        let (port, etcd_port) = free_ports();
        match start_kubelite(&kubelite, &state, port, etcd_port) {
            Ok(()) if !supervisor_alive(&run) => {
                // The owner exited while kubelite started, and its supervisor cleaned up
                // already: nobody would stop these servers.
                stop_kubelite(&kubelite, &state);
                let _ = std::fs::remove_dir_all(&run);
                return Err(format!(
                    "the test run's owner (pid {}) has exited",
                    owner.pid
                ));
            }
            Ok(()) => {
                std::fs::write(run.join("ready"), kubeconfig.to_string_lossy().as_bytes())
                    .map_err(|e| format!("writing {}: {e}", run.join("ready").display()))?;
                eprintln!(
                    "testkit: started kubelite on https://127.0.0.1:{port} for this test run \
                     ({}); it stops when process {} exits",
                    state.display(),
                    owner.pid
                );
                return Ok(kubeconfig);
            }
            Err(e) => {
                last_error = e;
                stop_kubelite(&kubelite, &state);
            }
        }
    }
    Err(format!(
        "{} start did not bring up an API server: {last_error}",
        kubelite.display()
    ))
}

/// `$SHARED_DIR`, else the first `shared/` with `kubelite/kubelite.sh` beside the workspace
/// root or one of its parents (`../shared` in CI, `../../shared` from a worktree).
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SHARED_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    workspace
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared"))
        .find(|shared| shared.join("kubelite/kubelite.sh").is_file())
}

fn kubelite_script() -> Result<PathBuf, String> {
    shared_dir()
        .map(|shared| shared.join("kubelite/kubelite.sh"))
        .filter(|script| script.is_file())
        .ok_or_else(|| {
            "KUBECONFIG is not set and no kubelite was found to start one: set SHARED_DIR to \
             the directory holding kubelite/kubelite.sh (../shared beside the workspace)"
                .to_string()
        })
}

fn base_dir() -> PathBuf {
    std::env::temp_dir().join("gitcontroller-test-clusters")
}

/// The process whose exit ends the run, identified by pid and start time (so a reused pid is
/// not mistaken for it).
struct Owner {
    pid: u32,
    start_time: String,
}

impl Owner {
    fn key(&self) -> String {
        format!("{}-{}", self.pid, self.start_time)
    }
}

fn run_owner() -> Owner {
    let named = std::env::var(RUN_OWNER_ENV)
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok());
    let pid = named.unwrap_or_else(|| {
        let parent = std::os::unix::process::parent_id();
        let runner = std::fs::read_to_string(format!("/proc/{parent}/comm"))
            .is_ok_and(|comm| matches!(comm.trim(), "cargo" | "cargo-nextest"));
        if runner { parent } else { std::process::id() }
    });
    match process_start_time(pid) {
        Some(start_time) => Owner { pid, start_time },
        // The named owner is gone already (a killed run): this process owns its cluster.
        None => {
            let pid = std::process::id();
            Owner {
                pid,
                start_time: process_start_time(pid).unwrap_or_default(),
            }
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), if the process
/// exists and is not a zombie.
fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let mut fields = stat.rsplit_once(") ")?.1.split(' ');
    let state = fields.next()?;
    if state == "Z" {
        return None;
    }
    // `state` was field 3; the start time is field 22.
    fields.nth(18).map(str::to_string)
}

fn pid_alive(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| process_start_time(pid).is_some())
}

fn servers_alive(state: &Path) -> bool {
    pid_alive(&state.join("apiserver.pid")) && pid_alive(&state.join("etcd.pid"))
}

fn supervisor_alive(run: &Path) -> bool {
    pid_alive(&run.join("supervisor.pid"))
}

/// The supervisor: waits until the owner has exited (or is a zombie), then stops both servers
/// (SIGTERM, SIGKILL after a second: their data is deleted anyway) and deletes the run's
/// directory and lock file.
const SUPERVISOR: &str = r#"
owner=$1 started=$2 run=$3 lock=$4
owner_alive() {
  stat=$(cat /proc/$owner/stat 2>/dev/null) || return 1
  rest=${stat##*") "}
  [ "${rest%% *}" != Z ] && [ "$(echo "$rest" | cut -d' ' -f20)" = "$started" ]
}
while owner_alive; do sleep 0.2; done
pids=$(cat "$run"/kubelite/*.pid 2>/dev/null)
for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
for _ in 1 2 3 4 5; do
  alive=
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.2
done
for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
rm -rf "$run" "$lock"
"#;

fn spawn_supervisor(owner: &Owner, run: &Path, lock: &Path) -> Result<(), String> {
    let child = Command::new("sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("gitcontroller-test-cluster-supervisor")
        .arg(owner.pid.to_string())
        .arg(&owner.start_time)
        .arg(run)
        .arg(lock)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the test cluster's supervisor: {e}"))?;
    std::fs::write(run.join("supervisor.pid"), child.id().to_string())
        .map_err(|e| format!("writing {}: {e}", run.join("supervisor.pid").display()))
}

/// A free port for the API server and a free pair for etcd (client port, peer port + 1).
fn free_ports() -> (u16, u16) {
    let port = free_port();
    loop {
        let Ok(client) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(etcd) = client.local_addr().map(|a| a.port()) else {
            continue;
        };
        if etcd != port
            && etcd < u16::MAX
            && etcd + 1 != port
            && TcpListener::bind(("127.0.0.1", etcd + 1)).is_ok()
        {
            return (port, etcd);
        }
    }
}

fn kubelite_command(kubelite: &Path, state: &Path, action: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(kubelite)
        .arg(action)
        .env("KUBELITE_STATE", state)
        .env_remove("KUBELITE_WIPE")
        .stdin(Stdio::null())
        // Its own process group: etcd and the API server (started in the background by the
        // script) then do not get the terminal's Ctrl-C; the supervisor stops them.
        .process_group(0);
    cmd
}

fn start_kubelite(kubelite: &Path, state: &Path, port: u16, etcd_port: u16) -> Result<(), String> {
    std::fs::create_dir_all(state).map_err(|e| format!("creating {}: {e}", state.display()))?;
    let log_path = state.join("start.log");
    // Appended to: one "starting" line per start, which the harness's own tests count.
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
    let _ = writeln!(
        log,
        "{STARTING} apiserver port {port}, etcd ports {etcd_port}+1"
    );
    let stderr = log.try_clone().map_err(|e| e.to_string())?;
    let status = kubelite_command(kubelite, state, "start")
        .env("KUBELITE_PORT", port.to_string())
        .env("KUBELITE_ETCD_PORT", etcd_port.to_string())
        .stdout(log)
        .stderr(stderr)
        .status()
        .map_err(|e| format!("running {}: {e}", kubelite.display()))?;
    if status.success() && servers_alive(state) {
        return Ok(());
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let api_log = std::fs::read_to_string(state.join("apiserver.log")).unwrap_or_default();
    let tail: Vec<&str> = api_log.lines().rev().take(20).collect();
    Err(format!(
        "{status}\n{log}\n--- apiserver.log (last lines) ---\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

fn stop_kubelite(kubelite: &Path, state: &Path) {
    let _ = kubelite_command(kubelite, state, "stop")
        .env("KUBELITE_WIPE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Stops and deletes the clusters of runs whose owner and supervisor are both gone (the
/// supervisor was killed too). Runs in use are locked by their test processes and skipped.
fn sweep_abandoned_runs(base: &Path, kubelite: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let run = entry.path();
        if !run.is_dir() {
            continue;
        }
        let Some((pid, start_time)) = run
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, start)| Some((pid.parse::<u32>().ok()?, start.to_string())))
        else {
            continue;
        };
        let owner_alive = process_start_time(pid).is_some_and(|s| s == start_time);
        if owner_alive || supervisor_alive(&run) {
            continue;
        }
        let lock_path = run.with_extension("lock");
        let Ok(lock) = File::create(&lock_path) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue;
        }
        stop_kubelite(kubelite, &run.join("kubelite"));
        let _ = std::fs::remove_dir_all(&run);
        let _ = std::fs::remove_file(&lock_path);
    }
}
