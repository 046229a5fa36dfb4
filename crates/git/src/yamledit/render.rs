//! Rendering JSON values as clean block YAML (and inline/flow fragments), with scalars quoted
//! whenever a plain scalar would not read back as the same string under `serde-saphyr`'s
//! resolution rules (which follow YAML 1.1 for booleans: `yes`, `on`, `y`, … are booleans).

use serde_json::Value;

/// Indentation conventions of a document (detected from existing text, or defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    /// Spaces per nesting level of mappings.
    pub step: usize,
    /// Block sequences under a mapping key start at the key's column (`key:\n- a`).
    pub indentless_seq: bool,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            step: 2,
            indentless_seq: false,
        }
    }
}

/// Whether `s` can be written as a plain scalar and read back as the same string.
pub(crate) fn plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let second = s.chars().nth(1);
    let ok_start = first.is_alphabetic()
        || first == '/'
        || first == '_'
        // Quantities and versions such as `500m`, `256Mi`, `1Gi`, `10s`, `1.25.3-alpine`...
        || (first.is_ascii_digit() && !number_like(s))
        // Flags such as `-c`, `--port=8080`.
        || (first == '-' && second.is_some_and(char::is_alphabetic))
        || (first == '-' && second == Some('-') && s.chars().nth(2).is_some_and(char::is_alphabetic));
    if !ok_start {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_alphanumeric()
            || matches!(
                c,
                '-' | '_' | '.' | '/' | ':' | '@' | '+' | '=' | ' ' | '~' | '(' | ')' | '$' | '^'
            )
    }) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
    )
}

/// Whether a string starting with a digit might be read as a number, a timestamp or a
/// sexagesimal by some YAML reader: it is only taken as a plain string if it contains a letter
/// that cannot be part of a number (hex digits, `x`, `o`, `b`, `e`) or a date (`t`, `z`).
fn number_like(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_alphabetic() && !"abcdefxotzABCDEFXOTZ".contains(c))
}

/// A string as a YAML double-quoted scalar (JSON escapes are valid YAML escapes).
pub(crate) fn double_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A string as a YAML single-quoted scalar, if representable on one line.
pub(crate) fn single_quoted(s: &str) -> Option<String> {
    if s.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(format!("'{}'", s.replace('\'', "''")))
}

/// A scalar (or empty collection) value on one line, for block or flow context.
pub(crate) fn inline_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            if plain_safe(s) {
                s.clone()
            } else {
                double_quoted(s)
            }
        }
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        Value::Object(o) if o.is_empty() => "{}".to_string(),
        other => flow(other),
    }
}

/// Conventional rank of a mapping key in Kubernetes manifests: `apiVersion`, `kind`,
/// `metadata`, `name`, `generateName`, `namespace` first, `status` last, everything else in
/// between (in the value's own order; `serde_json` maps are sorted unless its
/// `preserve_order` feature is on).
pub(crate) fn key_rank(k: &str) -> u8 {
    match k {
        "apiVersion" => 0,
        "kind" => 1,
        "metadata" => 2,
        "name" => 3,
        "generateName" => 4,
        "namespace" => 5,
        "status" => 20,
        _ => 10,
    }
}

/// The entries of a mapping in rendering order (see [`key_rank`]; stable otherwise).
pub(crate) fn ordered(o: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = o.iter().collect();
    v.sort_by_key(|(k, _)| key_rank(k));
    v
}

/// A mapping key.
pub(crate) fn key(k: &str) -> String {
    if plain_safe(k) {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

/// Any value in flow style on one line (`{a: 1, b: [x, y]}`).
pub(crate) fn flow(v: &Value) -> String {
    match v {
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = ordered(o)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", key(k), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        scalar => inline_scalar(scalar),
    }
}

/// Whether a string is best written as a literal block scalar (`|` / `|-`).
pub(crate) fn wants_literal(s: &str) -> bool {
    if !s.contains('\n') || s.contains('\r') {
        return false;
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return false;
    }
    let body = s.strip_suffix('\n').unwrap_or(s);
    if body.ends_with('\n') || body.is_empty() {
        return false; // several trailing newlines would need `|+`
    }
    let first = body.lines().next().unwrap_or("");
    // A leading space or tab would need an indentation indicator.
    !(first.starts_with([' ', '\t']) || first.trim().is_empty())
}

/// A literal block scalar: header (`|` or `|-`) and content lines at `indent`, without a
/// trailing line break. Only call when [`wants_literal`] holds.
pub(crate) fn literal(s: &str, indent: usize) -> String {
    let (header, body) = match s.strip_suffix('\n') {
        Some(b) => ("|", b),
        None => ("|-", s),
    };
    let pad = " ".repeat(indent);
    let mut out = header.to_string();
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// What follows `key:` or `-` for a value: ` scalar`, ` |` + lines, or a line break and the
/// nested block at `child_indent` (for mappings) / `seq_indent` (for sequences).
pub(crate) fn after_indicator(
    v: &Value,
    map_indent: usize,
    seq_indent: usize,
    style: Style,
) -> String {
    match v {
        Value::Object(o) if !o.is_empty() => format!("\n{}", block(v, map_indent, style)),
        Value::Array(a) if !a.is_empty() => format!("\n{}", block(v, seq_indent, style)),
        Value::String(s) if wants_literal(s) => format!(" {}", literal(s, map_indent)),
        other => format!(" {}", inline_scalar(other)),
    }
}

/// A non-empty mapping or sequence as block YAML, every line indented by `indent`, lines
/// joined by `\n`, no trailing line break. Scalars render inline.
pub(crate) fn block(v: &Value, indent: usize, style: Style) -> String {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            let mut lines = Vec::with_capacity(o.len());
            for (k, val) in ordered(o) {
                let seq_indent = if style.indentless_seq {
                    indent
                } else {
                    indent + style.step
                };
                lines.push(format!(
                    "{pad}{}:{}",
                    key(k),
                    after_indicator(val, indent + style.step, seq_indent, style)
                ));
            }
            lines.join("\n")
        }
        Value::Array(a) if !a.is_empty() => {
            let mut lines = Vec::with_capacity(a.len());
            for item in a {
                lines.push(format!("{pad}-{}", item_body(item, indent, style)));
            }
            lines.join("\n")
        }
        other => format!("{pad}{}", inline_scalar(other)),
    }
}

/// What follows the `-` of a block sequence item at `dash_indent`: ` scalar`, or a nested
/// collection whose first line continues on the dash's line.
pub(crate) fn item_body(item: &Value, dash_indent: usize, style: Style) -> String {
    let inner = dash_indent + 2;
    match item {
        Value::Object(o) if !o.is_empty() => format!(" {}", block(item, inner, style).trim_start()),
        Value::Array(a) if !a.is_empty() => format!(" {}", block(item, inner, style).trim_start()),
        Value::String(s) if wants_literal(s) => format!(" {}", literal(s, inner)),
        other => format!(" {}", inline_scalar(other)),
    }
}

/// A whole document: block YAML with a trailing line break.
pub(crate) fn document(v: &Value, style: Style) -> String {
    match v {
        Value::Object(o) if !o.is_empty() => format!("{}\n", block(v, 0, style)),
        Value::Array(a) if !a.is_empty() => format!("{}\n", block(v, 0, style)),
        Value::String(s) if wants_literal(s) => format!("{}\n", literal(s, 2)),
        other => format!("{}\n", inline_scalar(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_or_quoted() {
        let safe = [
            "web",
            "nginx:1.25",
            "app.kubernetes.io/name",
            "a b",
            "Hello_World",
            "500m",
            "256Mi",
            "1Gi",
            "10s",
            "1.25.3-alpine",
            "-c",
            "--port=8080",
            "5Ti",
        ];
        for s in safe {
            assert!(plain_safe(s), "{s}");
            let block: Value = serde_saphyr::from_str(&format!("k: {s}\n")).unwrap();
            assert_eq!(block["k"], Value::String(s.to_string()), "{s}");
            let flow: Value = serde_saphyr::from_str(&format!("k: [{s}, {{a: {s}}}]\n")).unwrap();
            assert_eq!(flow["k"][0], Value::String(s.to_string()), "{s}");
            assert_eq!(flow["k"][1]["a"], Value::String(s.to_string()), "{s}");
        }
        let unsafe_ = [
            "",
            "yes",
            "No",
            "on",
            "y",
            "true",
            "null",
            "1",
            "1.25",
            "0123",
            "*a",
            "a: b",
            "a #b",
            "x:",
            " lead",
            "trail ",
            "{a}",
            "a,b",
            "'q'",
            "\"q\"",
            "!tag",
            "&a",
            "%x",
            "@x",
            "`x",
            ".5",
            "~",
            "a\nb",
            "<<",
            "0x1F",
            "1e3",
            "1_000",
            "2001-12-14",
            "2001-12-14T21:59:43Z",
            "1:20",
            "0o17",
            "0b101",
            "-1",
            "--",
            "---",
            "-.5",
            "1d",
        ];
        for s in unsafe_ {
            assert!(!plain_safe(s), "{s:?}");
        }
    }

    #[test]
    fn renders_documents() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "labels": {"app": "web", "on": "yes"}},
            "data": {"script": "echo a\necho b\n", "empty": "", "n": "1", "list": [] },
            "spec": {"items": [{"name": "a", "port": 80}, "x", ["n1", "n2"], {}]},
        });
        let out = document(&v, Style::default());
        let back: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(back, v, "{out}");
        let out2 = document(
            &v,
            Style {
                step: 4,
                indentless_seq: true,
            },
        );
        let back: Value = serde_saphyr::from_str(&out2).unwrap();
        assert_eq!(back, v, "{out2}");
        assert!(
            out.contains("  script: |\n    echo a\n    echo b\n"),
            "{out}"
        );
    }

    #[test]
    fn flow_roundtrip() {
        let v = json!({"a": [1, "two", {"b": null}], "c": "x, y"});
        let s = flow(&v);
        let back: Value = serde_saphyr::from_str(&format!("k: {s}\n")).unwrap();
        assert_eq!(back["k"], v, "{s}");
    }
}
