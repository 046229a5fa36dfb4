//! JSON pointers (RFC 6901).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A JSON pointer (RFC 6901), stored as its unescaped reference tokens.
///
/// `""` is the whole document; every other pointer starts with `/`. Inside a token `~1` stands
/// for `/` and `~0` for `~`. Note that `/` is *not* the root: it names the member whose key is
/// the empty string.
///
/// Pointers order by their tokens, so a pointer sorts directly before the pointers below it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pointer {
    tokens: Vec<String>,
}

/// Why a string is not a JSON pointer, or why [`Pointer::set`] could not write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// A non-empty pointer must start with `/`.
    #[error("JSON pointer {0:?} must be empty or start with '/'")]
    MissingSlash(String),
    /// `~` must be followed by `0` or `1`.
    #[error("JSON pointer {0:?} has a '~' that is not followed by '0' or '1'")]
    BadEscape(String),
    /// [`Pointer::set`] met a value that is neither an object nor an array on the way.
    #[error("cannot set {pointer}: {at} is not an object or array")]
    NotAContainer {
        /// The pointer being written.
        pointer: String,
        /// The prefix that names a scalar.
        at: String,
    },
    /// [`Pointer::set`] met an array and a token that is not a valid index (or `-`).
    #[error("cannot set {pointer}: {token:?} is not a valid index into the array at {at}")]
    BadIndex {
        /// The pointer being written.
        pointer: String,
        /// The prefix that names the array.
        at: String,
        /// The offending token.
        token: String,
    },
}

impl Pointer {
    /// The pointer to the whole document (`""`).
    pub fn root() -> Self {
        Pointer::default()
    }

    /// Parses an RFC 6901 pointer.
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        if text.is_empty() {
            return Ok(Pointer::root());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(PointerError::MissingSlash(text.to_owned()));
        };
        let tokens = rest
            .split('/')
            .map(|raw| unescape(raw).ok_or_else(|| PointerError::BadEscape(text.to_owned())))
            .collect::<Result<_, _>>()?;
        Ok(Pointer { tokens })
    }

    /// Builds a pointer from unescaped tokens.
    pub fn from_tokens<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Pointer {
            tokens: tokens.into_iter().map(Into::into).collect(),
        }
    }

    /// The unescaped reference tokens.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// True for the whole-document pointer `""`.
    pub fn is_root(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Appends one (unescaped) token.
    pub fn push(&mut self, token: impl Into<String>) {
        self.tokens.push(token.into());
    }

    /// The pointer one level up; `None` for the root.
    pub fn parent(&self) -> Option<Pointer> {
        let (_, init) = self.tokens.split_last()?;
        Some(Pointer {
            tokens: init.to_vec(),
        })
    }

    /// True when `self` names `other` or one of its ancestors (every pointer is a prefix of
    /// itself; the root is a prefix of everything).
    pub fn is_prefix_of(&self, other: &Pointer) -> bool {
        other.tokens.starts_with(&self.tokens)
    }

    /// The value this pointer names, if any. Array elements are addressed by decimal index.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.tokens
            .iter()
            .try_fold(value, |cur, token| step(cur, token))
    }

    /// Mutable access to the value this pointer names, if any.
    pub fn get_mut<'v>(&self, value: &'v mut Value) -> Option<&'v mut Value> {
        get_mut_path(value, &self.tokens)
    }

    /// Writes `new` at this pointer and returns the value it replaced.
    ///
    /// Missing objects on the way are created (`null` counts as missing). In an array the
    /// token must be an existing index, or `-` / the length to append. Setting the root
    /// replaces the whole document.
    pub fn set(&self, value: &mut Value, new: Value) -> Result<Option<Value>, PointerError> {
        let Some((last, init)) = self.tokens.split_last() else {
            return Ok(Some(std::mem::replace(value, new)));
        };
        let mut cur = value;
        for (depth, token) in init.iter().enumerate() {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            cur = match cur {
                Value::Object(map) => map
                    .entry(token.clone())
                    .or_insert_with(|| Value::Object(Map::new())),
                Value::Array(items) => {
                    let i = self.array_slot(items.len(), token, depth)?;
                    if i == items.len() {
                        items.push(Value::Object(Map::new()));
                    }
                    &mut items[i]
                }
                _ => return Err(self.not_a_container(depth)),
            };
        }
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        match cur {
            Value::Object(map) => Ok(map.insert(last.clone(), new)),
            Value::Array(items) => {
                let i = self.array_slot(items.len(), last, init.len())?;
                if i == items.len() {
                    items.push(new);
                    Ok(None)
                } else {
                    Ok(Some(std::mem::replace(&mut items[i], new)))
                }
            }
            _ => Err(self.not_a_container(init.len())),
        }
    }

    /// Removes the value this pointer names and returns it. Removing the root leaves `null`.
    pub fn remove(&self, value: &mut Value) -> Option<Value> {
        let Some((last, init)) = self.tokens.split_last() else {
            return Some(std::mem::take(value));
        };
        let parent = get_mut_path(value, init)?;
        match parent {
            Value::Object(map) => map.remove(last.as_str()),
            Value::Array(items) => {
                let i = parse_index(last).filter(|i| *i < items.len())?;
                Some(items.remove(i))
            }
            _ => None,
        }
    }

    fn array_slot(&self, len: usize, token: &str, depth: usize) -> Result<usize, PointerError> {
        let i = if token == "-" {
            Some(len)
        } else {
            parse_index(token)
        };
        i.filter(|i| *i <= len)
            .ok_or_else(|| PointerError::BadIndex {
                pointer: self.to_string(),
                at: Pointer::from_tokens(self.tokens[..depth].iter().cloned()).to_string(),
                token: token.to_owned(),
            })
    }

    fn not_a_container(&self, depth: usize) -> PointerError {
        PointerError::NotAContainer {
            pointer: self.to_string(),
            at: Pointer::from_tokens(self.tokens[..=depth].iter().cloned()).to_string(),
        }
    }
}

fn get_mut_path<'v, S: AsRef<str>>(value: &'v mut Value, tokens: &[S]) -> Option<&'v mut Value> {
    tokens.iter().try_fold(value, |cur, token| match cur {
        Value::Object(map) => map.get_mut(token.as_ref()),
        Value::Array(items) => parse_index(token.as_ref()).and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// Writes `new` at an object-only path, creating (or replacing non-object) parents.
pub(crate) fn set_path<S: AsRef<str>>(value: &mut Value, path: &[S], new: Value) {
    let mut cur = value;
    for token in path {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else {
            unreachable!("just made an object")
        };
        cur = map.entry(token.as_ref()).or_insert(Value::Null);
    }
    *cur = new;
}

/// Removes the value at an object-only path, if present.
pub(crate) fn remove_path<S: AsRef<str>>(value: &mut Value, path: &[S]) -> Option<Value> {
    let (last, init) = path.split_last()?;
    get_mut_path(value, init)?
        .as_object_mut()?
        .remove(last.as_ref())
}

fn step<'v>(cur: &'v Value, token: &str) -> Option<&'v Value> {
    match cur {
        Value::Object(map) => map.get(token),
        Value::Array(items) => parse_index(token).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// RFC 6901 array index: `0` or a decimal number without leading zeros.
fn parse_index(token: &str) -> Option<usize> {
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Writes `tokens` as an escaped RFC 6901 pointer.
pub(crate) fn write_tokens<S: AsRef<str>>(f: &mut impl fmt::Write, tokens: &[S]) -> fmt::Result {
    for token in tokens {
        f.write_char('/')?;
        for c in token.as_ref().chars() {
            match c {
                '~' => f.write_str("~0")?,
                '/' => f.write_str("~1")?,
                c => f.write_char(c)?,
            }
        }
    }
    Ok(())
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_tokens(f, &self.tokens)
    }
}

impl FromStr for Pointer {
    type Err = PointerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pointer::parse(s)
    }
}

impl Serialize for Pointer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pointer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pointer::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Pointer {
        Pointer::parse(s).unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        assert!(p("").is_root());
        assert_eq!(p("/").tokens(), [""]);
        assert_eq!(p("/a~1b/c~0d/~01").tokens(), ["a/b", "c~d", "~1"]);
        for text in [
            "",
            "/",
            "/a",
            "/a~1b/c~0d",
            "/spec/template/spec/containers",
            "//x",
        ] {
            assert_eq!(p(text).to_string(), text);
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Pointer::parse("spec").unwrap_err(),
            PointerError::MissingSlash("spec".into())
        );
        assert_eq!(
            Pointer::parse("/a~2").unwrap_err(),
            PointerError::BadEscape("/a~2".into())
        );
        assert!(Pointer::parse("/a~").is_err());
        assert!(
            Pointer::parse("x")
                .unwrap_err()
                .to_string()
                .contains("must be empty or start with '/'")
        );
    }

    #[test]
    fn rfc_6901_examples() {
        let doc = json!({
            "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3,
            "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8
        });
        assert_eq!(p("").get(&doc), Some(&doc));
        assert_eq!(p("/foo").get(&doc), Some(&json!(["bar", "baz"])));
        assert_eq!(p("/foo/0").get(&doc), Some(&json!("bar")));
        assert_eq!(p("/").get(&doc), Some(&json!(0)));
        assert_eq!(p("/a~1b").get(&doc), Some(&json!(1)));
        assert_eq!(p("/m~0n").get(&doc), Some(&json!(8)));
        assert_eq!(p("/ ").get(&doc), Some(&json!(7)));
        assert_eq!(p("/foo/01").get(&doc), None);
        assert_eq!(p("/foo/2").get(&doc), None);
        assert_eq!(p("/foo/-").get(&doc), None);
    }

    #[test]
    fn set_creates_objects_and_appends() {
        let mut doc = json!({"a": {"list": [1]}});
        assert_eq!(p("/a/b/c").set(&mut doc, json!(1)).unwrap(), None);
        assert_eq!(p("/a/list/-").set(&mut doc, json!(2)).unwrap(), None);
        assert_eq!(
            p("/a/list/0").set(&mut doc, json!(0)).unwrap(),
            Some(json!(1))
        );
        assert_eq!(doc, json!({"a": {"b": {"c": 1}, "list": [0, 2]}}));
        let mut null = Value::Null;
        p("/x/y").set(&mut null, json!(true)).unwrap();
        assert_eq!(null, json!({"x": {"y": true}}));
        assert!(matches!(
            p("/a/b/c/d").set(&mut doc, json!(1)),
            Err(PointerError::NotAContainer { .. })
        ));
        assert!(matches!(
            p("/a/list/7").set(&mut doc, json!(1)),
            Err(PointerError::BadIndex { .. })
        ));
        assert_eq!(
            p("").set(&mut doc, json!(3)).unwrap(),
            Some(json!({"a": {"b": {"c": 1}, "list": [0, 2]}}))
        );
        assert_eq!(doc, json!(3));
    }

    #[test]
    fn remove() {
        let mut doc = json!({"a": {"b": 1, "l": [1, 2, 3]}});
        assert_eq!(p("/a/l/1").remove(&mut doc), Some(json!(2)));
        assert_eq!(p("/a/b").remove(&mut doc), Some(json!(1)));
        assert_eq!(p("/a/b").remove(&mut doc), None);
        assert_eq!(p("/x/y").remove(&mut doc), None);
        assert_eq!(doc, json!({"a": {"l": [1, 3]}}));
        assert_eq!(p("").remove(&mut doc), Some(json!({"a": {"l": [1, 3]}})));
        assert_eq!(doc, Value::Null);
    }

    #[test]
    fn prefixes_and_order() {
        assert!(p("").is_prefix_of(&p("/a")));
        assert!(p("/a").is_prefix_of(&p("/a")));
        assert!(p("/a").is_prefix_of(&p("/a/b")));
        assert!(!p("/a").is_prefix_of(&p("/ab")));
        assert!(p("/a") < p("/a/b"));
        assert_eq!(p("/a/b").parent(), Some(p("/a")));
        assert_eq!(p("").parent(), None);
    }

    #[test]
    fn serde_as_string() {
        let ptr: Pointer = serde_json::from_value(json!("/a~1b")).unwrap();
        assert_eq!(ptr.tokens(), ["a/b"]);
        assert_eq!(serde_json::to_value(&ptr).unwrap(), json!("/a~1b"));
        assert!(serde_json::from_value::<Pointer>(json!("a")).is_err());
    }
}
