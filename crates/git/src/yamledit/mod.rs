//! Format-preserving edits of YAML manifests.
//!
//! [`update_document`] changes one document of a (multi-document) YAML file to a new value
//! while keeping everything a person wrote: it computes the structural difference between the
//! document as parsed and the new value and rewrites only the text of what differs —
//! comments, key order, quoting, blank lines, indentation and the other documents stay
//! byte-identical. It works on a presentation tree with byte ranges built from the events of
//! `granit-parser` (the parser behind `serde-saphyr`, which the planner uses), and edits:
//!
//! - a changed scalar in place (keeping its quoting style where the new value allows it,
//!   and block scalars as block scalars);
//! - a mapping entry added (after its predecessor in the new value's key order, at the
//!   mapping's indentation), removed (its lines), or whose value changed kind (re-rendered
//!   at the right indentation);
//! - a sequence with items appended, inserted or removed (their lines), equal-length
//!   sequences item by item, anything else re-rendered as a whole;
//! - flow collections (`{a: b}`, `[x]`) re-rendered in flow style on one line.
//!
//! Every result is verified by parsing it again with `serde-saphyr`: the edited document
//! must read back as exactly the new value and every other document as before. If an edit
//! cannot be made in place (anchors, aliases, merge keys, tags, or a failed verification),
//! that one document is re-rendered as clean block YAML (its leading and trailing comments and
//! the other documents are still kept).
//!
//! Documents are counted like `serde_saphyr::from_multiple` does (the planner's
//! `doc_index`): empty documents (only comments, `~`/`null`, or nothing) are not counted.

mod render;
mod tree;

use serde_json::Value;
use serde_saphyr::granit_parser::ScalarStyle;

use render::Style;
use tree::{Doc, Entry, Item, Kind, Node};

/// Why an edit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The existing text is not valid YAML (or not representable as JSON values).
    #[error("invalid YAML: {0}")]
    Parse(String),
    /// There is no (non-empty) document with this index.
    #[error("no document {index} (the file has {count})")]
    NoSuchDocument {
        /// The index asked for.
        index: usize,
        /// How many documents the file has.
        count: usize,
    },
    /// The edit could not be made (not even by re-rendering the document).
    #[error("cannot write the document: {0}")]
    Unrepresentable(String),
}

/// How a file's documents were changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    /// Only the differing values' text changed.
    InPlace,
    /// The document was re-rendered as a whole (anchors, aliases, tags, merge keys, or text
    /// the in-place editor could not handle).
    Rerendered,
    /// Nothing differed; the text is unchanged.
    Unchanged,
}

/// Renders a new manifest file: clean block YAML, 2-space indentation, keys in the value's
/// order, sequences indented under their key, strings quoted only when needed.
pub fn render_new(value: &Value) -> String {
    render::document(value, Style::default())
}

/// Renders a JSON manifest file (`serde_json` pretty, trailing line break).
pub fn render_json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string());
    s.push('\n');
    s
}

/// Number of documents as the planner counts them (empty documents excluded).
pub fn count_documents(text: &str) -> Result<usize, EditError> {
    Ok(tree::parse(text)?.iter().filter(|d| !d.empty).count())
}

/// Replaces document `doc_index` of `text` with `new`, changing only the lines of the values
/// that differ. See the [module documentation](self).
pub fn update_document(text: &str, doc_index: usize, new: &Value) -> Result<String, EditError> {
    update_document_with_kind(text, doc_index, new).map(|(s, _)| s)
}

/// [`update_document`], also telling whether the edit was made in place.
pub fn update_document_with_kind(
    text: &str,
    doc_index: usize,
    new: &Value,
) -> Result<(String, EditKind), EditError> {
    if let Some(lf) = crlf_to_lf(text) {
        return update_document_with_kind(&lf, doc_index, new).map(|(s, k)| (lf_to_crlf(&s), k));
    }
    let docs = tree::parse(text)?;
    let values = parse_values(text)?;
    let counted: Vec<&Doc> = docs.iter().filter(|d| !d.empty).collect();
    if counted.len() != values.len() {
        return Err(EditError::Parse(format!(
            "document count mismatch ({} vs {})",
            counted.len(),
            values.len()
        )));
    }
    let Some(doc) = counted.get(doc_index) else {
        return Err(EditError::NoSuchDocument {
            index: doc_index,
            count: counted.len(),
        });
    };
    let old = &values[doc_index];
    if values_equal(old, new) {
        return Ok((text.to_string(), EditKind::Unchanged));
    }
    if new.is_null() {
        return Err(EditError::Unrepresentable(
            "a document cannot be replaced by null (remove it instead)".into(),
        ));
    }
    let style = detect_style(&doc.root, text);
    let mut ed = Editor {
        text,
        style,
        edits: Vec::new(),
    };
    let in_place = ed
        .diff(&doc.root, Attach::Root, old, new)
        .ok()
        .and_then(|()| apply(text, &ed.edits))
        .filter(|candidate| verify(candidate, doc_index, new, &values));
    if let Some(out) = in_place {
        return Ok((out, EditKind::InPlace));
    }
    // Re-render this document alone.
    let rendered = render::document(new, style);
    let rendered = rendered.strip_suffix('\n').unwrap_or(&rendered);
    let (start, end) = (doc.root.start, doc.root.end);
    let mut out = String::with_capacity(text.len() + rendered.len());
    out.push_str(&text[..start]);
    if start > 0 && !text[..start].ends_with('\n') && rendered.contains('\n') {
        out.push('\n'); // e.g. `--- a: 1`: put the block on its own lines
    }
    out.push_str(rendered);
    out.push_str(&text[end..]);
    if !text[end..].is_empty() && !text[end..].starts_with(['\n', '\r', ' ']) {
        return Err(EditError::Unrepresentable(
            "unexpected text after the document".into(),
        ));
    }
    if verify(&out, doc_index, new, &values) {
        Ok((out, EditKind::Rerendered))
    } else {
        Err(EditError::Unrepresentable(
            "the re-rendered document does not read back as the new value".into(),
        ))
    }
}

/// Removes document `doc_index` (with its leading comments and `---` marker). Returns `None`
/// if no document is left (the caller deletes the file).
pub fn remove_document(text: &str, doc_index: usize) -> Result<Option<String>, EditError> {
    if let Some(lf) = crlf_to_lf(text) {
        return remove_document(&lf, doc_index).map(|o| o.map(|s| lf_to_crlf(&s)));
    }
    let docs = tree::parse(text)?;
    let counted: Vec<usize> = docs
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.empty)
        .map(|(i, _)| i)
        .collect();
    let Some(&pos) = counted.get(doc_index) else {
        return Err(EditError::NoSuchDocument {
            index: doc_index,
            count: counted.len(),
        });
    };
    if counted.len() == 1 {
        return Ok(None);
    }
    // Segment of document `pos`: from the end of the previous document's last line to the
    // end of its own last line.
    let seg_start = if pos == 0 {
        0
    } else {
        tree::line_end_incl(text, docs[pos - 1].content_end)
    };
    let seg_end = tree::line_end_incl(text, docs[pos].content_end);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..seg_start]);
    let mut rest = &text[seg_end..];
    if pos == 0 {
        // The next document now comes first. Drop its bare `---` line unless the file
        // started with one (then the author writes explicit markers).
        rest = rest.trim_start_matches('\n');
        if !text.starts_with("---") {
            for marker in ["---\n", "---\r\n"] {
                if let Some(r) = rest.strip_prefix(marker) {
                    rest = r;
                    break;
                }
            }
        }
    }
    out.push_str(rest);
    let values = parse_values(&out)?;
    if values.len() != counted.len() - 1 {
        return Err(EditError::Unrepresentable(
            "removing the document changed the others".into(),
        ));
    }
    Ok(Some(out))
}

/// Appends `value` as a new last document of `text` (a `---` separator is added when the
/// file already has documents).
pub fn append_document(text: &str, value: &Value) -> Result<String, EditError> {
    if let Some(lf) = crlf_to_lf(text) {
        return append_document(&lf, value).map(|s| lf_to_crlf(&s));
    }
    let count = count_documents(text)?;
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if count > 0 {
        out.push_str("---\n");
    }
    out.push_str(&render_new(value));
    Ok(out)
}

/// If every line break of `text` is CRLF (and there is one), the text with LF breaks.
fn crlf_to_lf(text: &str) -> Option<String> {
    let crlf = text.matches("\r\n").count();
    (crlf > 0 && crlf == text.matches('\n').count()).then(|| text.replace("\r\n", "\n"))
}

fn lf_to_crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// Parses every non-empty document like the planner does.
pub fn parse_values(text: &str) -> Result<Vec<Value>, EditError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_multiple_with_options::<Value>(text, options)
        .map_err(|e| EditError::Parse(e.to_string()))
}

/// Equality of JSON values where numbers compare by value (`1` equals `1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn verify(candidate: &str, doc_index: usize, new: &Value, old_values: &[Value]) -> bool {
    let Ok(values) = parse_values(candidate) else {
        return false;
    };
    values.len() == old_values.len()
        && values.iter().enumerate().all(|(i, v)| {
            if i == doc_index {
                values_equal(v, new)
            } else {
                values_equal(v, &old_values[i])
            }
        })
}

/// A text replacement: `[start, end)` becomes `text`. Zero-width edits at the same offset
/// are applied in creation order.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply(text: &str, edits: &[Edit]) -> Option<String> {
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (edits[i].start, edits[i].end, i));
    let mut out = String::with_capacity(text.len() + 64);
    let mut pos = 0;
    for i in order {
        let e = &edits[i];
        if e.start < pos || e.end < e.start || e.end > text.len() {
            return None; // overlapping edits: give up on in-place editing
        }
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.text);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

/// How a node hangs in its parent (needed to re-render it at the right place).
#[derive(Debug, Clone, Copy)]
enum Attach {
    Root,
    /// Value of a block (or flow) mapping entry.
    MapValue {
        key_col: usize,
        colon_end: Option<usize>,
    },
    /// Item of a block sequence.
    SeqItem {
        dash: Option<usize>,
    },
}

/// Where a new mapping entry goes.
enum Anchor {
    Before(usize),
    After(usize),
}

/// Marker: the change cannot be made in place.
struct Fallback;

struct Editor<'a> {
    text: &'a str,
    style: Style,
    edits: Vec<Edit>,
}

impl Editor<'_> {
    fn edit(&mut self, start: usize, end: usize, text: String) {
        self.edits.push(Edit { start, end, text });
    }

    fn diff(
        &mut self,
        node: &Node,
        attach: Attach,
        old: &Value,
        new: &Value,
    ) -> Result<(), Fallback> {
        if values_equal(old, new) {
            return Ok(());
        }
        if node.props {
            return Err(Fallback);
        }
        match (&node.kind, old, new) {
            (
                Kind::Map {
                    flow: false,
                    entries,
                },
                Value::Object(o),
                Value::Object(n),
            ) if !n.is_empty() => self.diff_block_map(node, entries, o, n),
            (Kind::Seq { flow: false, items }, Value::Array(o), Value::Array(n))
                if !n.is_empty() =>
            {
                self.diff_block_seq(node, attach, items, o, n)
            }
            (
                Kind::Map {
                    flow: true,
                    entries,
                },
                _,
                Value::Object(n),
            ) if !entries.is_empty() && !n.is_empty() => {
                self.edit(node.start, node.end, render::flow(new));
                Ok(())
            }
            (Kind::Seq { flow: true, items }, _, Value::Array(n))
                if !items.is_empty() && !n.is_empty() =>
            {
                self.edit(node.start, node.end, render::flow(new));
                Ok(())
            }
            (Kind::Scalar { .. }, _, n) if !n.is_object() && !n.is_array() => {
                self.replace_scalar(node, attach, new)
            }
            _ => self.replace_value(node, attach, new),
        }
    }

    fn diff_block_map(
        &mut self,
        node: &Node,
        entries: &[Entry],
        old: &serde_json::Map<String, Value>,
        new: &serde_json::Map<String, Value>,
    ) -> Result<(), Fallback> {
        // Every entry must have a plain key we can match; no duplicates or merge keys.
        let mut keys = Vec::with_capacity(entries.len());
        for e in entries {
            let Some(k) = e.key_text.as_deref() else {
                return Err(Fallback);
            };
            if k == "<<" || keys.contains(&k) || !old.contains_key(k) || e.colon_end.is_none() {
                return Err(Fallback);
            }
            keys.push(k);
        }
        let key_col = tree::col(
            self.text,
            entries.first().map_or(node.start, |e| e.key.start),
        );
        // Changed and removed entries.
        for (i, e) in entries.iter().enumerate() {
            let k = keys[i];
            match new.get(k) {
                Some(v) => {
                    let attach = Attach::MapValue {
                        key_col,
                        colon_end: e.colon_end,
                    };
                    let mark = self.edits.len();
                    if self.diff(&e.value, attach, &old[k], v).is_err() {
                        self.edits.truncate(mark);
                        self.replace_value(&e.value, attach, v)?;
                    }
                }
                None => self.remove_entry(entries, i)?,
            }
        }
        // Added entries. If the keys the text and the new value share appear in the same order
        // in both, the new value's order is meaningful: add each key after its predecessor.
        // Otherwise (e.g. `serde_json` maps are sorted) follow the conventional Kubernetes
        // order: before the first entry of a higher rank, else at the end.
        let shared_text: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| new.contains_key(*k))
            .collect();
        let shared_new: Vec<&str> = new
            .keys()
            .map(String::as_str)
            .filter(|k| keys.contains(k))
            .collect();
        let meaningful = shared_text.len() >= 2 && shared_text == shared_new;
        let added: Vec<(&String, &Value)> = if meaningful {
            new.iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .collect()
        } else {
            render::ordered(new)
                .into_iter()
                .filter(|(k, _)| !keys.contains(&k.as_str()))
                .collect()
        };
        let last = entries.len() - 1;
        for (k, v) in added {
            let anchor = if meaningful {
                let pos = new.keys().position(|x| x == k).unwrap_or(0);
                match new
                    .keys()
                    .take(pos)
                    .filter_map(|p| keys.iter().position(|x| x == p))
                    .next_back()
                {
                    Some(i) => Anchor::After(i),
                    None => Anchor::Before(0),
                }
            } else {
                let rank = render::key_rank(k);
                match keys.iter().position(|x| render::key_rank(x) > rank) {
                    Some(i) => Anchor::Before(i),
                    None => Anchor::After(last),
                }
            };
            let anchor = match anchor {
                Anchor::Before(i) if !tree::first_on_line(self.text, entries[i].key.start) => {
                    Anchor::After(last)
                }
                a => a,
            };
            let line = format!(
                "{}{}:{}",
                " ".repeat(key_col),
                render::key(k),
                render::after_indicator(
                    v,
                    key_col + self.style.step,
                    self.seq_indent(key_col),
                    self.style
                )
            );
            match anchor {
                Anchor::Before(i) => {
                    let at = tree::line_start(self.text, entries[i].key.start);
                    self.edit(at, at, format!("{line}\n"));
                }
                Anchor::After(i) => {
                    let at = tree::line_end(self.text, entry_end(&entries[i]));
                    self.edit(at, at, format!("\n{line}"));
                }
            }
        }
        Ok(())
    }

    fn remove_entry(&mut self, entries: &[Entry], i: usize) -> Result<(), Fallback> {
        let e = &entries[i];
        if tree::first_on_line(self.text, e.key.start) {
            let start = tree::line_start(self.text, e.key.start);
            let end = tree::line_end_incl(self.text, entry_end(e));
            self.edit(start, end, String::new());
            Ok(())
        } else if let Some(next) = entries.get(i + 1) {
            // First entry of a mapping that starts after `- `: pull the next key up.
            self.edit(e.key.start, next.key.start, String::new());
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    fn diff_block_seq(
        &mut self,
        node: &Node,
        attach: Attach,
        items: &[Item],
        old: &[Value],
        new: &[Value],
    ) -> Result<(), Fallback> {
        let whole = |ed: &mut Self| ed.replace_value(node, attach, &Value::Array(new.to_vec()));
        if items.len() != old.len() || items.iter().any(|i| i.dash.is_none()) {
            return whole(self);
        }
        if old.len() == new.len() {
            // Same length: pair items by position.
            let pairs: Vec<(usize, usize)> = (0..old.len()).map(|i| (i, i)).collect();
            return self.diff_seq_pairs(items, old, new, &pairs);
        }
        let all_first = items
            .iter()
            .all(|i| i.dash.is_some_and(|d| tree::first_on_line(self.text, d)));
        if !all_first {
            return whole(self);
        }
        // Align old and new items: equal values, or mappings with the same `name` (the list
        // key of most Kubernetes lists: containers, env, ports, volumes, ...). Unmatched runs
        // of equal length in between are paired by position; the rest is removed/inserted.
        let matched = align(old, new);
        let mut pairs = Vec::new();
        let mut removed = Vec::new();
        let mut inserted: Vec<(usize, usize)> = Vec::new(); // (new index, insert before old index)
        let (mut oi, mut ni) = (0, 0);
        for &(mo, mn) in matched
            .iter()
            .chain(std::iter::once(&(old.len(), new.len())))
        {
            let (gap_old, gap_new) = (mo - oi, mn - ni);
            if gap_old == gap_new {
                pairs.extend((0..gap_old).map(|k| (oi + k, ni + k)));
            } else {
                removed.extend(oi..mo);
                inserted.extend((ni..mn).map(|n| (n, mo)));
            }
            if mo < old.len() {
                pairs.push((mo, mn));
            }
            (oi, ni) = (mo + 1, mn + 1);
        }
        self.diff_seq_pairs(items, old, new, &pairs)?;
        let dash_col = tree::col(self.text, items[0].dash.unwrap_or(node.start));
        for i in removed {
            let start = tree::line_start(self.text, items[i].dash.unwrap_or(0));
            let end = tree::line_end_incl(self.text, items[i].value.end);
            self.edit(start, end, String::new());
        }
        for (n, before) in inserted {
            let line = format!(
                "{}-{}",
                " ".repeat(dash_col),
                render::item_body(&new[n], dash_col, self.style)
            );
            if before < items.len() {
                let at = tree::line_start(self.text, items[before].dash.unwrap_or(0));
                self.edit(at, at, format!("{line}\n"));
            } else {
                let at = tree::line_end(self.text, items[items.len() - 1].value.end);
                self.edit(at, at, format!("\n{line}"));
            }
        }
        Ok(())
    }

    fn diff_seq_pairs(
        &mut self,
        items: &[Item],
        old: &[Value],
        new: &[Value],
        pairs: &[(usize, usize)],
    ) -> Result<(), Fallback> {
        for &(o, n) in pairs {
            let item = &items[o];
            let attach = Attach::SeqItem { dash: item.dash };
            let mark = self.edits.len();
            if self.diff(&item.value, attach, &old[o], &new[n]).is_err() {
                self.edits.truncate(mark);
                self.replace_value(&item.value, attach, &new[n])?;
            }
        }
        Ok(())
    }

    fn seq_indent(&self, key_col: usize) -> usize {
        if self.style.indentless_seq {
            key_col
        } else {
            key_col + self.style.step
        }
    }

    /// Replaces a scalar's text by `new` (a scalar), keeping its quoting style if possible.
    fn replace_scalar(&mut self, node: &Node, attach: Attach, new: &Value) -> Result<(), Fallback> {
        let Kind::Scalar {
            style,
            implicit_null,
            ..
        } = &node.kind
        else {
            return Err(Fallback);
        };
        let text = match new {
            Value::String(s) => match style {
                ScalarStyle::DoubleQuoted => render::double_quoted(s),
                ScalarStyle::SingleQuoted => {
                    render::single_quoted(s).unwrap_or_else(|| render::double_quoted(s))
                }
                ScalarStyle::Literal | ScalarStyle::Folded if render::wants_literal(s) => {
                    let indent = self.block_content_indent(node, attach);
                    render::literal(s, indent)
                }
                _ if render::wants_literal(s) && *implicit_null => return Err(Fallback),
                _ => render::inline_scalar(new),
            },
            other => render::inline_scalar(other),
        };
        if *implicit_null {
            // `key:` with nothing after it.
            self.edit(node.start, node.end, format!(" {text}"));
        } else {
            self.edit(node.start, node.end, text);
        }
        Ok(())
    }

    /// Column of a block scalar's content lines (keep the existing indentation).
    fn block_content_indent(&self, node: &Node, attach: Attach) -> usize {
        let header_end = tree::line_end_incl(self.text, node.start);
        let rest = &self.text[header_end.min(self.text.len())..node.end.max(header_end)];
        rest.lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches(' ').len())
            .unwrap_or_else(|| match attach {
                Attach::MapValue { key_col, .. } => key_col + self.style.step,
                Attach::SeqItem { dash } => dash.map_or(2, |d| tree::col(self.text, d) + 2),
                Attach::Root => self.style.step,
            })
    }

    /// Re-renders a whole value (kind changed, or a collection that cannot be edited piecewise).
    fn replace_value(&mut self, node: &Node, attach: Attach, new: &Value) -> Result<(), Fallback> {
        match attach {
            Attach::MapValue { key_col, colon_end } => {
                let colon_end = colon_end.ok_or(Fallback)?;
                let text = render::after_indicator(
                    new,
                    key_col + self.style.step,
                    self.seq_indent(key_col),
                    self.style,
                );
                self.edit(colon_end, node.end.max(colon_end), text);
                Ok(())
            }
            Attach::SeqItem { dash } => {
                let dash = dash.ok_or(Fallback)?;
                let dash_col = tree::col(self.text, dash);
                let text = render::item_body(new, dash_col, self.style);
                self.edit(dash + 1, node.end.max(dash + 1), text);
                Ok(())
            }
            Attach::Root => Err(Fallback),
        }
    }
}

/// End offset of an entry's text (its value's end, or the key's if the value is empty).
fn entry_end(e: &Entry) -> usize {
    e.value.end.max(e.key.end).max(e.colon_end.unwrap_or(0))
}

/// The identity of a sequence item for alignment: a mapping's `name`.
fn item_name(v: &Value) -> Option<&str> {
    v.as_object()?.get("name")?.as_str()
}

/// Longest common subsequence of `old` and `new` where items match if equal or if both are
/// mappings with the same `name`: the matched (old, new) index pairs, increasing.
fn align(old: &[Value], new: &[Value]) -> Vec<(usize, usize)> {
    let same = |a: &Value, b: &Value| {
        values_equal(a, b) || matches!((item_name(a), item_name(b)), (Some(x), Some(y)) if x == y)
    };
    let (n, m) = (old.len(), new.len());
    let mut dp = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            dp[i][j] = if same(&old[i], &new[j]) {
                dp[i + 1][j + 1] + 1
            } else {
                dp[i + 1][j].max(dp[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if same(&old[i], &new[j]) && dp[i][j] == dp[i + 1][j + 1] + 1 {
            out.push((i, j));
            i += 1;
            j += 1;
        } else if dp[i + 1][j] >= dp[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Detects the indentation step and sequence style of an existing document.
fn detect_style(root: &Node, text: &str) -> Style {
    let mut style = Style::default();
    let mut found_step = false;
    let mut found_seq = false;
    fn walk(n: &Node, text: &str, style: &mut Style, found_step: &mut bool, found_seq: &mut bool) {
        if *found_step && *found_seq {
            return;
        }
        match &n.kind {
            Kind::Map {
                flow: false,
                entries,
            } => {
                for e in entries {
                    let kc = tree::col(text, e.key.start);
                    match &e.value.kind {
                        Kind::Map {
                            flow: false,
                            entries: child,
                        } if !*found_step => {
                            if let Some(c) = child.first() {
                                let cc = tree::col(text, c.key.start);
                                if cc > kc && tree::first_on_line(text, c.key.start) {
                                    style.step = cc - kc;
                                    *found_step = true;
                                }
                            }
                        }
                        Kind::Seq { flow: false, items } if !*found_seq => {
                            if let Some(d) = items.first().and_then(|i| i.dash)
                                && tree::first_on_line(text, d)
                            {
                                style.indentless_seq = tree::col(text, d) == kc;
                                *found_seq = true;
                            }
                        }
                        _ => {}
                    }
                    walk(&e.value, text, style, found_step, found_seq);
                }
            }
            Kind::Seq { items, .. } => {
                for i in items {
                    walk(&i.value, text, style, found_step, found_seq);
                }
            }
            _ => {}
        }
    }
    walk(root, text, &mut style, &mut found_step, &mut found_seq);
    style
}

#[cfg(test)]
mod tests;
