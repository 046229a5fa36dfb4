//! Parsed manifests by file blob: a reconcile parses only the files whose content changed
//! since the last one (the blob id changes exactly when the content does). Snapshots may leave
//! out the text of the files this cache holds ([`ParseCache::known`]); they are parsed from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gitcontroller_git::Snapshot;
use gitcontroller_sync::{Diagnostic, Manifest, ResourceType, SourceFile};

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

    /// Every parse diagnostic, in file order.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files
            .iter()
            .flat_map(|parsed| parsed.diagnostics.iter())
    }
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
    entries: HashMap<String, Vec<(String, Parsed)>>,
}

impl Inner {
    fn get(&self, path: &str, blob: &str) -> Option<&Parsed> {
        let at = self.entries.get(blob)?;
        at.iter().find(|(p, _)| p == path).map(|(_, parsed)| parsed)
    }
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
                    path: file.path.clone(),
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
                path: file.path.clone(),
            });
        }
        let mut files = Vec::with_capacity(snapshot.files.len());
        let mut seen: HashMap<String, Vec<(String, Parsed)>> =
            HashMap::with_capacity(snapshot.files.len());
        for file in &snapshot.files {
            let parsed = match inner.get(&file.path, &file.blob) {
                Some(parsed) => parsed.clone(),
                None => {
                    let content = file
                        .content
                        .clone()
                        .expect("files without text are in the cache (checked above)");
                    let source = [SourceFile::new(file.path.clone(), content)];
                    let (mut manifests, mut diagnostics) =
                        gitcontroller_sync::parse_manifests(&source, types);
                    // Documents of the same (path, blob) are the same: the blob id is their
                    // revision, which lets the planner skip what did not change.
                    let revision: Arc<str> = Arc::from(file.blob.as_str());
                    for manifest in &mut manifests {
                        manifest.revision = Some(revision.clone());
                    }
                    // Kept until the file changes: no spare capacity (most files hold one
                    // manifest, and a growing Vec reserves four).
                    manifests.shrink_to_fit();
                    diagnostics.shrink_to_fit();
                    Arc::new(ParsedFile {
                        manifests,
                        diagnostics,
                        size: file.size,
                    })
                }
            };
            files.push(parsed.clone());
            let at = seen.entry(file.blob.clone()).or_default();
            if !at.iter().any(|(p, _)| p == &file.path) {
                at.push((file.path.clone(), parsed));
            }
        }
        // Keep only the current files, so the cache never outgrows the repository.
        inner.entries = seen;
        Ok(ParsedSnapshot { files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitcontroller_git::SnapshotFile;

    fn snapshot(files: &[(&str, &str, &str)]) -> Snapshot {
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
}
