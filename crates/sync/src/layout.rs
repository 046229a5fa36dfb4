//! Where a new object goes in the repository.

use crate::ObjectId;

/// The directory used for cluster-scoped objects. Namespace names are DNS labels and cannot
/// start with `_`, so it never collides with a namespace directory.
pub const CLUSTER_DIR: &str = "_cluster";

/// The file a new object is written to:
///
/// - namespaced: `<root>/<namespace>/<plural>.<group>/<name>.yaml`
/// - cluster-scoped: `<root>/_cluster/<plural>.<group>/<name>.yaml`
/// - core group: `<plural>` alone instead of `<plural>.<group>`.
///
/// `<plural>.<group>` is the unique name of a resource type (the name of its CRD), and plural
/// names contain no dots, so two types never share a directory. `root` (e.g. the repository's
/// `spec.path`) is prepended when non-empty. Characters that cannot appear in one path
/// component (`/`, `\`, `%`) are percent-encoded: a custom resource may be named `a\b`, and
/// it is written to `a%5Cb.yaml`.
///
/// The path is then checked with [`check_path`], the Git layer's rules: an identity that
/// cannot become a path the Git layer writes (a control character in a name, a namespace
/// `.git`) is an [`UnsafePath`] error, and the planner leaves that object out rather than
/// letting one object fail the whole commit.
///
/// Objects that already have a manifest stay in their file; this is only for new ones.
pub fn new_file_path(root: &str, id: &ObjectId, plural: &str) -> Result<String, UnsafePath> {
    let mut out = String::new();
    let root = root.trim_end_matches('/');
    if !root.is_empty() {
        out.push_str(root);
        out.push('/');
    }
    match &id.namespace {
        Some(ns) => push_component(&mut out, ns),
        None => out.push_str(CLUSTER_DIR),
    }
    out.push('/');
    push_component(&mut out, plural);
    if !id.group.is_empty() {
        out.push('.');
        push_component(&mut out, &id.group);
    }
    out.push('/');
    push_component(&mut out, &id.name);
    out.push_str(".yaml");
    check_path(&out)?;
    Ok(out)
}

/// Why a path cannot be written to the repository.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} cannot be written: {reason}")]
pub struct UnsafePath {
    /// The path.
    pub path: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

/// Whether the Git layer writes `path` (relative to the repository's `spec.path`): the same
/// rules as `gitcontroller_git::paths::normalize_relative`, which refuses a whole commit
/// when one of its paths breaks them. Refused: absolute paths, empty, `.`, `..` and `.git`
/// (any case) components, backslashes and control characters. A test of the root crate
/// checks that both agree.
pub fn check_path(path: &str) -> Result<(), UnsafePath> {
    let refuse = |reason| {
        Err(UnsafePath {
            path: path.to_owned(),
            reason,
        })
    };
    let trimmed = path.trim_end_matches('/');
    if path.starts_with('/') {
        return refuse("absolute paths are not allowed");
    }
    if trimmed.is_empty() {
        return refuse("empty path");
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return refuse("backslashes and control characters are not allowed");
    }
    for part in trimmed.split('/') {
        match part {
            "" => return refuse("empty path component"),
            "." => return refuse("`.` components are not allowed"),
            ".." => return refuse("`..` components are not allowed"),
            p if p.eq_ignore_ascii_case(".git") => {
                return refuse("`.git` components are not allowed");
            }
            _ => {}
        }
    }
    Ok(())
}

fn push_component(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '\\' => out.push_str("%5C"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
}

/// `path` with `~<n>` inserted before `.yaml` for the smallest `n ≥ 2` that `taken` rejects,
/// or `path` itself when it is free. `~` never occurs in Kubernetes names.
pub(crate) fn disambiguate(path: String, taken: impl Fn(&str) -> bool) -> String {
    if !taken(&path) {
        return path;
    }
    let stem = path.strip_suffix(".yaml").unwrap_or(&path);
    (2..)
        .map(|n| format!("{stem}~{n}.yaml"))
        .find(|p| !taken(p))
        .expect("some suffix is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let snap = ObjectId::new(
            "snapshot.storage.k8s.io",
            "VolumeSnapshot",
            Some("db"),
            "nightly",
        );
        assert_eq!(
            new_file_path("", &snap, "volumesnapshots").unwrap(),
            "db/volumesnapshots.snapshot.storage.k8s.io/nightly.yaml"
        );
        let cm = ObjectId::new("", "ConfigMap", Some("default"), "settings");
        assert_eq!(
            new_file_path("clusters/prod/", &cm, "configmaps").unwrap(),
            "clusters/prod/default/configmaps/settings.yaml"
        );
        let role = ObjectId::new(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "system:view",
        );
        assert_eq!(
            new_file_path("x", &role, "clusterroles").unwrap(),
            "x/_cluster/clusterroles.rbac.authorization.k8s.io/system:view.yaml"
        );
        let odd = ObjectId::new("", "ConfigMap", Some("a"), "b/c%");
        assert_eq!(
            new_file_path("", &odd, "configmaps").unwrap(),
            "a/configmaps/b%2Fc%25.yaml"
        );
    }

    #[test]
    fn distinct_types_never_collide() {
        // Same name and namespace, different kinds and groups.
        let ids = [
            (ObjectId::new("", "Service", Some("a"), "web"), "services"),
            (
                ObjectId::new("serving.knative.dev", "Service", Some("a"), "web"),
                "services",
            ),
            (
                ObjectId::new("apps", "Deployment", Some("a"), "web"),
                "deployments",
            ),
            (ObjectId::new("", "Namespace", None, "a"), "namespaces"),
        ];
        let mut paths: Vec<String> = ids
            .iter()
            .map(|(id, p)| new_file_path("", id, p).unwrap())
            .collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), ids.len());
    }

    #[test]
    fn identities_that_cannot_become_paths() {
        let cm = |ns: &str, name: &str| ObjectId::new("", "ConfigMap", Some(ns), name);
        // Encoded, so written.
        assert_eq!(
            new_file_path("", &cm("a", "x\\y"), "configmaps").unwrap(),
            "a/configmaps/x%5Cy.yaml"
        );
        assert_eq!(
            new_file_path("", &cm("a", ".git"), "configmaps").unwrap(),
            "a/configmaps/.git.yaml"
        );
        // Refused like the Git layer refuses them.
        for (id, root) in [
            (cm("a", "x\u{8}y"), ""), // JSON "x\by": a backspace
            (cm("a", "tab\there"), ""),
            (cm(".git", "x"), ""),
            (cm("..", "x"), ""),
            (cm("a", "x"), "../escape"),
            (cm("a", "x"), "/abs"),
        ] {
            let err = new_file_path(root, &id, "configmaps").unwrap_err();
            assert!(err.to_string().contains("cannot be written"), "{err}");
        }
    }

    #[test]
    fn path_rules() {
        for ok in [
            "a.yaml",
            "a/b/c.yaml",
            "a/",
            "x/.gitignore.yaml",
            "x/~2.yaml",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/",
            "/a.yaml",
            "a//b.yaml",
            "./a.yaml",
            "a/../b.yaml",
            "a/.GIT/b.yaml",
            "a\\b.yaml",
            "a\u{7f}b.yaml",
            "a\nb.yaml",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn disambiguation() {
        let taken = ["a/x.yaml", "a/x~2.yaml"];
        assert_eq!(
            disambiguate("a/y.yaml".into(), |p| taken.contains(&p)),
            "a/y.yaml"
        );
        assert_eq!(
            disambiguate("a/x.yaml".into(), |p| taken.contains(&p)),
            "a/x~3.yaml"
        );
    }
}
