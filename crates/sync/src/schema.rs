//! What the planner knows about a resource type from the OpenAPI v3 document the API server
//! publishes, so that it compares objects the way the server stores and merges them.
//!
//! [`parse_openapi_v3`] reads one document — as served at `/openapi/v3/api/v1` or
//! `/openapi/v3/apis/<group>/<version>` — into a [`TypeSchema`] per group-version-kind; the
//! caller hands it to the planner in [`ResourceType::schema`](crate::ResourceType::schema).
//! Only what comparison needs is kept:
//!
//! - **atomic maps**: `x-kubernetes-map-type: atomic` (Service `spec.selector`, `LabelSelector`)
//!   — server-side apply replaces them whole, so they are compared whole;
//! - **lists** by `x-kubernetes-list-type`: `atomic` (and lists without a list type, which
//!   server-side apply treats as atomic), `set`, and `map` with its
//!   `x-kubernetes-list-map-keys` (containers by `name`, ports by `containerPort` and
//!   `protocol`);
//! - **quantities**: a `$ref` to `io.k8s.apimachinery.pkg.api.resource.Quantity` (compared by
//!   value, see [`crate::quantity`]);
//! - **int-or-string**: `format: int-or-string` or `x-kubernetes-int-or-string: true` (`80` and
//!   `"80"` are different values there);
//! - **bytes**: `format: byte` (Secret `data`: compared decoded);
//! - **defaults**: a property's `default`. Built-in types publish the zero value for fields
//!   that are always serialized (`mountPath: ""`) and `+default` markers (`protocol: TCP`), so
//!   a published default tells the planner that a live field holding it may be the server's,
//!   and that a field without one may be omitted when it holds its zero value (Go's
//!   `omitempty` itself is not published).
//!
//! Everything else is [`SchemaNode::is_known`] `false` and compares as without a schema.
//! Definitions are shared and referenced by index, so recursive schemas (`JSONSchemaProps`)
//! parse in bounded time; inline nesting deeper than 32 levels is cut off as unknown.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A group, version and kind, as in `x-kubernetes-group-version-kind`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupVersionKind {
    /// API group; `""` for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
}

impl GroupVersionKind {
    /// Builds a group-version-kind from its parts.
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        GroupVersionKind {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        }
    }
}

/// The key of a group version in the `/openapi/v3` index (`paths`), which names the URL of
/// its document: `api/v1` for the core group, `apis/<group>/<version>` otherwise.
pub fn openapi_v3_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Why a document could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The document has no `components.schemas` object: not an OpenAPI v3 document of the
    /// Kubernetes API.
    #[error("not an OpenAPI v3 document: no components.schemas")]
    NoSchemas,
}

/// The schema of one resource type: a view into the parsed document it came from, which all
/// types of that document share.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeSchema {
    nodes: Arc<Vec<Node>>,
    root: NodeId,
}

impl fmt::Debug for TypeSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeSchema({} nodes)", self.nodes.len())
    }
}

impl TypeSchema {
    /// The schema of the whole object.
    pub fn root(&self) -> SchemaNode<'_> {
        SchemaNode::at(&self.nodes, self.root, None)
    }

    /// The schema at an object-member path (`["spec", "selector"]`); unknown where the
    /// schema says nothing.
    pub fn at<S: AsRef<str>>(&self, path: &[S]) -> SchemaNode<'_> {
        path.iter()
            .fold(self.root(), |node, name| node.field(name.as_ref()))
    }
}

type NodeId = u32;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Node {
    Unknown,
    /// Another node (a definition that is only a reference).
    Alias(NodeId),
    Scalar(ScalarKind),
    Object(Object),
    List(List),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Object {
    /// Declared properties, sorted by name.
    fields: Vec<(String, Field)>,
    /// `additionalProperties`: the schema of members that are not declared.
    additional: Option<Field>,
    atomic: bool,
    /// Positions in `fields` ordered by the name's length, then by name: a lookup, done for
    /// every member of every object compared, then compares lengths, which are at hand, and
    /// reads only the names of the right length.
    by_length: Vec<(usize, usize)>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Field {
    node: NodeId,
    default: Option<Literal>,
    /// The property itself says `x-kubernetes-map-type: atomic` (next to a `$ref`).
    atomic: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct List {
    items: NodeId,
    kind: ListKind,
}

/// How server-side apply merges a list (`x-kubernetes-list-type`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListKind {
    /// Replaced whole (`atomic`, or no list type).
    Atomic,
    /// A set of scalars, merged by value.
    Set,
    /// A list of objects merged by these key fields (`x-kubernetes-list-map-keys`).
    Map(Vec<String>),
}

/// Scalar types that compare specially.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScalarKind {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// A boolean.
    Boolean,
    /// A resource quantity (`io.k8s.apimachinery.pkg.api.resource.Quantity`).
    Quantity,
    /// An int-or-string: the JSON type is part of the value.
    IntOrString,
    /// Base64-encoded bytes (`format: byte`).
    Bytes,
}

impl ScalarKind {
    /// Whether `value` is the zero value Go's `omitempty` leaves out for this type.
    pub(crate) fn is_zero(self, value: &Value) -> bool {
        match (self, value) {
            (ScalarKind::Boolean, Value::Bool(b)) => !b,
            (ScalarKind::Integer | ScalarKind::Number, Value::Number(n)) => n.as_f64() == Some(0.0),
            (ScalarKind::String, Value::String(s)) => s.is_empty(),
            _ => false,
        }
    }
}

/// A published default, in a form that can be ordered and hashed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// Any other JSON value, serialized.
    Json(String),
}

impl Literal {
    fn of(value: &Value) -> Literal {
        match value {
            Value::Null => Literal::Null,
            Value::Bool(b) => Literal::Bool(*b),
            Value::String(s) => Literal::Str(s.clone()),
            Value::Number(n) if n.is_i64() => Literal::Int(n.as_i64().unwrap_or_default()),
            other => Literal::Json(other.to_string()),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Int(i) => Value::from(*i),
            Literal::Str(s) => Value::String(s.clone()),
            Literal::Json(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        }
    }

    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Literal::Null, Value::Null) => true,
            (Literal::Bool(a), Value::Bool(b)) => a == b,
            (Literal::Int(a), Value::Number(b)) => {
                b.as_i64() == Some(*a) || b.as_f64() == Some(*a as f64)
            }
            (Literal::Str(a), Value::String(b)) => a == b,
            (Literal::Json(a), _) => serde_json::from_str::<Value>(a).is_ok_and(|d| d == *value),
            _ => false,
        }
    }
}

/// A position in a [`TypeSchema`] (or nowhere: then nothing is known and every answer is the
/// one that means "compare as without a schema").
#[derive(Clone, Copy)]
pub struct SchemaNode<'s> {
    nodes: &'s [Node],
    node: Option<NodeId>,
    /// The property this node was reached through, if any.
    field: Option<&'s Field>,
}

impl fmt::Debug for SchemaNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node() {
            Some(node) => write!(f, "SchemaNode({node:?})"),
            None => f.write_str("SchemaNode(unknown)"),
        }
    }
}

/// How many aliases are followed before a node counts as unknown (aliases only arise from
/// definitions that are a bare `$ref`; a cycle of them means nothing).
const MAX_ALIASES: usize = 8;

impl<'s> SchemaNode<'s> {
    /// The node that knows nothing.
    pub const UNKNOWN: SchemaNode<'static> = SchemaNode {
        nodes: &[],
        node: None,
        field: None,
    };

    fn at(nodes: &'s [Node], id: NodeId, field: Option<&'s Field>) -> Self {
        let mut id = id;
        for _ in 0..MAX_ALIASES {
            match nodes.get(id as usize) {
                Some(Node::Alias(next)) => id = *next,
                Some(Node::Unknown) | None => break,
                Some(_) => {
                    return SchemaNode {
                        nodes,
                        node: Some(id),
                        field,
                    };
                }
            }
        }
        SchemaNode {
            nodes,
            node: None,
            field,
        }
    }

    fn node(&self) -> Option<&'s Node> {
        self.nodes.get(self.node? as usize)
    }

    /// Whether the schema says anything about this position.
    pub fn is_known(&self) -> bool {
        self.node.is_some()
    }

    /// The schema of member `name` of an object: its declared property, else
    /// `additionalProperties`; unknown otherwise.
    pub fn field(&self, name: &str) -> SchemaNode<'s> {
        let Some(Node::Object(object)) = self.node() else {
            return SchemaNode::UNKNOWN;
        };
        let same_length = object
            .by_length
            .partition_point(|&(len, _)| len < name.len());
        let declared = object.by_length[same_length..]
            .iter()
            .take_while(|&&(len, _)| len == name.len())
            .map(|&(_, i)| &object.fields[i])
            .find(|(n, _)| n == name)
            .map(|(_, field)| field);
        match declared.or(object.additional.as_ref()) {
            Some(field) => SchemaNode::at(self.nodes, field.node, Some(field)),
            None => SchemaNode::UNKNOWN,
        }
    }

    /// The schema of a list's elements; unknown for anything but a list.
    pub fn items(&self) -> SchemaNode<'s> {
        match self.node() {
            Some(Node::List(list)) => SchemaNode::at(self.nodes, list.items, None),
            _ => SchemaNode::UNKNOWN,
        }
    }

    /// How a list merges; `None` when this is not known to be a list.
    pub fn list_kind(&self) -> Option<&'s ListKind> {
        match self.node() {
            Some(Node::List(list)) => Some(&list.kind),
            _ => None,
        }
    }

    /// The scalar type; `None` when this is not known to be a scalar.
    pub fn scalar(&self) -> Option<ScalarKind> {
        match self.node() {
            Some(Node::Scalar(kind)) => Some(*kind),
            _ => None,
        }
    }

    /// Whether this is known to be an object (a struct or a map).
    pub fn is_object(&self) -> bool {
        matches!(self.node(), Some(Node::Object(_)))
    }

    /// Whether server-side apply replaces this value whole: an atomic map or struct
    /// (`x-kubernetes-map-type: atomic`, on the type or on the property) or an atomic list.
    pub fn is_atomic(&self) -> bool {
        match self.node() {
            Some(Node::Object(object)) => object.atomic || self.field.is_some_and(|f| f.atomic),
            Some(Node::List(list)) => list.kind == ListKind::Atomic,
            _ => false,
        }
    }

    /// Whether this is a map with free-form keys (`additionalProperties`, no declared
    /// properties), like labels or a Service selector: the server never adds keys to it.
    pub fn is_free_form_map(&self) -> bool {
        matches!(self.node(), Some(Node::Object(o)) if o.fields.is_empty() && o.additional.is_some())
    }

    /// The published default of the property this node was reached through.
    pub fn default(&self) -> Option<Value> {
        self.field?.default.as_ref().map(Literal::to_value)
    }

    /// Whether `value` is the published default of this property.
    pub(crate) fn is_default(&self, value: &Value) -> bool {
        self.field
            .and_then(|f| f.default.as_ref())
            .is_some_and(|d| d.matches(value))
    }

    /// Whether the server may leave this field out when it holds its zero value: a known
    /// boolean, number or string property without a published default (the API publishes
    /// the zero value as the default of fields it always serializes).
    pub(crate) fn may_omit_zero(&self, value: &Value) -> bool {
        self.field.is_some_and(|f| f.default.is_none())
            && self.scalar().is_some_and(|kind| kind.is_zero(value))
    }
}

/// Definitions that are not described by their schema but by the Go type behind them.
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const REF_PREFIX: &str = "#/components/schemas/";
/// Inline schemas nested deeper than this are unknown (definitions are shared, so recursive
/// types never nest inline).
const MAX_DEPTH: usize = 32;

/// Reads an OpenAPI v3 document of the Kubernetes API into the schema of every resource type
/// it describes (every definition with `x-kubernetes-group-version-kind`).
///
/// `$ref`s are resolved within the document; a reference to a missing definition is unknown.
/// All types of one document share one parsed copy.
pub fn parse_openapi_v3(
    doc: &Value,
) -> Result<BTreeMap<GroupVersionKind, TypeSchema>, SchemaError> {
    let defs = doc
        .get("components")
        .and_then(|c| c.get("schemas"))
        .and_then(Value::as_object)
        .ok_or(SchemaError::NoSchemas)?;
    let mut parser = Parser {
        defs,
        nodes: Vec::new(),
        by_name: HashMap::new(),
        queue: Vec::new(),
    };
    let mut names: Vec<&String> = defs.keys().collect();
    names.sort();
    let mut roots: BTreeMap<GroupVersionKind, NodeId> = BTreeMap::new();
    for name in names {
        let gvks = defs[name.as_str()]
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array);
        for gvk in gvks.into_iter().flatten() {
            let part = |k: &str| gvk.get(k).and_then(Value::as_str);
            let (Some(group), Some(version), Some(kind)) =
                (part("group"), part("version"), part("kind"))
            else {
                continue;
            };
            let id = parser.reference(name);
            roots
                .entry(GroupVersionKind::new(group, version, kind))
                .or_insert(id);
        }
    }
    parser.drain();
    let nodes = Arc::new(parser.nodes);
    Ok(roots
        .into_iter()
        .map(|(gvk, root)| {
            let schema = TypeSchema {
                nodes: nodes.clone(),
                root,
            };
            (gvk, schema)
        })
        .collect())
}

struct Parser<'d> {
    defs: &'d Map<String, Value>,
    nodes: Vec<Node>,
    by_name: HashMap<&'d str, NodeId>,
    /// Referenced definitions not parsed yet, with the node reserved for them.
    queue: Vec<(&'d str, NodeId)>,
}

impl<'d> Parser<'d> {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        (self.nodes.len() - 1) as NodeId
    }

    /// The node of a definition: reserved now, parsed by [`Parser::drain`].
    fn reference(&mut self, name: &'d str) -> NodeId {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let special = match name {
            QUANTITY => Some(Node::Scalar(ScalarKind::Quantity)),
            INT_OR_STRING => Some(Node::Scalar(ScalarKind::IntOrString)),
            _ => None,
        };
        let id = self.push(special.clone().unwrap_or(Node::Unknown));
        self.by_name.insert(name, id);
        if special.is_none() {
            self.queue.push((name, id));
        }
        id
    }

    fn drain(&mut self) {
        while let Some((name, id)) = self.queue.pop() {
            let node = match self.defs.get(name) {
                Some(schema) => match ref_target(schema) {
                    Some(target) => Node::Alias(self.reference(target)),
                    None => self.node(schema, 0),
                },
                None => Node::Unknown,
            };
            self.nodes[id as usize] = node;
        }
    }

    /// The node for a schema that appears inline (a property, items, additionalProperties).
    fn schema_id(&mut self, schema: &'d Value, depth: usize) -> NodeId {
        match ref_target(schema) {
            Some(target) => self.reference(target),
            None => {
                let node = if depth > MAX_DEPTH {
                    Node::Unknown
                } else {
                    self.node(schema, depth)
                };
                self.push(node)
            }
        }
    }

    fn field(&mut self, schema: &'d Value, depth: usize) -> Field {
        Field {
            node: self.schema_id(schema, depth + 1),
            default: schema.get("default").map(Literal::of),
            atomic: str_at(schema, "x-kubernetes-map-type") == Some("atomic"),
        }
    }

    fn node(&mut self, schema: &'d Value, depth: usize) -> Node {
        let Some(obj) = schema.as_object() else {
            return Node::Unknown;
        };
        let format = str_at(schema, "format");
        if format == Some("int-or-string")
            || obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        {
            return Node::Scalar(ScalarKind::IntOrString);
        }
        let properties = obj.get("properties").and_then(Value::as_object);
        let additional = obj.get("additionalProperties");
        let ty = str_at(schema, "type").or(if properties.is_some() || additional.is_some() {
            Some("object")
        } else {
            None
        });
        match ty {
            Some("object") => {
                let preserve =
                    obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
                let mut fields: Vec<(String, Field)> = Vec::new();
                for (name, prop) in properties.into_iter().flatten() {
                    let field = self.field(prop, depth);
                    fields.push((name.clone(), field));
                }
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                let additional = match additional {
                    Some(schema @ Value::Object(_)) => Some(self.field(schema, depth)),
                    Some(Value::Bool(true)) => Some(Field {
                        node: self.push(Node::Unknown),
                        default: None,
                        atomic: false,
                    }),
                    _ => None,
                };
                if fields.is_empty() && additional.is_none() && preserve {
                    return Node::Unknown; // free-form JSON
                }
                // `fields` is sorted by name, so equal lengths stay in name order.
                let mut by_length: Vec<(usize, usize)> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| (name.len(), i))
                    .collect();
                by_length.sort_unstable();
                Node::Object(Object {
                    by_length,
                    fields,
                    additional,
                    atomic: str_at(schema, "x-kubernetes-map-type") == Some("atomic"),
                })
            }
            Some("array") => {
                let Some(items) = obj.get("items") else {
                    return Node::Unknown;
                };
                let items = self.schema_id(items, depth + 1);
                let keys = || {
                    obj.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect::<Vec<_>>()
                        })
                        .filter(|keys| !keys.is_empty())
                };
                let kind = match str_at(schema, "x-kubernetes-list-type") {
                    Some("set") => ListKind::Set,
                    Some("map") => keys().map_or(ListKind::Atomic, ListKind::Map),
                    _ => ListKind::Atomic,
                };
                Node::List(List { items, kind })
            }
            Some("string") if format == Some("byte") => Node::Scalar(ScalarKind::Bytes),
            Some("string") => Node::Scalar(ScalarKind::String),
            Some("integer") => Node::Scalar(ScalarKind::Integer),
            Some("number") => Node::Scalar(ScalarKind::Number),
            Some("boolean") => Node::Scalar(ScalarKind::Boolean),
            _ => Node::Unknown,
        }
    }
}

fn str_at<'v>(schema: &'v Value, key: &str) -> Option<&'v str> {
    schema.get(key).and_then(Value::as_str)
}

/// The definition a schema stands for: `{"$ref": ...}`, or `{"allOf": [{"$ref": ...}]}` (how
/// the Kubernetes documents attach a description or default to a referenced type).
fn ref_target(schema: &Value) -> Option<&str> {
    local_ref(schema).or_else(|| match schema.get("allOf").and_then(Value::as_array) {
        Some(all) if all.len() == 1 => local_ref(&all[0]),
        _ => None,
    })
}

fn local_ref(schema: &Value) -> Option<&str> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(schemas: Value) -> Value {
        json!({"openapi": "3.0.0", "components": {"schemas": schemas}})
    }

    #[test]
    fn recursive_and_aliased_definitions_are_bounded() {
        let d = doc(json!({
            "Props": {
                "type": "object",
                "properties": {
                    "items": {"$ref": "#/components/schemas/Props"},
                    "props": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Props"}},
                    "alias": {"$ref": "#/components/schemas/A"}
                },
                "x-kubernetes-group-version-kind": [{"group": "x", "version": "v1", "kind": "Props"}]
            },
            "A": {"$ref": "#/components/schemas/B"},
            "B": {"allOf": [{"$ref": "#/components/schemas/A"}]},
            "Missing": {"type": "object", "properties": {"m": {"$ref": "#/components/schemas/Nope"}}}
        }));
        let types = parse_openapi_v3(&d).unwrap();
        let props = &types[&GroupVersionKind::new("x", "v1", "Props")];
        let deep = props.at(&["items", "props", "any", "items", "props", "k"]);
        assert!(deep.is_object());
        assert!(
            !props.at(&["alias"]).is_known(),
            "an alias cycle is unknown"
        );
        assert_eq!(types.len(), 1);
    }

    #[test]
    fn not_a_document() {
        assert_eq!(
            parse_openapi_v3(&json!({"swagger": "2.0"})).unwrap_err(),
            SchemaError::NoSchemas
        );
    }

    #[test]
    fn deep_inline_nesting_is_cut_off() {
        let mut schema = json!({"type": "string"});
        for _ in 0..100 {
            schema = json!({"type": "object", "properties": {"a": schema}});
        }
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": "", "version": "v1", "kind": "Deep"}]);
        let types = parse_openapi_v3(&doc(json!({"Deep": schema}))).unwrap();
        let deep = &types[&GroupVersionKind::new("", "v1", "Deep")];
        assert!(deep.at(&["a"; 10]).is_object());
        assert!(!deep.at(&["a"; 40]).is_known());
    }

    #[test]
    fn openapi_paths() {
        assert_eq!(openapi_v3_path("", "v1"), "api/v1");
        assert_eq!(openapi_v3_path("apps", "v1"), "apis/apps/v1");
    }
}
