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
/// Held in runs matching the snapshot's ([`gitcontroller_git::SnapshotFiles::runs`]): a run of files that is
/// the very run the last parse had is its run of parses again, taken whole.
pub struct ParsedSnapshot {
    runs: Vec<Arc<[Parsed]>>,
    /// How many files come before each run.
    starts: Vec<usize>,
    len: usize,
}

impl ParsedSnapshot {
    fn new(runs: Vec<Arc<[Parsed]>>) -> Self {
        let mut starts = Vec::with_capacity(runs.len());
        let mut len = 0;
        for run in &runs {
            starts.push(len);
            len += run.len();
        }
        Self { runs, starts, len }
    }

    fn iter(&self) -> impl Iterator<Item = &Parsed> {
        self.runs.iter().flat_map(|run| run.iter())
    }

    /// The parse of the file at position `file`.
    fn file(&self, file: usize) -> Option<&Parsed> {
        if file >= self.len {
            return None;
        }
        let run = self.starts.partition_point(|&start| start <= file) - 1;
        self.runs[run].get(file - self.starts[run])
    }

    /// Every manifest, in file order.
    pub fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.iter().flat_map(|parsed| parsed.manifests.iter())
    }

    /// Every manifest, in file order, with where it is in this snapshot.
    pub fn placed_manifests(&self) -> impl Iterator<Item = (Place, &Manifest)> {
        self.iter().enumerate().flat_map(|(file, parsed)| {
            parsed
                .manifests
                .iter()
                .enumerate()
                .map(move |(index, m)| (Place { file, index }, m))
        })
    }

    /// How many files there are.
    pub fn files(&self) -> usize {
        self.len
    }

    /// The manifests of the file at position `file`.
    pub fn file_manifests(&self, file: usize) -> &[Manifest] {
        self.file(file)
            .map_or(&[][..], |parsed| parsed.manifests.as_slice())
    }

    /// The manifest at `place`.
    pub fn manifest(&self, place: Place) -> Option<&Manifest> {
        self.file(place.file)?.manifests.get(place.index)
    }

    /// The positions of the files that are not the very parse `other` holds at the same
    /// position (those are the same files, with the same manifests), in order; `None` when
    /// the two do not hold as many files. Runs shared with `other` are skipped whole.
    pub fn files_parsed_since(&self, other: &ParsedSnapshot) -> Option<Vec<usize>> {
        if self.len != other.len {
            return None;
        }
        let mut changed = Vec::new();
        if self.starts == other.starts {
            for ((start, now), then) in self.starts.iter().zip(&self.runs).zip(&other.runs) {
                if Arc::ptr_eq(now, then) {
                    continue;
                }
                changed.extend(
                    now.iter()
                        .zip(then.iter())
                        .enumerate()
                        .filter(|(_, (now, then))| !Arc::ptr_eq(now, then))
                        .map(|(at, _)| start + at),
                );
            }
        } else {
            changed.extend(
                self.iter()
                    .zip(other.iter())
                    .enumerate()
                    .filter(|(_, (now, then))| !Arc::ptr_eq(now, then))
                    .map(|(file, _)| file),
            );
        }
        Some(changed)
    }

    /// Every parse diagnostic, in file order.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.iter().flat_map(|parsed| parsed.diagnostics.iter())
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
    /// Counts parses: an entry a parse saw is marked with its count.
    generation: u64,
    /// The runs of files of the last parse and their parses, by the address of the run
    /// (kept alive here, so no other run has it): what the next parse takes whole. Every
    /// entry is a file of these runs and every file of these runs has an entry.
    last: LastRuns,
}

/// A run of files by [`run_key`], kept alive, with its parses.
type LastRuns = HashMap<usize, (Arc<[SnapshotFile]>, Arc<[Parsed]>)>;

/// A run of files by its address (a run is never empty).
fn run_key(run: &Arc<[SnapshotFile]>) -> usize {
    run.as_ptr() as usize
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
    // Asked only when there are enough files: the answer reads the cgroup's CPU quota.
    let threads = if files.len() < 2 * PARALLEL_PARSE_MIN_FILES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(files.len() / PARALLEL_PARSE_MIN_FILES)
            .min(8)
    };
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
        snapshot.files.runs().iter().all(|run| {
            (current && inner.last.contains_key(&run_key(run)))
                || run.iter().all(|file| {
                    file.content.is_some()
                        || (current && inner.get(&file.path, &file.blob).is_some())
                })
        })
    }

    /// The manifests and parse diagnostics of every file of `snapshot`, in file order.
    /// Fails, without changing the cache, when a file's text was left out and its parse is
    /// not here (see [`covers`](Self::covers)).
    ///
    /// The cache then holds the files of `snapshot` and no others. The work follows what
    /// changed since the last parse: its runs of files that `snapshot` shares are taken
    /// whole, and only the files of the other runs are looked up (or parsed).
    pub fn parse(
        &self,
        snapshot: &Snapshot,
        types: &[ResourceType],
    ) -> Result<ParsedSnapshot, NotLoaded> {
        let mut guard = self.inner.lock().expect("parse cache lock");
        let inner = &mut *guard;
        if inner.types != types {
            if let Some(file) = snapshot.files.iter().find(|f| f.content.is_none()) {
                return Err(NotLoaded {
                    path: file.path.to_string(),
                });
            }
            inner.types = types.to_vec();
            inner.entries.clear();
            inner.last.clear();
        }
        let runs = snapshot.files.runs();
        let mut parsed_runs: Vec<Option<Arc<[Parsed]>>> = runs
            .iter()
            .map(|run| inner.last.get(&run_key(run)).map(|(_, p)| Arc::clone(p)))
            .collect();
        // The files of the runs not taken whole.
        let fresh: Vec<&SnapshotFile> = runs
            .iter()
            .zip(&parsed_runs)
            .filter(|(_, taken)| taken.is_none())
            .flat_map(|(run, _)| run.iter())
            .collect();
        if let Some(file) = fresh
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
        let mut files: Vec<Option<Parsed>> = fresh
            .iter()
            .map(|file| inner.see(&file.path, &file.blob))
            .collect();
        let missing: Vec<&SnapshotFile> = fresh
            .iter()
            .zip(&files)
            .filter(|(_, cached)| cached.is_none())
            .map(|(file, _)| *file)
            .collect();
        let mut parsed = parse_all(&missing, types).into_iter();
        for (slot, file) in files.iter_mut().zip(&fresh) {
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
        let mut files = files
            .into_iter()
            .map(|f| f.expect("every file taken or parsed"));
        for (run, slot) in runs.iter().zip(&mut parsed_runs) {
            if slot.is_none() {
                *slot = Some(files.by_ref().take(run.len()).collect());
            }
        }
        let parsed_runs: Vec<Arc<[Parsed]>> = parsed_runs
            .into_iter()
            .map(|run| run.expect("every run taken or filled"))
            .collect();
        // Keep only the current files, so the cache never outgrows the repository: the files
        // of the last parse's runs not taken whole, unless this parse saw them again. (Those
        // of the runs taken whole are files of this snapshot, each in one run.)
        let mut last: LastRuns = runs
            .iter()
            .zip(&parsed_runs)
            .map(|(run, parsed)| (run_key(run), (Arc::clone(run), Arc::clone(parsed))))
            .collect();
        std::mem::swap(&mut inner.last, &mut last);
        if fresh.len() == snapshot.files.len() {
            // Nothing taken whole: every current file was seen.
            inner.entries.retain(|_, at| {
                at.retain(|e| e.seen == generation);
                !at.is_empty()
            });
        } else {
            for (key, (run, _)) in &last {
                if inner.last.contains_key(key) {
                    continue;
                }
                for file in run.iter() {
                    if let Some(at) = inner.entries.get_mut(&file.blob) {
                        at.retain(|e| e.path != file.path || e.seen == generation);
                        if at.is_empty() {
                            inner.entries.remove(&file.blob);
                        }
                    }
                }
            }
        }
        drop(guard);
        // The last parse's runs are released outside the lock.
        drop(last);
        Ok(ParsedSnapshot::new(parsed_runs))
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
        without_text.files = full
            .files
            .iter()
            .map(|file| SnapshotFile {
                content: None,
                ..file.clone()
            })
            .collect();
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
        unknown.files = without_text
            .files
            .iter()
            .enumerate()
            .map(|(i, file)| SnapshotFile {
                blob: if i == 0 {
                    "9".into()
                } else {
                    file.blob.clone()
                },
                ..file.clone()
            })
            .collect();
        assert!(!cache.covers(&unknown, &types));
        assert!(cache.parse(&unknown, &types).is_err());
    }

    #[test]
    fn many_files_parse_in_parallel_in_file_order_and_gone_files_leave_the_cache() {
        let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
        // In path order, as snapshots list their files.
        let mut texts: Vec<(String, String, String)> = (0..300)
            .map(|i| {
                let text = if i == 7 {
                    "a: [unclosed\n".to_string()
                } else {
                    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n")
                };
                (format!("cm-{i}.yaml"), format!("blob-{i}"), text)
            })
            .collect();
        texts.sort();
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
        for (i, (path, blob, _)) in files.iter().enumerate() {
            assert_eq!(known(path, blob).is_some(), i >= 150, "{path}");
        }
    }

    /// A configmap file's path, blob and text; `version` changes the blob and the text.
    fn configmap(i: usize, version: usize) -> SnapshotFile {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  v: \"{version}\"\n"
        );
        SnapshotFile {
            path: format!("cm-{i:04}.yaml").into(),
            blob: format!("blob-{i}-{version}").into(),
            size: text.len() as u64,
            content: Some(text),
        }
    }

    /// What a fresh cache parses of `snapshot`: names and versions of its manifests.
    fn parsed_afresh(snapshot: &Snapshot, types: &[ResourceType]) -> Vec<String> {
        described(&ParseCache::default().parse(snapshot, types).unwrap())
    }

    fn described(parsed: &ParsedSnapshot) -> Vec<String> {
        parsed
            .manifests()
            .map(|m| format!("{} {:?}", m.id.name, m.revision))
            .collect()
    }

    impl ParseCache {
        /// Every (path, blob) the cache holds, sorted.
        fn held(&self) -> Vec<(String, String)> {
            let inner = self.inner.lock().unwrap();
            let mut held: Vec<(String, String)> = inner
                .entries
                .iter()
                .flat_map(|(blob, at)| at.iter().map(|e| (e.path.to_string(), blob.to_string())))
                .collect();
            held.sort();
            held
        }
    }

    fn files_of(snapshot: &Snapshot) -> Vec<(String, String)> {
        snapshot
            .files
            .iter()
            .map(|f| (f.path.to_string(), f.blob.to_string()))
            .collect()
    }

    #[test]
    fn runs_shared_with_the_last_parse_are_taken_whole_and_the_cache_holds_exactly_the_files_parsed_last()
     {
        let types = [ResourceType::new("", "v1", "ConfigMap", "configmaps", true)];
        let cache = ParseCache::default();
        let first = Snapshot {
            commit: "c1".into(),
            files: (0..1000).map(|i| configmap(i, 0)).collect(),
            ..Snapshot::default()
        };
        let parsed_first = cache.parse(&first, &types).unwrap();
        assert_eq!(cache.held(), files_of(&first));

        // One file changed in place, as a pushed commit's snapshot is derived: the other
        // runs are the first snapshot's.
        let mut second = first.clone();
        second.commit = "c2".into();
        second
            .files
            .edit([("cm-0500.yaml".to_string(), Some(configmap(500, 1)))])
            .unwrap();
        assert!(cache.covers(&second, &types));
        let parsed_second = cache.parse(&second, &types).unwrap();
        assert_eq!(described(&parsed_second), parsed_afresh(&second, &types));
        assert_eq!(
            parsed_second.files_parsed_since(&parsed_first),
            Some(vec![500]),
            "only the changed file is a new parse"
        );
        assert_eq!(cache.held(), files_of(&second), "the old version left");

        // Files added and removed in several runs, with their text left out where the
        // cache has them (as a snapshot read with `known` leaves it out).
        let mut third = second.clone();
        third.commit = "c3".into();
        let mut changes: Vec<(String, Option<SnapshotFile>)> = vec![
            ("cm-0003.yaml".into(), None),
            ("cm-0999.yaml".into(), None),
            ("cm-0500.yaml".into(), Some(configmap(500, 2))),
        ];
        changes.extend((1000..1300).map(|i| (format!("cm-{i:04}.yaml"), Some(configmap(i, 0)))));
        third.files.edit(changes).unwrap();
        let parsed_third = cache.parse(&third, &types).unwrap();
        assert_eq!(described(&parsed_third), parsed_afresh(&third, &types));
        assert_eq!(cache.held(), files_of(&third));
        assert_eq!(
            parsed_third.files_parsed_since(&parsed_second),
            None,
            "more files"
        );

        // Back to the first snapshot (a push lost a race to it): its runs the third shares
        // are taken whole, the others looked up or parsed again.
        let parsed_again = cache.parse(&first, &types).unwrap();
        assert_eq!(described(&parsed_again), parsed_afresh(&first, &types));
        assert_eq!(cache.held(), files_of(&first));

        // A snapshot read afresh (no run shared) is looked up file by file.
        let fresh = Snapshot {
            commit: "c1".into(),
            files: first
                .files
                .iter()
                .map(|f| SnapshotFile {
                    content: None,
                    ..f.clone()
                })
                .collect(),
            ..Snapshot::default()
        };
        let parsed_fresh = cache.parse(&fresh, &types).unwrap();
        assert_eq!(described(&parsed_fresh), parsed_afresh(&first, &types));
        assert_eq!(
            parsed_fresh.files_parsed_since(&parsed_again),
            Some(vec![]),
            "every file the very parse it was"
        );
        assert_eq!(cache.held(), files_of(&first));
    }
}
