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
/// component (`/`, `\`, `%`) are percent-encoded; Kubernetes names never contain them anyway.
///
/// Objects that already have a manifest stay in their file; this is only for new ones.
pub fn new_file_path(root: &str, id: &ObjectId, plural: &str) -> String {
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
    out
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
            new_file_path("", &snap, "volumesnapshots"),
            "db/volumesnapshots.snapshot.storage.k8s.io/nightly.yaml"
        );
        let cm = ObjectId::new("", "ConfigMap", Some("default"), "settings");
        assert_eq!(
            new_file_path("clusters/prod/", &cm, "configmaps"),
            "clusters/prod/default/configmaps/settings.yaml"
        );
        let role = ObjectId::new(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            None,
            "system:view",
        );
        assert_eq!(
            new_file_path("x", &role, "clusterroles"),
            "x/_cluster/clusterroles.rbac.authorization.k8s.io/system:view.yaml"
        );
        let odd = ObjectId::new("", "ConfigMap", Some("a"), "b/c%");
        assert_eq!(
            new_file_path("", &odd, "configmaps"),
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
        let mut paths: Vec<String> = ids.iter().map(|(id, p)| new_file_path("", id, p)).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), ids.len());
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
