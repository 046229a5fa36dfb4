//! Path confinement: every path we read or write stays inside `spec.path`.

use crate::error::{Error, Result};

/// Validates a relative path and returns its normalized `/`-separated form (no leading,
/// trailing or doubled slashes). With `allow_empty`, `""` and `"."` mean the root and yield
/// `""`.
///
/// Refused: absolute paths, `..` and `.` components (except a lone `.` root), `.git`
/// components (any case), backslashes, NUL and other control characters.
pub fn normalize_relative(path: &str, allow_empty: bool) -> Result<String> {
    let trimmed = path.trim_end_matches('/');
    if allow_empty && (trimmed.is_empty() || trimmed == ".") {
        return Ok(String::new());
    }
    if path.starts_with('/') {
        return Err(Error::invalid_path(path, "absolute paths are not allowed"));
    }
    if trimmed.is_empty() {
        return Err(Error::invalid_path(path, "empty path"));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(Error::invalid_path(
            path,
            "backslashes and control characters are not allowed",
        ));
    }
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        match part {
            "" => return Err(Error::invalid_path(path, "empty path component")),
            "." => return Err(Error::invalid_path(path, "`.` components are not allowed")),
            ".." => return Err(Error::invalid_path(path, "`..` components are not allowed")),
            p if p.eq_ignore_ascii_case(".git") => {
                return Err(Error::invalid_path(
                    path,
                    "`.git` components are not allowed",
                ));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// `base/rel` (either may be empty).
pub fn join(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}/{rel}"),
    }
}

/// Whether the planner reads this file: `.yaml`, `.yml` or `.json`, in any letter case.
pub fn is_manifest_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Whether the file is JSON (by extension).
pub fn is_json_path(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement() {
        assert_eq!(normalize_relative("a/b.yaml", false).unwrap(), "a/b.yaml");
        assert_eq!(
            normalize_relative("clusters/prod/", true).unwrap(),
            "clusters/prod"
        );
        assert_eq!(normalize_relative(".", true).unwrap(), "");
        assert_eq!(normalize_relative("", true).unwrap(), "");
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/.git/config",
            ".GIT/x",
            "a\\b",
            "a\0b",
        ] {
            let e = normalize_relative(bad, false).unwrap_err();
            assert_eq!(e.category(), "invalid-path", "{bad:?}");
        }
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("x/y", "a"), "x/y/a");
    }
}
