//! The repository: cache directory, fetch, snapshot, commit building and safe push.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode,
    FetchOptions, FileMode, ObjectType, Oid, ProxyOptions, PushOptions, RemoteCallbacks, Signature,
    TreeWalkMode, TreeWalkResult,
};

use crate::change::{FileChange, FileEdit, Verb, edit_files_with};
use crate::credentials::{
    Auth, Credentials, KnownHosts, Redactor, RemoteUrl, redact_url_userinfo, verify_with_ca,
};
use crate::error::{Error, Result};
use crate::paths::{is_manifest_path, join, normalize_relative};

/// Files larger than this are not read into snapshots.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

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
    /// Directory for per-repository caches (one bare repository per URL + branch inside it).
    /// Keep it across reconciles (and ideally restarts) so fetches are incremental.
    pub cache_dir: PathBuf,
    /// How to authenticate (and which CA to trust).
    pub credentials: Credentials,
    /// Retries of a push that lost a race.
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for RepoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSpec")
            .field("url", &redact_url_userinfo(&self.url))
            .field("branch", &self.branch)
            .field("path", &self.path)
            .field("cache_dir", &self.cache_dir)
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .finish()
    }
}

impl RepoSpec {
    /// A spec for `url`/`branch` at the repository root, no credentials, default retries.
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
        }
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
    /// Commit id at the tip of the branch, `None` if the remote has no such branch (an
    /// empty repository, or a branch that does not exist yet; pushing creates it).
    pub head: Option<String>,
    /// Whether the head differs from the one the cache had before this fetch (true on the
    /// first fetch of an existing branch into a new cache).
    pub changed: bool,
}

/// The manifests under `spec.path` at one commit, read from the object database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The commit (empty for [`Snapshot::empty`]).
    pub commit: String,
    /// Every `.yaml`, `.yml` and `.json` file (any letter case) under `spec.path`, sorted by
    /// path.
    pub files: Vec<SnapshotFile>,
    /// Manifest files that were not read (symlinks, non-UTF-8, too large).
    pub skipped: Vec<SkippedFile>,
}

impl Snapshot {
    /// The snapshot of a branch that does not exist yet (no files).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The file at `path` (relative to `spec.path`).
    pub fn get(&self, path: &str) -> Option<&SnapshotFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Applies `changes` to the files of `snapshot` and returns every file whose text changes, in
/// the order the changes first name them. Pure: the same edits
/// [`Repository::commit_and_push`](crate::Repository::commit_and_push) makes for a commit
/// whose parent is `snapshot`'s commit, so a preview (`git-controller diff`) shows the exact
/// text that would be committed.
///
/// A change to a file that is in the tree but was left out of the snapshot (see
/// [`Snapshot::skipped`]) fails as the commit would.
pub fn edit_files(snapshot: &Snapshot, changes: &[FileChange]) -> Result<Vec<FileEdit>> {
    edit_files_with("", changes, |path| {
        if let Some(file) = snapshot.get(path) {
            return Ok(Some(file.content.clone()));
        }
        if snapshot.skipped.iter().any(|s| s.path == path) {
            return Err(Error::Parse {
                path: path.to_string(),
                message: "the file was not read into the snapshot, so it cannot be edited".into(),
            });
        }
        Ok(None)
    })
}

/// One manifest file of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Path relative to `spec.path`, `/`-separated.
    pub path: String,
    /// Blob id (changes exactly when the content changes).
    pub blob: String,
    /// The content (UTF-8).
    pub content: String,
}

/// A manifest file left out of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Path relative to `spec.path`.
    pub path: String,
    /// Why (`symlink`, `not UTF-8`, `too large`).
    pub reason: String,
}

/// Result of [`Repository::commit_and_push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The commit pushed; `None` when there was nothing to change (no commit was made).
    pub commit: Option<String>,
    /// How many times a push was rejected because the branch moved (each followed by a
    /// fetch and a new `derive`).
    pub retries: u32,
}

/// A repository: a bare cache of one branch of one remote, plus the remote's credentials.
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
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("url", &redact_url_userinfo(&self.spec.url))
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

const OUTGOING_REF: &str = "refs/gitcontroller/outgoing";
/// More pack files than this in the cache: start over with a fresh cache (libgit2 does not
/// repack; every fetch adds a pack).
const MAX_PACKS: usize = 128;

impl Repository {
    /// Validates the spec and opens (or creates) the cache directory
    /// `cache_dir/<hash of url and branch>.git`, a bare repository without remotes or working
    /// tree. Nothing is fetched yet.
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
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{}\n{}", spec.url, spec.branch).as_bytes(),
        );
        let name: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = spec.cache_dir.join(format!("{name}.git"));
        std::fs::create_dir_all(&spec.cache_dir).map_err(|e| {
            Error::Config(format!(
                "cannot create cache dir {}: {e}",
                spec.cache_dir.display()
            ))
        })?;
        let repo = open_or_init(&dir)?;
        // A crash mid-push may leave this ref pointing at an object that only lived in memory.
        if let Ok(mut r) = repo.find_reference(OUTGOING_REF) {
            let _ = r.delete();
        }
        let redactor = Redactor::new(&spec.credentials);
        Ok(Self {
            spec,
            remote,
            repo,
            dir,
            redactor,
            known_hosts,
        })
    }

    /// The (normalized) spec.
    pub fn spec(&self) -> &RepoSpec {
        &self.spec
    }

    /// The cache directory (a bare repository).
    pub fn cache_path(&self) -> &Path {
        &self.dir
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.spec.branch)
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
        let url = redact_url_userinfo(&self.spec.url);
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

    /// Fetches the branch into the cache (incremental after the first fetch; only this
    /// branch, no tags) and returns its head.
    pub fn fetch(&mut self) -> Result<Fetched> {
        self.fetch_inner()
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
            let mut opts = FetchOptions::new();
            opts.remote_callbacks(self.callbacks(&state))
                .proxy_options(auto_proxy())
                .download_tags(AutotagOption::None)
                .update_fetchhead(false)
                .custom_headers(&header_refs);
            let refspec = format!(
                "+refs/heads/{b}:refs/remotes/origin/{b}",
                b = self.spec.branch
            );
            remote
                .fetch(
                    &[refspec.as_str()],
                    Some(&mut opts),
                    Some("gitcontroller: fetch"),
                )
                .map_err(|e| self.net_error(&e, &state, "fetch"))?;
            let wanted = format!("refs/heads/{}", self.spec.branch);
            remote
                .list()
                .map_err(|e| self.net_error(&e, &state, "fetch"))?
                .iter()
                .find(|h| h.name() == wanted)
                .map(|h| h.oid())
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
        tracing::debug!(url = %redact_url_userinfo(&self.spec.url), branch = %self.spec.branch, head = ?head, changed, "fetched");
        Ok(Fetched { head, changed })
    }

    /// Reads every manifest file under `spec.path` at `commit` straight from the object
    /// database (no checkout). Symlinks are never followed (listed in `skipped`), non-UTF-8
    /// and oversized files are skipped with a warning, submodules ignored. A missing
    /// `spec.path` yields an empty snapshot; a `spec.path` through a symlink or a file is an
    /// [`Error::InvalidPath`].
    pub fn snapshot(&self, commit: &str) -> Result<Snapshot> {
        let oid = Oid::from_str(commit)
            .map_err(|_| Error::NotFound(format!("invalid commit id {commit:?}")))?;
        let commit_obj = self.repo.find_commit(oid).map_err(|_| {
            Error::NotFound(format!("commit {commit} is not in the cache (fetch first)"))
        })?;
        let root = commit_obj.tree().map_err(internal)?;
        let mut snapshot = Snapshot {
            commit: commit.to_string(),
            ..Snapshot::default()
        };
        let Some(tree) = self.subtree(&root, &self.spec.path)? else {
            return Ok(snapshot);
        };
        let mut entries: Vec<(String, Oid, i32)> = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Tree) {
                return TreeWalkResult::Ok;
            }
            if let Ok(name) = entry.name() {
                entries.push((format!("{dir}{name}"), entry.id(), entry.filemode()));
            }
            TreeWalkResult::Ok
        })
        .map_err(internal)?;
        for (path, oid, mode) in entries {
            if !is_manifest_path(&path) {
                continue;
            }
            if mode == i32::from(FileMode::Link) {
                tracing::warn!(path, "skipping symlink (symlinks are never followed)");
                snapshot.skipped.push(SkippedFile {
                    path,
                    reason: "symlink".into(),
                });
                continue;
            }
            if mode != i32::from(FileMode::Blob) && mode != i32::from(FileMode::BlobExecutable) {
                continue; // submodule
            }
            let blob = self.repo.find_blob(oid).map_err(internal)?;
            if blob.size() > MAX_FILE_BYTES {
                tracing::warn!(path, size = blob.size(), "skipping oversized file");
                snapshot.skipped.push(SkippedFile {
                    path,
                    reason: "too large".into(),
                });
                continue;
            }
            match std::str::from_utf8(blob.content()) {
                Ok(s) => snapshot.files.push(SnapshotFile {
                    path,
                    blob: oid.to_string(),
                    content: s.to_string(),
                }),
                Err(_) => {
                    tracing::warn!(path, "skipping non-UTF-8 file");
                    snapshot.skipped.push(SkippedFile {
                        path,
                        reason: "not UTF-8".into(),
                    });
                }
            }
        }
        snapshot.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(snapshot)
    }

    /// The tree at `path` under `root` (None if absent); refuses symlinks and files on the
    /// way.
    fn subtree<'r>(&'r self, root: &git2::Tree<'r>, path: &str) -> Result<Option<git2::Tree<'r>>> {
        let mut tree = root.clone();
        if path.is_empty() {
            return Ok(Some(tree));
        }
        for part in path.split('/') {
            let Some(entry) = tree.get_name(part) else {
                return Ok(None);
            };
            if entry.filemode() == i32::from(FileMode::Link) {
                return Err(Error::invalid_path(path, format!("{part:?} is a symlink")));
            }
            if entry.kind() != Some(ObjectType::Tree) {
                return Err(Error::invalid_path(
                    path,
                    format!("{part:?} is not a directory"),
                ));
            }
            let id = entry.id();
            drop(entry);
            tree = self.repo.find_tree(id).map_err(internal)?;
        }
        Ok(Some(tree))
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
    pub fn commit_and_push<E: From<Error>>(
        &mut self,
        author: &Author,
        message_prefix: Option<&str>,
        derive: &mut dyn FnMut(&Snapshot) -> std::result::Result<Vec<FileChange>, E>,
    ) -> std::result::Result<PushOutcome, E> {
        // New objects go to an in-memory object database first: a push that fails leaves no
        // garbage behind, and a successful one is stored as one pack instead of thousands of
        // loose objects.
        let odb = self.repo.odb().map_err(internal)?;
        let mempack = odb.add_new_mempack_backend(1000).map_err(internal)?;
        let result = self.attempts(&odb, &mempack, author, message_prefix, derive);
        let _ = mempack.reset();
        if let Ok(mut r) = self.repo.find_reference(OUTGOING_REF) {
            let _ = r.delete();
        }
        result
    }

    fn attempts<E: From<Error>>(
        &self,
        odb: &git2::Odb<'_>,
        mempack: &git2::Mempack<'_>,
        author: &Author,
        message_prefix: Option<&str>,
        derive: &mut dyn FnMut(&Snapshot) -> std::result::Result<Vec<FileChange>, E>,
    ) -> std::result::Result<PushOutcome, E> {
        let mut rejections = 0u32;
        loop {
            let fetched = self.fetch_inner()?;
            let snapshot = match &fetched.head {
                Some(h) => self.snapshot(h)?,
                None => Snapshot::empty(),
            };
            let changes = derive(&snapshot)?;
            if changes.is_empty() {
                return Ok(PushOutcome {
                    commit: None,
                    retries: rejections,
                });
            }
            let parent = match &fetched.head {
                Some(h) => Some(Oid::from_str(h).map_err(internal)?),
                None => None,
            };
            let Some(commit) = self.build_commit(parent, &changes, author, message_prefix)? else {
                return Ok(PushOutcome {
                    commit: None,
                    retries: rejections,
                });
            };
            match self.push(commit)? {
                Pushed::Ok => {
                    // Keep our objects in the cache (one pack), then move the tracking ref.
                    match persist(&self.repo, odb, mempack) {
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
                        url = %redact_url_userinfo(&self.spec.url),
                        branch = %self.spec.branch,
                        commit = %commit,
                        retries = rejections,
                        "pushed"
                    );
                    return Ok(PushOutcome {
                        commit: Some(commit.to_string()),
                        retries: rejections,
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
    ) -> Result<Option<Oid>> {
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
        let mut modes: BTreeMap<String, FileMode> = BTreeMap::new();
        let edits = edit_files_with(&self.spec.path, changes, |path| {
            let (text, mode) = self.current_file(&base_tree, &join(&self.spec.path, path))?;
            modes.insert(path.to_string(), mode);
            Ok(text)
        })?;
        let mut builder = git2::build::TreeUpdateBuilder::new();
        let mut effective: Vec<(Verb, String, String)> = Vec::new();
        for edit in edits {
            let full = join(&self.spec.path, &edit.path);
            match &edit.new {
                Some(text) => {
                    let blob = repo.blob(text.as_bytes()).map_err(internal)?;
                    builder.upsert(full.as_str(), blob, modes[&edit.path]);
                }
                None => {
                    builder.remove(full.as_str());
                }
            }
            effective.extend(
                edit.effective
                    .into_iter()
                    .map(|(verb, subject)| (verb, subject, edit.path.clone())),
            );
        }
        let tree_id = builder.create_updated(repo, &base_tree).map_err(internal)?;
        if tree_id == base_tree.id() {
            return Ok(None);
        }
        let tree = repo.find_tree(tree_id).map_err(internal)?;
        let sig = Signature::now(&author.name, &author.email)
            .map_err(|e| Error::Config(format!("invalid author: {}", e.message())))?;
        let message = commit_message(message_prefix, &effective);
        let parents: Vec<&git2::Commit<'_>> = parent_commit.iter().collect();
        let oid = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .map_err(internal)?;
        Ok(Some(oid))
    }

    /// Current content and mode of `full` in `tree`; refuses symlinks and non-directories
    /// on the way and a directory or symlink at the path itself.
    fn current_file(
        &self,
        tree: &git2::Tree<'_>,
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
                cur = self.repo.find_tree(id).map_err(internal)?;
                continue;
            }
            if entry.kind() != Some(ObjectType::Blob) {
                return Err(Error::Conflict(format!(
                    "{full}: is a directory or submodule"
                )));
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

/// Proxy from the environment (`https_proxy`, `http_proxy`, honouring `no_proxy`), as
/// libgit2's "auto" mode reads it.
fn auto_proxy() -> ProxyOptions<'static> {
    let mut p = ProxyOptions::new();
    p.auto();
    p
}

/// Writes the objects of the in-memory object database into the cache as one pack and empties
/// it.
fn persist(
    repo: &git2::Repository,
    odb: &git2::Odb<'_>,
    mempack: &git2::Mempack<'_>,
) -> Result<()> {
    use std::io::Write as _;
    let mut buf = git2::Buf::new();
    mempack.dump(repo, &mut buf).map_err(internal)?;
    let mut writer = odb.packwriter().map_err(internal)?;
    writer
        .write_all(&buf)
        .map_err(|e| Error::Internal(format!("writing pack: {e}")))?;
    writer.commit().map_err(internal)?;
    mempack.reset().map_err(internal)?;
    Ok(())
}

fn internal(e: git2::Error) -> Error {
    Error::Internal(e.message().to_string())
}

fn open_or_init(dir: &Path) -> Result<git2::Repository> {
    if dir.exists() {
        match git2::Repository::open_bare(dir) {
            Ok(r) => {
                let packs = std::fs::read_dir(dir.join("objects/pack"))
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                            .count()
                    })
                    .unwrap_or(0);
                if packs <= MAX_PACKS {
                    return Ok(r);
                }
                tracing::info!(cache = %dir.display(), packs, "cache has too many packs; starting a fresh cache");
            }
            Err(e) => {
                tracing::warn!(cache = %dir.display(), error = %e.message(), "cache unusable; starting a fresh cache");
            }
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot reset cache {}: {e}", dir.display())))?;
    }
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true)
        .no_reinit(false)
        .mkpath(true)
        .initial_head("gitcontroller-cache");
    git2::Repository::init_opts(dir, &opts).map_err(|e| {
        Error::Config(format!(
            "cannot create cache {}: {}",
            dir.display(),
            e.message()
        ))
    })
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
