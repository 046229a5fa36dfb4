//! Reading manifests out of the files of a repository.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, DiagnosticReason, Severity, SkipReason};
use crate::id::{IdError, TypeIndex, group_of, resolve_id};
use crate::skip::severity_of;
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
    /// For an object that is an item of a `List` document (`kind: List` or `kind: <X>List`
    /// with an `items` array), its position in `items`, counting from 0; `None` for an
    /// object that is a whole document. The Git layer edits whole documents only, so the
    /// planner never writes back to or removes a `List` item (see
    /// [`HoldCause::ListItem`](crate::HoldCause::ListItem)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_index: Option<usize>,
    /// What the caller knows identifies the manifest's content, e.g. the blob id of its file:
    /// manifests with equal revisions, files, documents and items must be equal.
    /// [`plan_incremental`](crate::plan_incremental) skips an object in sync whose manifest
    /// and live object kept their versions; it never skips one whose manifest has none.
    /// [`parse_manifests`](crate::parse_manifests) leaves it `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<std::sync::Arc<str>>,
    /// The object as JSON (for a `List` item: the item, with `apiVersion` and `kind`
    /// inherited from a typed list when it has neither, as kubectl does).
    /// Shared: the controller's parse cache and every plan made from it hold one copy.
    pub object: std::sync::Arc<Value>,
}

impl Manifest {
    /// `document 2` or `document 2, item 5`: where the object is in its file.
    pub fn place(&self) -> String {
        place(self.doc_index, self.item_index)
    }
}

fn place(doc_index: usize, item_index: Option<usize>) -> String {
    match item_index {
        Some(item) => format!("document {doc_index}, item {item}"),
        None => format!("document {doc_index}"),
    }
}

/// Whether the planner reads this path: `.yaml`, `.yml` or `.json`, in any letter case.
pub fn is_manifest_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Parses every `.yaml`, `.yml` and `.json` file into manifests (other files are ignored).
///
/// - Multi-document YAML is supported; see [`Manifest::doc_index`] for how documents count.
/// - A `List` document (`kind: List`, or any kind ending in `List` with an `items` array, as
///   kubectl reads them) yields one manifest per item ([`Manifest::item_index`]). Items of a
///   typed list (`ConfigMapList`) that have neither `apiVersion` nor `kind` get the list's
///   `apiVersion` and the kind without `List`, as kubectl does.
/// - What cannot be read is reported as a
///   [`SkippedInput`](DiagnosticReason::SkippedInput) diagnostic naming the file, and the
///   rest is still returned: a file that does not parse (`Error`, with the 1-based line),
///   a document that uses `metadata.generateName`, a document of a served kind without
///   `metadata.name`, and a `List` item that cannot be applied (no `apiVersion`, `kind` or
///   `metadata.name`, not a mapping, a nested `List`). Pass them on as
///   [`PlanInput::skipped`](crate::PlanInput::skipped) (see
///   [`skipped_inputs`](crate::skipped_inputs)) so that nothing is pruned or exported to a
///   new file because of them.
/// - A document that is not meant to be an object (a `kustomization.yaml`, Helm values: no
///   `apiVersion` or `kind`, or an unserved kind without a name) is skipped with an
///   `Info`/[`NotAnObject`](DiagnosticReason::NotAnObject) diagnostic.
/// - A document or item of a kind not in `types` is skipped with a
///   `Warning`/[`UnknownKind`](DiagnosticReason::UnknownKind) diagnostic. It cannot stand for
///   any live object the planner acts on, so the source stays complete.
///
/// Duplicate identities are *not* reported here but by [`plan`](crate::plan), which never
/// acts on them.
pub fn parse_manifests(
    files: &[SourceFile],
    types: &[ResourceType],
) -> (Vec<Manifest>, Vec<Diagnostic>) {
    let parser = ManifestParser::new(types);
    let mut out = parser.output();
    for file in files {
        parser.parse_into(&mut out, &file.path, &file.content);
    }
    (out.manifests, out.diagnostics)
}

/// [`parse_manifests`] one file at a time, its lookup of the cluster's types built once: for
/// callers that keep what each file parsed to and parse only the files that changed.
pub struct ManifestParser<'t> {
    index: TypeIndex<'t>,
}

impl<'t> ManifestParser<'t> {
    /// A parser resolving kinds against `types` (the served types, as for
    /// [`parse_manifests`]).
    pub fn new(types: &'t [ResourceType]) -> Self {
        Self {
            index: TypeIndex::new(types),
        }
    }

    /// What [`parse_manifests`] makes of the one file `path` with text `content` (nothing for
    /// a path that is not a manifest's, see [`is_manifest_path`]).
    pub fn parse_file(&self, path: &str, content: &str) -> (Vec<Manifest>, Vec<Diagnostic>) {
        let mut out = self.output();
        self.parse_into(&mut out, path, content);
        (out.manifests, out.diagnostics)
    }

    fn output(&self) -> Parsed<'_> {
        Parsed {
            index: &self.index,
            manifests: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    fn parse_into(&self, out: &mut Parsed<'_>, path: &str, content: &str) {
        if !is_manifest_path(path) {
            return;
        }
        let docs = match parse_documents(path, content) {
            Ok(docs) => docs,
            Err((line, message)) => {
                out.diagnostics.push(
                    Diagnostic::new(
                        Severity::Error,
                        DiagnosticReason::SkippedInput(SkipReason::ParseError),
                        message,
                    )
                    .file(path)
                    .line(line),
                );
                return;
            }
        };
        for (doc_index, object) in docs.into_iter().enumerate() {
            match list_items(object) {
                Ok(items) => {
                    for (item_index, item) in items.into_iter().enumerate() {
                        out.item(path, doc_index, item_index, item);
                    }
                }
                Err(object) => out.document(path, doc_index, None, object),
            }
        }
    }
}

/// The items of a `List` document (kubectl's reading: `kind: List`, or a kind ending in
/// `List` with an `items` array), or the document back when it is not one. A `kind: List`
/// whose `items` is not an array yields itself as its only item, which is then reported as
/// an item that cannot be applied.
fn list_items(object: Value) -> Result<Vec<Value>, Value> {
    let Some(kind) = object.get("kind").and_then(Value::as_str) else {
        return Err(object);
    };
    let items = object.get("items");
    let is_list = kind == "List" || (kind.ends_with("List") && items.is_some_and(Value::is_array));
    if !is_list {
        return Err(object);
    }
    let item_kind = kind
        .strip_suffix("List")
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    let api_version = object.get("apiVersion").cloned();
    let Value::Object(mut list) = object else {
        unreachable!("a value with a kind is a mapping");
    };
    let mut items = match list.remove("items") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Ok(vec![Value::Object(list)]),
    };
    if let (Some(kind), Some(api_version)) = (item_kind, api_version) {
        for item in &mut items {
            if let Value::Object(item) = item
                && !item.contains_key("apiVersion")
                && !item.contains_key("kind")
            {
                item.insert("apiVersion".into(), api_version.clone());
                item.insert("kind".into(), Value::String(kind.clone()));
            }
        }
    }
    Ok(items)
}

enum Kind<'v> {
    /// No `apiVersion` or no `kind`.
    Missing,
    /// A kind the cluster does not serve.
    Unserved(&'v str),
    Served,
}

struct Parsed<'p> {
    index: &'p TypeIndex<'p>,
    manifests: Vec<Manifest>,
    diagnostics: Vec<Diagnostic>,
}

impl Parsed<'_> {
    fn item(&mut self, file: &str, doc_index: usize, item_index: usize, item: Value) {
        match list_items(item) {
            Err(item) => self.document(file, doc_index, Some(item_index), item),
            Ok(_) => self.skip(
                file,
                SkipReason::IncompleteObject,
                format!(
                    "{} is a List inside a List, which is not read",
                    place(doc_index, Some(item_index))
                ),
            ),
        }
    }

    /// One object: a whole document, or an item of a `List`.
    fn document(&mut self, file: &str, doc_index: usize, item_index: Option<usize>, object: Value) {
        let at = place(doc_index, item_index);
        match resolve_id(&object, self.index) {
            Ok((id, _)) => self.manifests.push(Manifest {
                id,
                file: file.to_owned(),
                doc_index,
                item_index,
                revision: None,
                object: object.into(),
            }),
            Err(IdError::Incomplete(field)) => {
                let what = if object.is_object() {
                    format!("has no {field}")
                } else {
                    "is not a mapping".to_owned()
                };
                let generate_name = object
                    .get("metadata")
                    .and_then(|m| m.get("generateName"))
                    .and_then(Value::as_str);
                match (self.kind_of(&object), generate_name) {
                    // Not meant to be an object: kustomization.yaml, Helm values.
                    (Kind::Missing | Kind::Unserved(_), None) if item_index.is_none() => {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Severity::Info,
                                DiagnosticReason::NotAnObject,
                                format!("{at} {what}, so it is not a Kubernetes object; skipped"),
                            )
                            .file(file),
                        );
                    }
                    (Kind::Unserved(kind), Some(_)) if item_index.is_none() => {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Severity::Warning,
                                DiagnosticReason::UnknownKind,
                                format!("{at}: kind {kind} is not served by the cluster; skipped"),
                            )
                            .file(file),
                        );
                    }
                    (_, Some(prefix)) => self.skip(
                        file,
                        SkipReason::GenerateName,
                        format!(
                            "{at} has metadata.generateName {prefix:?} but no metadata.name; objects are applied by name, so set metadata.name"
                        ),
                    ),
                    (_, None) => self.skip(
                        file,
                        SkipReason::IncompleteObject,
                        format!("{at} {what}, so it cannot be applied"),
                    ),
                }
            }
            Err(IdError::UnknownKind { api_version, kind }) => self.diagnostics.push(
                Diagnostic::new(
                    Severity::Warning,
                    DiagnosticReason::UnknownKind,
                    format!(
                        "{at}: kind {kind} of {api_version} is not served by the cluster; skipped"
                    ),
                )
                .file(file),
            ),
        }
    }

    /// Whether the object names an `apiVersion` and `kind`, and whether the cluster serves
    /// them.
    fn kind_of<'v>(&self, object: &'v Value) -> Kind<'v> {
        let field = |name: &str| object.get(name).and_then(Value::as_str);
        match (field("apiVersion"), field("kind")) {
            (Some(api_version), Some(kind)) => {
                if self
                    .index
                    .get_ordered(group_of(api_version), kind)
                    .is_some()
                {
                    Kind::Served
                } else {
                    Kind::Unserved(kind)
                }
            }
            _ => Kind::Missing,
        }
    }

    fn skip(&mut self, file: &str, reason: SkipReason, message: String) {
        self.diagnostics.push(
            Diagnostic::new(
                severity_of(reason),
                DiagnosticReason::SkippedInput(reason),
                format!("{message}; skipped, so nothing is pruned and no new file is written until it is fixed"),
            )
            .file(file),
        );
    }
}

type ParseFailure = (Option<usize>, String);

fn parse_documents(path: &str, content: &str) -> Result<Vec<Value>, ParseFailure> {
    if path.to_ascii_lowercase().ends_with(".json") {
        if content.trim().is_empty() {
            return Ok(Vec::new());
        }
        return serde_json::from_str(content)
            .map(|v| vec![v])
            .map_err(|e| (Some(e.line()), format!("invalid JSON: {e}")));
    }
    // YAML 1.1 octals (`defaultMode: 0644`) as kubectl reads them; one-line messages.
    let options = serde_saphyr::options! { legacy_octal_numbers: true, with_snippet: false };
    serde_saphyr::from_multiple_with_options::<Value>(content, options).map_err(|e| {
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
    use crate::{SkippedInput, skipped_inputs};
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
    fn a_parser_reused_file_by_file_reads_what_parse_manifests_reads() {
        let files = [
            (
                "a.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
            ),
            ("broken.yaml", "a: [unclosed\n"),
            (
                "README.md",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: md}\n",
            ),
            (
                "list.yml",
                "kind: ConfigMapList\napiVersion: v1\nitems: [{metadata: {name: b}}]\n",
            ),
            (
                "odd.json",
                r#"{"apiVersion": "v9", "kind": "Gadget", "metadata": {"name": "g"}}"#,
            ),
        ];
        let types = types();
        let parser = ManifestParser::new(&types);
        let (mut manifests, mut diagnostics) = (Vec::new(), Vec::new());
        for (path, content) in files {
            let (m, d) = parser.parse_file(path, content);
            manifests.extend(m);
            diagnostics.extend(d);
        }
        let whole = parse(&files);
        assert_eq!((manifests, diagnostics), whole);
        assert_eq!(whole.0.len(), 2, "a and b; the README is not read");
        assert_eq!(whole.1.len(), 2, "the broken file and the unknown kind");
    }

    #[test]
    fn non_objects_are_skipped_with_info() {
        let (ms, diags) = parse(&[
            ("kustomization.yaml", "resources: [a.yaml]\n"),
            ("values.yml", "replicas: 3\n---\njust a string\n"),
            (
                "kustomize.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
            ),
            (
                "empty-list.json",
                r#"{"apiVersion": "v1", "kind": "List", "items": []}"#,
            ),
        ]);
        assert!(ms.is_empty());
        assert_eq!(diags.len(), 4, "{diags:#?}");
        assert!(
            diags
                .iter()
                .all(|d| d.severity == Severity::Info && d.reason == DiagnosticReason::NotAnObject)
        );
        assert!(
            diags[0].message.contains("has no apiVersion"),
            "{}",
            diags[0].message
        );
        assert!(diags[2].message.contains("document 1 is not a mapping"));
        assert!(diags[3].message.contains("has no metadata.name"));
        assert!(skipped_inputs(&diags).is_empty(), "the source is complete");
    }

    /// Documents meant as objects that cannot be applied make the source incomplete.
    #[test]
    fn objects_that_cannot_be_applied_are_skipped_inputs() {
        let (ms, diags) = parse(&[
            (
                "nameless.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            ),
            (
                "generated.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: job-\n",
            ),
            (
                "unserved-generated.yaml",
                "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  generateName: w-\n",
            ),
        ]);
        assert!(ms.is_empty());
        let shown: Vec<(&str, DiagnosticReason, Severity)> = diags
            .iter()
            .map(|d| (d.file.as_deref().unwrap(), d.reason, d.severity))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "nameless.yaml",
                    DiagnosticReason::SkippedInput(SkipReason::IncompleteObject),
                    Severity::Warning
                ),
                (
                    "generated.yaml",
                    DiagnosticReason::SkippedInput(SkipReason::GenerateName),
                    Severity::Warning
                ),
                (
                    "unserved-generated.yaml",
                    DiagnosticReason::UnknownKind,
                    Severity::Warning
                ),
            ]
        );
        assert!(diags[1].message.contains("generateName \"job-\""));
        assert_eq!(
            skipped_inputs(&diags),
            [
                SkippedInput::new("generated.yaml", SkipReason::GenerateName),
                SkippedInput::new("nameless.yaml", SkipReason::IncompleteObject),
            ]
        );
    }

    #[test]
    fn lists_are_expanded_into_their_items() {
        let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: before}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a, namespace: x}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
- kind: ConfigMap
  metadata: {name: no-version}
- apiVersion: example.com/v1
  kind: Widget
  metadata: {name: w}
- metadata: {name: no-kind}
- apiVersion: v1
  kind: ConfigMap
  metadata: {generateName: g-}
- apiVersion: v1
  kind: List
  items: []
- just a string
---
apiVersion: v1
kind: ConfigMapList
items:
- metadata: {name: typed}
  data: {k: v}
";
        let (ms, diags) = parse(&[("lists.yaml", yaml)]);
        let found: Vec<(String, usize, Option<usize>)> = ms
            .iter()
            .map(|m| (m.id.to_string(), m.doc_index, m.item_index))
            .collect();
        assert_eq!(
            found,
            [
                ("ConfigMap default/before".to_owned(), 0, None),
                ("ConfigMap x/a".to_owned(), 1, Some(0)),
                ("apps/Deployment default/web".to_owned(), 1, Some(1)),
                ("ConfigMap default/typed".to_owned(), 2, Some(0)),
            ]
        );
        assert_eq!(ms[3].place(), "document 2, item 0");
        assert_eq!(
            *ms[3].object,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typed"}, "data": {"k": "v"}}),
            "items of a typed list without apiVersion and kind inherit them, as in kubectl"
        );
        let shown: Vec<(DiagnosticReason, &str)> = diags
            .iter()
            .map(|d| (d.reason, d.message.as_str()))
            .collect();
        let reasons: Vec<DiagnosticReason> = shown.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            reasons,
            [
                DiagnosticReason::SkippedInput(SkipReason::IncompleteObject),
                DiagnosticReason::UnknownKind,
                DiagnosticReason::SkippedInput(SkipReason::IncompleteObject),
                DiagnosticReason::SkippedInput(SkipReason::GenerateName),
                DiagnosticReason::SkippedInput(SkipReason::IncompleteObject),
                DiagnosticReason::SkippedInput(SkipReason::IncompleteObject),
            ],
            "{shown:#?}"
        );
        assert!(
            shown[0]
                .1
                .starts_with("document 1, item 2 has no apiVersion")
        );
        assert!(shown[1].1.starts_with("document 1, item 3: kind Widget"));
        assert!(
            shown[4]
                .1
                .starts_with("document 1, item 6 is a List inside a List")
        );
        assert!(
            shown[5]
                .1
                .starts_with("document 1, item 7 is not a mapping")
        );
    }

    #[test]
    fn a_list_whose_items_are_not_a_list_is_skipped() {
        let (ms, diags) = parse(&[("l.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n")]);
        assert!(ms.is_empty());
        assert_eq!(
            skipped_inputs(&diags),
            [SkippedInput::new("l.yaml", SkipReason::IncompleteObject)]
        );
        // A kind ending in List without an items array is an ordinary (here unknown) kind.
        let (_, diags) = parse(&[(
            "w.yaml",
            "apiVersion: example.com/v1\nkind: WatchList\nmetadata: {name: w}\n",
        )]);
        assert_eq!(diags[0].reason, DiagnosticReason::UnknownKind);
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
            (
                Severity::Error,
                DiagnosticReason::SkippedInput(SkipReason::ParseError)
            )
        );
        assert_eq!(d.file.as_deref(), Some("broken.yaml"));
        let line = d.line.expect("a line number");
        assert!((6..=8).contains(&line), "line {line}");
        assert_eq!(
            skipped_inputs(&diags),
            [SkippedInput::new("broken.yaml", SkipReason::ParseError)]
        );

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
        assert_eq!(
            diags[0].reason,
            DiagnosticReason::SkippedInput(SkipReason::ParseError)
        );
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
