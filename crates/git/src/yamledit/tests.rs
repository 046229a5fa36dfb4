use super::*;
use serde_json::json;

const DEPLOY: &str = "\
# Web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the name
  labels:
    app: web
spec:
  replicas: 2

  template:
    spec:
      containers:
        # main container
        - name: web
          image: \"nginx:1.25\"   # pinned
          args: [\"--a\", \"--b\"]
          env:
            - name: A
              value: 'x'
        - name: side
          image: busybox
---
# Second document.
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  script: |
    echo hi
    echo there
  mode: on-demand
";

fn doc(text: &str, i: usize) -> Value {
    parse_values(text).unwrap().remove(i)
}

/// Lines of `b` that differ from `a` (same line count assumed for the simple cases).
fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

fn edit(text: &str, i: usize, f: impl FnOnce(&mut Value)) -> (String, EditKind) {
    let mut v = doc(text, i);
    f(&mut v);
    let (out, kind) = update_document_with_kind(text, i, &v).unwrap();
    assert!(values_equal(&doc(&out, i), &v), "{out}");
    (out, kind)
}

#[test]
fn scalar_change_keeps_quotes_and_comment() {
    let (out, kind) = edit(DEPLOY, 0, |v| {
        v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    });
    assert_eq!(kind, EditKind::InPlace);
    assert_eq!(
        changed_lines(DEPLOY, &out),
        vec![(
            "          image: \"nginx:1.25\"   # pinned".to_string(),
            "          image: \"nginx:1.26\"   # pinned".to_string()
        )]
    );
}

#[test]
fn number_and_single_quoted() {
    let (out, _) = edit(DEPLOY, 0, |v| {
        v["spec"]["replicas"] = json!(5);
        v["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = json!("it's");
    });
    let ch = changed_lines(DEPLOY, &out);
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert_eq!(ch[0].1, "  replicas: 5");
    assert_eq!(ch[1].1, "              value: 'it''s'");
}

#[test]
fn unchanged_value_is_identity() {
    let v = doc(DEPLOY, 1);
    let (out, kind) = update_document_with_kind(DEPLOY, 1, &v).unwrap();
    assert_eq!(out, DEPLOY);
    assert_eq!(kind, EditKind::Unchanged);
}

#[test]
fn second_document_edits_leave_first_identical() {
    let (out, kind) = edit(DEPLOY, 1, |v| {
        v["data"]["script"] = json!("echo bye\n");
        v["data"]["mode"] = json!("yes");
        v["metadata"]["namespace"] = json!("prod");
    });
    assert_eq!(kind, EditKind::InPlace);
    let first_end = DEPLOY.find("---\n").unwrap();
    assert_eq!(&out[..first_end], &DEPLOY[..first_end]);
    assert!(
        out.contains("metadata: {name: cfg, namespace: prod}\n"),
        "{out}"
    );
    assert!(
        out.contains("  script: |\n    echo bye\n  mode: \"yes\"\n"),
        "{out}"
    );
}

#[test]
fn add_and_remove_entries() {
    let (out, _) = edit(DEPLOY, 0, |v| {
        v["metadata"]["labels"]["tier"] = json!("front");
        v["metadata"]["annotations"] = json!({"a": "1", "b": {"c": [1, 2]}});
        v["spec"].as_object_mut().unwrap().remove("replicas");
    });
    assert!(
        out.contains(
            "  labels:\n    app: web\n    tier: front\n  annotations:\n    a: \"1\"\n    b:\n      c:\n        - 1\n        - 2\nspec:\n\n  template:"
        ),
        "{out}"
    );
    assert!(out.starts_with("# Web tier.\n"));
}

#[test]
fn new_key_keeps_new_order() {
    let text = "metadata:\n  name: a\nkind: X\n";
    let v = json!({"apiVersion": "v1", "metadata": {"name": "a"}, "kind": "X", "data": {"k": "v"}});
    let out = update_document(text, 0, &v).unwrap();
    // serde_json maps are sorted, so the new value's order carries no meaning here: the
    // conventional Kubernetes order places apiVersion first, other new keys at the end.
    assert_eq!(
        out,
        "apiVersion: v1\nmetadata:\n  name: a\nkind: X\ndata:\n  k: v\n"
    );
    // Text in the same (sorted) order as the value: new keys go after their predecessor.
    let out = update_document("a: 1\nc: 3\n", 0, &json!({"a": 1, "b": 2, "c": 3})).unwrap();
    assert_eq!(out, "a: 1\nb: 2\nc: 3\n");
}

#[test]
fn sequence_append_insert_remove() {
    let (out, _) = edit(DEPLOY, 0, |v| {
        let cs = v["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        cs.push(json!({"name": "third", "image": "x:1", "ports": [{"containerPort": 80}]}));
    });
    assert!(
        out.contains(
            "          image: busybox\n        - name: third\n          image: x:1\n          ports:\n            - containerPort: 80\n---"
        ),
        "{out}"
    );
    let (out, _) = edit(DEPLOY, 0, |v| {
        let cs = v["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        cs.remove(1);
    });
    assert!(out.contains("              value: 'x'\n---\n"), "{out}");
    let (out, _) = edit(DEPLOY, 0, |v| {
        let cs = v["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        cs.remove(0);
    });
    assert!(
        out.contains("      containers:\n        # main container\n        - name: side\n"),
        "{out}"
    );
}

#[test]
fn indentless_sequences_and_four_space_indent() {
    let text = "spec:\n    containers:\n    - name: a\n      image: x\n";
    let v = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "nginx"}], "volumes": [{"name": "v"}]}});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(
        out,
        "spec:\n    containers:\n    - name: a\n      image: x\n    - name: b\n      image: nginx\n    volumes:\n    - name: v\n"
    );
}

#[test]
fn kind_changes_rerender_at_right_indent() {
    let text = "a:\n  b: 1 # c\n  c: [1, 2]\nd: x\n";
    let v = json!({"a": {"b": {"x": 1}, "c": "s"}, "d": ["p", {"q": "r"}]});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(out, "a:\n  b:\n    x: 1 # c\n  c: s\nd:\n  - p\n  - q: r\n");
}

#[test]
fn emptying_and_filling_collections() {
    let text = "metadata:\n  labels:\n    a: b\n  annotations: {}\nspec: {}\n";
    let v = json!({"metadata": {"labels": {}, "annotations": {"x": "y"}}, "spec": {}});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(
        out,
        "metadata:\n  labels: {}\n  annotations:\n    x: \"y\"\nspec: {}\n"
    );
}

#[test]
fn first_key_of_sequence_item_removed() {
    let text = "items:\n  - name: a\n    image: x\n  - name: b\n";
    let v = json!({"items": [{"image": "x"}, {"name": "b"}]});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(out, "items:\n  - image: x\n  - name: b\n");
}

#[test]
fn null_values() {
    let text = "a:\nb: 1\n";
    let v = json!({"a": "x", "b": null});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(out, "a: x\nb: null\n");
}

#[test]
fn anchors_fall_back_to_rerender_of_that_document_only() {
    let text = "# keep me\nfirst: 1\n---\n# head\nbase: &b {x: 1}\nuse: *b\n# tail\n";
    let v = json!({"base": {"x": 2}, "use": {"x": 1}});
    let (out, kind) = update_document_with_kind(text, 1, &v).unwrap();
    assert_eq!(kind, EditKind::Rerendered);
    assert!(
        out.starts_with("# keep me\nfirst: 1\n---\n# head\n"),
        "{out}"
    );
    assert!(out.ends_with("# tail\n"), "{out}");
    assert!(values_equal(&doc(&out, 1), &v));
}

#[test]
fn empty_documents_are_not_counted() {
    let text = "# only a comment\n---\na: 1\n---\n---\nb: 2\n";
    assert_eq!(count_documents(text).unwrap(), 2);
    let out = update_document(text, 1, &json!({"b": 3})).unwrap();
    assert_eq!(out, "# only a comment\n---\na: 1\n---\n---\nb: 3\n");
    assert!(matches!(
        update_document(text, 2, &json!({})),
        Err(EditError::NoSuchDocument { index: 2, count: 2 })
    ));
}

#[test]
fn remove_documents() {
    let out = remove_document(DEPLOY, 0).unwrap().unwrap();
    assert_eq!(out, DEPLOY[DEPLOY.find("---\n").unwrap() + 4..]);
    let explicit = "---\na: 1\n---\nb: 2\n";
    assert_eq!(
        remove_document(explicit, 0).unwrap().unwrap(),
        "---\nb: 2\n"
    );
    let out = remove_document(DEPLOY, 1).unwrap().unwrap();
    assert_eq!(out, DEPLOY[..DEPLOY.find("---\n").unwrap()]);
    assert_eq!(remove_document("a: 1\n", 0).unwrap(), None);
    let three = "a: 1\n---\nb: 2\n---\nc: 3\n";
    assert_eq!(
        remove_document(three, 1).unwrap().unwrap(),
        "a: 1\n---\nc: 3\n"
    );
}

#[test]
fn append() {
    let out = append_document("a: 1\n", &json!({"b": 2})).unwrap();
    assert_eq!(out, "a: 1\n---\nb: 2\n");
    let out = append_document("# just a comment\n", &json!({"b": 2})).unwrap();
    assert_eq!(out, "# just a comment\nb: 2\n");
}

#[test]
fn literal_block_scalar_edits() {
    let text = "data:\n  script: |-\n    one\n    two\n  other: x # c\n";
    let v = json!({"data": {"script": "one\nthree", "other": "x"}});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(
        out,
        "data:\n  script: |-\n    one\n    three\n  other: x # c\n"
    );
    let v = json!({"data": {"script": "single", "other": "x"}});
    let out = update_document(text, 0, &v).unwrap();
    assert_eq!(out, "data:\n  script: single\n  other: x # c\n");
}

#[test]
fn quoting_of_ambiguous_strings() {
    let text = "a: b\n";
    for s in [
        "yes",
        "1",
        "0123",
        "",
        "a: b",
        "#x",
        "null",
        "*ref",
        "- x",
        "multi\nline",
    ] {
        let v = json!({"a": s});
        let out = update_document(text, 0, &v).unwrap();
        assert_eq!(doc(&out, 0), v, "{s:?} -> {out}");
    }
}

#[test]
fn many_random_edits_verify() {
    // A small deterministic fuzz: every leaf changed, removed, or given a sibling.
    let base = doc(DEPLOY, 0);
    let mut paths = Vec::new();
    fn leaves(v: &Value, p: Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::Object(o) => {
                for (k, c) in o {
                    let mut q = p.clone();
                    q.push(json!(k));
                    leaves(c, q, out);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    let mut q = p.clone();
                    q.push(json!(i));
                    leaves(c, q, out);
                }
            }
            _ => out.push(p),
        }
    }
    leaves(&base, Vec::new(), &mut paths);
    for (n, p) in paths.iter().enumerate() {
        for op in 0..3 {
            let mut v = base.clone();
            let mut cur = &mut v;
            for seg in &p[..p.len() - 1] {
                cur = match seg {
                    Value::String(k) => &mut cur[k.as_str()],
                    Value::Number(i) => &mut cur[i.as_u64().unwrap() as usize],
                    _ => unreachable!(),
                };
            }
            let last = &p[p.len() - 1];
            match (op, last, &mut *cur) {
                (0, Value::String(k), Value::Object(o)) => {
                    o.insert(k.clone(), json!(format!("v{n}: x")));
                }
                (0, Value::Number(i), Value::Array(a)) => {
                    a[i.as_u64().unwrap() as usize] = json!(n)
                }
                (1, Value::String(k), Value::Object(o)) => {
                    o.remove(k);
                }
                (1, Value::Number(i), Value::Array(a)) => {
                    a.remove(i.as_u64().unwrap() as usize);
                }
                (2, _, Value::Object(o)) => {
                    o.insert(format!("new{n}"), json!({"deep": [n, "yes"]}));
                }
                (2, _, Value::Array(a)) => a.push(json!({"k": n})),
                _ => continue,
            }
            let (out, kind) = update_document_with_kind(DEPLOY, 0, &v)
                .unwrap_or_else(|e| panic!("path {p:?} op {op}: {e}"));
            assert!(
                values_equal(&doc(&out, 0), &v),
                "path {p:?} op {op}:\n{out}"
            );
            assert_eq!(kind, EditKind::InPlace, "path {p:?} op {op}:\n{out}");
            // The second document is untouched.
            let second = &DEPLOY[DEPLOY.find("---\n").unwrap()..];
            assert!(out.ends_with(second));
            // The comments survive.
            for c in ["# Web tier.", "# the name", "# pinned"] {
                if !(op == 1
                    && (c == "# pinned" && p.len() > 4 && p[5] == json!("image")
                        || c == "# the name" && p == &vec![json!("metadata"), json!("name")]))
                {
                    assert!(out.contains(c), "path {p:?} op {op} lost {c}:\n{out}");
                }
            }
        }
    }
}

#[test]
fn crlf_files_stay_crlf() {
    let text = "# c\r\na: 1 # x\r\nb:\r\n  - p\r\n---\r\nz: 1\r\n";
    let out = update_document(text, 0, &json!({"a": 2, "b": ["p", "q"], "c": "new"})).unwrap();
    assert_eq!(
        out,
        "# c\r\na: 2 # x\r\nb:\r\n  - p\r\n  - q\r\nc: new\r\n---\r\nz: 1\r\n"
    );
    assert_eq!(remove_document(text, 0).unwrap().unwrap(), "z: 1\r\n");
    assert_eq!(
        append_document("a: 1\r\n", &json!({"b": 1})).unwrap(),
        "a: 1\r\n---\r\nb: 1\r\n"
    );
}

const KUBECTL_STYLE: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
    annotations:
        \"example.com/quoted-key\": \"v\"
        note: >-
            folded text
            over lines
    name: db
spec:
    serviceName: db
    template:
        spec:
            containers:
            - command:
              - /bin/sh
              - -c
              - |
                echo start
                exec db
              env:
              - {name: A, value: \"1\"}
              - name: B
                valueFrom:
                    secretKeyRef: {name: s, key: k}
              name: db
              image: db:1   # tag
            volumes: []
    volumeClaimTemplates:
    - metadata: {name: data}
      spec:
          accessModes: [ReadWriteOnce]
          resources:
              requests:
                  storage: 1Gi
...
";

/// Every leaf changed, removed, or given a new sibling: the result must read back as the
/// new value and be an in-place edit.
fn fuzz_all_leaves(text: &str, doc_index: usize) {
    let base = doc(text, doc_index);
    let mut paths = Vec::new();
    fn leaves(v: &Value, p: Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, c) in o {
                    let mut q = p.clone();
                    q.push(json!(k));
                    leaves(c, q, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, c) in a.iter().enumerate() {
                    let mut q = p.clone();
                    q.push(json!(i));
                    leaves(c, q, out);
                }
            }
            _ => out.push(p),
        }
    }
    leaves(&base, Vec::new(), &mut paths);
    let replacements = [
        json!("changed value"),
        json!(42),
        json!({"x": [1, {"y": "z"}]}),
        json!(["a", "b"]),
        json!("multi\nline\n"),
        json!(null),
        json!({}),
        json!("yes"),
    ];
    for (n, p) in paths.iter().enumerate() {
        for op in 0..(3 + replacements.len()) {
            let mut v = base.clone();
            let mut cur = &mut v;
            for seg in &p[..p.len() - 1] {
                cur = match seg {
                    Value::String(k) => &mut cur[k.as_str()],
                    Value::Number(i) => &mut cur[i.as_u64().unwrap() as usize],
                    _ => unreachable!(),
                };
            }
            let last = &p[p.len() - 1];
            match (op, last, &mut *cur) {
                (0, Value::String(k), Value::Object(o)) => {
                    o.remove(k);
                }
                (0, Value::Number(i), Value::Array(a)) => {
                    a.remove(i.as_u64().unwrap() as usize);
                }
                (1, _, Value::Object(o)) => {
                    o.insert(format!("added{n}"), json!({"deep": [n, "on"]}));
                }
                (1, _, Value::Array(a)) => a.insert(0, json!({"name": format!("n{n}")})),
                (2, _, Value::Array(a)) => a.push(json!("tail")),
                (2, _, Value::Object(o)) => {
                    o.insert("zzz".into(), json!("last"));
                }
                (k, Value::String(key), Value::Object(o)) => {
                    o.insert(key.clone(), replacements[k - 3].clone());
                }
                (k, Value::Number(i), Value::Array(a)) => {
                    a[i.as_u64().unwrap() as usize] = replacements[k - 3].clone()
                }
                _ => continue,
            }
            if v.as_object().is_some_and(|o| o.is_empty()) {
                continue;
            }
            let (out, kind) = update_document_with_kind(text, doc_index, &v)
                .unwrap_or_else(|e| panic!("path {p:?} op {op}: {e}"));
            assert!(
                values_equal(&doc(&out, doc_index), &v),
                "path {p:?} op {op}:\n{out}"
            );
            assert_eq!(kind, EditKind::InPlace, "path {p:?} op {op}:\n{out}");
        }
    }
}

#[test]
fn fuzz_kubectl_style() {
    fuzz_all_leaves(KUBECTL_STYLE, 0);
}

#[test]
fn fuzz_deploy_both_documents() {
    fuzz_all_leaves(DEPLOY, 0);
    fuzz_all_leaves(DEPLOY, 1);
}

#[test]
fn fuzz_golden() {
    let golden = include_str!("../../tests/golden/web.yaml");
    for i in 0..3 {
        fuzz_all_leaves(golden, i);
    }
}
