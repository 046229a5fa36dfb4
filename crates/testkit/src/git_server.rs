//! Real Git servers on loopback ports, for integration tests.
//!
//! Every server owns a fresh bare repository (initial branch `main`) in its own temporary
//! directory and dereferences to [`BareRepo`], which has helpers to seed it and read it back
//! with the `git` CLI:
//!
//! ```no_run
//! use gitcontroller_testkit::git_server::GitDaemon;
//! let daemon = GitDaemon::start();
//! daemon.seed(&[("apps/web.yaml", "kind: ConfigMap\n")], "seed");
//! assert_eq!(daemon.read_file("apps/web.yaml").as_deref(), Some("kind: ConfigMap\n"));
//! println!("{}", daemon.url()); // git://127.0.0.1:PORT/repo.git
//! ```
//!
//! - [`GitDaemon`]: `git daemon` serving `git://` with push enabled; can be stopped and
//!   restarted on the same port to simulate an outage.
//! - [`GitHttpServer`]: `git http-backend` behind a small HTTP server (std::net) with optional
//!   basic or bearer authentication: `http://127.0.0.1:PORT/repo.git`; or over TLS
//!   ([`GitHttpServer::start_tls`], rustls) with a certificate from a private CA made with the
//!   `openssl` CLI: `https://127.0.0.1:PORT/repo.git`.
//! - [`GitSshServer`]: OpenSSH `sshd` (Debian package `openssh-server`) with a generated host
//!   key, an authorized client key and a matching `known_hosts` line:
//!   `ssh://USER@127.0.0.1:PORT/<path>/repo.git`.
//!
//! The API is synchronous (std::process), so both plain and tokio tests can use it. All git
//! commands run with an isolated configuration (no system or global config, no prompts).
//! Servers are killed when dropped.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

#[path = "git_http.rs"]
mod http;
#[path = "git_ssh.rs"]
mod ssh;

pub use http::{GitHttpServer, HttpAuth, HttpRequestLog};
pub use ssh::{GitSshServer, SSHD, SshKeyPair};

/// Author and committer used by the helpers' own commits.
pub const SEED_AUTHOR_NAME: &str = "Testkit Seeder";
/// Email of [`SEED_AUTHOR_NAME`].
pub const SEED_AUTHOR_EMAIL: &str = "seeder@testkit.invalid";

/// A `git` command with an isolated environment: no system/global config, no terminal
/// prompts, a fixed author and committer, and for speed `core.fsync=none`, `gc.auto=0`,
/// `maintenance.auto=false`, `receive.autogc=false` (durability does not matter in tests).
pub fn git_command() -> Command {
    let mut cmd = Command::new("git");
    isolate_git_env(&mut cmd);
    cmd
}

/// Applies the isolated git environment of [`git_command`] to any command (servers, hooks).
pub fn isolate_git_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", SEED_AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", SEED_AUTHOR_EMAIL)
        .env("GIT_COMMITTER_NAME", SEED_AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", SEED_AUTHOR_EMAIL)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        // Speed: tests create thousands of tiny commits. No fsync, no automatic gc or
        // maintenance after commits, fetches and pushes (each costs tens of milliseconds).
        .env("GIT_CONFIG_COUNT", "4")
        .env("GIT_CONFIG_KEY_0", "core.fsync")
        .env("GIT_CONFIG_VALUE_0", "none")
        .env("GIT_CONFIG_KEY_1", "gc.auto")
        .env("GIT_CONFIG_VALUE_1", "0")
        .env("GIT_CONFIG_KEY_2", "maintenance.auto")
        .env("GIT_CONFIG_VALUE_2", "false")
        .env("GIT_CONFIG_KEY_3", "receive.autogc")
        .env("GIT_CONFIG_VALUE_3", "false")
        .stdin(Stdio::null())
}

/// Runs a command, panicking with its output if it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn stdout_string(out: Output) -> String {
    String::from_utf8(out.stdout).expect("git printed non-UTF-8")
}

/// Returns a currently free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// A server process that leads its own process group, plus a watchdog (`sh`) that kills the
/// group if the test process dies without dropping the server (a timeout's SIGKILL, an abort),
/// so no daemon outlives its test.
#[derive(Debug)]
struct ServerProcess {
    child: Child,
    watchdog: Option<Child>,
}

/// Waits until `port` on 127.0.0.1 accepts TCP connections. Returns `Err` with a reason if
/// the server exits first or `timeout` elapses.
fn wait_for_port(server: &mut ServerProcess, port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("server exited early with {status}"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "port {port} not accepting connections after {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a server started with [`spawn_in_group`] together with the processes it forked
/// (git daemon and sshd fork one child per connection), reaps it and stops its watchdog.
fn kill_child(server: &mut ServerProcess) {
    // The server leads its own process group; `kill -KILL -PGID` reaches its forks too.
    // (The shell's builtin `kill`: no dependency on procps.)
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -KILL -{}", server.child.id()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = server.child.kill();
    let _ = server.child.wait();
    if let Some(mut w) = server.watchdog.take() {
        let _ = w.kill();
        let _ = w.wait();
    }
}

/// Spawns `cmd` as the leader of a new process group, so [`kill_child`] can stop it and
/// everything it forked, with a watchdog for the case the test process dies first.
fn spawn_in_group(cmd: &mut Command) -> std::io::Result<ServerProcess> {
    use std::os::unix::process::CommandExt as _;
    let child = cmd.process_group(0).spawn()?;
    let (me, pgid) = (std::process::id(), child.id());
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null && kill -0 {pgid} 2>/dev/null; do sleep 1; done; \
             kill -0 {me} 2>/dev/null || kill -KILL -{pgid} 2>/dev/null"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    Ok(ServerProcess { child, watchdog })
}

/// Directory of git's helper programs (`git --exec-path`), e.g. `/usr/lib/git-core`.
pub fn git_exec_path() -> PathBuf {
    static EXEC_PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXEC_PATH
        .get_or_init(|| {
            git_command()
                .arg("--exec-path")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
                .unwrap_or_else(|| PathBuf::from("/usr/lib/git-core"))
        })
        .clone()
}

fn read_log(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Whether a commit id is the all-zero id a reflog uses for "did not exist".
fn is_zero_id(id: &str) -> bool {
    id.bytes().all(|b| b == b'0')
}

/// One update of `refs/heads/main` as recorded in the bare repository's reflog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Commit before the update (`0000…` for creation).
    pub old: String,
    /// Commit after the update.
    pub new: String,
    /// Reflog message (e.g. `push`).
    pub message: String,
}

/// A bare repository (initial branch `main`, reflog enabled for every ref update) in a
/// temporary directory, plus helpers that act on it through the `git` CLI over the local
/// filesystem — they work whether or not a server is currently running.
#[derive(Debug)]
pub struct BareRepo {
    dir: TempDir,
    /// Persistent working clone used by [`BareRepo::seed`] (created lazily).
    work: Mutex<Option<PathBuf>>,
}

impl BareRepo {
    /// Name of the repository directory under [`BareRepo::base_dir`].
    pub const NAME: &'static str = "repo.git";

    /// Creates a fresh bare repository with initial branch `main`.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gitctl-remote-")
            .tempdir()
            .expect("tempdir");
        let repo = dir.path().join("srv").join(Self::NAME);
        std::fs::create_dir_all(&repo).expect("create repo dir");
        run(git_command()
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&repo));
        // Record every ref update, so tests can prove no update was a force-push; check every
        // object a push brings as strictly as a Git host does (a tree out of order or with a
        // name twice is refused, so every test that pushes proves the controller's trees and
        // commits valid); and the speed settings of `git_command` also for processes that do
        // not inherit our environment (sshd sessions).
        for (k, v) in [
            ("core.logAllRefUpdates", "always"),
            ("receive.fsckObjects", "true"),
            ("core.fsync", "none"),
            ("gc.auto", "0"),
            ("maintenance.auto", "false"),
            ("receive.autogc", "false"),
        ] {
            run(git_command()
                .arg("--git-dir")
                .arg(&repo)
                .args(["config", k, v]));
        }
        Self {
            dir,
            work: Mutex::new(None),
        }
    }

    /// Directory that contains the repository (the servers' base path).
    pub fn base_dir(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    /// Path of the bare repository (`<base_dir>/repo.git`).
    pub fn path(&self) -> PathBuf {
        self.base_dir().join(Self::NAME)
    }

    /// Scratch directory owned by this repository's tempdir (for server configs, logs, keys).
    pub fn scratch_dir(&self) -> PathBuf {
        let p = self.dir.path().join("scratch");
        std::fs::create_dir_all(&p).expect("create scratch dir");
        p
    }

    /// A `git --git-dir=<bare repo>` command.
    pub fn git(&self) -> Command {
        let mut c = git_command();
        c.arg("--git-dir").arg(self.path());
        c
    }

    fn work_clone(&self) -> PathBuf {
        let mut guard = self.work.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.as_ref() {
            return p.clone();
        }
        let p = self.dir.path().join("work");
        run(git_command()
            .args(["clone", "--quiet", "--no-local"])
            .arg(self.path())
            .arg(&p)
            .stderr(Stdio::null()));
        *guard = Some(p.clone());
        p
    }

    /// Commits `files` (path → content; parent directories are created) on top of the current
    /// `main` and pushes them, as another client would (a clone and `git push`, no force).
    /// Returns the new commit id. Writing the same content again still creates a commit.
    pub fn seed(&self, files: &[(&str, &str)], message: &str) -> String {
        self.change(files, &[], message)
    }

    /// Deletes `paths` on `main` in one commit pushed like [`BareRepo::seed`].
    pub fn remove_files(&self, paths: &[&str], message: &str) -> String {
        self.change(&[], paths, message)
    }

    /// Commits raw bytes (e.g. non-UTF-8 content) like [`BareRepo::seed`].
    pub fn seed_bytes(&self, files: &[(&str, &[u8])], message: &str) -> String {
        self.change_bytes(files, &[], message)
    }

    /// Commits a symlink `path` → `target` (target taken literally, may point anywhere).
    pub fn seed_symlink(&self, path: &str, target: &str, message: &str) -> String {
        self.commit_with(message, &mut |work: &Path| {
            let p = work.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("create dirs in work clone");
            }
            let _ = std::fs::remove_file(&p);
            std::os::unix::fs::symlink(target, &p).expect("create symlink");
            vec![path.to_string()]
        })
    }

    /// Writes `files`, deletes `remove`, commits with `message` (allowing an empty commit)
    /// and pushes to `main`; retries from a fresh fetch if the push loses a race.
    pub fn change(&self, files: &[(&str, &str)], remove: &[&str], message: &str) -> String {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
        self.change_bytes(&files, remove, message)
    }

    /// [`BareRepo::change`] with raw bytes (e.g. non-UTF-8 content): one commit that writes
    /// `files` and deletes `remove`.
    pub fn change_bytes(&self, files: &[(&str, &[u8])], remove: &[&str], message: &str) -> String {
        self.commit_with(message, &mut |work: &Path| {
            for (path, content) in files {
                let p = work.join(path);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).expect("create dirs in work clone");
                }
                // A symlink left there by an earlier commit is replaced, not written through.
                let _ = std::fs::remove_file(&p);
                std::fs::write(&p, content).expect("write file in work clone");
            }
            if !remove.is_empty() {
                run(git_command()
                    .arg("-C")
                    .arg(work)
                    .args(["rm", "--quiet", "-r", "--ignore-unmatch", "--"])
                    .args(remove));
            }
            files.iter().map(|(p, _)| p.to_string()).collect()
        })
    }

    /// In the work clone, reset to the remote tip, let `prepare` change the working tree
    /// (returning the paths to `git add`), commit and push; retry on a lost race.
    fn commit_with(&self, message: &str, prepare: &mut dyn FnMut(&Path) -> Vec<String>) -> String {
        let work = self.work_clone();
        let wgit = || {
            let mut c = git_command();
            c.arg("-C").arg(&work);
            c
        };
        for attempt in 0.. {
            run(wgit().args(["fetch", "--quiet", "origin"]));
            // Start from the remote tip (discarding whatever a lost race left behind).
            let on_remote_tip = wgit()
                .args([
                    "checkout",
                    "--quiet",
                    "--force",
                    "-B",
                    "main",
                    "refs/remotes/origin/main",
                ])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !on_remote_tip {
                // Empty remote: commit on an unborn main.
                run(wgit().args(["symbolic-ref", "HEAD", "refs/heads/main"]));
            }
            let to_add = prepare(&work);
            if !to_add.is_empty() {
                run(wgit().args(["add", "--"]).args(&to_add));
            }
            run(wgit().args([
                "commit",
                "--quiet",
                "--allow-empty",
                "--no-verify",
                "-m",
                message,
            ]));
            let push = wgit()
                .args(["push", "--quiet", "origin", "HEAD:refs/heads/main"])
                .output()
                .expect("run git push");
            if push.status.success() {
                return stdout_string(run(wgit().args(["rev-parse", "HEAD"])))
                    .trim()
                    .to_string();
            }
            if attempt >= 20 {
                panic!(
                    "seed push failed {attempt} times: {}",
                    String::from_utf8_lossy(&push.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        unreachable!()
    }

    /// Content of `path` at the tip of `main`; `None` if the branch or the file does not exist.
    pub fn read_file(&self, path: &str) -> Option<String> {
        let out = self
            .git()
            .arg("show")
            .arg(format!("refs/heads/main:{path}"))
            .stderr(Stdio::null())
            .output()
            .expect("run git show");
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).expect("non-UTF-8 file"))
    }

    /// Every file path in the tree at the tip of `main` (sorted; empty if no commit yet).
    pub fn list_files(&self) -> Vec<String> {
        let Some(_) = self.try_head() else {
            return Vec::new();
        };
        stdout_string(run(self.git().args([
            "ls-tree",
            "-r",
            "--name-only",
            "-z",
            "refs/heads/main",
        ])))
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
    }

    /// The history of `main`, newest first, one entry per commit: `"<full sha> <subject>"`.
    /// Empty if no commit yet. See [`BareRepo::commit_messages`] for full messages.
    pub fn commits(&self) -> Vec<String> {
        if self.try_head().is_none() {
            return Vec::new();
        }
        stdout_string(run(self.git().args([
            "log",
            "--format=%H %s",
            "refs/heads/main",
        ])))
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Full messages (subject + body) of every commit on `main`, newest first.
    pub fn commit_messages(&self) -> Vec<String> {
        if self.try_head().is_none() {
            return Vec::new();
        }
        stdout_string(run(self.git().args([
            "log",
            "-z",
            "--format=%B",
            "refs/heads/main",
        ])))
        .split('\0')
        .map(|s| s.trim_end().to_string())
        .filter(|s| !s.is_empty())
        .collect()
    }

    /// Commit id at the tip of `main`. Panics if the branch has no commit yet.
    pub fn head(&self) -> String {
        self.try_head().expect("branch main has no commit yet")
    }

    /// Commit id at the tip of `main`, if any.
    pub fn try_head(&self) -> Option<String> {
        let out = self
            .git()
            .args(["rev-parse", "--verify", "--quiet", "refs/heads/main"])
            .output()
            .expect("run git rev-parse");
        out.status
            .success()
            .then(|| stdout_string(out).trim().to_string())
    }

    /// Every recorded update of `refs/heads/main`, oldest first (from the reflog); empty while
    /// the branch does not exist. Panics when the branch exists but the reflog is missing, has
    /// a gap (an update's old tip is not the previous update's new one), does not start at the
    /// branch's creation or does not end at the current tip: then it could not prove anything
    /// about force-pushes, and a check built on it must fail rather than pass vacuously.
    pub fn ref_updates(&self) -> Vec<RefUpdate> {
        let log = self.path().join("logs/refs/heads/main");
        // A push that lands while we read moves the tip after its reflog line: read again.
        for _ in 0..50 {
            let head = self.try_head();
            let text = match std::fs::read_to_string(&log) {
                Ok(text) => text,
                Err(_) if head.is_none() => return Vec::new(),
                Err(e) => panic!(
                    "branch main exists but its reflog {} cannot be read ({e}): no proof \
                     about force-pushes is possible",
                    log.display()
                ),
            };
            let updates: Vec<RefUpdate> = text
                .lines()
                .filter_map(|line| {
                    let (head, message) = line.split_once('\t').unwrap_or((line, ""));
                    let mut parts = head.split(' ');
                    Some(RefUpdate {
                        old: parts.next()?.to_string(),
                        new: parts.next()?.to_string(),
                        message: message.to_string(),
                    })
                })
                .collect();
            if updates.last().map(|u| &u.new) != head.as_ref() || self.try_head() != head {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let first = updates
                .first()
                .expect("a reflog that ends at the tip has an entry");
            assert!(
                is_zero_id(&first.old),
                "the reflog of main does not start at the branch's creation: {updates:?}"
            );
            for pair in updates.windows(2) {
                assert_eq!(
                    pair[1].old, pair[0].new,
                    "the reflog of main has a gap: {updates:?}"
                );
            }
            return updates;
        }
        panic!(
            "the reflog {} does not end at the tip of main {:?}",
            log.display(),
            self.try_head()
        );
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.git()
            .args(["merge-base", "--is-ancestor", ancestor, descendant])
            .status()
            .expect("run git merge-base")
            .success()
    }

    /// Updates of `main` that were not fast-forwards (i.e. force-pushes or resets). Empty
    /// means every update kept the previous tip in history; panics like
    /// [`BareRepo::ref_updates`] when the reflog cannot show that.
    pub fn non_fast_forward_updates(&self) -> Vec<RefUpdate> {
        self.ref_updates()
            .into_iter()
            .filter(|u| !is_zero_id(&u.old) && !self.is_ancestor(&u.old, &u.new))
            .collect()
    }
}

impl Default for BareRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// `git daemon` serving a fresh bare repository over `git://127.0.0.1:PORT/repo.git`, with
/// `receive-pack` (push) enabled. Killed on drop.
#[derive(Debug)]
pub struct GitDaemon {
    repo: BareRepo,
    port: u16,
    child: Option<ServerProcess>,
}

impl GitDaemon {
    /// Creates a bare repository and starts a daemon for it on a free loopback port.
    /// Panics if the daemon does not come up.
    pub fn start() -> Self {
        let repo = BareRepo::new();
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn_daemon(&repo, port) {
                Ok(child) => {
                    return Self {
                        repo,
                        port,
                        child: Some(child),
                    };
                }
                Err(e) => last_err = e,
            }
        }
        panic!("git daemon did not start: {last_err}");
    }

    /// `git://127.0.0.1:PORT/repo.git`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/{}", self.port, BareRepo::NAME)
    }

    /// The loopback port the daemon listens on (kept across [`GitDaemon::stop`] /
    /// [`GitDaemon::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the daemon is currently running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the daemon (the remote becomes unreachable: connections are refused). The
    /// repository is kept. No-op if already stopped.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_child(&mut c);
        }
    }

    /// Starts the daemon again on the same port (after [`GitDaemon::stop`]). Retries for a
    /// few seconds while the port is still held. No-op if running.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match spawn_daemon(&self.repo, self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) if Instant::now() > deadline => {
                    panic!("git daemon did not restart on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

fn spawn_daemon(repo: &BareRepo, port: u16) -> Result<ServerProcess, String> {
    let log = repo.scratch_dir().join("daemon.log");
    let stderr = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    // Run git-daemon itself (not `git daemon`, which would leave it as a grandchild).
    let mut daemon = Command::new(git_exec_path().join("git-daemon"));
    isolate_git_env(&mut daemon)
        .arg("--reuseaddr")
        .arg(format!("--base-path={}", repo.base_dir().display()))
        .arg("--export-all")
        .arg("--enable=receive-pack")
        .arg("--informative-errors")
        .arg("--listen=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(repo.base_dir())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child =
        spawn_in_group(&mut daemon).map_err(|e| format!("cannot spawn git daemon: {e}"))?;
    match wait_for_port(&mut child, port, Duration::from_secs(10)) {
        Ok(()) => Ok(child),
        Err(e) => {
            kill_child(&mut child);
            Err(format!("{e}; log:\n{}", read_log(&log)))
        }
    }
}

impl Deref for GitDaemon {
    type Target = BareRepo;
    fn deref(&self) -> &BareRepo {
        &self.repo
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
