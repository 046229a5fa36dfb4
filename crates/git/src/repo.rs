//! The repository: cache directory, fetch, snapshot, commit building and safe push.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode,
    FetchOptions, FileMode, ObjectType, Oid, ProxyOptions, PushOptions, RemoteCallbacks, Signature,
};

use crate::change::{FileChange, FileEdit, Verb, edit_files_with};
use crate::credentials::{
    Auth, Credentials, KnownHosts, Redactor, RemoteUrl, redact_url, verify_with_ca,
};
use crate::error::{Error, Result};
use crate::paths::{join, normalize_relative};
use crate::shared_fetch::{self, FetchKey};
use crate::snapshot::{self, Limits, Snapshot, SnapshotFile};
use crate::store::{OpenStore, StoreLock, TRACKING_PREFIX, open_or_init, store_stem};
use crate::tree_edit::{self, Edit, Trees};

/// Where and how to sync. `Debug` redacts a password in the URL and every secret.
#[derive(Clone)]
pub struct RepoSpec {
    /// Remote URL: `ssh://user@host[:port]/path`, scp-like `user@host:path`,
    /// `https://…`, `http://…`, `git://…`, or `file://…` / an absolute path.
    pub url: String,
    /// Branch to read and push (without `refs/heads/`).
    pub branch: String,
    /// Sub-directory of the repository the controller owns (relative, `/`-separated; empty
    /// or `.` for the root). Validated: no `..`, not absolute, no `.git`.
    pub path: String,
    /// Directory for the object stores: one bare repository per remote (normalized URL)
    /// inside it, shared by every branch and path read from that remote. Give every
    /// repository the same directory so stores are shared; keep it across reconciles (and
    /// ideally restarts) so fetches are incremental.
    pub cache_dir: PathBuf,
    /// How to authenticate (and which CA to trust).
    pub credentials: Credentials,
    /// Retries of a push that lost a race.
    pub retry: RetryPolicy,
    /// Whether `commit_and_push` may create `branch` when the remote has refs but not this
    /// branch (as a root commit holding only what `derive` writes). Default `false`: such a
    /// remote is [`Error::BranchNotFound`] for reads and writes alike, so a typo or a
    /// deleted branch is never silently re-created. An empty remote (no refs at all) is
    /// always written to: its first push creates the branch.
    pub create_branch: bool,
    /// Whether local URLs (`file://…` or a path) are allowed. Default `false` (refused with
    /// [`Error::Config`]): a URL naming the controller's own file system would let a
    /// repository read or write any repository the controller can reach on disk.
    pub allow_local: bool,
    /// Input budgets of snapshots.
    pub limits: Limits,
}

impl std::fmt::Debug for RepoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSpec")
            .field("url", &redact_url(&self.url))
            .field("branch", &self.branch)
            .field("path", &self.path)
            .field("cache_dir", &self.cache_dir)
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .field("create_branch", &self.create_branch)
            .field("allow_local", &self.allow_local)
            .field("limits", &self.limits)
            .finish()
    }
}

impl RepoSpec {
    /// A spec for `url`/`branch` at the repository root, no credentials, default retries and
    /// limits, no branch creation, no local URLs.
    pub fn new(
        url: impl Into<String>,
        branch: impl Into<String>,
        cache_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            url: url.into(),
            branch: branch.into(),
            path: String::new(),
            cache_dir: cache_dir.into(),
            credentials: Credentials::none(),
            retry: RetryPolicy::default(),
            create_branch: false,
            allow_local: false,
            limits: Limits::default(),
        }
    }

    /// Sets [`RepoSpec::create_branch`].
    pub fn with_create_branch(mut self, create_branch: bool) -> Self {
        self.create_branch = create_branch;
        self
    }

    /// Sets [`RepoSpec::allow_local`].
    pub fn with_allow_local(mut self, allow_local: bool) -> Self {
        self.allow_local = allow_local;
        self
    }

    /// Sets [`RepoSpec::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`RepoSpec::path`].
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets [`RepoSpec::credentials`].
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets [`RepoSpec::retry`].
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Bounded retries with exponential backoff (and jitter) for pushes rejected because the
/// remote branch moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts (fetch, derive, commit, push) before giving up with
    /// [`Error::Conflict`]. At least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles after each rejection.
    pub initial_backoff: Duration,
    /// Upper bound of the wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts, 100 ms doubling up to 5 s.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` rejections): exponential,
    /// capped, with jitter in [50 %, 100 %].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let r = std::collections::hash_map::RandomState::new().hash_one(attempt) % 1000;
        exp.mul_f64(0.5 + (r as f64) / 2000.0)
    }
}

/// Author and committer of our commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Name (`spec.author.name`).
    pub name: String,
    /// Email (`spec.author.email`).
    pub email: String,
}

/// Result of [`Repository::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Commit id at the tip of the branch. `None` only when the remote is empty (no refs
    /// at all), or lacks the branch and [`RepoSpec::create_branch`] is set: pushing creates
    /// it. A non-empty remote without the branch is otherwise [`Error::BranchNotFound`].
    pub head: Option<String>,
    /// Whether the head differs from the one the cache had before this fetch (true on the
    /// first fetch of an existing branch into a new cache).
    pub changed: bool,
}

/// Applies `changes` to the files of `snapshot` and returns every file whose text changes, in
/// the order the changes first name them. Pure: the same edits
/// [`Repository::commit_and_push`](crate::Repository::commit_and_push) makes for a commit
/// whose parent is `snapshot`'s commit, so a preview (`git-controller diff`) shows the exact
/// text that would be committed.
///
/// A change to a file that is in the tree but was left out of the snapshot (see
/// [`Snapshot::skipped`]), whose content was not loaded (a `known` blob of
/// [`Repository::snapshot_with`]), or that may exist beyond a truncated walk
/// ([`Snapshot::truncated`]) fails: its text is not known here.
pub fn edit_files(snapshot: &Snapshot, changes: &[FileChange]) -> Result<Vec<FileEdit>> {
    let unknown = |path: &str, why: &str| Error::Parse {
        path: path.to_string(),
        message: format!("{why}, so it cannot be edited"),
    };
    edit_files_with("", changes, |path| {
        if let Some(file) = snapshot.get(path) {
            return match &file.content {
                Some(text) => Ok(Some(text.clone())),
                None => Err(unknown(path, "the file's content was not loaded")),
            };
        }
        if snapshot.skipped.iter().any(|s| s.path == path) {
            return Err(unknown(path, "the file was not read into the snapshot"));
        }
        if snapshot.truncated.is_some() {
            return Err(unknown(
                path,
                "the snapshot was truncated by a budget and the file may exist",
            ));
        }
        Ok(None)
    })
}

/// Result of [`Repository::commit_and_push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The commit pushed; `None` when there was nothing to change (no commit was made).
    pub commit: Option<String>,
    /// How many times a push was rejected because the branch moved (each followed by a
    /// fetch and a new `derive`).
    pub retries: u32,
    /// The snapshot of the commit pushed, derived from the snapshot `derive` was given plus
    /// the files the commit changed, without reading the commit: the files, blob ids and sizes
    /// [`Repository::snapshot_with`] of the commit lists; the text of the files the commit
    /// wrote loaded, the other files' as in the snapshot `derive` was given. `None` when no
    /// commit was made, or when that is not certain: the snapshot `derive` was given was
    /// incomplete (skipped or truncated), the commit would hit a budget of
    /// [`RepoSpec::limits`], or it removed the last file of `spec.path`. Then read the commit
    /// as usual.
    pub snapshot: Option<Snapshot>,
}

/// A repository: one branch and path of a remote, read through the remote's object store
/// (a bare repository in `cache_dir` shared with every other branch and path of the same
/// remote), plus the remote's credentials.
///
/// Locking: every operation (`open`, `fetch`, `snapshot*`, `read_file`,
/// `commit_and_push*`) holds the store's lock (a `flock` on `<store>.lock`, so other
/// processes on the same cache directory are excluded too) for its whole duration, and
/// waits for it: operations on one remote run one at a time, whichever repository they
/// come from. `commit_and_push` holds it from its first fetch to its last push, `derive`
/// included.
///
/// Not `Sync`: use one per reconcile (or behind a mutex). Blocking (libgit2): call it from
/// `tokio::task::spawn_blocking` in async code.
pub struct Repository {
    spec: RepoSpec,
    remote: RemoteUrl,
    repo: git2::Repository,
    dir: PathBuf,
    redactor: Redactor,
    known_hosts: Option<KnownHosts>,
    _open: OpenStore,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("url", &redact_url(&self.spec.url))
            .field("branch", &self.spec.branch)
            .field("path", &self.spec.path)
            .field("cache", &self.dir)
            .finish()
    }
}

/// What the callbacks of one network operation observed.
#[derive(Default)]
struct CallState {
    cred_calls: Cell<u32>,
    key_calls: Cell<u32>,
    auth_failed: RefCell<Option<String>>,
    host_key_error: RefCell<Option<String>>,
    cert_error: RefCell<Option<String>>,
    push_status: RefCell<Vec<(String, String)>>,
}

/// Result of one push attempt.
enum Pushed {
    Ok,
    /// The branch moved under us (non-fast-forward, stale ref): fetch, re-derive, retry.
    Race(String),
}

/// What [`Repository::build_commit`] made.
struct Built {
    /// The commit.
    commit: Oid,
    /// Every object it created (blobs, the trees that changed, the commit itself), sorted: all
    /// that [`persist`] has to store.
    objects: Vec<Oid>,
    /// What it changed under `spec.path`, to derive its snapshot.
    delta: snapshot::Delta,
}

const OUTGOING_REF: &str = "refs/gitcontroller/outgoing";

impl Repository {
    /// Validates the spec and opens (or creates) the remote's object store
    /// `cache_dir/<hash of the normalized url>.git`, a bare repository without remotes or
    /// working tree. Nothing is fetched yet.
    pub fn open(spec: RepoSpec) -> Result<Self> {
        let mut spec = spec;
        spec.path = normalize_relative(&spec.path, true)?;
        if spec.branch.is_empty()
            || !git2::Reference::is_valid_name(&format!("refs/heads/{}", spec.branch))
        {
            return Err(Error::Config(format!(
                "invalid branch name {:?}",
                spec.branch
            )));
        }
        if spec.retry.max_attempts == 0 {
            spec.retry.max_attempts = 1;
        }
        let remote = RemoteUrl::parse(&spec.url)?;
        if remote.scheme == "file" && !spec.allow_local {
            return Err(Error::Config(format!(
                "local repository URL {:?} refused: file:// URLs and paths read the controller's own file system (allow them with allow_local)",
                redact_url(&spec.url)
            )));
        }
        let known_hosts = match (&spec.credentials.auth, remote.is_ssh()) {
            (Auth::Ssh { known_hosts, .. }, true) => {
                let kh = KnownHosts::parse(known_hosts);
                if kh.is_empty() {
                    return Err(Error::Auth(
                        "known_hosts has no usable entry; host keys are always verified".into(),
                    ));
                }
                Some(kh)
            }
            (_, true) => {
                return Err(Error::Auth(
                    "an SSH URL needs an SSH identity and known_hosts in the secret".into(),
                ));
            }
            (Auth::Ssh { .. }, false) => {
                return Err(Error::Auth(format!(
                    "the secret holds an SSH identity but the URL scheme is {}",
                    remote.scheme
                )));
            }
            _ => None,
        };
        if matches!(
            spec.credentials.auth,
            Auth::Basic { .. } | Auth::Bearer { .. }
        ) && !remote.is_http()
        {
            return Err(Error::Auth(format!(
                "username/password or bearer token need an http(s) URL, not {}",
                remote.scheme
            )));
        }
        let dir = store_stem(&spec.cache_dir, &spec.url).with_extension("git");
        std::fs::create_dir_all(&spec.cache_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create cache dir {}: {e}",
                spec.cache_dir.display()
            ))
        })?;
        trust_stored_objects();
        let _lock = StoreLock::acquire(&dir)?;
        let (open, others_open) = OpenStore::register(&dir);
        let repo = open_or_init(&dir, others_open)?;
        // A crash mid-push may leave this ref pointing at an object that only lived in memory.
        if let Ok(mut r) = repo.find_reference(OUTGOING_REF) {
            let _ = r.delete();
        }
        let redactor = Redactor::new(&spec.credentials, &spec.url);
        Ok(Self {
            spec,
            remote,
            repo,
            dir,
            redactor,
            known_hosts,
            _open: open,
        })
    }

    fn lock(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.dir)
    }

    /// A fresh handle on the store, for a write or a fetch: it sees the packs and refs that
    /// other repositories on the same store added since, holds no object cache of earlier
    /// operations (their memory is returned), and carries no in-memory object database of an
    /// earlier `commit_and_push` (libgit2 would write new objects to whichever of several
    /// such backends it picks).
    fn reopen(&mut self) -> Result<()> {
        self.repo = crate::store::open_store(&self.dir)
            .map_err(|e| Error::Internal(format!("cannot open cache: {}", e.message())))?;
        Ok(())
    }

    /// The (normalized) spec.
    pub fn spec(&self) -> &RepoSpec {
        &self.spec
    }

    /// The remote's object store (a bare repository, shared with the other branches and
    /// paths of the same remote).
    pub fn cache_path(&self) -> &Path {
        &self.dir
    }

    fn tracking_ref(&self) -> String {
        format!("{TRACKING_PREFIX}{}", self.spec.branch)
    }

    /// The head as of the last fetch into this cache (no network).
    pub fn cached_head(&self) -> Option<String> {
        self.repo
            .refname_to_id(&self.tracking_ref())
            .ok()
            .map(|o| o.to_string())
    }

    fn callbacks<'a>(&'a self, state: &'a CallState) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        let auth = &self.spec.credentials.auth;
        let url_user = self.remote.user.clone();
        cb.credentials(move |_url, username_from_url, allowed| {
            let n = state.cred_calls.get() + 1;
            state.cred_calls.set(n);
            let fail = |why: &str| {
                *state.auth_failed.borrow_mut() = Some(why.to_string());
                Err(git2::Error::from_str(why))
            };
            match auth {
                Auth::Ssh {
                    identity,
                    passphrase,
                    ..
                } => {
                    let user = username_from_url
                        .map(str::to_string)
                        .or_else(|| url_user.clone())
                        .unwrap_or_else(|| "git".to_string());
                    if allowed.contains(CredentialType::USERNAME) {
                        return Cred::username(&user);
                    }
                    if !allowed.contains(CredentialType::SSH_KEY) {
                        return fail("the SSH server does not accept public keys");
                    }
                    let k = state.key_calls.get() + 1;
                    state.key_calls.set(k);
                    if k > 1 || n > 4 {
                        return fail("the SSH server rejected the key");
                    }
                    Cred::ssh_key_from_memory(&user, None, identity, passphrase.as_deref()).or_else(|_| {
                        fail("cannot use the SSH identity (wrong passphrase or unsupported key format)")
                    })
                }
                Auth::Basic { username, password } => {
                    if n > 1 {
                        return fail("the server rejected the username/password");
                    }
                    if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                        return fail("the server does not accept username/password");
                    }
                    Cred::userpass_plaintext(username, password)
                }
                Auth::Bearer { .. } => fail("the server rejected the bearer token"),
                Auth::None => fail("the remote requires authentication but the spec has no credentials"),
            }
        });
        let known_hosts = self.known_hosts.as_ref();
        let ca = self.spec.credentials.ca_cert.as_deref();
        let port = self.remote.port;
        cb.certificate_check(move |cert, host| {
            if let Some(hk) = cert.as_hostkey() {
                let Some(kh) = known_hosts else {
                    *state.host_key_error.borrow_mut() = Some("no known_hosts configured".into());
                    return Err(git2::Error::from_str("host key verification failed"));
                };
                let Some(blob) = hk.hostkey() else {
                    *state.host_key_error.borrow_mut() =
                        Some("the SSH library did not provide the host key".into());
                    return Err(git2::Error::from_str("host key verification failed"));
                };
                return match kh.verify(host, port, blob) {
                    Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                    Err(why) => {
                        *state.host_key_error.borrow_mut() = Some(why);
                        Err(git2::Error::from_str("host key verification failed"))
                    }
                };
            }
            if let (Some(x509), Some(ca)) = (cert.as_x509(), ca) {
                return match verify_with_ca(ca, x509.data(), host) {
                    Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                    Err(why) => {
                        *state.cert_error.borrow_mut() = Some(why);
                        Err(git2::Error::from_str("certificate verification failed"))
                    }
                };
            }
            Ok(CertificateCheckStatus::CertificatePassthrough)
        });
        cb.push_update_reference(move |refname, status| {
            if let Some(s) = status {
                state
                    .push_status
                    .borrow_mut()
                    .push((refname.to_string(), s.to_string()));
            }
            Ok(())
        });
        cb
    }

    fn headers(&self) -> Vec<String> {
        match &self.spec.credentials.auth {
            Auth::Bearer { token } => vec![format!("Authorization: Bearer {token}")],
            _ => Vec::new(),
        }
    }

    /// Maps a libgit2 error of a network operation to our categories (message redacted).
    fn net_error(&self, e: &git2::Error, state: &CallState, what: &str) -> Error {
        let msg = self.redactor.redact(e.message());
        let url = redact_url(&self.spec.url);
        if let Some(why) = state.host_key_error.borrow().clone() {
            return Error::HostKey(format!("{url}: {why}"));
        }
        if let Some(why) = state.cert_error.borrow().clone() {
            return Error::Auth(format!("{url}: {why}"));
        }
        if let Some(why) = state.auth_failed.borrow().clone() {
            return Error::Auth(format!("{what} {url}: {why}"));
        }
        let lower = msg.to_ascii_lowercase();
        let has = |s: &str| lower.contains(s);
        if e.code() == ErrorCode::Auth
            || has("authenticat")
            || has("private key")
            || has("publickey")
            || has("401")
            || has("403")
            || has("permission denied")
            || has("unauthorized")
        {
            return Error::Auth(format!("{what} {url}: {msg}"));
        }
        if e.code() == ErrorCode::Certificate || has("certificate") {
            return Error::Auth(format!("{what} {url}: {msg}"));
        }
        if e.code() == ErrorCode::NotFound
            || has("not found")
            || has("404")
            || has("does not appear to be a git repository")
            || has("repository not exported")
            || has("no such repository")
            || has("no such file or directory")
        {
            return Error::NotFound(format!("{what} {url}: {msg}"));
        }
        if matches!(
            e.class(),
            ErrorClass::Net | ErrorClass::Os | ErrorClass::Ssh | ErrorClass::Http
        ) || has("connect")
            || has("timed out")
            || has("eof")
            || has("reset")
            || has("resolve")
            || has("broken pipe")
        {
            return Error::Network(format!("{what} {url}: {msg}"));
        }
        Error::Internal(format!("{what} {url}: {msg}"))
    }

    /// Fetches the branch into the store (incremental after the first fetch; only this
    /// branch, no tags) and returns its head.
    ///
    /// Fails closed: a remote that has refs but not the branch is [`Error::BranchNotFound`]
    /// (unless [`RepoSpec::create_branch`]); only an empty remote (no refs at all — a new
    /// repository) yields `head: None` by itself.
    ///
    /// Repositories of one remote share fetches (see `shared_fetch.rs`): when, while this
    /// call waited for the store's lock, another `Repository` of this process fetched the
    /// same branch with the same URL, credentials and [`RepoSpec::create_branch`], and that
    /// fetch began after this call did, its head is the answer and the remote is not asked
    /// again.
    pub fn fetch(&mut self) -> Result<Fetched> {
        self.fetch_since(Instant::now())
    }

    /// [`Repository::fetch`] for a request made at `requested` (not later than now): the
    /// answer of a fetch of the same remote, branch and credentials by another repository
    /// that began at or after `requested` is as fresh as asked, and is taken without asking
    /// the remote again. A repository that has never fetched asks from the moment it was
    /// seen, so repositories of one remote seen together (at start-up) share one fetch
    /// whenever they sync.
    pub fn fetch_since(&mut self, requested: Instant) -> Result<Fetched> {
        let requested = requested.min(Instant::now());
        let key = FetchKey::new(
            &self.dir,
            &self.spec.url,
            &self.spec.branch,
            self.spec.create_branch,
            &self.spec.credentials,
        );
        let before = self.cached_head();
        let _lock = self.lock()?;
        self.reopen()?;
        // Only while the store still holds that head: a push may have moved the tracking ref
        // since, or the store may have been started afresh.
        if let Some(head) = shared_fetch::fetched_since(&key, requested)
            && self.cached_head() == head
        {
            tracing::debug!(url = %redact_url(&self.spec.url), branch = %self.spec.branch, head = ?head, "fetched by another repository of the same remote since asked");
            let changed = head != before;
            return Ok(Fetched { head, changed });
        }
        let began = Instant::now();
        let fetched = self.fetch_inner()?;
        shared_fetch::record(key, began, fetched.head.clone());
        Ok(fetched)
    }

    /// The remote by URL only, so no remote configuration is stored in the cache.
    fn anonymous_remote(&self) -> Result<git2::Remote<'_>> {
        self.repo
            .remote_anonymous(&self.spec.url)
            .map_err(|e| Error::Config(self.redactor.redact(e.message())))
    }

    fn fetch_inner(&self) -> Result<Fetched> {
        let before = self.cached_head();
        let state = CallState::default();
        let head = {
            let mut remote = self.anonymous_remote()?;
            let headers = self.headers();
            let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
            let refspec = format!(
                "+refs/heads/{b}:refs/remotes/origin/{b}",
                b = self.spec.branch
            );
            // A branch the store does not have yet is fetched without its history (a
            // shallow store, as Flux clones): a store started afresh, or a first sync, costs
            // the repository's size, not its age. libgit2 reads shallow stores whole (their
            // walks stop at the shallow commits) and pushes from them; it fetches with a
            // depth over the network transports only. A server without shallow support is
            // fetched from whole. Later fetches are incremental without a depth: with one,
            // libgit2 asks for the head even when the store has it, and every fetch would
            // download a pack.
            let mut depths = if self.remote.scheme == "file" || before.is_some() {
                &[0][..]
            } else {
                &[1, 0][..]
            };
            loop {
                let mut opts = FetchOptions::new();
                opts.remote_callbacks(self.callbacks(&state))
                    .proxy_options(auto_proxy())
                    .download_tags(AutotagOption::None)
                    .update_fetchhead(false)
                    .custom_headers(&header_refs)
                    .depth(depths[0]);
                match remote.fetch(
                    &[refspec.as_str()],
                    Some(&mut opts),
                    Some("gitcontroller: fetch"),
                ) {
                    Ok(()) => break,
                    Err(e) if depths.len() > 1 && shallow_unsupported(&e) => {
                        tracing::debug!(url = %redact_url(&self.spec.url), error = %e.message(), "the remote cannot send a shallow history; fetching it whole");
                        depths = &depths[1..];
                    }
                    Err(e) => return Err(self.net_error(&e, &state, "fetch")),
                }
            }
            let wanted = format!("refs/heads/{}", self.spec.branch);
            let advertised = remote
                .list()
                .map_err(|e| self.net_error(&e, &state, "fetch"))?;
            let head = advertised
                .iter()
                .find(|h| h.name() == wanted)
                .map(|h| h.oid());
            if head.is_none() && !advertised.is_empty() && !self.spec.create_branch {
                let branches = advertised
                    .iter()
                    .filter(|h| h.name().starts_with("refs/heads/"))
                    .count();
                // Forget what the store had of it: a deleted branch is not read from the cache.
                if let Ok(mut r) = self.repo.find_reference(&self.tracking_ref()) {
                    let _ = r.delete();
                }
                return Err(Error::BranchNotFound {
                    branch: self.spec.branch.clone(),
                    url: redact_url(&self.spec.url),
                    detail: format!(
                        ": the remote has {branches} other branch(es); it is not created (create_branch is off)"
                    ),
                });
            }
            head
        };
        let tracking = self.tracking_ref();
        let head = match head {
            Some(oid) => {
                // The fetch updated the tracking ref; make sure it is exactly the advertised tip.
                self.repo
                    .reference(&tracking, oid, true, "gitcontroller: fetch")
                    .map_err(|e| Error::Internal(e.message().to_string()))?;
                Some(oid.to_string())
            }
            None => {
                if let Ok(mut r) = self.repo.find_reference(&tracking) {
                    let _ = r.delete();
                }
                None
            }
        };
        let changed = head != before;
        tracing::debug!(url = %redact_url(&self.spec.url), branch = %self.spec.branch, head = ?head, changed, "fetched");
        Ok(Fetched { head, changed })
    }

    /// Reads every manifest file under `spec.path` at `commit` straight from the object
    /// database (no checkout), within [`RepoSpec::limits`]: symlinks are never followed,
    /// non-UTF-8, oversized and over-budget files are listed in `skipped` with a typed
    /// reason, a walk stopped by a budget is marked `truncated`, submodules are ignored.
    /// Exceeding a budget is never an error. A `spec.path` missing at the commit is
    /// [`Error::PathNotFound`]; one through a symlink or a file is [`Error::InvalidPath`].
    pub fn snapshot(&self, commit: &str) -> Result<Snapshot> {
        self.snapshot_with(commit, &|_, _| None)
    }

    /// [`snapshot`](Self::snapshot), leaving out the content of the files for which
    /// `known(path, blob_id)` returns `Some(size)`: the caller already has them (e.g. parsed,
    /// by blob id, with the `size` an earlier snapshot reported), so they are neither inflated
    /// nor even sized again (`content: None`). Sizes count against the budgets all the same,
    /// so the result does not depend on what the caller has.
    pub fn snapshot_with(
        &self,
        commit: &str,
        known: &dyn Fn(&str, &str) -> Option<u64>,
    ) -> Result<Snapshot> {
        let _lock = self.lock()?;
        snapshot::read(
            &self.repo,
            commit,
            &self.spec.path,
            &self.spec.limits,
            known,
        )
    }

    /// The content of a file of a snapshot taken by this repository (for one whose content
    /// was left out by [`snapshot_with`](Self::snapshot_with)). [`Error::Parse`] if it is
    /// not UTF-8; [`Error::NotFound`] if the blob is not in the store.
    pub fn read_file(&self, file: &SnapshotFile) -> Result<String> {
        let _lock = self.lock()?;
        let oid = Oid::from_str(&file.blob)
            .map_err(|_| Error::NotFound(format!("invalid blob id {:?}", file.blob)))?;
        let (size, _) = self
            .repo
            .odb()
            .and_then(|odb| odb.read_header(oid))
            .map_err(|_| Error::NotFound(format!("blob {} is not in the cache", file.blob)))?;
        if size as u64 > self.spec.limits.max_file_bytes {
            return Err(Error::Parse {
                path: file.path.to_string(),
                message: format!(
                    "{size} bytes, more than the limit of {}",
                    self.spec.limits.max_file_bytes
                ),
            });
        }
        snapshot::load_text(&self.repo, oid)?.ok_or_else(|| Error::Parse {
            path: file.path.to_string(),
            message: "not UTF-8".into(),
        })
    }

    /// Fetches, snapshots the remote head, calls `derive` for the changes, builds one commit
    /// from the object database (parent: the remote head; no working tree), and pushes it
    /// with a plain, non-force refspec.
    ///
    /// If the push is rejected because the branch moved (someone pushed in between), it
    /// fetches again and calls `derive` **again on the new head**: the change is re-derived
    /// from the current state, never replayed textually. It retries with backoff up to
    /// `spec.retry.max_attempts` times ([`Error::Conflict`] after that). Never force-pushes,
    /// so no commit of anyone else is ever dropped.
    ///
    /// `derive` returning no changes, or changes that alter nothing, makes no commit
    /// (`commit: None`). Errors of `derive` are returned as they are; ours convert with
    /// `E: From<Error>` (use [`Error`] itself, or e.g. `anyhow::Error`). On any error (remote
    /// down, rejected) nothing is lost on our side: the caller still has its desired state
    /// and calls again later.
    ///
    /// Commit message: `[prefix ]<summary naming the objects>`, then one line per change.
    ///
    /// Fails closed like [`fetch`](Self::fetch) and [`snapshot`](Self::snapshot): a missing
    /// branch on a non-empty remote ([`Error::BranchNotFound`], unless
    /// [`RepoSpec::create_branch`]) or a missing `spec.path` at the head
    /// ([`Error::PathNotFound`]) is returned before `derive` is called, so nothing is
    /// written. When the branch does not exist (an empty remote, or `create_branch`),
    /// `derive` gets [`Snapshot::empty`] and the commit creates the branch (a root commit).
    pub fn commit_and_push<E: From<Error>>(
        &mut self,
        author: &Author,
        message_prefix: Option<&str>,
        derive: &mut dyn FnMut(&Snapshot) -> std::result::Result<Vec<FileChange>, E>,
    ) -> std::result::Result<PushOutcome, E> {
        self.commit_and_push_with(author, message_prefix, &|_, _| None, derive)
    }

    /// [`commit_and_push`](Self::commit_and_push) whose snapshots for `derive` leave out
    /// the content of the files for which `known(path, blob_id)` returns their size (see
    /// [`snapshot_with`](Self::snapshot_with)). Files that a change touches are always read
    /// from the store when the commit is built.
    pub fn commit_and_push_with<E: From<Error>>(
        &mut self,
        author: &Author,
        message_prefix: Option<&str>,
        known: &dyn Fn(&str, &str) -> Option<u64>,
        derive: &mut dyn FnMut(&Snapshot) -> std::result::Result<Vec<FileChange>, E>,
    ) -> std::result::Result<PushOutcome, E> {
        self.commit_and_push_on(author, message_prefix, known, None, derive)
    }

    /// [`commit_and_push_with`](Self::commit_and_push_with) for a caller that already holds
    /// `current`, a snapshot this repository's spec (same `path` and `limits`) read with the
    /// same `known`: an attempt whose fetched head is `current.commit` hands `current` to
    /// `derive` instead of reading the head again. Any other head (the branch moved, a push
    /// lost a race to a new commit) is read as usual.
    pub fn commit_and_push_on<E: From<Error>>(
        &mut self,
        author: &Author,
        message_prefix: Option<&str>,
        known: &dyn Fn(&str, &str) -> Option<u64>,
        current: Option<&Snapshot>,
        derive: &mut dyn FnMut(&Snapshot) -> std::result::Result<Vec<FileChange>, E>,
    ) -> std::result::Result<PushOutcome, E> {
        let _lock = self.lock()?;
        self.reopen()?;
        // New objects go to an in-memory object database first: a push that fails leaves no
        // garbage behind, and a successful one is stored as one pack instead of thousands of
        // loose objects.
        let odb = self.repo.odb().map_err(internal)?;
        let mempack = odb.add_new_mempack_backend(1000).map_err(internal)?;
        let result = self.attempts(
            &odb,
            &mempack,
            author,
            message_prefix,
            known,
            current,
            derive,
        );
        let _ = mempack.reset();
        if let Ok(mut r) = self.repo.find_reference(OUTGOING_REF) {
            let _ = r.delete();
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn attempts<E: From<Error>>(
        &self,
        odb: &git2::Odb<'_>,
        mempack: &git2::Mempack<'_>,
        author: &Author,
        message_prefix: Option<&str>,
        known: &dyn Fn(&str, &str) -> Option<u64>,
        current: Option<&Snapshot>,
        derive: &mut dyn FnMut(&Snapshot) -> std::result::Result<Vec<FileChange>, E>,
    ) -> std::result::Result<PushOutcome, E> {
        let mut rejections = 0u32;
        loop {
            let fetched = self.fetch_inner()?;
            // The caller's snapshot only while the head is the commit it was read at: after a
            // lost race the head is a new commit, read here.
            let snapshot: Cow<'_, Snapshot> = match (&fetched.head, current) {
                (Some(h), Some(current)) if current.commit == *h => Cow::Borrowed(current),
                (Some(h), _) => Cow::Owned(snapshot::read(
                    &self.repo,
                    h,
                    &self.spec.path,
                    &self.spec.limits,
                    known,
                )?),
                (None, _) => Cow::Owned(Snapshot::empty()),
            };
            let changes = derive(&snapshot)?;
            let unchanged = PushOutcome {
                commit: None,
                retries: rejections,
                snapshot: None,
            };
            if changes.is_empty() {
                return Ok(unchanged);
            }
            let parent = match &fetched.head {
                Some(h) => Some(Oid::from_str(h).map_err(internal)?),
                None => None,
            };
            let Some(built) = self.build_commit(parent, &changes, author, message_prefix)? else {
                return Ok(unchanged);
            };
            let commit = built.commit;
            match self.push(commit)? {
                Pushed::Ok => {
                    // Keep our objects in the cache (one pack), then move the tracking ref.
                    match persist(
                        odb,
                        mempack,
                        &built.objects,
                        &self.repo.path().join("objects/pack"),
                    ) {
                        Ok(()) => {
                            let _ = self.repo.reference(
                                &self.tracking_ref(),
                                commit,
                                true,
                                "gitcontroller: pushed",
                            );
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "pushed, but could not store the commit in the cache; the next fetch brings it")
                        }
                    }
                    tracing::info!(
                        url = %redact_url(&self.spec.url),
                        branch = %self.spec.branch,
                        commit = %commit,
                        retries = rejections,
                        "pushed"
                    );
                    let commit = commit.to_string();
                    let snapshot =
                        snapshot::derive(snapshot, &commit, built.delta, &self.spec.limits);
                    return Ok(PushOutcome {
                        commit: Some(commit),
                        retries: rejections,
                        snapshot,
                    });
                }
                Pushed::Race(why) => {
                    mempack.reset().map_err(internal)?;
                    rejections += 1;
                    if rejections >= self.spec.retry.max_attempts {
                        return Err(Error::Conflict(format!(
                            "push to {} still rejected after {rejections} attempts: {why}",
                            self.spec.branch
                        ))
                        .into());
                    }
                    let wait = self.spec.retry.backoff(rejections);
                    tracing::info!(branch = %self.spec.branch, attempt = rejections, ?wait, reason = %why, "push lost a race; re-deriving on the new head");
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Builds blobs → trees → commit for `changes` on top of `parent`. `None` if the tree
    /// would not change.
    fn build_commit(
        &self,
        parent: Option<Oid>,
        changes: &[FileChange],
        author: &Author,
        message_prefix: Option<&str>,
    ) -> Result<Option<Built>> {
        let repo = &self.repo;
        let parent_commit = match parent {
            Some(p) => Some(repo.find_commit(p).map_err(internal)?),
            None => None,
        };
        let base_tree = match &parent_commit {
            Some(c) => c.tree().map_err(internal)?,
            None => {
                let empty = repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(internal)?;
                repo.find_tree(empty).map_err(internal)?
            }
        };
        let trees = Trees::new(repo);
        let mut modes: BTreeMap<String, FileMode> = BTreeMap::new();
        let edits = edit_files_with(&self.spec.path, changes, |path| {
            let (text, mode) =
                self.current_file(&trees, &base_tree, &join(&self.spec.path, path))?;
            modes.insert(path.to_string(), mode);
            Ok(text)
        })?;
        let mut tree_edits: Vec<(String, Edit)> = Vec::with_capacity(edits.len());
        let mut effective: Vec<(Verb, String, String)> = Vec::new();
        let mut objects: Vec<Oid> = Vec::new();
        let mut files = Vec::with_capacity(edits.len());
        for edit in edits {
            let full = join(&self.spec.path, &edit.path);
            match edit.new {
                Some(text) => {
                    let blob = repo.blob(text.as_bytes()).map_err(internal)?;
                    tree_edits.push((full, Edit::Upsert(blob, modes[&edit.path])));
                    objects.push(blob);
                    files.push((edit.path.clone(), Some((blob.to_string(), text))));
                }
                None => {
                    tree_edits.push((full, Edit::Remove));
                    files.push((edit.path.clone(), None));
                }
            }
            effective.extend(
                edit.effective
                    .into_iter()
                    .map(|(verb, subject)| (verb, subject, edit.path.clone())),
            );
        }
        let odb = repo.odb().map_err(internal)?;
        let borrowed: Vec<(&str, Edit)> =
            tree_edits.iter().map(|(p, e)| (p.as_str(), *e)).collect();
        let (tree_id, rewritten) = tree_edit::update(&trees, &odb, &base_tree, &borrowed)?;
        if tree_id == base_tree.id() {
            return Ok(None);
        }
        let tree = repo.find_tree(tree_id).map_err(internal)?;
        let mut delta = self.tree_delta(&rewritten, &mut objects);
        delta.files = files;
        let sig = Signature::now(&author.name, &author.email)
            .map_err(|e| Error::Config(format!("invalid author: {}", e.message())))?;
        let message = commit_message(message_prefix, &effective);
        let parents: Vec<&git2::Commit<'_>> = parent_commit.iter().collect();
        let commit = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .map_err(internal)?;
        objects.push(commit);
        objects.sort_unstable();
        objects.dedup();
        Ok(Some(Built {
            commit,
            objects,
            delta,
        }))
    }

    /// What the rewritten directories of a commit change under `spec.path`, for
    /// [`snapshot::derive`]; pushes the trees that are new objects to `objects`. Only the
    /// directories on the way to a changed file are rewritten, so this costs the depth of the
    /// changed paths, not the size of the repository.
    fn tree_delta(
        &self,
        rewritten: &[tree_edit::Rewritten],
        objects: &mut Vec<Oid>,
    ) -> snapshot::Delta {
        let spec_path = self.spec.path.as_str();
        let under_spec_path = |dir: &str| {
            spec_path.is_empty()
                || dir == spec_path
                || dir
                    .strip_prefix(spec_path)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        let mut delta = snapshot::Delta::default();
        for dir in rewritten {
            if !dir.changed() {
                continue;
            }
            if let Some((id, _, _)) = dir.after {
                objects.push(id);
            }
            if under_spec_path(&dir.dir) {
                if let Some((_, _, size)) = dir.after {
                    delta.largest_new_tree = delta.largest_new_tree.max(size as u64);
                }
                let after = dir.after.map_or(0, |(_, entries, _)| entries as isize);
                let before = dir.before.map_or(0, |(_, entries)| entries as isize);
                delta.entries += after - before;
            }
        }
        // Every changed path is under `spec.path`, so its directory is among the rewritten.
        delta.path_exists = spec_path.is_empty()
            || rewritten
                .iter()
                .any(|dir| dir.dir == spec_path && dir.after.is_some());
        delta
    }

    /// Current content and mode of `full` in `tree`; refuses symlinks and non-directories
    /// on the way and a directory or symlink at the path itself.
    fn current_file<'r>(
        &self,
        trees: &Trees<'r>,
        tree: &git2::Tree<'r>,
        full: &str,
    ) -> Result<(Option<String>, FileMode)> {
        let parts: Vec<&str> = full.split('/').collect();
        let mut cur = tree.clone();
        for (i, part) in parts.iter().enumerate() {
            let Some(entry) = cur.get_name(part) else {
                return Ok((None, FileMode::Blob));
            };
            let mode = entry.filemode();
            if mode == i32::from(FileMode::Link) {
                return Err(Error::invalid_path(
                    full,
                    format!("{part:?} is a symlink in the repository"),
                ));
            }
            let last = i + 1 == parts.len();
            if !last {
                if entry.kind() != Some(ObjectType::Tree) {
                    return Err(Error::Conflict(format!(
                        "{full}: {part:?} is a file, not a directory"
                    )));
                }
                let id = entry.id();
                drop(entry);
                cur = trees.get(id)?;
                continue;
            }
            if entry.kind() != Some(ObjectType::Blob) {
                return Err(Error::Conflict(format!(
                    "{full}: is a directory or submodule"
                )));
            }
            // Sized from the header first: an oversized blob is never inflated.
            let (size, _) = self
                .repo
                .odb()
                .and_then(|odb| odb.read_header(entry.id()))
                .map_err(internal)?;
            if size as u64 > self.spec.limits.max_file_bytes {
                return Err(Error::Parse {
                    path: full.to_string(),
                    message: format!(
                        "{size} bytes, more than the limit of {}",
                        self.spec.limits.max_file_bytes
                    ),
                });
            }
            let blob = self.repo.find_blob(entry.id()).map_err(internal)?;
            let text = std::str::from_utf8(blob.content()).map_err(|_| Error::Parse {
                path: full.to_string(),
                message: "not UTF-8".into(),
            })?;
            let mode = if mode == i32::from(FileMode::BlobExecutable) {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            return Ok((Some(text.to_string()), mode));
        }
        Ok((None, FileMode::Blob))
    }

    /// Pushes `commit` to the branch with a non-force refspec.
    fn push(&self, commit: Oid) -> Result<Pushed> {
        self.repo
            .reference(OUTGOING_REF, commit, true, "gitcontroller: outgoing")
            .map_err(internal)?;
        let result = self.push_outgoing();
        // The commit may only live in memory: never leave a ref to it behind (a fetch walks
        // every ref to tell the remote what we have).
        if let Ok(mut r) = self.repo.find_reference(OUTGOING_REF) {
            let _ = r.delete();
        }
        result
    }

    fn push_outgoing(&self) -> Result<Pushed> {
        let state = CallState::default();
        let mut remote = self.anonymous_remote()?;
        let headers = self.headers();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut opts = PushOptions::new();
        opts.remote_callbacks(self.callbacks(&state))
            .proxy_options(auto_proxy())
            .custom_headers(&header_refs);
        // No leading `+`: the remote only accepts a fast-forward.
        let refspec = format!("{OUTGOING_REF}:refs/heads/{}", self.spec.branch);
        let result = remote.push(&[refspec.as_str()], Some(&mut opts));
        if let Err(e) = result {
            if e.code() == ErrorCode::NotFastForward {
                return Ok(Pushed::Race(self.redactor.redact(e.message())));
            }
            let msg = e.message().to_ascii_lowercase();
            if msg.contains("non-fast-forward")
                || msg.contains("fetch first")
                || msg.contains("not present locally")
            {
                return Ok(Pushed::Race(self.redactor.redact(e.message())));
            }
            return Err(self.net_error(&e, &state, "push to"));
        }
        if let Some((refname, status)) = state.push_status.borrow().first().cloned() {
            let status = self.redactor.redact(&status);
            let lower = status.to_ascii_lowercase();
            let race = [
                "non-fast-forward",
                "fetch first",
                "stale info",
                "failed to update ref",
                "cannot lock ref",
                "failed to lock",
                "but expected",
                "incorrect old value",
                "already exists",
            ]
            .iter()
            .any(|p| lower.contains(p));
            return if race {
                Ok(Pushed::Race(format!("{refname}: {status}")))
            } else {
                Err(Error::Rejected(format!("{refname}: {status}")))
            };
        }
        Ok(Pushed::Ok)
    }
}

/// Makes libgit2 stop re-hashing every object it reads from a store (`git` itself never
/// does). Every object in a store was hashed on the way in: the indexer names what a fetch
/// brings by hashing it, and what a commit build writes is named by its hash. Re-hashing on
/// read cost a write-back at 10,000 files about 5% of its CPU: each read of a large directory
/// hashed its 0.4 MB again. libgit2's switch is process-wide; set once.
fn trust_stored_objects() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| git2::opts::strict_hash_verification(false));
}

/// Whether a fetch failed because the server does not offer shallow fetches.
fn shallow_unsupported(e: &git2::Error) -> bool {
    let message = e.message().to_ascii_lowercase();
    message.contains("shallow") && message.contains("support")
}

/// Proxy from the environment (`https_proxy`, `http_proxy`, honouring `no_proxy`), as
/// libgit2's "auto" mode reads it.
fn auto_proxy() -> ProxyOptions<'static> {
    let mut p = ProxyOptions::new();
    p.auto();
    p
}

/// Writes `objects` — the blobs, trees and commit that `build_commit` made, all in the
/// in-memory object database — into the store as one pack, and empties the in-memory
/// database. The cost follows the change, not the repository: each object is packed by itself
/// (no walk, no delta search), blobs and commits deflated at zlib's fastest level, trees stored.
/// libgit2's pack builder compresses everything at the default level, and a commit in a
/// directory of 10,000 files carries a 0.4 MB listing: that deflate was a fifth of a
/// write-back's Git work. The pack's index is written here too, from the ids libgit2 computed
/// when it made the objects: libgit2's indexer would read the pack back and hash every object
/// again, a third of the cost of storing a commit in such a directory. Both files are
/// written under temporary names and renamed, the index last: a pack becomes visible whole
/// or not at all.
fn persist(
    odb: &git2::Odb<'_>,
    mempack: &git2::Mempack<'_>,
    objects: &[Oid],
    pack_dir: &std::path::Path,
) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::Internal(format!("{what}: {e}"));
    let (pack, placed) = pack_whole(odb, objects)?;
    let index = pack_index(&pack, placed)?;
    let name = hex(&pack[pack.len() - 20..]);
    std::fs::create_dir_all(pack_dir).map_err(|e| io("creating the pack directory", e))?;
    for (extension, bytes) in [("pack", &pack), ("idx", &index)] {
        let path = pack_dir.join(format!("pack-{name}.{extension}"));
        let temporary = pack_dir.join(format!("tmp-pack-{name}.{extension}"));
        std::fs::write(&temporary, bytes).map_err(|e| io("writing a pack", e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io("storing a pack", e))?;
    }
    odb.refresh().map_err(internal)?;
    mempack.reset().map_err(internal)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where an object is in a pack: its id, offset and the CRC-32 of its bytes there.
struct Placed {
    oid: Oid,
    offset: u64,
    crc: u32,
}

/// The index (version 2) of `pack`, whose objects are `placed`.
fn pack_index(pack: &[u8], mut placed: Vec<Placed>) -> Result<Vec<u8>> {
    placed.sort_unstable_by_key(|object| object.oid);
    let mut index = Vec::with_capacity(8 + 256 * 4 + placed.len() * 28 + 40);
    index.extend_from_slice(&[0xff, b't', b'O', b'c']);
    index.extend_from_slice(&2u32.to_be_bytes());
    // How many objects have an id whose first byte is at most each value.
    let mut fanout = [0u32; 256];
    for object in &placed {
        fanout[usize::from(object.oid.as_bytes()[0])] += 1;
    }
    let mut running = 0u32;
    for count in &mut fanout {
        running += *count;
        *count = running;
        index.extend_from_slice(&count.to_be_bytes());
    }
    for object in &placed {
        index.extend_from_slice(object.oid.as_bytes());
    }
    for object in &placed {
        index.extend_from_slice(&object.crc.to_be_bytes());
    }
    // Offsets past 2 GiB go to a table of 8-byte offsets, pointed at with the high bit.
    let mut large = Vec::new();
    for object in &placed {
        let offset = match u32::try_from(object.offset) {
            Ok(small) if small < 0x8000_0000 => small,
            _ => {
                let at = u32::try_from(large.len() / 8)
                    .ok()
                    .filter(|at| *at < 0x8000_0000)
                    .ok_or_else(|| Error::Internal("a pack too large to index".into()))?;
                large.extend_from_slice(&object.offset.to_be_bytes());
                at | 0x8000_0000
            }
        };
        index.extend_from_slice(&offset.to_be_bytes());
    }
    index.extend_from_slice(&large);
    index.extend_from_slice(&pack[pack.len() - 20..]);
    let checksum = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &index);
    index.extend_from_slice(checksum.as_ref());
    Ok(index)
}

/// A pack file (version 2) holding `objects` read from `odb`, each whole (no deltas), and
/// where each is in it.
fn pack_whole(odb: &git2::Odb<'_>, objects: &[Oid]) -> Result<(Vec<u8>, Vec<Placed>)> {
    use std::io::Write as _;
    let io = |e: std::io::Error| Error::Internal(format!("packing: {e}"));
    let count = u32::try_from(objects.len())
        .map_err(|_| Error::Internal("too many objects for one pack".into()))?;
    let mut pack = Vec::new();
    let mut placed = Vec::with_capacity(objects.len());
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    for &oid in objects {
        let offset = pack.len();
        let object = odb.read(oid).map_err(internal)?;
        let type_code: u8 = match object.kind() {
            ObjectType::Commit => 1,
            ObjectType::Tree => 2,
            ObjectType::Blob => 3,
            ObjectType::Tag => 4,
            other => {
                return Err(Error::Internal(format!(
                    "cannot pack {oid}: a {other:?} object"
                )));
            }
        };
        let data = object.data();
        // Type and size: 3 bits of type and 4 of size, then 7 bits of size per byte, low
        // bits first, the high bit saying another byte follows.
        let mut size = data.len();
        let mut byte = (type_code << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            pack.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        pack.push(byte);
        // A tree is mostly object ids, which do not compress: stored, it costs a copy to
        // write and to read back (every commit reads its parent's trees) instead of a deflate
        // and an inflate of a 0.4 MB listing, for about a third more bytes in the cache.
        let level = match object.kind() {
            ObjectType::Tree => flate2::Compression::none(),
            _ => flate2::Compression::fast(),
        };
        let mut deflate = flate2::write::ZlibEncoder::new(&mut pack, level);
        deflate.write_all(data).map_err(io)?;
        deflate.finish().map_err(io)?;
        let mut crc = flate2::Crc::new();
        crc.update(&pack[offset..]);
        placed.push(Placed {
            oid,
            offset: offset as u64,
            crc: crc.sum(),
        });
    }
    let checksum = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &pack);
    pack.extend_from_slice(checksum.as_ref());
    Ok((pack, placed))
}

fn internal(e: git2::Error) -> Error {
    Error::Internal(e.message().to_string())
}

/// `[prefix ]<summary>` + blank line + one line per change (`- <verb> <subject> (<file>)`).
pub(crate) fn commit_message(prefix: Option<&str>, effective: &[(Verb, String, String)]) -> String {
    let mut subjects: Vec<&str> = Vec::new();
    for (_, s, _) in effective {
        if !subjects.contains(&s.as_str()) {
            subjects.push(s);
        }
    }
    let verbs: Vec<Verb> = effective.iter().map(|e| e.0).collect();
    let verb = if verbs.iter().all(|v| *v == Verb::Add) {
        "Add"
    } else if verbs.iter().all(|v| *v == Verb::Remove) {
        "Remove"
    } else {
        "Update"
    };
    let prefix = prefix
        .map(|p| p.lines().next().unwrap_or("").trim())
        .filter(|p| !p.is_empty());
    let lead = match prefix {
        Some(p) => format!("{p} {verb}"),
        None => verb.to_string(),
    };
    let summary = if subjects.len() == 1 {
        format!("{lead} {}", subjects[0])
    } else {
        let mut s = format!("{lead} {} objects: ", subjects.len());
        let mut shown = 0;
        for (i, subj) in subjects.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            if i > 0 && s.len() + sep.len() + subj.len() > 72 {
                break;
            }
            s.push_str(sep);
            s.push_str(subj);
            shown += 1;
        }
        if shown < subjects.len() {
            s.push_str(&format!(" and {} more", subjects.len() - shown));
        }
        s
    };
    let mut msg = summary;
    msg.push_str("\n\n");
    for (v, subject, file) in effective {
        msg.push_str(&format!("- {} {subject} ({file})\n", v.as_str()));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_built_in_memory_are_stored_as_one_pack_the_store_reads() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let mempack = odb.add_new_mempack_backend(1000).unwrap();
        // Sizes around the pack header's boundaries (4 bits, then 7 per byte), and an empty blob.
        let blobs: Vec<Oid> = [0usize, 15, 16, 2047, 2048, 300_000]
            .iter()
            .map(|&n| {
                let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
                repo.blob(text.as_bytes()).unwrap()
            })
            .collect();
        let mut builder = repo.treebuilder(None).unwrap();
        for (i, blob) in blobs.iter().enumerate() {
            builder
                .insert(format!("f{i}.yaml"), *blob, i32::from(FileMode::Blob))
                .unwrap();
        }
        let tree = repo.find_tree(builder.write().unwrap()).unwrap();
        let sig = Signature::now("t", "t@example.com").unwrap();
        let commit = repo.commit(None, &sig, &sig, "m", &tree, &[]).unwrap();
        let mut objects = blobs.clone();
        objects.extend([tree.id(), commit]);
        objects.sort_unstable();
        objects.dedup();
        persist(&odb, &mempack, &objects, &dir.path().join("objects/pack")).unwrap();

        let packs: Vec<_> = std::fs::read_dir(dir.path().join("objects/pack"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .collect();
        assert_eq!(packs.len(), 1, "one pack");
        // Git itself checks the pack and the index written for it: checksums, each object's
        // CRC and id.
        let verified = std::process::Command::new("git")
            .arg("verify-pack")
            .arg(packs[0].path().with_extension("idx"))
            .output()
            .expect("git runs");
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        // The store that wrote it reads it (the in-memory objects are gone).
        for id in &objects {
            assert_eq!(odb.read(*id).unwrap().id(), *id);
        }
        let stored = git2::Repository::open_bare(dir.path()).unwrap();
        let commit = stored.find_commit(commit).unwrap();
        let tree = commit.tree().unwrap();
        assert_eq!(tree.len(), 6);
        for (i, blob) in blobs.iter().enumerate() {
            let entry = tree.get_name(&format!("f{i}.yaml")).unwrap();
            assert_eq!(entry.id(), *blob);
            let content = stored.find_blob(*blob).unwrap();
            assert_eq!(
                Oid::hash_object(ObjectType::Blob, content.content()).unwrap(),
                *blob
            );
        }
    }

    #[test]
    fn a_server_without_shallow_fetches_is_told_from_other_failures() {
        // libgit2's words when the server does not advertise the capability.
        let unsupported = git2::Error::from_str("server doesn't support shallow");
        assert!(shallow_unsupported(&unsupported));
        for other in [
            "unexpected EOF",
            "remote authentication required but no callback set",
            "object not found - no match for id (shallow)",
        ] {
            assert!(
                !shallow_unsupported(&git2::Error::from_str(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn messages() {
        let one = vec![(
            Verb::Update,
            "apps/Deployment default/web".to_string(),
            "web.yaml".to_string(),
        )];
        assert_eq!(
            commit_message(Some("[gitops]"), &one),
            "[gitops] Update apps/Deployment default/web\n\n- update apps/Deployment default/web (web.yaml)\n"
        );
        let many: Vec<_> = (0..10)
            .map(|i| {
                (
                    Verb::Add,
                    format!("v1/ConfigMap default/cm-{i}"),
                    format!("cm-{i}.yaml"),
                )
            })
            .collect();
        let m = commit_message(None, &many);
        let first = m.lines().next().unwrap();
        assert!(
            first.starts_with("Add 10 objects: v1/ConfigMap default/cm-0, "),
            "{first}"
        );
        assert!(first.ends_with(" more"), "{first}");
        assert_eq!(m.lines().count(), 12);
    }

    #[test]
    fn spec_debug_hides_secrets() {
        let spec = RepoSpec::new("https://u:hunter2@example.com/r.git", "main", "/tmp/c")
            .with_credentials(Credentials::basic("u", "s3cr3t-pw"));
        let dbg = format!("{spec:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("s3cr3t-pw"),
            "{dbg}"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default();
        assert!(p.backoff(1) <= Duration::from_millis(100));
        assert!(p.backoff(3) >= Duration::from_millis(200));
        assert!(p.backoff(30) <= Duration::from_secs(5));
    }
}
