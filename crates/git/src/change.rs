//! File changes and how they turn an existing file's text into the new text.

use serde_json::Value;

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::paths::{is_json_path, is_manifest_path, join, normalize_relative};
use crate::yamledit::{self, EditError};

/// One change to a manifest file, relative to `spec.path`. A list of them (the output of the
/// `derive` callback of [`Repository::commit_and_push`](crate::Repository::commit_and_push))
/// becomes one commit.
///
/// Document indices count documents the way `serde_saphyr::from_multiple` returns them
/// (empty documents are not counted), as the planner's `doc_index` does, and always refer to
/// the file as it is in the snapshot passed to `derive` (several changes to one file are
/// applied consistently).
#[derive(Debug, Clone, PartialEq)]
pub enum FileChange {
    /// Write `object` into `path`.
    ///
    /// - `doc_index: Some(i)`: replace document `i` of the existing file, editing only the
    ///   lines of the values that differ (comments, order, quoting, other documents kept).
    /// - `doc_index: None`: create the file (clean block YAML, or pretty JSON for `.json`);
    ///   if it exists with exactly one document, replace that document (format-preserving);
    ///   if it exists with no document (only comments), add the document. Several `None`
    ///   puts for the same new path make one multi-document file, in order.
    Put {
        /// File path relative to `spec.path` (`.yaml`, `.yml` or `.json`).
        path: String,
        /// Which document to replace (see above).
        doc_index: Option<usize>,
        /// The object to write (a JSON object, not null).
        object: Value,
        /// What the commit message calls it, e.g. `apps/Deployment default/web`.
        subject: String,
    },
    /// Remove document `doc_index` from `path` (with its leading comments and `---`); the file
    /// is deleted when no document is left. For `.json` files (one document) the file is
    /// deleted.
    Remove {
        /// File path relative to `spec.path`.
        path: String,
        /// Which document to remove.
        doc_index: usize,
        /// What the commit message calls it.
        subject: String,
    },
}

impl FileChange {
    /// The path (relative to `spec.path`).
    pub fn path(&self) -> &str {
        match self {
            FileChange::Put { path, .. } | FileChange::Remove { path, .. } => path,
        }
    }

    /// The subject for the commit message.
    pub fn subject(&self) -> &str {
        match self {
            FileChange::Put { subject, .. } | FileChange::Remove { subject, .. } => subject,
        }
    }
}

/// What a change did, for the commit message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Add,
    Update,
    Remove,
}

impl Verb {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Add => "add",
            Verb::Update => "update",
            Verb::Remove => "remove",
        }
    }
}

/// The outcome of applying a file's changes.
#[derive(Debug)]
pub(crate) struct FileOutcome {
    /// New content; `None` deletes the file.
    pub content: Option<String>,
    /// Changes that altered something: (verb, subject).
    pub effective: Vec<(Verb, String)>,
}

fn parse_err(path: &str, e: EditError) -> Error {
    match e {
        EditError::NoSuchDocument { .. } => Error::Conflict(format!("{path}: {e}")),
        other => Error::Parse {
            path: path.to_string(),
            message: other.to_string(),
        },
    }
}

/// Applies every change for one file (`full_path` only for messages) to its current text.
pub(crate) fn apply_file(
    full_path: &str,
    current: Option<&str>,
    changes: &[&FileChange],
) -> Result<FileOutcome> {
    for c in changes {
        if let FileChange::Put { object, .. } = c
            && !object.is_object()
        {
            return Err(Error::Parse {
                path: full_path.to_string(),
                message: "a manifest must be a mapping (JSON object)".into(),
            });
        }
    }
    if is_json_path(full_path) {
        apply_json(full_path, current, changes)
    } else {
        apply_yaml(full_path, current, changes)
    }
}

fn apply_json(path: &str, current: Option<&str>, changes: &[&FileChange]) -> Result<FileOutcome> {
    let mut content = current.map(str::to_string);
    let mut effective = Vec::new();
    let existing: Option<Value> = match current {
        Some(t) if !t.trim().is_empty() => {
            Some(serde_json::from_str(t).map_err(|e| Error::Parse {
                path: path.to_string(),
                message: format!("invalid JSON: {e}"),
            })?)
        }
        _ => None,
    };
    for c in changes {
        match c {
            FileChange::Put {
                doc_index,
                object,
                subject,
                ..
            } => {
                if doc_index.is_some_and(|i| i != 0) {
                    return Err(Error::Conflict(format!(
                        "{path}: a JSON file has only document 0"
                    )));
                }
                if doc_index.is_some() && existing.is_none() {
                    return Err(Error::Conflict(format!("{path}: no document 0 to replace")));
                }
                if existing
                    .as_ref()
                    .is_some_and(|e| yamledit::values_equal(e, object))
                {
                    continue;
                }
                let verb = if current.is_some() {
                    Verb::Update
                } else {
                    Verb::Add
                };
                content = Some(yamledit::render_json(object));
                effective.push((verb, subject.clone()));
            }
            FileChange::Remove {
                doc_index, subject, ..
            } => {
                if *doc_index != 0 || current.is_none() {
                    return Err(Error::Conflict(format!(
                        "{path}: no document {doc_index} to remove"
                    )));
                }
                content = None;
                effective.push((Verb::Remove, subject.clone()));
            }
        }
    }
    Ok(FileOutcome { content, effective })
}

fn apply_yaml(path: &str, current: Option<&str>, changes: &[&FileChange]) -> Result<FileOutcome> {
    let mut effective = Vec::new();
    let Some(original) = current else {
        // New file: every change must be a Put without index.
        let mut text = String::new();
        for c in changes {
            match c {
                FileChange::Put {
                    doc_index: None,
                    object,
                    subject,
                    ..
                } => {
                    text =
                        yamledit::append_document(&text, object).map_err(|e| parse_err(path, e))?;
                    effective.push((Verb::Add, subject.clone()));
                }
                FileChange::Put {
                    doc_index: Some(i), ..
                }
                | FileChange::Remove { doc_index: i, .. } => {
                    return Err(Error::Conflict(format!(
                        "{path}: no document {i} (the file does not exist)"
                    )));
                }
            }
        }
        return Ok(FileOutcome {
            content: Some(text),
            effective,
        });
    };
    let count = yamledit::count_documents(original).map_err(|e| parse_err(path, e))?;
    // Resolve indices against the original, then apply: updates, removals from the last
    // document backwards, appends.
    let mut updates: Vec<(usize, &Value, &str)> = Vec::new();
    let mut removals: Vec<(usize, &str)> = Vec::new();
    let mut appends: Vec<(&Value, &str)> = Vec::new();
    for c in changes {
        match c {
            FileChange::Put {
                doc_index: Some(i),
                object,
                subject,
                ..
            } => updates.push((*i, object, subject)),
            FileChange::Put {
                doc_index: None,
                object,
                subject,
                ..
            } => match count {
                0 => appends.push((object, subject)),
                1 if appends.is_empty() && !updates.iter().any(|u| u.0 == 0) => {
                    updates.push((0, object, subject))
                }
                _ => {
                    return Err(Error::Conflict(format!(
                        "{path}: exists with {count} document(s); a new object needs a document index or another file"
                    )));
                }
            },
            FileChange::Remove {
                doc_index, subject, ..
            } => removals.push((*doc_index, subject)),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for i in updates
        .iter()
        .map(|u| u.0)
        .chain(removals.iter().map(|r| r.0))
    {
        if i >= count {
            return Err(Error::Conflict(format!(
                "{path}: no document {i} (the file has {count})"
            )));
        }
        if !seen.insert(i) {
            return Err(Error::Conflict(format!(
                "{path}: several changes for document {i}"
            )));
        }
    }
    let mut text = original.to_string();
    for (i, object, subject) in updates {
        let (new, kind) = yamledit::update_document_with_kind(&text, i, object)
            .map_err(|e| parse_err(path, e))?;
        if kind == yamledit::EditKind::Rerendered {
            tracing::info!(
                path,
                doc_index = i,
                "document re-rendered (could not edit it in place)"
            );
        }
        if new != text {
            effective.push((Verb::Update, subject.to_string()));
            text = new;
        }
    }
    removals.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut deleted = false;
    for (i, subject) in removals {
        match yamledit::remove_document(&text, i).map_err(|e| parse_err(path, e))? {
            Some(t) => text = t,
            None => deleted = true,
        }
        effective.push((Verb::Remove, subject.to_string()));
    }
    if deleted {
        if appends.is_empty() {
            return Ok(FileOutcome {
                content: None,
                effective,
            });
        }
        text.clear();
    }
    for (object, subject) in appends {
        text = yamledit::append_document(&text, object).map_err(|e| parse_err(path, e))?;
        effective.push((Verb::Add, subject.to_string()));
    }
    Ok(FileOutcome {
        content: Some(text),
        effective,
    })
}

/// One file's text before and after a list of [`FileChange`]s: exactly what a commit built
/// from those changes would contain for that file (see [`edit_files`](crate::edit_files)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// Path relative to `spec.path`.
    pub path: String,
    /// The text before; `None` when the file does not exist yet.
    pub old: Option<String>,
    /// The text after; `None` when the change deletes the file.
    pub new: Option<String>,
    /// The changes that altered something, for the commit message.
    pub(crate) effective: Vec<(Verb, String)>,
}

/// The edits `changes` make: `current(path)` reads a file's text (path relative to `root`,
/// i.e. `spec.path`); `root` only names files in error messages. Paths are validated (relative,
/// no `..`/`.git`, a manifest extension); files whose text does not change are left out.
pub(crate) fn edit_files_with(
    root: &str,
    changes: &[FileChange],
    mut current: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<Vec<FileEdit>> {
    // Group by path, keeping the order in which paths first appear.
    let mut by_path: BTreeMap<String, Vec<&FileChange>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for change in changes {
        let path = normalize_relative(change.path(), false)?;
        if !is_manifest_path(&path) {
            return Err(Error::invalid_path(
                change.path(),
                "only .yaml, .yml and .json files are written",
            ));
        }
        if !by_path.contains_key(&path) {
            order.push(path.clone());
        }
        by_path.entry(path).or_default().push(change);
    }
    let mut edits = Vec::new();
    for path in order {
        let old = current(&path)?;
        let outcome = apply_file(&join(root, &path), old.as_deref(), &by_path[&path])?;
        if outcome.content == old {
            continue;
        }
        edits.push(FileEdit {
            path,
            old,
            new: outcome.content,
            effective: outcome.effective,
        });
    }
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(path: &str, i: Option<usize>, v: Value) -> FileChange {
        FileChange::Put {
            path: path.into(),
            doc_index: i,
            object: v,
            subject: format!("s-{path}-{i:?}"),
        }
    }

    fn rm(path: &str, i: usize) -> FileChange {
        FileChange::Remove {
            path: path.into(),
            doc_index: i,
            subject: format!("rm-{path}-{i}"),
        }
    }

    #[test]
    fn new_files() {
        let a = put("a.yaml", None, json!({"kind": "A"}));
        let b = put("a.yaml", None, json!({"kind": "B"}));
        let out = apply_file("a.yaml", None, &[&a, &b]).unwrap();
        assert_eq!(out.content.unwrap(), "kind: A\n---\nkind: B\n");
        let j = put("a.json", None, json!({"kind": "A"}));
        let out = apply_file("a.json", None, &[&j]).unwrap();
        assert_eq!(out.content.unwrap(), "{\n  \"kind\": \"A\"\n}\n");
        let bad = put("a.yaml", Some(0), json!({}));
        assert_eq!(
            apply_file("a.yaml", None, &[&bad]).unwrap_err().category(),
            "conflict"
        );
    }

    #[test]
    fn multi_document_indices_refer_to_original() {
        let text = "a: 1\n---\nb: 2\n---\nc: 3\n---\nd: 4\n";
        let ch = [
            rm("f.yaml", 1),
            put("f.yaml", Some(3), json!({"d": 5})),
            rm("f.yaml", 0),
        ];
        let refs: Vec<&FileChange> = ch.iter().collect();
        let out = apply_file("f.yaml", Some(text), &refs).unwrap();
        assert_eq!(out.content.unwrap(), "c: 3\n---\nd: 5\n");
        assert_eq!(out.effective.len(), 3);
        let all = [rm("f.yaml", 0)];
        let out = apply_file("f.yaml", Some("a: 1\n"), &[&all[0]]).unwrap();
        assert!(out.content.is_none());
        let dup = [rm("f.yaml", 0), put("f.yaml", Some(0), json!({}))];
        assert_eq!(
            apply_file("f.yaml", Some(text), &[&dup[0], &dup[1]])
                .unwrap_err()
                .category(),
            "conflict"
        );
    }

    #[test]
    fn none_index_replaces_only_document_or_conflicts() {
        let p = put("f.yaml", None, json!({"a": 2}));
        let out = apply_file("f.yaml", Some("# c\na: 1 # keep\n"), &[&p]).unwrap();
        assert_eq!(out.content.unwrap(), "# c\na: 2 # keep\n");
        assert_eq!(
            apply_file("f.yaml", Some("a: 1\n---\nb: 1\n"), &[&p])
                .unwrap_err()
                .category(),
            "conflict"
        );
        let out = apply_file("f.yaml", Some("# only comments\n"), &[&p]).unwrap();
        assert_eq!(out.content.unwrap(), "# only comments\na: 2\n");
        // Same object: no effective change.
        let same = put("f.yaml", None, json!({"a": 1}));
        let out = apply_file("f.yaml", Some("a: 1\n"), &[&same]).unwrap();
        assert!(out.effective.is_empty());
    }

    #[test]
    fn invalid_inputs() {
        let p = put("f.yaml", Some(0), json!([1]));
        assert_eq!(
            apply_file("f.yaml", Some("a: 1\n"), &[&p])
                .unwrap_err()
                .category(),
            "parse"
        );
        let p = put("f.yaml", Some(0), json!({"a": 1}));
        assert_eq!(
            apply_file("f.yaml", Some("a: [\n"), &[&p])
                .unwrap_err()
                .category(),
            "parse"
        );
    }
}
