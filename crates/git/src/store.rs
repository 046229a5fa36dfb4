//! The on-disk object stores: one bare repository per remote (normalized URL) shared by every
//! branch and path read from it, a lock per store, and removal of stores nobody uses.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// More pack files than this in a store: start over with a fresh store (libgit2 does not
/// repack; every fetch and every push adds a pack).
const MAX_PACKS: usize = 128;

/// The tracking refs of the branches read from a store: `refs/remotes/origin/<branch>`.
pub(crate) const TRACKING_PREFIX: &str = "refs/remotes/origin/";

/// How many [`Repository`](crate::Repository) values of this process have each store open.
/// A store is only reset or removed while none has.
static OPEN: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// The URL as it identifies a repository: scheme and host in lower case, without user-info
/// (user names and passwords do not change which repository it is), without the scheme's
/// default port, without trailing slashes. Path and query are kept as written.
pub(crate) fn normalize_url(url: &str) -> String {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let hostport = authority
            .rsplit_once('@')
            .map_or(authority, |(_, hp)| hp)
            .to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "ssh" | "git+ssh" | "ssh+git" => ":22",
            "http" => ":80",
            "https" => ":443",
            "git" => ":9418",
            _ => "",
        };
        let hostport = match hostport.strip_suffix(default_port) {
            Some(h) if !default_port.is_empty() => h.to_string(),
            _ => hostport,
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        let mut out = format!("{scheme}://{hostport}{}", path.trim_end_matches('/'));
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    } else if url.starts_with('/') {
        format!("file://{}", url.trim_end_matches('/'))
    } else if let Some((userhost, path)) = url.split_once(':') {
        let host = userhost.rsplit_once('@').map_or(userhost, |(_, h)| h);
        format!(
            "scp://{}:{}",
            host.to_ascii_lowercase(),
            path.trim_end_matches('/')
        )
    } else {
        url.to_string()
    }
}

/// `cache_dir/<first 96 bits of sha256(normalized url)>` (add `.git` / `.lock`).
pub(crate) fn store_stem(cache_dir: &Path, url: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, normalize_url(url).as_bytes());
    let name: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    cache_dir.join(name)
}

fn is_store_name(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".git")?;
    (stem.len() == 24 && stem.bytes().all(|b| b.is_ascii_hexdigit())).then_some(stem)
}

/// An exclusive lock on one store, held for the duration of one operation (`open`, `fetch`,
/// `snapshot`, `commit_and_push`, `gc`). It is an advisory `flock` on `<store>.lock`, so it
/// also excludes other processes sharing the cache directory. Released on drop.
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn lock_file(store: &Path) -> Result<File> {
        let path = store.with_extension("lock");
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Config(format!("cannot open lock {}: {e}", path.display())))
    }

    /// Waits for the lock.
    pub(crate) fn acquire(store: &Path) -> Result<Self> {
        let file = Self::lock_file(store)?;
        file.lock()
            .map_err(|e| Error::Internal(format!("cannot lock {}: {e}", store.display())))?;
        Ok(Self { _file: file })
    }

    /// The lock if it is free now.
    fn try_acquire(store: &Path) -> Result<Option<Self>> {
        let file = Self::lock_file(store)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::Internal(format!(
                "cannot lock {}: {e}",
                store.display()
            ))),
        }
    }
}

/// Counts a [`Repository`](crate::Repository) as having `store` open until dropped.
pub(crate) struct OpenStore {
    path: PathBuf,
}

impl OpenStore {
    /// Registers `store` as open; returns how many others had it open before.
    pub(crate) fn register(store: &Path) -> (Self, usize) {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        let count = open
            .get_or_insert_with(HashMap::new)
            .entry(store.to_path_buf())
            .or_insert(0);
        let before = *count;
        *count += 1;
        (
            Self {
                path: store.to_path_buf(),
            },
            before,
        )
    }
}

impl Drop for OpenStore {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = open.as_mut()
            && let Some(count) = map.get_mut(&self.path)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.path);
            }
        }
    }
}

fn open_elsewhere(store: &Path) -> bool {
    let open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.as_ref()
        .is_some_and(|m| m.get(store).is_some_and(|c| *c > 0))
}

/// Opens the store at `dir` (a bare repository) as it is, without searching its parents.
/// Not `Repository::open_bare`: that leaves out the store's shallow commits (libgit2 loads
/// them in its other ways of opening), and a walk from one would look for its parents, which
/// a shallow store does not have.
pub(crate) fn open_store(dir: &Path) -> std::result::Result<git2::Repository, git2::Error> {
    git2::Repository::open_ext(
        dir,
        git2::RepositoryOpenFlags::NO_SEARCH | git2::RepositoryOpenFlags::BARE,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
}

/// Opens the store (a bare repository), creating it if needed. An unusable store, or one
/// with too many packs that no other `Repository` of this process has open, is started
/// afresh (it is only a cache). Call with the store's lock held.
pub(crate) fn open_or_init(dir: &Path, others_open: usize) -> Result<git2::Repository> {
    if dir.exists() {
        match open_store(dir) {
            Ok(r) => {
                let packs = std::fs::read_dir(dir.join("objects/pack"))
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                            .count()
                    })
                    .unwrap_or(0);
                if packs <= MAX_PACKS || others_open > 0 {
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

/// What [`gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Store directories removed (no repository in use reads their remote).
    pub removed_stores: Vec<PathBuf>,
    /// Branches whose tracking ref was removed from a store still in use, as
    /// `(store, branch)`.
    pub removed_branches: Vec<(PathBuf, String)>,
    /// Stores left alone because an operation (of this or another process) held them.
    pub busy: Vec<PathBuf>,
}

/// Removes from `cache_dir` what no repository in `in_use` (URL, branch pairs — every
/// repository the caller still syncs, with the same cache directory) needs: store
/// directories of other remotes, and tracking refs of other branches in the stores that
/// stay. Only entries named like stores (`<24 hex digits>.git`) are touched; their
/// `.lock` files stay (removing a lock file someone waits on would let two operations in).
/// Stores locked by a running operation, or open in a `Repository` of this process, are
/// skipped (`busy`) and collected by a later call. Objects only reachable from a removed
/// branch stay in a kept store until it is started afresh (after 128 packs).
pub fn gc<U: AsRef<str>, B: AsRef<str>>(
    cache_dir: &Path,
    in_use: impl IntoIterator<Item = (U, B)>,
) -> Result<GcReport> {
    let mut wanted: HashMap<PathBuf, BTreeSet<String>> = HashMap::new();
    for (url, branch) in in_use {
        wanted
            .entry(store_stem(cache_dir, url.as_ref()).with_extension("git"))
            .or_default()
            .insert(branch.as_ref().to_string());
    }
    let mut report = GcReport::default();
    let entries = match std::fs::read_dir(cache_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => {
            return Err(Error::Internal(format!(
                "cannot list cache dir {}: {e}",
                cache_dir.display()
            )));
        }
    };
    let mut stores: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| e.file_name().to_str().and_then(is_store_name).is_some())
        .map(|e| e.path())
        .collect();
    stores.sort();
    for store in stores {
        let branches = wanted.get(&store);
        let Some(_lock) = StoreLock::try_acquire(&store)? else {
            report.busy.push(store);
            continue;
        };
        match branches {
            None => {
                if open_elsewhere(&store) {
                    report.busy.push(store);
                    continue;
                }
                std::fs::remove_dir_all(&store).map_err(|e| {
                    Error::Internal(format!("cannot remove {}: {e}", store.display()))
                })?;
                tracing::info!(cache = %store.display(), "removed the cache of a remote no repository uses");
                report.removed_stores.push(store);
            }
            Some(branches) => {
                let Ok(repo) = git2::Repository::open_bare(&store) else {
                    continue;
                };
                let names: Vec<String> = repo
                    .references_glob(&format!("{TRACKING_PREFIX}*"))
                    .map(|mut refs| {
                        refs.names()
                            .filter_map(|n| n.ok().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                for name in names {
                    let branch = &name[TRACKING_PREFIX.len()..];
                    if branches.contains(branch) {
                        continue;
                    }
                    if let Ok(mut r) = repo.find_reference(&name) {
                        r.delete()
                            .map_err(|e| Error::Internal(e.message().to_string()))?;
                        report
                            .removed_branches
                            .push((store.clone(), branch.to_string()));
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Removes the store of `url` from `cache_dir` (every branch of it), waiting for a running
/// operation on it to finish. `Ok(false)` if there was none. Refused
/// ([`Error::Conflict`]) while a `Repository` of this process has it open. Use [`gc`] to
/// remove everything not in use in one call.
pub fn remove(cache_dir: &Path, url: &str) -> Result<bool> {
    let store = store_stem(cache_dir, url).with_extension("git");
    if !store.exists() {
        return Ok(false);
    }
    let _lock = StoreLock::acquire(&store)?;
    if open_elsewhere(&store) {
        return Err(Error::Conflict(format!(
            "cache {} is open in another repository",
            store.display()
        )));
    }
    std::fs::remove_dir_all(&store)
        .map_err(|e| Error::Internal(format!("cannot remove {}: {e}", store.display())))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_one_repository_share_a_store() {
        let c = Path::new("/c");
        let a = store_stem(c, "https://alice:pw@Example.COM:443/org/repo.git/");
        assert_eq!(a, store_stem(c, "https://example.com/org/repo.git"));
        assert_eq!(a, store_stem(c, "https://bob@example.com/org/repo.git"));
        assert_ne!(a, store_stem(c, "https://example.com:8443/org/repo.git"));
        assert_ne!(a, store_stem(c, "https://example.com/org/other.git"));
        assert_ne!(a, store_stem(c, "http://example.com/org/repo.git"));
        assert_eq!(
            normalize_url("git@GitHub.com:org/r.git"),
            "scp://github.com:org/r.git"
        );
        assert_eq!(normalize_url("ssh://git@h:22/r"), "ssh://h/r");
        assert_eq!(normalize_url("/srv/git/r.git/"), "file:///srv/git/r.git");
        assert!(is_store_name("0123456789abcdef01234567.git").is_some());
        assert!(is_store_name("0123456789abcdef01234567.lock").is_none());
        assert!(is_store_name("default").is_none());
    }
}
