//! Reading manifests out of the files of a repository.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticReason, Severity};
use crate::id::{IdError, TypeIndex, resolve_id};
use crate::{ObjectId, ResourceType};

/// One file of the repository, as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path of the file, as the caller wants it reported and written back (typically relative
    /// to the repository root, `/`-separated).
    pub path: String,
    /// The file's content.
    pub content: String,
}

impl SourceFile {
    /// Builds a source file.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            content: content.into(),
        }
    }
}

/// One Kubernetes object found in a manifest file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its identity (namespace already defaulted to `default` for namespaced kinds).
    pub id: ObjectId,
    /// The file it is in.
    pub file: String,
    /// Which document of the file it is, counting from 0. Documents are counted the way
    /// `serde_saphyr::from_multiple` returns them: empty documents (nothing but comments,
    /// `~`/`null`, or nothing at all between two `---`) are **not** counted. A JSON file has
    /// a single document 0.
    pub doc_index: usize,
    /// The document as JSON.
    pub object: Value,
}

/// Whether the planner reads this path: `.yaml`, `.yml` or `.json`, in any letter case.
pub fn is_manifest_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Parses every `.yaml`, `.yml` and `.json` file into manifests (other files are ignored).
///
/// - Multi-document YAML is supported; see [`Manifest::doc_index`] for how documents count.
/// - A file that does not parse yields one `Error`/[`ParseError`](DiagnosticReason::ParseError)
///   diagnostic with the file and 1-based line; the other files are still returned. Pass the
///   names of such files to [`PlanInput::unparsed_files`](crate::PlanInput::unparsed_files)
///   (see [`unparsed_files`]) so that nothing is pruned or re-exported because of them.
/// - A document without `apiVersion`, `kind` or `metadata.name` (a `kustomization.yaml`,
///   Helm values) is skipped with an `Info`/[`Skipped`](DiagnosticReason::Skipped)
///   diagnostic.
/// - A document of a kind not in `types` is skipped with a
///   `Warning`/[`UnknownKind`](DiagnosticReason::UnknownKind) diagnostic.
///
/// Duplicate identities are *not* reported here but by [`plan`](crate::plan), which never
/// acts on them.
pub fn parse_manifests(
    files: &[SourceFile],
    types: &[ResourceType],
) -> (Vec<Manifest>, Vec<Diagnostic>) {
    let index = TypeIndex::new(types);
    let mut manifests = Vec::new();
    let mut diagnostics = Vec::new();
    for file in files.iter().filter(|f| is_manifest_path(&f.path)) {
        let docs = match parse_documents(file) {
            Ok(docs) => docs,
            Err((line, message)) => {
                diagnostics.push(
                    Diagnostic::new(Severity::Error, DiagnosticReason::ParseError, message)
                        .file(&file.path)
                        .line(line),
                );
                continue;
            }
        };
        for (doc_index, object) in docs.into_iter().enumerate() {
            match resolve_id(&object, &index) {
                Ok((id, _)) => manifests.push(Manifest {
                    id,
                    file: file.path.clone(),
                    doc_index,
                    object,
                }),
                Err(IdError::Incomplete(field)) => {
                    let what = if object.get("kind").and_then(Value::as_str) == Some("List") {
                        "is a List (put each object in its own document instead)".to_owned()
                    } else if object.is_object() {
                        format!("has no {field}")
                    } else {
                        "is not a mapping".to_owned()
                    };
                    diagnostics.push(
                        Diagnostic::new(
                            Severity::Info,
                            DiagnosticReason::Skipped,
                            format!(
                                "document {doc_index} {what}, so it is not a Kubernetes object; skipped"
                            ),
                        )
                        .file(&file.path),
                    );
                }
                Err(IdError::UnknownKind { api_version, kind }) => diagnostics.push(
                    Diagnostic::new(
                        Severity::Warning,
                        DiagnosticReason::UnknownKind,
                        format!(
                            "document {doc_index}: kind {kind} of {api_version} is not served by the cluster; skipped"
                        ),
                    )
                    .file(&file.path),
                ),
            }
        }
    }
    (manifests, diagnostics)
}

/// The files that [`parse_manifests`] could not parse, from its diagnostics.
pub fn unparsed_files(diagnostics: &[Diagnostic]) -> Vec<String> {
    let mut files: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.reason == DiagnosticReason::ParseError)
        .filter_map(|d| d.file.clone())
        .collect();
    files.sort();
    files.dedup();
    files
}

type ParseFailure = (Option<usize>, String);

fn parse_documents(file: &SourceFile) -> Result<Vec<Value>, ParseFailure> {
    if file.path.to_ascii_lowercase().ends_with(".json") {
        if file.content.trim().is_empty() {
            return Ok(Vec::new());
        }
        return serde_json::from_str(&file.content)
            .map(|v| vec![v])
            .map_err(|e| (Some(e.line()), format!("invalid JSON: {e}")));
    }
    // YAML 1.1 octals (`defaultMode: 0644`) as kubectl reads them; one-line messages.
    let options = serde_saphyr::options! { legacy_octal_numbers: true, with_snippet: false };
    serde_saphyr::from_multiple_with_options::<Value>(&file.content, options).map_err(|e| {
        let line = e
            .location()
            .and_then(|l| usize::try_from(l.line()).ok())
            .filter(|l| *l > 0);
        (line, format!("invalid YAML: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> Vec<ResourceType> {
        vec![
            ResourceType::new("", "v1", "ConfigMap", "configmaps", true),
            ResourceType::new("apps", "v1", "Deployment", "deployments", true),
            ResourceType::new("", "v1", "Namespace", "namespaces", false),
        ]
    }

    fn parse(files: &[(&str, &str)]) -> (Vec<Manifest>, Vec<Diagnostic>) {
        let files: Vec<SourceFile> = files.iter().map(|(p, c)| SourceFile::new(*p, *c)).collect();
        parse_manifests(&files, &types())
    }

    #[test]
    fn multi_document_yaml_and_json() {
        let yaml = "\
# leading comment, then an empty document
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
data:
  enabled: yes
  count: 3
---
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 2
  template:
    spec:
      volumes: [{name: cfg, configMap: {name: a, defaultMode: 0644}}]
";
        let json = r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}"#;
        let (ms, diags) = parse(&[
            ("a/all.yaml", yaml),
            ("ns.json", json),
            ("README.md", "# hi"),
        ]);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(ms.len(), 3);
        assert_eq!(
            ms[0].id,
            ObjectId::new("", "ConfigMap", Some("default"), "a")
        );
        assert_eq!(ms[0].doc_index, 0);
        assert_eq!(ms[0].object["data"], json!({"enabled": true, "count": 3}));
        assert_eq!(
            ms[1].id,
            ObjectId::new("apps", "Deployment", Some("prod"), "web")
        );
        assert_eq!(ms[1].doc_index, 1, "empty documents are not counted");
        let volume = &ms[1].object["spec"]["template"]["spec"]["volumes"][0];
        assert_eq!(
            volume["configMap"]["defaultMode"],
            json!(0o644),
            "YAML 1.1 octal, like kubectl"
        );
        assert_eq!(ms[2].id, ObjectId::new("", "Namespace", None, "prod"));
        assert_eq!((ms[2].file.as_str(), ms[2].doc_index), ("ns.json", 0));
    }

    #[test]
    fn non_objects_are_skipped_with_info() {
        let (ms, diags) = parse(&[
            ("kustomization.yaml", "resources: [a.yaml]\n"),
            ("values.yml", "replicas: 3\n---\njust a string\n"),
            (
                "list.json",
                r#"{"apiVersion": "v1", "kind": "List", "items": []}"#,
            ),
            (
                "nameless.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            ),
        ]);
        assert!(ms.is_empty());
        assert_eq!(diags.len(), 5);
        assert!(
            diags
                .iter()
                .all(|d| d.severity == Severity::Info && d.reason == DiagnosticReason::Skipped)
        );
        assert!(
            diags[0].message.contains("has no apiVersion"),
            "{}",
            diags[0].message
        );
        assert!(diags[2].message.contains("document 1 is not a mapping"));
        assert!(diags[3].message.contains("is a List"));
        assert!(diags[4].message.contains("has no metadata.name"));
    }

    #[test]
    fn broken_file_reports_line_and_others_still_parse() {
        let broken =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [1, 2\n  b: 3\n";
        let good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n";
        let (ms, diags) = parse(&[("broken.yaml", broken), ("good.yaml", good)]);
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].id.name, "ok");
        assert_eq!(diags.len(), 1);
        let d = &diags[0];
        assert_eq!(
            (d.severity, d.reason),
            (Severity::Error, DiagnosticReason::ParseError)
        );
        assert_eq!(d.file.as_deref(), Some("broken.yaml"));
        let line = d.line.expect("a line number");
        assert!((6..=8).contains(&line), "line {line}");
        assert_eq!(unparsed_files(&diags), ["broken.yaml"]);

        let (_, diags) = parse(&[("bad.json", "{\n  \"a\": 1,\n  oops\n}")]);
        assert_eq!(diags[0].line, Some(3));
    }

    #[test]
    fn duplicate_keys_are_a_parse_error() {
        let (ms, diags) = parse(&[(
            "dup.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: 1}\ndata: {k: 2}\n",
        )]);
        assert!(ms.is_empty());
        assert_eq!(diags[0].reason, DiagnosticReason::ParseError);
        assert_eq!(diags[0].line, Some(5));
        assert!(
            diags[0].message.contains("duplicate"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn unknown_kind_is_a_warning() {
        let (ms, diags) = parse(&[(
            "x.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        )]);
        assert!(ms.is_empty());
        assert_eq!(diags[0].reason, DiagnosticReason::UnknownKind);
        assert_eq!(diags[0].severity, Severity::Warning);
        assert!(diags[0].message.contains("Widget"));
    }

    #[test]
    fn extensions() {
        assert!(is_manifest_path("a/b.YAML"));
        assert!(is_manifest_path("b.yml"));
        assert!(is_manifest_path("b.json"));
        assert!(!is_manifest_path("b.yaml.bak"));
        assert!(!is_manifest_path("Makefile"));
    }
}
