//! Writing the trees of a commit: the base commit's trees with files upserted and removed,
//! rewritten only along the paths that changed.
//!
//! libgit2's tree update loads each changed directory into a tree builder (one allocation per
//! entry), sorts it and writes it out; a directory of 10,000 files costs that on every commit of
//! one file. Here a directory's new listing is the old one copied entry by entry with the
//! changes merged in, in the order Git keeps (a directory sorts as if its name ended in `/`),
//! and each tree that changed is reported with its size and entry counts, so the caller need not
//! read the new trees back.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use git2::{FileMode, ObjectType, Oid};

use crate::error::{Error, Result};

/// The mode of a directory entry.
const TREE_MODE: i32 = 0o040000;

/// The trees one commit build reads, each looked up once. libgit2 caches no tree larger than
/// 4 KiB, so every lookup of a large directory (10,000 files: 0.4 MB) inflates and parses it
/// again; a build reads the changed directories of the base several times (the current files,
/// then the rewrite).
pub(crate) struct Trees<'r> {
    repo: &'r git2::Repository,
    seen: RefCell<HashMap<Oid, git2::Tree<'r>>>,
}

impl<'r> Trees<'r> {
    pub(crate) fn new(repo: &'r git2::Repository) -> Self {
        Trees {
            repo,
            seen: RefCell::default(),
        }
    }

    /// The tree `id` (a new handle on the one read before, if any).
    pub(crate) fn get(&self, id: Oid) -> Result<git2::Tree<'r>> {
        if let Some(tree) = self.seen.borrow().get(&id) {
            return Ok(tree.clone());
        }
        let tree = self.repo.find_tree(id).map_err(internal)?;
        self.seen.borrow_mut().insert(id, tree.clone());
        Ok(tree)
    }
}

/// What becomes of one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Its content is this blob, with this mode.
    Upsert(Oid, FileMode),
    /// It is gone.
    Remove,
}

/// A directory on the way to a changed file, before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rewritten {
    /// The directory (`""` for the root), `/`-separated.
    pub dir: String,
    /// Its tree in the base and how many entries it had, if it existed.
    pub before: Option<(Oid, usize)>,
    /// Its new tree, how many entries and how many bytes it has; `None` when the changes
    /// emptied it (Git keeps no empty directory: it leaves its parent).
    pub after: Option<(Oid, usize, usize)>,
}

impl Rewritten {
    /// Whether the directory's tree is a new object.
    pub fn changed(&self) -> bool {
        self.before.map(|(id, _)| id) != self.after.map(|(id, ..)| id)
    }
}

/// Writes the trees of `base` (the root tree) with `edits` (full paths from the root) applied,
/// into `odb`. Returns the new root tree and every directory visited (each after the
/// directories below it).
/// The root is always written, empty or not. A path that needs a directory where the base has a
/// file, or a file where it has a directory, is a conflict.
pub(crate) fn update<'r>(
    trees: &Trees<'r>,
    odb: &git2::Odb<'_>,
    base: &git2::Tree<'r>,
    edits: &[(&str, Edit)],
) -> Result<(Oid, Vec<Rewritten>)> {
    let mut visited = Vec::new();
    let root = Rewrite {
        trees,
        odb,
        visited: &mut visited,
    }
    .dir(Some(base), "", edits, true)?;
    let root = root.ok_or_else(|| Error::Internal("the root tree was not written".into()))?;
    Ok((root, visited))
}

struct Rewrite<'a, 'r> {
    trees: &'a Trees<'r>,
    odb: &'a git2::Odb<'a>,
    visited: &'a mut Vec<Rewritten>,
}

/// The changes to one directory's entries.
enum Change<'e> {
    File(Edit),
    /// Edits below the sub-directory, relative to it.
    Dir(Vec<(&'e str, Edit)>),
}

impl Change<'_> {
    fn is_dir(&self) -> bool {
        matches!(self, Change::Dir(_))
    }
}

/// Git's order of tree entries: by name, a directory's name read as if it ended in `/`.
fn git_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> Ordering {
    let slash: &[u8] = b"/";
    let suffix = |dir: bool| if dir { slash } else { &[] };
    a.iter()
        .chain(suffix(a_dir))
        .cmp(b.iter().chain(suffix(b_dir)))
}

/// Appends one entry in the format of a tree object: `<octal mode> <name>\0<20-byte id>`;
/// returns where the name starts.
fn push_entry(buf: &mut Vec<u8>, mode: i32, name: &[u8], id: Oid) -> usize {
    use std::io::Write as _;
    let _ = write!(buf, "{mode:o} ");
    let start = buf.len();
    buf.extend_from_slice(name);
    buf.push(0);
    buf.extend_from_slice(id.as_bytes());
    start
}

impl<'r> Rewrite<'_, 'r> {
    /// Rewrites the directory `dir` (base tree `base`) with `edits` relative to it; `None`
    /// when it ends up empty and is not the root.
    fn dir(
        &mut self,
        base: Option<&git2::Tree<'r>>,
        dir: &str,
        edits: &[(&str, Edit)],
        root: bool,
    ) -> Result<Option<Oid>> {
        let conflict = |name: &[u8]| {
            let name = String::from_utf8_lossy(name);
            let path = if dir.is_empty() {
                name.into_owned()
            } else {
                format!("{dir}/{name}")
            };
            Error::Conflict(format!(
                "{path}: a file and a directory of the same name in one commit"
            ))
        };
        // This directory's changes by entry name: files, and edits below sub-directories.
        // (Maps: a first export writes thousands of files into one directory.)
        let mut files: BTreeMap<&str, Edit> = BTreeMap::new();
        let mut dirs: BTreeMap<&str, Vec<(&str, Edit)>> = BTreeMap::new();
        for &(path, edit) in edits {
            match path.split_once('/') {
                Some((name, rest)) => dirs.entry(name).or_default().push((rest, edit)),
                None => {
                    files.insert(path, edit);
                }
            }
        }
        // A name is a file or a directory, never both: a file can replace a directory only by
        // being removed in the same commit, and nothing here replaces a directory.
        let base_is_dir =
            |name: &str| base.and_then(|t| t.get_name(name).map(|e| e.filemode_raw() == TREE_MODE));
        for name in files.keys() {
            if base_is_dir(name) == Some(true) {
                return Err(conflict(name.as_bytes()));
            }
        }
        for name in dirs.keys() {
            let clash = match files.get(name) {
                Some(Edit::Upsert(..)) => true,
                Some(Edit::Remove) => false,
                None => base_is_dir(name) == Some(false),
            };
            if clash {
                return Err(conflict(name.as_bytes()));
            }
        }
        let mut changes: Vec<(&str, Change<'_>)> = files
            .into_iter()
            .map(|(name, edit)| (name, Change::File(edit)))
            .chain(
                dirs.into_iter()
                    .map(|(name, below)| (name, Change::Dir(below))),
            )
            .collect();
        // In Git's order, the order of the entries they are merged with.
        changes.sort_by(|(a, ca), (b, cb)| {
            git_order(a.as_bytes(), ca.is_dir(), b.as_bytes(), cb.is_dir())
        });

        let mut buf: Vec<u8> = Vec::with_capacity(base.map_or(64, |t| t.len() * 48 + 64));
        let mut entries = 0usize;
        // Where the last entry's name is in `buf`.
        let mut last: Option<(usize, usize)> = None;
        let mut emit = |buf: &mut Vec<u8>, mode: i32, name: &[u8], id: Oid| -> Result<()> {
            // Two entries of one name (ruled out above; a tree with them is corrupt).
            if last.is_some_and(|(start, end)| &buf[start..end] == name) {
                return Err(conflict(name));
            }
            let start = push_entry(buf, mode, name, id);
            entries += 1;
            last = Some((start, start + name.len()));
            Ok(())
        };
        let mut pending = changes.into_iter().peekable();
        let before = base.map(|t| (t.id(), t.len()));
        if let Some(base) = base {
            for entry in base.iter() {
                let name = entry.name_bytes();
                let mode = entry.filemode_raw();
                let is_dir = mode == TREE_MODE;
                // Changes that sort before this entry are new entries.
                while let Some((change_name, change)) = pending.next_if(|(n, c)| {
                    git_order(n.as_bytes(), c.is_dir(), name, is_dir) == Ordering::Less
                }) {
                    self.insert(&mut buf, &mut emit, dir, change_name, change)?;
                }
                let same = pending.next_if(|(n, c)| n.as_bytes() == name && c.is_dir() == is_dir);
                match same {
                    None => emit(&mut buf, mode, name, entry.id())?,
                    Some((_, Change::File(Edit::Remove))) => {}
                    Some((_, Change::File(Edit::Upsert(id, mode)))) => {
                        emit(&mut buf, i32::from(mode), name, id)?
                    }
                    Some((change_name, Change::Dir(below))) => {
                        let subtree = self.trees.get(entry.id())?;
                        let path = join(dir, change_name);
                        if let Some(id) = self.dir(Some(&subtree), &path, &below, false)? {
                            emit(&mut buf, TREE_MODE, name, id)?;
                        }
                    }
                }
            }
        }
        for (change_name, change) in pending {
            self.insert(&mut buf, &mut emit, dir, change_name, change)?;
        }
        let index = self.visited.len();
        self.visited.push(Rewritten {
            dir: dir.to_string(),
            before,
            after: None,
        });
        if entries == 0 && !root {
            return Ok(None);
        }
        let id = self.odb.write(ObjectType::Tree, &buf).map_err(internal)?;
        self.visited[index].after = Some((id, entries, buf.len()));
        Ok(Some(id))
    }

    /// A change to a name the base directory does not have.
    fn insert(
        &mut self,
        buf: &mut Vec<u8>,
        emit: &mut impl FnMut(&mut Vec<u8>, i32, &[u8], Oid) -> Result<()>,
        dir: &str,
        name: &str,
        change: Change<'_>,
    ) -> Result<()> {
        match change {
            // Removing what is not there changes nothing.
            Change::File(Edit::Remove) => Ok(()),
            Change::File(Edit::Upsert(id, mode)) => emit(buf, i32::from(mode), name.as_bytes(), id),
            Change::Dir(below) => {
                let path = join(dir, name);
                match self.dir(None, &path, &below, false)? {
                    Some(id) => emit(buf, TREE_MODE, name.as_bytes(), id),
                    None => Ok(()),
                }
            }
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn internal(e: git2::Error) -> Error {
    Error::Internal(e.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency for a test's randomness).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    /// Names chosen to exercise Git's order: `a` sorts before `a-b` and `a.x`, but a directory
    /// `a` sorts after them (as `a/`), and `a0` after that.
    const NAMES: [&str; 8] = ["a", "a-b", "a.x", "a0", "b", "B", "z.yaml", "a/"];

    fn random_path(rng: &mut Lcg) -> String {
        let depth = 1 + rng.next(3);
        (0..depth)
            .map(|_| NAMES[rng.next(NAMES.len() - 1)])
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The base: random files (a path that would need a file and a directory of one name is
    /// skipped, as Git would refuse it).
    fn base_tree(repo: &git2::Repository, rng: &mut Lcg, files: usize) -> (Oid, Vec<String>) {
        let mut builder = git2::build::TreeUpdateBuilder::new();
        let mut paths: Vec<String> = Vec::new();
        for i in 0..files {
            let path = random_path(rng);
            let clashes = paths.iter().any(|p| {
                p == &path
                    || p.starts_with(&format!("{path}/"))
                    || path.starts_with(&format!("{p}/"))
            });
            if clashes {
                continue;
            }
            let blob = repo.blob(format!("file {i}").as_bytes()).unwrap();
            builder.upsert(path.as_str(), blob, FileMode::Blob);
            paths.push(path);
        }
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let empty = repo.find_tree(empty).unwrap();
        (builder.create_updated(repo, &empty).unwrap(), paths)
    }

    /// What libgit2's tree update makes of `edits` on `base`.
    fn libgit2_update(
        repo: &git2::Repository,
        base: &git2::Tree<'_>,
        edits: &[(String, Edit)],
    ) -> Oid {
        let mut builder = git2::build::TreeUpdateBuilder::new();
        for (path, edit) in edits {
            match edit {
                Edit::Upsert(id, mode) => builder.upsert(path.as_str(), *id, *mode),
                Edit::Remove => builder.remove(path.as_str()),
            };
        }
        builder.create_updated(repo, base).unwrap()
    }

    /// What [`update`] makes of them.
    fn ours(
        repo: &git2::Repository,
        odb: &git2::Odb<'_>,
        base: &git2::Tree<'_>,
        edits: &[(String, Edit)],
    ) -> (Oid, Vec<Rewritten>) {
        let borrowed: Vec<(&str, Edit)> = edits.iter().map(|(p, e)| (p.as_str(), *e)).collect();
        update(&Trees::new(repo), odb, base, &borrowed).unwrap()
    }

    #[test]
    fn rewrites_exactly_like_libgit2s_tree_update() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let mut rng = Lcg(7);
        for round in 0..300 {
            let files = 1 + rng.next(25);
            let (base_id, paths) = base_tree(&repo, &mut rng, files);
            let base = repo.find_tree(base_id).unwrap();
            // Upserts of existing and new files (new directories too) and removals of existing
            // files (some emptying their directory).
            let mut edits: Vec<(String, Edit)> = Vec::new();
            for i in 0..1 + rng.next(6) {
                let edit = match rng.next(4) {
                    0 | 1 => Edit::Upsert(
                        repo.blob(format!("round {round} edit {i}").as_bytes())
                            .unwrap(),
                        if rng.next(5) == 0 {
                            FileMode::BlobExecutable
                        } else {
                            FileMode::Blob
                        },
                    ),
                    _ => Edit::Remove,
                };
                let path = if rng.next(3) > 0 || paths.is_empty() {
                    paths[rng
                        .next(paths.len().max(1))
                        .min(paths.len().saturating_sub(1))]
                    .clone()
                } else {
                    random_path(&mut rng)
                };
                let clashes = paths.iter().chain(edits.iter().map(|(p, _)| p)).any(|p| {
                    p.starts_with(&format!("{path}/")) || path.starts_with(&format!("{p}/"))
                });
                // A commit removes only files it read (libgit2 refuses any other removal).
                let missing = edit == Edit::Remove && !paths.contains(&path);
                if clashes || missing || edits.iter().any(|(p, _)| p == &path) {
                    continue;
                }
                edits.push((path, edit));
            }
            let expected = libgit2_update(&repo, &base, &edits);
            let (got, visited) = ours(&repo, &odb, &base, &edits);
            assert_eq!(got, expected, "round {round}: {edits:?} on {paths:?}");
            // What it reports of each directory is what the trees say.
            let new = repo.find_tree(got).unwrap();
            for v in &visited {
                let at = |root: &git2::Tree<'_>| -> Option<(Oid, usize)> {
                    if v.dir.is_empty() {
                        return Some((root.id(), root.len()));
                    }
                    let entry = root.get_path(std::path::Path::new(&v.dir)).ok()?;
                    let tree = repo.find_tree(entry.id()).ok()?;
                    Some((tree.id(), tree.len()))
                };
                assert_eq!(v.before, at(&base), "round {round}: {}", v.dir);
                assert_eq!(
                    v.after.map(|(id, n, _)| (id, n)),
                    at(&new),
                    "round {round}: {}",
                    v.dir
                );
                if let Some((id, _, size)) = v.after {
                    assert_eq!(odb.read_header(id).unwrap().0, size, "round {round}");
                }
            }
        }
    }

    #[test]
    fn a_large_batch_in_one_directory_rewrites_like_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let blob = |text: String| repo.blob(text.as_bytes()).unwrap();
        let mut builder = git2::build::TreeUpdateBuilder::new();
        for i in 0..2000 {
            builder.upsert(
                format!("d/cm-{i:05}.yaml"),
                blob(format!("v0 {i}")),
                FileMode::Blob,
            );
        }
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let empty = repo.find_tree(empty).unwrap();
        let base = repo
            .find_tree(builder.create_updated(&repo, &empty).unwrap())
            .unwrap();
        // A first export's kind of commit: thousands of new files beside the old ones (some
        // sorting between them), edits and removals, and a new directory.
        let mut edits: Vec<(String, Edit)> = Vec::new();
        for i in 0..2000 {
            let path = match i % 4 {
                0 => format!("d/cm-{i:05}.yaml"),
                1 => format!("d/cm-{i:05}.yml"),
                2 => format!("d/cm-{i:05}-new.yaml"),
                _ => format!("n/cm-{i:05}.yaml"),
            };
            edits.push((path, Edit::Upsert(blob(format!("v1 {i}")), FileMode::Blob)));
        }
        for i in (1..2000).step_by(4) {
            edits.push((format!("d/cm-{i:05}.yaml"), Edit::Remove));
        }
        let expected = libgit2_update(&repo, &base, &edits);
        let (got, visited) = ours(&repo, &odb, &base, &edits);
        assert_eq!(got, expected);
        let d = visited.iter().find(|v| v.dir == "d").unwrap();
        assert_eq!(d.before.map(|(_, n)| n), Some(2000));
        assert_eq!(d.after.map(|(_, n, _)| n), Some(2000 + 500 + 500 - 500));
    }

    #[test]
    fn a_file_where_a_directory_is_or_the_reverse_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        let blob = repo.blob(b"x").unwrap();
        let mut builder = git2::build::TreeUpdateBuilder::new();
        builder.upsert("d/f.yaml", blob, FileMode::Blob);
        builder.upsert("g.yaml", blob, FileMode::Blob);
        // `d.yaml` sorts between a file `d` and the directory `d` (read as `d/`).
        builder.upsert("d.yaml", blob, FileMode::Blob);
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let empty = repo.find_tree(empty).unwrap();
        let base = repo
            .find_tree(builder.create_updated(&repo, &empty).unwrap())
            .unwrap();
        let trees = Trees::new(&repo);
        for path in ["d", "g.yaml/h.yaml"] {
            let err = update(
                &trees,
                &odb,
                &base,
                &[(path, Edit::Upsert(blob, FileMode::Blob))],
            )
            .unwrap_err();
            assert!(matches!(err, Error::Conflict(_)), "{path}: {err}");
        }
    }
}
