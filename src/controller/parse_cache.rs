//! Parsed manifests by file blob: a reconcile parses only the files whose content changed
//! since the last one (the blob id changes exactly when the content does). Snapshots may leave
//! out the text of the files this cache holds ([`ParseCache::known`]); they are parsed from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gitcontroller_git::{Snapshot, SnapshotFile};
use gitcontroller_sync::{Diagnostic, Manifest, ManifestParser, ResourceType};

/// One parsed file: its manifests and parse diagnostics, and its size in bytes.
struct ParsedFile {
    manifests: Vec<Manifest>,
    diagnostics: Vec<Diagnostic>,
    size: u64,
}

type Parsed = Arc<ParsedFile>;

/// The parsed files of one snapshot, shared with the cache: reading them copies nothing.
pub struct ParsedSnapshot {
    files: Vec<Parsed>,
}

impl ParsedSnapshot {
    /// Every manifest, in file order.
    pub fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.files.iter().flat_map(|parsed| parsed.manifests.iter())
    }

    /// Every manifest, in file order, with where it is in this snapshot.
    pub fn placed_manifests(&self) -> impl Iterator<Item = (Place, &Manifest)> {
        self.files.iter().enumerate().flat_map(|(file, parsed)| {
            parsed
                .manifests
                .iter()
                .enumerate()
                .map(move |(index, m)| (Place { file, index }, m))
        })
    }

    /// How many files there are.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    /// The manifests of the file at position `file`.
    pub fn file_manifests(&self, file: usize) -> &[Manifest] {
        self.files
            .get(file)
            .map_or(&[][..], |parsed| parsed.manifests.as_slice())
    }

    /// The manifest at `place`.
    pub fn manifest(&self, place: Place) -> Option<&Manifest> {
        self.files.get(place.file)?.manifests.get(place.index)
    }

    /// Whether the file at position `file` is the very parse of it that `other` holds there:
    /// then so are its manifests.
    pub fn same_file(&self, other: &ParsedSnapshot, file: usize) -> bool {
        match (self.files.get(file), other.files.get(file)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Every parse diagnostic, in file order.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files
            .iter()
            .flat_map(|parsed| parsed.diagnostics.iter())
    }
}

/// Where a manifest is in a [`ParsedSnapshot`]: its file's position and its own in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The file's position among the snapshot's files.
    pub file: usize,
    /// The manifest's position among the file's.
    pub index: usize,
}

/// Shared by all reconciles; cheap to clone.
#[derive(Clone, Default)]
pub struct ParseCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The resource types the entries were resolved against; a new catalog empties the cache
    /// (a kind that was unknown may be served now).
    types: Vec<ResourceType>,
    /// By blob id, then path (the same content at two paths parses to manifests of two
    /// files). Keyed by blob alone so that lookups borrow the snapshot's strings.
    entries: HashMap<Arc<str>, Vec<Entry>>,
    /// Counts parses: an entry a parse did not see is dropped at its end.
    generation: u64,
}

struct Entry {
    /// Shared with the snapshots, as the blob id keying it.
    path: Arc<str>,
    parsed: Parsed,
    /// The last parse whose snapshot had this file.
    seen: u64,
}

impl Inner {
    fn get(&self, path: &str, blob: &str) -> Option<&Parsed> {
        let at = self.entries.get(blob)?;
        at.iter().find(|e| *e.path == *path).map(|e| &e.parsed)
    }

    /// The entry of `path` at `blob`, marked as seen by the current parse.
    fn see(&mut self, path: &str, blob: &str) -> Option<Parsed> {
        let generation = self.generation;
        let entry = self
            .entries
            .get_mut(blob)?
            .iter_mut()
            .find(|e| *e.path == *path)?;
        entry.seen = generation;
        Some(entry.parsed.clone())
    }
}

/// Below this many files to parse, one thread parses them: starting threads costs more.
const PARALLEL_PARSE_MIN_FILES: usize = 64;

/// Parses one file's text.
fn parse_file(
    path: &str,
    blob: &str,
    size: u64,
    content: &str,
    parser: &ManifestParser<'_>,
) -> Parsed {
    let (mut manifests, mut diagnostics) = parser.parse_file(path, content);
    // Documents of the same (path, blob) are the same: the blob id is their revision, which
    // lets the planner skip what did not change.
    let revision: Arc<str> = Arc::from(blob);
    for manifest in &mut manifests {
        manifest.revision = Some(revision.clone());
    }
    // Kept until the file changes: no spare capacity (most files hold one manifest, and a
    // growing Vec reserves four).
    manifests.shrink_to_fit();
    diagnostics.shrink_to_fit();
    Arc::new(ParsedFile {
        manifests,
        diagnostics,
        size,
    })
}

/// Parses `files` (a first sync's thousands, or a push's few), on up to as many threads as
/// there are cores when there are many: parsing is most of a first sync before its applies.
fn parse_all(files: &[&SnapshotFile], types: &[ResourceType]) -> Vec<Parsed> {
    let parser = ManifestParser::new(types);
    let parser = &parser;
    let parse = |file: &&SnapshotFile| {
        let content = file
            .content
            .as_deref()
            .expect("files without text are in the cache (checked before)");
        parse_file(&file.path, &file.blob, file.size, content, parser)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len() / PARALLEL_PARSE_MIN_FILES)
        .min(8);
    if threads <= 1 {
        return files.iter().map(parse).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a parse thread panicked"))
            .collect()
    })
}

/// A snapshot file whose text was left out and that the cache does not hold (any more).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotLoaded {
    /// The file.
    pub path: String,
}

impl ParseCache {
    /// For [`Repository::snapshot_with`](gitcontroller_git::Repository::snapshot_with): the
    /// size of each file this cache holds parsed for `types`, so the snapshot leaves its text
    /// out. Answers nothing while the cache was made for other types (it is emptied at the
    /// next parse, so every file must be read).
    pub fn known(
        &self,
        types: &[ResourceType],
    ) -> impl Fn(&str, &str) -> Option<u64> + Send + 'static {
        let current = {
            let inner = self.inner.lock().expect("parse cache lock");
            inner.types == types
        };
        let cache = self.clone();
        move |path: &str, blob: &str| {
            if !current {
                return None;
            }
            let inner = cache.inner.lock().expect("parse cache lock");
            inner.get(path, blob).map(|parsed| parsed.size)
        }
    }

    /// Whether [`parse`](Self::parse) can parse every file of `snapshot` for `types`: the
    /// text of each is in the snapshot or its parse in this cache.
    pub fn covers(&self, snapshot: &Snapshot, types: &[ResourceType]) -> bool {
        let inner = self.inner.lock().expect("parse cache lock");
        let current = inner.types == types;
        snapshot.files.iter().all(|file| {
            file.content.is_some() || (current && inner.get(&file.path, &file.blob).is_some())
        })
    }

    /// The manifests and parse diagnostics of every file of `snapshot`, in file order.
    /// Fails, without changing the cache, when a file's text was left out and its parse is
    /// not here (see [`covers`](Self::covers)).
    pub fn parse(
        &self,
        snapshot: &Snapshot,
        types: &[ResourceType],
    ) -> Result<ParsedSnapshot, NotLoaded> {
        let mut inner = self.inner.lock().expect("parse cache lock");
        if inner.types != types {
            if let Some(file) = snapshot.files.iter().find(|f| f.content.is_none()) {
                return Err(NotLoaded {
                    path: file.path.to_string(),
                });
            }
            inner.types = types.to_vec();
            inner.entries.clear();
        }
        if let Some(file) = snapshot
            .files
            .iter()
            .find(|f| f.content.is_none() && inner.get(&f.path, &f.blob).is_none())
        {
            return Err(NotLoaded {
                path: file.path.to_string(),
            });
        }
        inner.generation += 1;
        let generation = inner.generation;
        // Cached files are taken (and marked as seen); the rest are parsed together.
        let mut files: Vec<Option<Parsed>> = snapshot
            .files
            .iter()
            .map(|file| inner.see(&file.path, &file.blob))
            .collect();
        let missing: Vec<&SnapshotFile> = snapshot
            .files
            .iter()
            .zip(&files)
            .filter(|(_, cached)| cached.is_none())
            .map(|(file, _)| file)
            .collect();
        let mut parsed = parse_all(&missing, types).into_iter();
        for (slot, file) in files.iter_mut().zip(&snapshot.files) {
            if slot.is_some() {
                continue;
            }
            let new = parsed.next().expect("one parse per missing file");
            let at = inner.entries.entry(file.blob.clone()).or_default();
            // The same (path, blob) twice in one snapshot cannot happen; keep one anyway.
            if !at.iter().any(|e| e.path == file.path) {
                at.push(Entry {
                    path: file.path.clone(),
                    parsed: new.clone(),
                    seen: generation,
                });
            }
            *slot = Some(new);
        }
        // Keep only the current files, so the cache never outgrows the repository.
        inner.entries.retain(|_, at| {
            at.retain(|e| e.seen == generation);
            !at.is_empty()
        });
        let files = files
            .into_iter()
            .map(|f| f.expect("every file taken or parsed"))
            .collect();
        Ok(ParsedSnapshot { files })
    }
}

/// A snapshot at commit `c` of `(path, blob, content)` files, for tests.
#[cfg(test)]
pub(crate) fn snapshot(files: &[(&str, &str, &str)]) -> Snapshot {
    Snapshot {
        commit: "c".into(),
        files: files
            .iter()
            .map(|(path, blob, content)| SnapshotFile {
                path: (*path).into(),
                blob: (*blob).into(),
                size: content.len() as u64,
                content: Some((*content).into()),
            })
            .collect(),
        ..Snapshot::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitcontroller_sync::SourceFile;

    #[test]
    fn unchanged_blobs_are_not_parsed_again_and_results_match_a_full_parse() {
        let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
        let cache = ParseCache::default();
        let a = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let b = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";
        let parse = |files: &[(&str, &str, &str)]| {
            let parsed = cache.parse(&snapshot(files), &types).unwrap();
            let manifests: Vec<Manifest> = parsed.manifests().cloned().collect();
            let diagnostics: Vec<Diagnostic> = parsed.diagnostics().cloned().collect();
            (manifests, diagnostics)
        };
        let first = parse(&[("a.yaml", "1", a), ("b.yaml", "2", b)]);
        assert_eq!(first.0.len(), 2);
        // Same blob id with other content: the cache answers, proving no re-parse happened.
        let cached = parse(&[("a.yaml", "1", "not: parsed"), ("b.yaml", "2", b)]);
        assert_eq!(cached.0, first.0);
        // A new blob is parsed.
        let broken = parse(&[("a.yaml", "3", "a: [unclosed\n"), ("b.yaml", "2", b)]);
        assert_eq!(broken.0.len(), 1);
        assert_eq!(broken.1.len(), 1);
        let mut full = gitcontroller_sync::parse_manifests(
            &[
                SourceFile::new("a.yaml", "a: [unclosed\n"),
                SourceFile::new("b.yaml", b),
            ],
            &types,
        );
        // The cache's manifests carry their blob as revision; otherwise the same.
        for manifest in &mut full.0 {
            assert_eq!(manifest.revision, None);
            manifest.revision = Some(Arc::from("2"));
        }
        assert_eq!(broken, full);
    }

    #[test]
    fn known_files_are_sized_from_the_cache_and_parsed_from_it_without_their_text() {
        let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
        let other_types = [ResourceType::new("", "v1", "Secret", "secrets", true)];
        let cache = ParseCache::default();
        let a = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";
        let full = snapshot(&[("a.yaml", "1", a), ("same.yaml", "1", a)]);
        let first: Vec<Manifest> = cache
            .parse(&full, &types)
            .unwrap()
            .manifests()
            .cloned()
            .collect();
        assert_eq!(first.len(), 2);

        let known = cache.known(&types);
        assert_eq!(known("a.yaml", "1"), Some(a.len() as u64));
        assert_eq!(known("a.yaml", "2"), None, "another blob");
        assert_eq!(known("b.yaml", "1"), None, "the same blob at another path");
        assert_eq!(
            cache.known(&other_types)("a.yaml", "1"),
            None,
            "other types"
        );

        // The text left out: parsed from the cache, the same manifests.
        let mut without_text = full.clone();
        for file in &mut without_text.files {
            file.content = None;
        }
        assert!(cache.covers(&without_text, &types));
        let again: Vec<Manifest> = cache
            .parse(&without_text, &types)
            .unwrap()
            .manifests()
            .cloned()
            .collect();
        assert_eq!(again, first);

        // Other types empty the cache: a file without text cannot be parsed, and the cache
        // is left as it was.
        assert!(!cache.covers(&without_text, &other_types));
        assert_eq!(
            cache.parse(&without_text, &other_types).err(),
            Some(NotLoaded {
                path: "a.yaml".into()
            })
        );
        assert!(cache.covers(&without_text, &types));

        // A file that was never parsed, without its text.
        let mut unknown = without_text.clone();
        unknown.files[0].blob = "9".into();
        assert!(!cache.covers(&unknown, &types));
        assert!(cache.parse(&unknown, &types).is_err());
    }

    #[test]
    fn many_files_parse_in_parallel_in_file_order_and_gone_files_leave_the_cache() {
        let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
        let texts: Vec<(String, String, String)> = (0..300)
            .map(|i| {
                let text = if i == 7 {
                    "a: [unclosed\n".to_string()
                } else {
                    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n")
                };
                (format!("cm-{i}.yaml"), format!("blob-{i}"), text)
            })
            .collect();
        let files: Vec<(&str, &str, &str)> = texts
            .iter()
            .map(|(p, b, t)| (p.as_str(), b.as_str(), t.as_str()))
            .collect();
        let cache = ParseCache::default();
        let parsed = cache.parse(&snapshot(&files), &types).unwrap();
        let sources: Vec<SourceFile> = texts
            .iter()
            .map(|(p, _, t)| SourceFile::new(p.clone(), t.clone()))
            .collect();
        let (expected, expected_diagnostics) =
            gitcontroller_sync::parse_manifests(&sources, &types);
        let names: Vec<&str> = parsed.manifests().map(|m| m.id.name.as_str()).collect();
        let expected_names: Vec<&str> = expected.iter().map(|m| m.id.name.as_str()).collect();
        assert_eq!(names, expected_names);
        assert_eq!(
            parsed.diagnostics().cloned().collect::<Vec<_>>(),
            expected_diagnostics
        );
        // Each manifest carries its own file's blob as revision.
        assert!(parsed.manifests().all(|m| {
            m.revision.as_deref() == Some(format!("blob-{}", &m.id.name[3..]).as_str())
        }));

        // A snapshot without the first half: those files leave the cache.
        cache.parse(&snapshot(&files[150..]), &types).unwrap();
        let known = cache.known(&types);
        assert_eq!(known("cm-0.yaml", "blob-0"), None);
        assert!(known("cm-200.yaml", "blob-200").is_some());
    }
}
