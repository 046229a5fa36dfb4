//! Label selectors in kubectl syntax.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::lookup::{member, member_of};

/// A label selector: a conjunction of [`Requirement`]s, written in kubectl syntax
/// (`app=web,tier in (frontend,backend),!legacy`).
///
/// Supported requirements (comma means AND, whitespace around tokens is ignored):
///
/// | syntax | matches when |
/// |---|---|
/// | `k=v`, `k==v` | label `k` exists and equals `v` |
/// | `k!=v` | label `k` is absent or differs from `v` |
/// | `k in (v1,v2)` | label `k` exists and is one of the values |
/// | `k notin (v1,v2)` | label `k` is absent or is none of the values |
/// | `k` | label `k` exists |
/// | `!k` | label `k` is absent |
/// | `k>n`, `k<n` | label `k` exists and is an integer greater / less than `n` |
///
/// The empty selector matches everything. Keys and values are validated like Kubernetes
/// does (qualified names, at most 63 characters per name or value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// One requirement of a [`LabelSelector`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label is compared.
    pub operator: Operator,
    /// The values; one for `Equals`/`NotEquals`/`GreaterThan`/`LessThan`, none for
    /// `Exists`/`DoesNotExist`, at least one for `In`/`NotIn`.
    pub values: Vec<String>,
}

/// The comparison of a [`Requirement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `k=v` or `k==v`.
    Equals,
    /// `k!=v`.
    NotEquals,
    /// `k in (…)`.
    In,
    /// `k notin (…)`.
    NotIn,
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>n`.
    GreaterThan,
    /// `k<n`.
    LessThan,
}

/// A label selector that does not parse; the message is meant for a status condition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector {selector:?}: {message} (at character {position})")]
pub struct SelectorError {
    /// The selector text.
    pub selector: String,
    /// 0-based character offset of the problem.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Builds a selector from requirements, validating them (e.g. from a `matchLabels` /
    /// `matchExpressions` structure).
    pub fn new(requirements: Vec<Requirement>) -> Result<Self, SelectorError> {
        let text = LabelSelector {
            requirements: requirements.clone(),
        }
        .to_string();
        for r in &requirements {
            let err = |message: String| SelectorError {
                selector: text.clone(),
                position: 0,
                message,
            };
            check_key(&r.key).map_err(err)?;
            for v in &r.values {
                check_value(v).map_err(err)?;
            }
            let arity_ok = match r.operator {
                Operator::Exists | Operator::DoesNotExist => r.values.is_empty(),
                Operator::Equals | Operator::NotEquals => r.values.len() == 1,
                Operator::GreaterThan | Operator::LessThan => {
                    r.values.len() == 1 && r.values[0].parse::<i64>().is_ok()
                }
                Operator::In | Operator::NotIn => !r.values.is_empty(),
            };
            if !arity_ok {
                return Err(err(format!(
                    "wrong number or kind of values for the requirement on {:?}",
                    r.key
                )));
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Parses kubectl selector syntax. See the type documentation for the grammar.
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Parser::new(text).parse()
    }

    /// The requirements, all of which must hold.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement (non-string label
    /// values count as absent).
    pub fn matches_object(&self, object: &Value) -> bool {
        // By length first: a `metadata` map's keys are out of the cache when planning many
        // objects, and a binary search would read several of them.
        let labels = member(object, "metadata")
            .and_then(|m| member(m, "labels"))
            .and_then(Value::as_object);
        self.matches_with(|k| labels.and_then(|l| member_of(l, k)).and_then(Value::as_str))
    }

    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| {
            let value = get(&r.key);
            let has = |v: &str| r.values.iter().any(|x| x == v);
            let cmp = |f: fn(i64, i64) -> bool| {
                let (Some(v), Some(bound)) = (value, r.values.first()) else {
                    return false;
                };
                matches!((v.parse::<i64>(), bound.parse::<i64>()), (Ok(a), Ok(b)) if f(a, b))
            };
            match r.operator {
                Operator::Equals | Operator::In => value.is_some_and(has),
                Operator::NotEquals | Operator::NotIn => !value.is_some_and(has),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::GreaterThan => cmp(|a, b| a > b),
                Operator::LessThan => cmp(|a, b| a < b),
            }
        })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map_or("", String::as_str);
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, first),
            Operator::NotEquals => write!(f, "{}!={}", self.key, first),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, first),
            Operator::LessThan => write!(f, "{}<{}", self.key, first),
            Operator::Exists => f.write_str(&self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
        }
    }
}

/// Renders the canonical kubectl form, which parses back to an equal selector.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

impl Serialize for LabelSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LabelSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LabelSelector::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("{s:?}"),
            Token::Not => "'!'".into(),
            Token::Eq => "'='".into(),
            Token::DoubleEq => "'=='".into(),
            Token::NotEq => "'!='".into(),
            Token::Gt => "'>'".into(),
            Token::Lt => "'<'".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
            Token::End => "the end of the selector".into(),
        }
    }
}

struct Parser<'s> {
    text: &'s str,
    chars: Vec<char>,
    pos: usize,
    /// Position of the token returned by the last `next`.
    tok_pos: usize,
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

impl<'s> Parser<'s> {
    fn new(text: &'s str) -> Self {
        Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
            tok_pos: 0,
        }
    }

    fn error(&self, position: usize, message: impl Into<String>) -> SelectorError {
        SelectorError {
            selector: self.text.to_owned(),
            position,
            message: message.into(),
        }
    }

    fn next(&mut self) -> Token {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
        self.tok_pos = self.pos;
        let Some(&c) = self.chars.get(self.pos) else {
            return Token::End;
        };
        let peek = self.chars.get(self.pos + 1).copied();
        let (token, len) = match (c, peek) {
            ('!', Some('=')) => (Token::NotEq, 2),
            ('!', _) => (Token::Not, 1),
            ('=', Some('=')) => (Token::DoubleEq, 2),
            ('=', _) => (Token::Eq, 1),
            ('>', _) => (Token::Gt, 1),
            ('<', _) => (Token::Lt, 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            (',', _) => (Token::Comma, 1),
            _ => {
                let start = self.pos;
                let mut end = start;
                while self
                    .chars
                    .get(end)
                    .is_some_and(|c| !c.is_whitespace() && !is_special(*c))
                {
                    end += 1;
                }
                self.pos = end;
                return Token::Ident(self.chars[start..end].iter().collect());
            }
        };
        self.pos += len;
        token
    }

    fn peek(&mut self) -> Token {
        let (pos, tok_pos) = (self.pos, self.tok_pos);
        let t = self.next();
        self.pos = pos;
        self.tok_pos = tok_pos;
        t
    }

    fn parse(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if self.peek() == Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                Token::End => return Ok(LabelSelector { requirements }),
                Token::Comma => {}
                other => {
                    return Err(self.error(
                        self.tok_pos,
                        format!(
                            "expected ',' or the end of the selector, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        }
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        match self.next() {
            Token::Ident(key) => {
                check_key(&key).map_err(|m| self.error(self.tok_pos, m))?;
                Ok(key)
            }
            other => Err(self.error(
                self.tok_pos,
                format!("expected a label key, found {}", other.describe()),
            )),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        if self.peek() == Token::Not {
            self.next();
            let key = self.key()?;
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: vec![],
            });
        }
        let key = self.key()?;
        let operator = match self.peek() {
            Token::End | Token::Comma => {
                return Ok(Requirement {
                    key,
                    operator: Operator::Exists,
                    values: vec![],
                });
            }
            Token::Eq | Token::DoubleEq => Operator::Equals,
            Token::NotEq => Operator::NotEquals,
            Token::Gt => Operator::GreaterThan,
            Token::Lt => Operator::LessThan,
            Token::Ident(word) if word == "in" => Operator::In,
            Token::Ident(word) if word == "notin" => Operator::NotIn,
            other => {
                self.next();
                return Err(self.error(
                    self.tok_pos,
                    format!(
                        "expected an operator (=, ==, !=, in, notin, >, <), ',' or the end after key {key:?}, found {}",
                        other.describe()
                    ),
                ));
            }
        };
        self.next();
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            Operator::GreaterThan | Operator::LessThan => {
                let v = self.single_value()?;
                if v.parse::<i64>().is_err() {
                    return Err(self.error(
                        self.tok_pos,
                        format!("the value after '>' or '<' must be an integer, found {v:?}"),
                    ));
                }
                vec![v]
            }
            _ => vec![self.single_value()?],
        };
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// The value of `=`, `==`, `!=`, `>`, `<`; an empty value (`k=`) is allowed.
    fn single_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Token::End | Token::Comma => Ok(String::new()),
            Token::Ident(v) => {
                self.next();
                check_value(&v).map_err(|m| self.error(self.tok_pos, m))?;
                Ok(v)
            }
            other => {
                self.next();
                Err(self.error(
                    self.tok_pos,
                    format!("expected a value, found {}", other.describe()),
                ))
            }
        }
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next() {
            Token::Open => {}
            other => {
                return Err(self.error(
                    self.tok_pos,
                    format!("expected '(' after in/notin, found {}", other.describe()),
                ));
            }
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Token::Ident(v) => {
                    check_value(&v).map_err(|m| self.error(self.tok_pos, m))?;
                    values.push(v);
                }
                Token::Close if values.is_empty() => {
                    return Err(self.error(self.tok_pos, "in/notin needs at least one value"));
                }
                other => {
                    return Err(self.error(
                        self.tok_pos,
                        format!("expected a value, found {}", other.describe()),
                    ));
                }
            }
            match self.next() {
                Token::Comma => {}
                Token::Close => return Ok(values),
                other => {
                    return Err(self.error(
                        self.tok_pos,
                        format!(
                            "expected ',' or ')' in the value list, found {}",
                            other.describe()
                        ),
                    ));
                }
            }
        }
    }
}

/// A label name or value part: alphanumerics with `-`, `_`, `.` inside, at most 63 chars.
fn check_name_part(s: &str, what: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("{what} {s:?} is longer than 63 characters"));
    }
    let ok_inner = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ok_ends = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(ok_inner && ok_ends) {
        return Err(format!(
            "{what} {s:?} must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), String> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let ok_prefix = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !ok_prefix {
                return Err(format!(
                    "the prefix of label key {key:?} must be a DNS subdomain (lowercase letters, digits, '-' and '.')"
                ));
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(format!("label key {key:?} has an empty name"));
    }
    check_name_part(name, "label key name")
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_name_part(value, "label value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap()
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("app", "web"), ("tier", "frontend"), ("replicas", "3")]);
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app = web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("tier in (frontend,backend)", true),
            ("tier in (backend)", false),
            ("missing in (x)", false),
            ("tier notin (backend)", true),
            ("tier notin (frontend, backend)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("replicas>2", true),
            ("replicas>3", false),
            ("replicas<4", true),
            ("app>1", false),
            ("app=web,tier in (frontend),!legacy", true),
            ("app=web,tier=backend", false),
            ("missing=", false),
        ];
        for (text, expected) in cases {
            assert_eq!(sel(text).matches(&l), expected, "{text}");
        }
        assert!(sel("x=").matches(&labels(&[("x", "")])));
    }

    #[test]
    fn matches_object_labels() {
        let obj = json!({"metadata": {"labels": {"app": "web"}}});
        assert!(sel("app=web").matches_object(&obj));
        assert!(!sel("app=web").matches_object(&json!({"metadata": {}})));
        assert!(sel("!app").matches_object(&json!({})));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "app=web",
            "app!=web",
            "tier in (a,b)",
            "tier notin (a)",
            "app",
            "!app",
            "n>1",
            "n<1",
            "example.com/app=web,x=",
        ] {
            assert_eq!(sel(text).to_string(), text);
            assert_eq!(sel(&sel(text).to_string()), sel(text));
        }
        assert_eq!(sel("a == b , c").to_string(), "a=b,c");
    }

    #[test]
    fn errors_are_clear() {
        let cases = [
            ("app in (web", "expected ',' or ')'"),
            ("app in web", "expected '(' after in/notin"),
            ("app in ()", "at least one value"),
            ("=web", "expected a label key, found '='"),
            ("app=web,", "expected a label key, found the end"),
            ("app web", "expected an operator"),
            ("app=web x", "expected ',' or the end"),
            ("n>x", "must be an integer"),
            ("-app=x", "must start and end with an alphanumeric"),
            ("Example.com/app=x", "DNS subdomain"),
            ("app=we$b", "label value \"we$b\""),
            ("!", "expected a label key"),
            ("app=(x)", "expected a value, found '('"),
        ];
        for (text, needle) in cases {
            let err = LabelSelector::parse(text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{text}: {msg}");
            assert!(msg.contains(&format!("{text:?}")), "{msg}");
        }
        let long = format!("app={}", "x".repeat(64));
        assert!(
            LabelSelector::parse(&long)
                .unwrap_err()
                .message
                .contains("longer than 63")
        );
        let err = LabelSelector::parse("app in (web").unwrap_err();
        assert_eq!(err.position, 11);
    }

    #[test]
    fn built_from_requirements() {
        let s = LabelSelector::new(vec![Requirement {
            key: "app".into(),
            operator: Operator::In,
            values: vec!["a".into(), "b".into()],
        }])
        .unwrap();
        assert_eq!(s.to_string(), "app in (a,b)");
        assert!(
            LabelSelector::new(vec![Requirement {
                key: "app".into(),
                operator: Operator::In,
                values: vec![],
            }])
            .is_err()
        );
    }
}
