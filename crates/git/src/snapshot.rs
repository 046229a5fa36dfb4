//! Reading the manifests under `spec.path` at a commit: a bounded walk of the object database
//! with input budgets checked while walking and before loading (object sizes come from the
//! object header, so an oversized blob is never inflated).

use std::sync::Arc;

use git2::{FileMode, ObjectType, Oid};

use crate::error::{Error, Result};
use crate::files::SnapshotFiles;
use crate::paths::is_manifest_path;

/// Input budgets of one snapshot. Exceeding one is never an error: the snapshot is marked
/// incomplete ([`Snapshot::is_complete`]) and says which budget stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tree entries (files, directories, symlinks, submodules) walked under
    /// `spec.path`. The walk stops at this count ([`Truncated`] with [`Budget::Paths`]).
    /// Default 20,000.
    pub max_paths: usize,
    /// Most bytes of manifests in one snapshot (the sum of the sizes of the files listed,
    /// loaded or not). Files past it are listed in `skipped` as
    /// [`SkipReason::BudgetExceeded`]. Default 64 MiB.
    pub max_total_bytes: u64,
    /// Largest manifest file read, from the object header (the blob is not inflated);
    /// larger ones are skipped as [`SkipReason::TooLarge`]. Also the largest tree object
    /// (directory listing) read ([`Budget::TreeBytes`]). Default 16 MiB.
    pub max_file_bytes: u64,
    /// Deepest directory nesting below `spec.path` entered ([`Budget::Depth`]). Default 64.
    pub max_depth: usize,
}

/// Default of [`Limits::max_file_bytes`].
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

impl Default for Limits {
    /// 20,000 paths, 64 MiB in total, 16 MiB per file, 64 levels.
    fn default() -> Self {
        Self {
            max_paths: 20_000,
            max_total_bytes: 64 * 1024 * 1024,
            max_file_bytes: MAX_FILE_BYTES as u64,
            max_depth: 64,
        }
    }
}

/// Why a manifest file was left out of a [`Snapshot`]. Aligned with the planner's skip
/// reasons: any skipped file makes the snapshot incomplete, which must hold back prune and
/// new files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// A symlink (never followed).
    Symlink,
    /// Content (or file name) that is not UTF-8.
    NotUtf8,
    /// Larger than [`Limits::max_file_bytes`].
    TooLarge,
    /// Past [`Limits::max_total_bytes`].
    BudgetExceeded,
}

impl SkipReason {
    /// A short fixed word: `symlink`, `not-utf8`, `too-large`, `budget-exceeded`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::Symlink => "symlink",
            SkipReason::NotUtf8 => "not-utf8",
            SkipReason::TooLarge => "too-large",
            SkipReason::BudgetExceeded => "budget-exceeded",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A budget that stopped a walk before it saw every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// [`Limits::max_paths`].
    Paths,
    /// [`Limits::max_depth`].
    Depth,
    /// A directory listing (tree object) larger than [`Limits::max_file_bytes`].
    TreeBytes,
}

impl Budget {
    /// A short fixed word: `paths`, `depth`, `tree-bytes`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Budget::Paths => "paths",
            Budget::Depth => "depth",
            Budget::TreeBytes => "tree-bytes",
        }
    }
}

/// The walk did not see every path under `spec.path`: files it did not reach are neither in
/// `files` nor in `skipped` (so they cannot be counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// Which budget stopped it (the first one hit).
    pub budget: Budget,
    /// The limit of that budget.
    pub limit: u64,
    /// Where: the directory (relative to `spec.path`) that was not (fully) walked.
    pub at: String,
}

/// The manifests under `spec.path` at one commit, read from the object database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The commit (empty for [`Snapshot::empty`]).
    pub commit: String,
    /// Whether `spec.path` exists at the commit (a directory, possibly holding no
    /// manifest: a legitimate empty source). `false` only for [`Snapshot::empty`] (a branch
    /// with no commit yet): reading an existing commit without the path is
    /// [`Error::PathNotFound`].
    pub path_exists: bool,
    /// Every `.yaml`, `.yml` and `.json` file (any letter case) under `spec.path` that was
    /// read, sorted by path.
    pub files: SnapshotFiles,
    /// Manifest files that were seen but not read, sorted by path.
    pub skipped: Vec<SkippedFile>,
    /// Set when a budget stopped the walk: there are files that were not even listed.
    pub truncated: Option<Truncated>,
    /// How many tree entries (files, directories, symlinks, submodules) the walk counted
    /// under `spec.path`, what [`Limits::max_paths`] bounds. Kept so that the snapshot of a
    /// commit we built can be derived from its parent's without walking again.
    pub entries: usize,
}

impl Snapshot {
    /// The snapshot of a branch that does not exist yet (no files, `path_exists: false`).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The file at `path` (relative to `spec.path`).
    pub fn get(&self, path: &str) -> Option<&SnapshotFile> {
        self.files.get(path)
    }

    /// Whether every manifest under `spec.path` is in `files`: nothing skipped, the walk not
    /// truncated. An incomplete snapshot must not be used to prune or to add files (what is
    /// missing may exist).
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty() && self.truncated.is_none()
    }
}

/// One manifest file of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Path relative to `spec.path`, `/`-separated. Shared with the parse cache, which keys
    /// its entries by it.
    pub path: Arc<str>,
    /// Blob id (changes exactly when the content changes).
    pub blob: Arc<str>,
    /// Size in bytes.
    pub size: u64,
    /// The content (UTF-8). `None` only when the caller said it already has this blob
    /// (`known` of [`Repository::snapshot_with`](crate::Repository::snapshot_with)); read
    /// it with [`Repository::read_file`](crate::Repository::read_file) if needed after all.
    pub content: Option<String>,
}

impl SnapshotFile {
    /// The content, if it was loaded.
    pub fn text(&self) -> Option<&str> {
        self.content.as_deref()
    }
}

/// A manifest file left out of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Path relative to `spec.path` (non-UTF-8 bytes of a file name replaced by `�`).
    pub path: String,
    /// Why.
    pub reason: SkipReason,
    /// Size in bytes from the object header (`None` for symlinks and bad names).
    pub size: Option<u64>,
}

/// A manifest entry found by the walk.
struct Candidate {
    path: String,
    oid: Oid,
    mode: i32,
}

/// Reads the snapshot of `spec_path` at `commit`. `known(path, blob)` is `Some(size)` when
/// the caller already has that content (it is neither inflated nor its header read).
pub(crate) fn read(
    repo: &git2::Repository,
    commit: &str,
    spec_path: &str,
    limits: &Limits,
    known: &dyn Fn(&str, &str) -> Option<u64>,
) -> Result<Snapshot> {
    let oid = Oid::from_str(commit)
        .map_err(|_| Error::NotFound(format!("invalid commit id {commit:?}")))?;
    let commit_obj = repo.find_commit(oid).map_err(|_| {
        Error::NotFound(format!("commit {commit} is not in the cache (fetch first)"))
    })?;
    let root = commit_obj.tree().map_err(internal)?;
    let Some(tree) = subtree(repo, &root, spec_path)? else {
        return Err(Error::PathNotFound {
            path: spec_path.to_string(),
            commit: commit.to_string(),
            detail: String::new(),
        });
    };
    let odb = repo.odb().map_err(internal)?;
    let mut snapshot = Snapshot {
        commit: commit.to_string(),
        path_exists: true,
        ..Snapshot::default()
    };
    let candidates = walk(repo, &odb, tree.id(), limits, &mut snapshot)?;
    drop(tree);
    let mut files = Vec::with_capacity(candidates.len());
    let mut total: u64 = 0;
    let mut over_budget = false;
    for Candidate { path, oid, mode } in candidates {
        if mode == i32::from(FileMode::Link) {
            tracing::warn!(path, "skipping symlink (symlinks are never followed)");
            snapshot.skipped.push(SkippedFile {
                path,
                reason: SkipReason::Symlink,
                size: None,
            });
            continue;
        }
        let blob = oid.to_string();
        let known_size = known(&path, &blob);
        // The size from the header: a packed blob is not inflated for this.
        let size = match known_size {
            Some(size) => size,
            None => odb.read_header(oid).map_err(internal)?.0 as u64,
        };
        let reason = if size > limits.max_file_bytes {
            Some(SkipReason::TooLarge)
        } else if over_budget || total + size > limits.max_total_bytes {
            over_budget = true;
            Some(SkipReason::BudgetExceeded)
        } else {
            None
        };
        if let Some(reason) = reason {
            tracing::warn!(path, size, %reason, "skipping manifest file");
            snapshot.skipped.push(SkippedFile {
                path,
                reason,
                size: Some(size),
            });
            continue;
        }
        total += size;
        let content = if known_size.is_some() {
            None
        } else {
            match load_text(repo, oid)? {
                Some(text) => Some(text),
                None => {
                    tracing::warn!(path, "skipping non-UTF-8 file");
                    snapshot.skipped.push(SkippedFile {
                        path,
                        reason: SkipReason::NotUtf8,
                        size: Some(size),
                    });
                    continue;
                }
            }
        };
        files.push(SnapshotFile {
            path: path.into(),
            blob: blob.into(),
            size,
            content,
        });
    }
    snapshot.files = files.into();
    snapshot.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(t) = &snapshot.truncated {
        tracing::warn!(commit, budget = t.budget.as_str(), limit = t.limit, at = %t.at, "snapshot truncated by a budget");
    }
    Ok(snapshot)
}

/// What a commit we built changed under `spec.path`, relative to its parent: enough to derive
/// the commit's snapshot from the parent's without reading the tree again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delta {
    /// Every file whose text changed (path relative to `spec.path`): its new blob id and
    /// text, or `None` when it was deleted.
    pub files: Vec<(String, Option<(String, String)>)>,
    /// Tree entries added under `spec.path` minus those removed (new files and directories,
    /// deleted files and the directories they emptied).
    pub entries: isize,
    /// The largest tree object (directory listing) under `spec.path` that the commit made.
    pub largest_new_tree: u64,
    /// Whether `spec.path` is still a directory in the commit (removals may empty it).
    pub path_exists: bool,
}

/// The snapshot of `commit`, whose parent's snapshot is `base` and whose changes under
/// `spec.path` are `delta`: what [`read`] of `commit` would return (with the new files'
/// text loaded, the others as in `base`), or `None` when that is not certain — `base` is
/// incomplete or not of a commit, or the commit would hit a budget of `limits` (`read` would
/// then skip or truncate, and the caller reads it itself).
pub(crate) fn derive(
    base: std::borrow::Cow<'_, Snapshot>,
    commit: &str,
    delta: Delta,
    limits: &Limits,
) -> Option<Snapshot> {
    if base.commit.is_empty() || !base.path_exists || !base.is_complete() || !delta.path_exists {
        return None;
    }
    if delta.largest_new_tree > limits.max_file_bytes {
        return None;
    }
    let entries = base.entries.checked_add_signed(delta.entries)?;
    if entries > limits.max_paths {
        return None;
    }
    for (path, new) in &delta.files {
        // A file `k` directories deep is walked at depth `k`.
        let depth = path.matches('/').count();
        if depth > limits.max_depth {
            return None;
        }
        if let Some((_, text)) = new
            && text.len() as u64 > limits.max_file_bytes
        {
            return None;
        }
    }
    // Only the runs of files holding a changed file are copied: the rest are the base's.
    let mut snapshot = base.into_owned();
    // A complete snapshot lists every manifest: deleting one it does not list means it was
    // not read by this spec.
    snapshot
        .files
        .edit(delta.files.into_iter().map(|(path, new)| {
            let file = new.map(|(blob, text)| SnapshotFile {
                path: path.as_str().into(),
                blob: blob.into(),
                size: text.len() as u64,
                content: Some(text),
            });
            (path, file)
        }))?;
    if snapshot.files.bytes() > limits.max_total_bytes {
        return None;
    }
    snapshot.commit = commit.to_string();
    snapshot.entries = entries;
    Some(snapshot)
}

/// The blob's content if it is UTF-8.
pub(crate) fn load_text(repo: &git2::Repository, oid: Oid) -> Result<Option<String>> {
    let blob = repo.find_blob(oid).map_err(internal)?;
    Ok(std::str::from_utf8(blob.content()).ok().map(str::to_string))
}

/// Walks the tree `root` depth-first in tree order, without recursion and without collecting
/// anything but manifest entries, stopping at the path budget. Tree objects are sized from
/// their header before they are loaded.
fn walk(
    repo: &git2::Repository,
    odb: &git2::Odb<'_>,
    root: Oid,
    limits: &Limits,
    snapshot: &mut Snapshot,
) -> Result<Vec<Candidate>> {
    let mut candidates = Vec::new();
    // (tree, its path relative to the root with a trailing `/` or empty, depth)
    let mut stack: Vec<(Oid, String, usize)> = vec![(root, String::new(), 0)];
    let mut paths = 0usize;
    while let Some((oid, dir, depth)) = stack.pop() {
        let (size, _) = odb.read_header(oid).map_err(internal)?;
        if size as u64 > limits.max_file_bytes {
            snapshot.truncated.get_or_insert(Truncated {
                budget: Budget::TreeBytes,
                limit: limits.max_file_bytes,
                at: dir.trim_end_matches('/').to_string(),
            });
            continue;
        }
        let tree = repo.find_tree(oid).map_err(internal)?;
        let mut subtrees = Vec::new();
        for entry in tree.iter() {
            if paths >= limits.max_paths {
                snapshot.truncated = Some(Truncated {
                    budget: Budget::Paths,
                    limit: limits.max_paths as u64,
                    at: dir.trim_end_matches('/').to_string(),
                });
                return Ok(candidates);
            }
            paths += 1;
            snapshot.entries = paths;
            let name = match entry.name() {
                Ok(name) => name.to_string(),
                Err(_) => {
                    let lossy = String::from_utf8_lossy(entry.name_bytes()).into_owned();
                    if entry.kind() != Some(ObjectType::Tree) && is_manifest_path(&lossy) {
                        snapshot.skipped.push(SkippedFile {
                            path: format!("{dir}{lossy}"),
                            reason: SkipReason::NotUtf8,
                            size: None,
                        });
                    }
                    continue;
                }
            };
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    if depth + 1 > limits.max_depth {
                        snapshot.truncated.get_or_insert(Truncated {
                            budget: Budget::Depth,
                            limit: limits.max_depth as u64,
                            at: format!("{dir}{name}"),
                        });
                    } else {
                        subtrees.push((entry.id(), format!("{dir}{name}/"), depth + 1));
                    }
                }
                Some(ObjectType::Blob) if is_manifest_path(&name) => {
                    candidates.push(Candidate {
                        path: format!("{dir}{name}"),
                        oid: entry.id(),
                        mode: entry.filemode(),
                    });
                }
                _ => {} // other files; submodules (commits) are ignored
            }
        }
        // Reversed, so the first subdirectory is walked next (tree order).
        stack.extend(subtrees.into_iter().rev());
    }
    Ok(candidates)
}

/// The tree at `path` under `root` (None if absent); refuses symlinks and files on the way.
pub(crate) fn subtree<'r>(
    repo: &'r git2::Repository,
    root: &git2::Tree<'r>,
    path: &str,
) -> Result<Option<git2::Tree<'r>>> {
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
        tree = repo.find_tree(id).map_err(internal)?;
    }
    Ok(Some(tree))
}

fn internal(e: git2::Error) -> Error {
    Error::Internal(e.message().to_string())
}
