//! A presentation tree of a YAML stream: every node with its byte range in the source, built
//! from the events (with spans) of `granit-parser`, the parser `serde-saphyr` uses.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StructureStyle};

use super::EditError;

/// A node of the presentation tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Byte offset where the node's text starts (block scalars: at the `|`/`>` indicator;
    /// implicit null: where the value would be).
    pub start: usize,
    /// Byte offset just after the node's last content character.
    pub end: usize,
    /// The node carries an anchor or a tag, or is an alias: never edited in place.
    pub props: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar {
        style: ScalarStyle,
        value: String,
        /// An implicit (empty) null: no text at all.
        implicit_null: bool,
    },
    Map {
        flow: bool,
        entries: Vec<Entry>,
    },
    Seq {
        flow: bool,
        items: Vec<Item>,
    },
    Alias,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Node,
    /// The key as a string (scalar keys only; complex keys make the entry opaque).
    pub key_text: Option<String>,
    /// Byte offset just after the `:` that follows the key, if found.
    pub colon_end: Option<usize>,
    pub value: Node,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Byte offset of the `-` (block sequences), if found.
    pub dash: Option<usize>,
    pub value: Node,
}

/// One document of the stream.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// The root node.
    pub root: Node,
    /// Whether `serde_saphyr::from_multiple` skips this document (empty or null root).
    pub empty: bool,
    /// Byte offset just after the document's content (or after its `...` end marker).
    pub content_end: usize,
}

struct Builder<'a> {
    text: &'a str,
    events: std::iter::Peekable<std::vec::IntoIter<(Event<'a>, Span)>>,
}

fn off(m: &serde_saphyr::granit_parser::Marker, text: &str) -> usize {
    m.byte_offset().unwrap_or_else(|| {
        text.char_indices()
            .nth(m.index())
            .map_or(text.len(), |(i, _)| i)
    })
}

/// Parses `text` into documents.
pub(crate) fn parse(text: &str) -> Result<Vec<Doc>, EditError> {
    let mut events = Vec::new();
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| EditError::Parse(e.to_string()))?;
        match ev {
            Event::Comment(..) | Event::Anchor(..) => {}
            other => events.push((other, span)),
        }
    }
    let mut b = Builder {
        text,
        events: events.into_iter().peekable(),
    };
    let mut docs = Vec::new();
    while let Some((ev, _)) = b.events.next() {
        match ev {
            Event::StreamStart => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                let root = b.node()?;
                let mut content_end = root.end;
                match b.events.next() {
                    Some((Event::DocumentEnd, span)) => {
                        let (s, e) = (off(&span.start, text), off(&span.end, text));
                        if e > s {
                            content_end = e; // explicit `...`
                        }
                    }
                    other => {
                        return Err(EditError::Parse(format!(
                            "unexpected event after document root: {other:?}"
                        )));
                    }
                }
                let empty = match &root.kind {
                    Kind::Scalar {
                        style: ScalarStyle::Plain,
                        value,
                        ..
                    } => {
                        !root.props && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
                    }
                    _ => false,
                };
                docs.push(Doc {
                    root,
                    empty,
                    content_end,
                });
            }
            other => {
                return Err(EditError::Parse(format!("unexpected event {other:?}")));
            }
        }
    }
    Ok(docs)
}

impl<'a> Builder<'a> {
    fn node(&mut self) -> Result<Node, EditError> {
        let text = self.text;
        let Some((ev, span)) = self.events.next() else {
            return Err(EditError::Parse("unexpected end of events".into()));
        };
        let start = off(&span.start, text);
        let end = off(&span.end, text);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let props = anchor != 0 || tag.is_some() || span.tag_start.is_some();
                let value = value.into_owned();
                let implicit_null = start == end;
                let (start, end) = match style {
                    ScalarStyle::Literal | ScalarStyle::Folded => (
                        block_indicator(text, start).unwrap_or(start),
                        trim_end(text, start, end),
                    ),
                    _ => (start, end),
                };
                Ok(Node {
                    kind: Kind::Scalar {
                        style,
                        value,
                        implicit_null,
                    },
                    start,
                    end,
                    props,
                })
            }
            Event::Alias(_) => Ok(Node {
                kind: Kind::Alias,
                start,
                end,
                props: true,
            }),
            Event::MappingStart(style, anchor, tag) => {
                let props = anchor != 0 || tag.is_some();
                let flow = style == StructureStyle::Flow;
                let mut entries = Vec::new();
                let close_end = loop {
                    if let Some((Event::MappingEnd, s)) = self.events.peek() {
                        let e = off(&s.end, text);
                        self.events.next();
                        break e;
                    }
                    let key = self.node()?;
                    let key_text = match &key.kind {
                        Kind::Scalar { value, .. } if !key.props => Some(value.clone()),
                        _ => None,
                    };
                    let colon_end = find_colon(text, key.end);
                    let mut value = self.node()?;
                    if let (
                        Kind::Scalar {
                            implicit_null: true,
                            ..
                        },
                        Some(c),
                    ) = (&value.kind, colon_end)
                    {
                        value.start = c;
                        value.end = c;
                    }
                    entries.push(Entry {
                        key,
                        key_text,
                        colon_end,
                        value,
                    });
                };
                let end = if flow {
                    close_end
                } else {
                    entries.last().map_or(start, |e| e.value.end.max(e.key.end))
                };
                Ok(Node {
                    kind: Kind::Map { flow, entries },
                    start,
                    end,
                    props,
                })
            }
            Event::SequenceStart(style, anchor, tag) => {
                let props = anchor != 0 || tag.is_some();
                let flow = style == StructureStyle::Flow;
                let mut items = Vec::new();
                let close_end = loop {
                    if let Some((Event::SequenceEnd, s)) = self.events.peek() {
                        let e = off(&s.end, text);
                        self.events.next();
                        break e;
                    }
                    let mut value = self.node()?;
                    let dash = if flow {
                        None
                    } else {
                        find_dash(text, value.start)
                    };
                    if let (
                        Kind::Scalar {
                            implicit_null: true,
                            ..
                        },
                        Some(d),
                    ) = (&value.kind, dash)
                    {
                        value.start = d + 1;
                        value.end = d + 1;
                    }
                    items.push(Item { dash, value });
                };
                let (start, end) = if flow {
                    (start, close_end)
                } else {
                    let s = items.first().and_then(|i| i.dash).unwrap_or(start);
                    (s, items.last().map_or(start, |i| i.value.end))
                };
                Ok(Node {
                    kind: Kind::Seq { flow, items },
                    start,
                    end,
                    props,
                })
            }
            other => Err(EditError::Parse(format!("unexpected event {other:?}"))),
        }
    }
}

/// Offset just after the `:` that follows a key ending at `key_end` (spaces may precede it).
fn find_colon(text: &str, key_end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = key_end;
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    (i < bytes.len() && bytes[i] == b':').then_some(i + 1)
}

/// Offset of the `-` that introduces a block sequence item whose node starts at `start`.
fn find_dash(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = start.min(bytes.len());
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b'-' => return Some(i),
            _ => return None,
        }
    }
    None
}

/// Offset of the `|` or `>` header of a block scalar whose content starts at `content`.
fn block_indicator(text: &str, content: usize) -> Option<usize> {
    // Walk back over the content's own line start and blank lines to the header line.
    let mut line_start = text[..content].rfind('\n').map_or(0, |i| i + 1);
    loop {
        if line_start == 0 {
            return None;
        }
        let prev_end = line_start - 1; // the '\n'
        let prev_start = text[..prev_end].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[prev_start..prev_end];
        if line.trim().is_empty() {
            line_start = prev_start;
            continue;
        }
        // Cut a trailing comment (`#` preceded by whitespace).
        let mut body = line;
        if let Some(i) = line
            .char_indices()
            .find(|&(i, c)| c == '#' && i > 0 && line[..i].ends_with([' ', '\t']))
            .map(|(i, _)| i)
        {
            body = &line[..i];
        }
        let body = body.trim_end();
        let pos = body.rfind(['|', '>'])?;
        // Only chomping / indentation indicators may follow.
        if body[pos + 1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit())
        {
            return Some(prev_start + pos);
        }
        return None;
    }
}

/// Trims trailing whitespace and line breaks from `[start, end)`.
fn trim_end(text: &str, start: usize, end: usize) -> usize {
    let s = &text[start..end.min(text.len())];
    start + s.trim_end_matches([' ', '\t', '\n', '\r']).len()
}

/// Start of the line containing `pos`.
pub(crate) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Offset of the line break ending the line that contains `pos` (or the text's end).
pub(crate) fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i)
}

/// Offset just after the line break ending the line that contains `pos`.
pub(crate) fn line_end_incl(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

/// Column (in bytes) of `pos` in its line.
pub(crate) fn col(text: &str, pos: usize) -> usize {
    pos - line_start(text, pos)
}

/// Whether only spaces precede `pos` on its line.
pub(crate) fn first_on_line(text: &str, pos: usize) -> bool {
    text[line_start(text, pos)..pos].bytes().all(|b| b == b' ')
}
