//! Parsed manifests by file blob: a reconcile parses only the files whose content changed
//! since the last one (the blob id changes exactly when the content does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gitcontroller_git::Snapshot;
use gitcontroller_sync::{Diagnostic, Manifest, ResourceType, SourceFile};

type Parsed = Arc<(Vec<Manifest>, Vec<Diagnostic>)>;

/// The parsed files of one snapshot, shared with the cache: reading them copies nothing.
pub struct ParsedSnapshot {
    files: Vec<Parsed>,
}

impl ParsedSnapshot {
    /// Every manifest, in file order.
    pub fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.files.iter().flat_map(|parsed| parsed.0.iter())
    }

    /// Every parse diagnostic, in file order.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.iter().flat_map(|parsed| parsed.1.iter())
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
    entries: HashMap<(String, String), Parsed>,
}

impl ParseCache {
    /// The manifests and parse diagnostics of every file of `snapshot`, in file order.
    pub fn parse(&self, snapshot: &Snapshot, types: &[ResourceType]) -> ParsedSnapshot {
        let mut inner = self.inner.lock().expect("parse cache lock");
        if inner.types != types {
            inner.types = types.to_vec();
            inner.entries.clear();
        }
        let mut files = Vec::with_capacity(snapshot.files.len());
        let mut seen = HashMap::with_capacity(snapshot.files.len());
        for file in &snapshot.files {
            let key = (file.path.clone(), file.blob.clone());
            let parsed = match inner.entries.get(&key) {
                Some(parsed) => parsed.clone(),
                None => {
                    // Snapshots here come from `Repository::snapshot`, which loads every file.
                    let content = file.content.clone().expect("snapshot content loaded");
                    let source = [SourceFile::new(file.path.clone(), content)];
                    let (mut manifests, mut diagnostics) =
                        gitcontroller_sync::parse_manifests(&source, types);
                    // Kept until the file changes: no spare capacity (most files hold one
                    // manifest, and a growing Vec reserves four).
                    manifests.shrink_to_fit();
                    diagnostics.shrink_to_fit();
                    Arc::new((manifests, diagnostics))
                }
            };
            files.push(parsed.clone());
            seen.insert(key, parsed);
        }
        // Keep only the current files, so the cache never outgrows the repository.
        inner.entries = seen;
        ParsedSnapshot { files }
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
            let parsed = cache.parse(&snapshot(files), &types);
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
        let full = gitcontroller_sync::parse_manifests(
            &[
                SourceFile::new("a.yaml", "a: [unclosed\n"),
                SourceFile::new("b.yaml", b),
            ],
            &types,
        );
        assert_eq!(broken, full);
    }
}
