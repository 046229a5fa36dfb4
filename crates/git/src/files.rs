//! The files of a snapshot, held in shared runs so that a derived snapshot copies only what
//! changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::snapshot::SnapshotFile;

/// Files per run when a list is built whole. A run that grows past twice this is split, an
/// emptied one dropped: runs stay short, so an edit copies little.
const RUN: usize = 128;

/// The manifest files of a [`Snapshot`](crate::Snapshot), sorted by path, readable like a
/// slice (`len`, `iter`, index, [`get`](Self::get) by path).
///
/// Held in runs of about a hundred files that snapshots share: the snapshot of a commit we
/// pushed is its parent's with the changed files replaced ([`PushOutcome::snapshot`]), and
/// it copies only the runs holding them. A commit in a directory of 10,000 files then costs
/// the change, not a copy of 10,000 entries (and of their counted references) and, when the
/// parent's snapshot is dropped, not 10,000 releases. Callers that keep work per file can
/// keep it per run too: a run of one snapshot that is the very run ([`Arc::ptr_eq`]) of
/// another holds the very same files ([`runs`](Self::runs)).
///
/// [`PushOutcome::snapshot`]: crate::PushOutcome::snapshot
#[derive(Clone, Default)]
pub struct SnapshotFiles {
    runs: Vec<Arc<[SnapshotFile]>>,
    /// How many files come before each run.
    starts: Vec<usize>,
    len: usize,
    /// The sum of the files' sizes.
    bytes: u64,
}

impl SnapshotFiles {
    /// How many files.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sum of the files' sizes in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The files in path order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            runs: self.runs.iter(),
            run: [].iter(),
            remaining: self.len,
        }
    }

    /// The file at `path`.
    pub fn get(&self, path: &str) -> Option<&SnapshotFile> {
        // The last run whose first path is not after `path`.
        let run = self
            .runs
            .partition_point(|run| *run[0].path <= *path)
            .checked_sub(1)?;
        let files = &self.runs[run];
        files
            .binary_search_by(|f| (*f.path).cmp(path))
            .ok()
            .map(|i| &files[i])
    }

    /// The runs, in path order; together they are [`iter`](Self::iter).
    pub fn runs(&self) -> &[Arc<[SnapshotFile]>] {
        &self.runs
    }

    /// Replaces, adds (`Some`) or removes (`None`) the file at each path; paths may come in
    /// any order, each at most once. Copies only the runs the paths fall in. `None`, with
    /// `self` as it was, when a path to remove is not here.
    pub fn edit(
        &mut self,
        changes: impl IntoIterator<Item = (String, Option<SnapshotFile>)>,
    ) -> Option<()> {
        let mut touched: BTreeMap<usize, Vec<SnapshotFile>> = BTreeMap::new();
        for (path, new) in changes {
            // The run the path is in or would go in: the last whose first path is not after
            // it, else the first (a new first path).
            let run = self
                .runs
                .partition_point(|run| *run[0].path <= *path)
                .saturating_sub(1);
            let files = touched
                .entry(run)
                .or_insert_with(|| self.runs.get(run).map_or_else(Vec::new, |r| r.to_vec()));
            match (files.binary_search_by(|f| (*f.path).cmp(&path)), new) {
                (Ok(i), Some(file)) => files[i] = file,
                (Err(i), Some(file)) => files.insert(i, file),
                (Ok(i), None) => {
                    files.remove(i);
                }
                (Err(_), None) => return None,
            }
        }
        if touched.is_empty() {
            return Some(());
        }
        let mut runs = Vec::with_capacity(self.runs.len() + touched.len());
        let mut untouched = std::mem::take(&mut self.runs).into_iter().enumerate();
        for (at, files) in touched {
            runs.extend(
                untouched
                    .by_ref()
                    .take_while(|(i, _)| *i < at)
                    .map(|(_, r)| r),
            );
            push_runs(&mut runs, files);
        }
        runs.extend(untouched.map(|(_, r)| r));
        *self = Self::from_runs(runs);
        Some(())
    }

    fn from_runs(runs: Vec<Arc<[SnapshotFile]>>) -> Self {
        let mut starts = Vec::with_capacity(runs.len());
        let mut len = 0;
        let mut bytes = 0;
        for run in &runs {
            starts.push(len);
            len += run.len();
            bytes += run.iter().map(|f| f.size).sum::<u64>();
        }
        Self {
            runs,
            starts,
            len,
            bytes,
        }
    }
}

/// Appends `files` as runs: none when empty, split when long.
fn push_runs(runs: &mut Vec<Arc<[SnapshotFile]>>, files: Vec<SnapshotFile>) {
    if files.len() <= 2 * RUN {
        if !files.is_empty() {
            runs.push(files.into());
        }
        return;
    }
    runs.extend(into_runs(files));
}

/// `files` in runs of [`RUN`], moved (their text is not copied).
fn into_runs(files: Vec<SnapshotFile>) -> impl Iterator<Item = Arc<[SnapshotFile]>> {
    let mut files = files.into_iter().peekable();
    std::iter::from_fn(move || {
        files.peek()?;
        Some(files.by_ref().take(RUN).collect::<Vec<_>>().into())
    })
}

impl From<Vec<SnapshotFile>> for SnapshotFiles {
    /// The files sorted by path (a stable sort: equal paths keep their order).
    fn from(mut files: Vec<SnapshotFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Self::from_runs(into_runs(files).collect())
    }
}

impl FromIterator<SnapshotFile> for SnapshotFiles {
    fn from_iter<I: IntoIterator<Item = SnapshotFile>>(files: I) -> Self {
        files.into_iter().collect::<Vec<_>>().into()
    }
}

impl std::ops::Index<usize> for SnapshotFiles {
    type Output = SnapshotFile;

    fn index(&self, index: usize) -> &SnapshotFile {
        assert!(
            index < self.len,
            "file {index} of a snapshot of {}",
            self.len
        );
        let run = self.starts.partition_point(|&start| start <= index) - 1;
        &self.runs[run][index - self.starts[run]]
    }
}

impl<'a> IntoIterator for &'a SnapshotFiles {
    type Item = &'a SnapshotFile;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl PartialEq for SnapshotFiles {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for SnapshotFiles {}

impl std::fmt::Debug for SnapshotFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The files of a [`SnapshotFiles`] in path order.
#[derive(Clone)]
pub struct Iter<'a> {
    runs: std::slice::Iter<'a, Arc<[SnapshotFile]>>,
    run: std::slice::Iter<'a, SnapshotFile>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a SnapshotFile;

    fn next(&mut self) -> Option<&'a SnapshotFile> {
        loop {
            if let Some(file) = self.run.next() {
                self.remaining -= 1;
                return Some(file);
            }
            self.run = self.runs.next()?.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, blob: &str, size: u64) -> SnapshotFile {
        SnapshotFile {
            path: path.into(),
            blob: blob.into(),
            size,
            content: None,
        }
    }

    fn paths(files: &SnapshotFiles) -> Vec<String> {
        files.iter().map(|f| f.path.to_string()).collect()
    }

    /// What `edit` must equal: the same changes made to a plain sorted list.
    fn edited_plainly(
        files: &[SnapshotFile],
        changes: &[(String, Option<SnapshotFile>)],
    ) -> Option<Vec<SnapshotFile>> {
        let mut files = files.to_vec();
        for (path, new) in changes {
            let at = files.binary_search_by(|f| (*f.path).cmp(path));
            match (at, new) {
                (Ok(i), Some(f)) => files[i] = f.clone(),
                (Err(i), Some(f)) => files.insert(i, f.clone()),
                (Ok(i), None) => {
                    files.remove(i);
                }
                (Err(_), None) => return None,
            }
        }
        Some(files)
    }

    #[test]
    fn reads_like_the_sorted_list_it_was_built_from() {
        let files: Vec<SnapshotFile> = (0..1000)
            .rev()
            .map(|i| file(&format!("d/{i:04}.yaml"), &format!("b{i}"), i))
            .collect();
        let built: SnapshotFiles = files.iter().cloned().collect();
        let mut sorted = files;
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(built.len(), 1000);
        assert!(built.runs().len() > 1, "held in several runs");
        assert_eq!(built.bytes(), (0..1000).sum::<u64>());
        assert!(built.iter().eq(sorted.iter()));
        assert_eq!(built.iter().len(), 1000);
        for (i, f) in sorted.iter().enumerate() {
            assert_eq!(&built[i], f);
            assert_eq!(built.get(&f.path), Some(f));
        }
        assert_eq!(built.get("d/0000.yam"), None);
        assert_eq!(built.get("a"), None);
        assert_eq!(built.get("z"), None);
        assert_eq!(SnapshotFiles::default().get("a"), None);
    }

    #[test]
    fn edits_equal_edits_of_a_plain_list_and_share_the_runs_they_do_not_touch() {
        let base: Vec<SnapshotFile> = (0..1000)
            .map(|i| file(&format!("{:04}.yaml", i * 2), "b", 10))
            .collect();
        let built = SnapshotFiles::from(base.clone());
        // Replace, add (before all, between, after all), remove; and many adds in one run
        // (it splits).
        let mut changes: Vec<(String, Option<SnapshotFile>)> = vec![
            ("0500.yaml".into(), Some(file("0500.yaml", "new", 3))),
            ("0000.yaml".into(), None),
            ("0001.yaml".into(), Some(file("0001.yaml", "add", 5))),
            ("9999.yaml".into(), Some(file("9999.yaml", "add", 5))),
            ("0.yaml".into(), Some(file("0.yaml", "first", 1))),
        ];
        for i in 0..300 {
            let path = format!("1000.{i:03}.yaml");
            changes.push((path.clone(), Some(file(&path, "many", 1))));
        }
        let mut edited = built.clone();
        edited.edit(changes.clone()).unwrap();
        let expected = edited_plainly(&base, &changes).unwrap();
        assert!(edited.iter().eq(expected.iter()), "{:?}", paths(&edited));
        assert_eq!(edited.len(), expected.len());
        assert_eq!(edited.bytes(), expected.iter().map(|f| f.size).sum::<u64>());
        for (i, f) in expected.iter().enumerate() {
            assert_eq!(&edited[i], f);
            assert_eq!(edited.get(&f.path), Some(f));
        }
        assert!(
            edited
                .runs()
                .iter()
                .all(|r| !r.is_empty() && r.len() <= 2 * RUN),
            "runs stay short and none is empty"
        );
        let shared = edited
            .runs()
            .iter()
            .filter(|r| built.runs().iter().any(|b| Arc::ptr_eq(b, r)))
            .count();
        assert!(
            shared >= built.runs().len() - 4,
            "{shared} of {} runs shared",
            built.runs().len()
        );
        // The base is unchanged.
        assert!(built.iter().eq(base.iter()));
    }

    #[test]
    fn removing_what_is_not_there_fails_and_changes_nothing() {
        let built = SnapshotFiles::from(vec![file("a.yaml", "1", 1), file("c.yaml", "1", 1)]);
        let mut edited = built.clone();
        let changes = vec![("a.yaml".to_string(), None), ("b.yaml".to_string(), None)];
        assert!(edited.edit(changes).is_none());
        assert_eq!(edited, built);
    }

    #[test]
    fn every_file_removed_and_added_again() {
        let mut files = SnapshotFiles::from(vec![file("a.yaml", "1", 1)]);
        files.edit([("a.yaml".to_string(), None)]).unwrap();
        assert!(files.is_empty() && files.runs().is_empty() && files.bytes() == 0);
        files
            .edit([("b.yaml".to_string(), Some(file("b.yaml", "2", 2)))])
            .unwrap();
        assert_eq!(paths(&files), ["b.yaml"]);
    }
}
