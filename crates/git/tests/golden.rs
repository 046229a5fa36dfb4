//! Golden files of format preservation. `tests/golden/web.yaml` is a commented,
//! multi-document manifest; bumping one image must produce exactly
//! `tests/golden/web.image-bumped.yaml`, which differs from it in exactly one line — both
//! through the editor alone and through a real commit pushed to a git daemon.

mod common;

use common::*;
use gitcontroller_git::{Error, FileChange, yamledit};
use gitcontroller_testkit::git_server::GitDaemon;
use serde_json::{Value, json};

const ORIGINAL: &str = include_str!("golden/web.yaml");
const BUMPED: &str = include_str!("golden/web.image-bumped.yaml");

fn differing_lines(a: &str, b: &str) -> Vec<(usize, String, String)> {
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "line count changed:\n{b}"
    );
    a.lines()
        .zip(b.lines())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i + 1, x.to_string(), y.to_string()))
        .collect()
}

fn bumped_object() -> Value {
    let mut deploy = yamledit::parse_values(ORIGINAL).unwrap().remove(1);
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] =
        json!("registry.example.com/shop/web:1.5.0");
    deploy
}

#[test]
fn golden_files_differ_in_one_line() {
    let diff = differing_lines(ORIGINAL, BUMPED);
    assert_eq!(diff.len(), 1, "{diff:?}");
}

#[test]
fn image_bump_changes_exactly_one_line() {
    let out = yamledit::update_document(ORIGINAL, 1, &bumped_object()).unwrap();
    assert_eq!(out, BUMPED);
    let diff = differing_lines(ORIGINAL, &out);
    assert_eq!(
        diff,
        vec![(
            33,
            "        image: \"registry.example.com/shop/web:1.4.2\"   # pinned, see CHANGELOG"
                .to_string(),
            "        image: \"registry.example.com/shop/web:1.5.0\"   # pinned, see CHANGELOG"
                .to_string()
        )]
    );
}

#[test]
fn image_bump_through_a_pushed_commit() {
    let d = GitDaemon::start();
    d.seed(&[("shop/web.yaml", ORIGINAL)], "seed");
    let c = cache();
    let mut repo = open(&d.url(), &c);
    let out = repo
        .commit_and_push(&author(), Some("[gitops]"), &mut |snap| {
            let file = snap.get("shop/web.yaml").unwrap();
            assert_eq!(file.text(), Some(ORIGINAL));
            Ok::<_, Error>(vec![FileChange::Put {
                path: "shop/web.yaml".into(),
                doc_index: Some(1),
                object: bumped_object(),
                subject: "apps/Deployment shop/web".into(),
            }])
        })
        .unwrap();
    assert!(out.commit.is_some());
    assert_eq!(d.read_file("shop/web.yaml").unwrap(), BUMPED);
    // git agrees: one line added, one removed.
    let numstat = d
        .git()
        .args(["diff", "--numstat", "main~1", "main"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&numstat.stdout),
        "1\t1\tshop/web.yaml\n"
    );
    assert_eq!(
        d.commit_messages()[0],
        "[gitops] Update apps/Deployment shop/web\n\n- update apps/Deployment shop/web (shop/web.yaml)"
    );
}

#[test]
fn other_edits_stay_local() {
    // Scale, add an env var and an annotation, drop the sidecar: every other line, comment and
    // document stays byte-identical.
    let mut deploy = yamledit::parse_values(ORIGINAL).unwrap().remove(1);
    deploy["spec"]["replicas"] = json!(5);
    deploy["metadata"]["annotations"]["owner"] = json!("team-web");
    let c = &mut deploy["spec"]["template"]["spec"]["containers"];
    c[0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "REGION", "value": "eu-1"}));
    c.as_array_mut().unwrap().remove(1);
    let out = yamledit::update_document(ORIGINAL, 1, &deploy).unwrap();
    let expected = ORIGINAL
        .replace("  replicas: 3 # scaled", "  replicas: 5 # scaled")
        .replace(
            "    runbook: 'https://runbooks.example.com/web'\n",
            "    runbook: 'https://runbooks.example.com/web'\n    owner: team-web\n",
        )
        .replace(
            "          value: \"checkout,search\"\n",
            "          value: \"checkout,search\"\n        - name: REGION\n          value: eu-1\n",
        )
        .replace(
            "      - name: sidecar\n        image: registry.example.com/shop/proxy:2.0.0\n",
            "",
        );
    assert_eq!(out, expected);
}
