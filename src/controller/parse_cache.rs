//! Parsed manifests by file blob: a reconcile parses only the files whose content changed
//! since the last one (the blob id changes exactly when the content does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gitcontroller_git::Snapshot;
use gitcontroller_sync::{Diagnostic, Manifest, ResourceType, SourceFile};

type Parsed = Arc<(Vec<Manifest>, Vec<Diagnostic>)>;

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
    pub fn parse(
        &self,
        snapshot: &Snapshot,
        types: &[ResourceType],
    ) -> (Vec<Manifest>, Vec<Diagnostic>) {
        let mut inner = self.inner.lock().expect("parse cache lock");
        if inner.types != types {
            inner.types = types.to_vec();
            inner.entries.clear();
        }
        let mut manifests = Vec::new();
        let mut diagnostics = Vec::new();
        let mut seen = HashMap::with_capacity(snapshot.files.len());
        for file in &snapshot.files {
            let key = (file.path.clone(), file.blob.clone());
            let parsed = match inner.entries.get(&key) {
                Some(parsed) => parsed.clone(),
                None => {
                    // Snapshots here come from `Repository::snapshot`, which loads every file.
                    let content = file.content.clone().expect("snapshot content loaded");
                    let source = [SourceFile::new(file.path.clone(), content)];
                    Arc::new(gitcontroller_sync::parse_manifests(&source, types))
                }
            };
            manifests.extend(parsed.0.iter().cloned());
            diagnostics.extend(parsed.1.iter().cloned());
            seen.insert(key, parsed);
        }
        // Keep only the current files, so the cache never outgrows the repository.
        inner.entries = seen;
        (manifests, diagnostics)
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
        let first = cache.parse(&snapshot(&[("a.yaml", "1", a), ("b.yaml", "2", b)]), &types);
        assert_eq!(first.0.len(), 2);
        // Same blob id with other content: the cache answers, proving no re-parse happened.
        let cached = cache.parse(
            &snapshot(&[("a.yaml", "1", "not: parsed"), ("b.yaml", "2", b)]),
            &types,
        );
        assert_eq!(cached.0, first.0);
        // A new blob is parsed.
        let broken = cache.parse(
            &snapshot(&[("a.yaml", "3", "a: [unclosed\n"), ("b.yaml", "2", b)]),
            &types,
        );
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
